package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	gogen "github.com/attnc/attnc/codegen/go"
	"github.com/spf13/pflag"

	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/passes"
	"github.com/attnc/attnc/runtime"
)

var buildCmd = &command{
	name:    "build",
	args:    "FILE",
	summary: "compile a model to a Go package",
	help: `Build compiles a model to a Go package in the directory -o: model.go
(New, Forward, LossAndGrad, Params, Grads, Save, Load) and, under rt/, a
copy of attnc's runtime, so the package needs nothing beyond the standard
library. The directory must be inside a Go module (a go.mod above it) so
the package can import its rt/; -import gives its import path otherwise.
A new directory appears complete or not at all. In a directory an
earlier build wrote, only the files listed in its .attnc-manifest are
replaced (or removed, when this build no longer writes them); files you
added there are kept. A generated file you edited, or a file in the way
that attnc did not write, is an error naming it unless -force. A failed
build leaves the old files in place.`,
	setup: func(fs *pflag.FlagSet) func(*cli, []string) int {
		out := fs.StringP("out", "o", "", "output directory (required)")
		pkg := fs.String("pkg", "", "Go package name (default: from the model's name)")
		model := fs.String("model", "", "the model to build, when the file defines several")
		importPath := fs.String("import", "", "import path of the output directory (default: from the enclosing go.mod)")
		force := fs.Bool("force", false, "overwrite generated files you edited, and files in the way that attnc did not write")
		target := fs.String("target", "go", "what to write: go (a Go package), triton (a Python package: a torch.nn.Module) or cuda (CUDA kernels with a Go host)")
		config := kvFlag{}
		fs.Var(config, "config", "override a config value, as -config d=128 (repeatable)")
		return func(c *cli, args []string) int {
			if len(args) != 1 {
				return c.usageError("build", "want exactly one file, got %d", len(args))
			}
			if *out == "" {
				return c.usageError("build", "-o DIR is required")
			}
			switch *target {
			case "go":
			case "triton":
				if *pkg != "" || *importPath != "" {
					return c.usageError("build", "-pkg and -import name a Go package; -target triton writes a Python package named by its directory")
				}
				models, ok := c.compile(args[0], *model, false, config)
				if !ok {
					return exitError
				}
				return c.buildTriton(models[0], args[0], *out, *force)
			case "cuda":
				if *importPath != "" {
					return c.usageError("build", "-import is for -target go; -target cuda writes a package that imports nothing of attnc")
				}
				if *pkg != "" {
					if err := gogen.CheckPackageName(*pkg); err != nil {
						return c.usageError("build", "-pkg: %v", err)
					}
				}
				models, ok := c.compile(args[0], *model, false, config)
				if !ok {
					return exitError
				}
				return c.buildCUDA(models[0], *out, *pkg, *force)
			default:
				return c.usageError("build", "-target must be go, triton or cuda, got %q", *target)
			}
			if *pkg != "" {
				if err := gogen.CheckPackageName(*pkg); err != nil {
					return c.usageError("build", "-pkg: %v", err)
				}
			}
			if *importPath != "" {
				if err := gogen.CheckImportPath(*importPath); err != nil {
					return c.usageError("build", "-import: %v", err)
				}
			}
			models, ok := c.compile(args[0], *model, false, config)
			if !ok {
				return exitError
			}
			m := models[0]
			dir, err := outputDir(*out)
			if err != nil {
				fmt.Fprintf(c.stderr, "attnc build: %v\n", err)
				return exitError
			}
			ip := *importPath
			if ip == "" {
				if ip, err = modulePath(dir); err != nil {
					fmt.Fprintf(c.stderr, "attnc build: %v\n", err)
					return exitError
				}
				if err := gogen.CheckImportPath(ip); err != nil {
					fmt.Fprintf(c.stderr, "attnc build: the import path of %s, from its go.mod: %v; give one with -import\n", *out, err)
					return exitError
				}
			}
			// A causal model with an output logits also gets its decode
			// step, derived before the passes rewrite m.IR.
			stepFiles, _, _, err := stepPackage(m, ip+"/"+gogen.RuntimeDir)
			if err != nil {
				fmt.Fprintf(c.stderr, "attnc build: %v\n", err)
				return exitError
			}
			// A pointer network gets greedy decoding (greedy.go).
			var pointer *gogen.Pointer
			if p, err := passes.Pointers(m.IR); err == nil {
				pointer = &gogen.Pointer{Scores: p.Scores, Target: p.Target, Shape: p.Shape}
			}
			prog, err := passes.Run(m.IR, passes.Options{})
			if err != nil {
				fmt.Fprintf(c.stderr, "attnc build: %v\n", err)
				return exitError
			}
			files, err := gogen.Package(prog, gogen.Options{
				Package:       *pkg,
				RuntimeImport: ip + "/" + gogen.RuntimeDir,
				Source:        filepath.Base(args[0]),
				Config:        configValues(m),
				Version:       Version,
				Pointer:       pointer,
			}, runtime.Source)
			if err != nil {
				fmt.Fprintf(c.stderr, "attnc build: %v\n", err)
				return exitError
			}
			for name, b := range stepFiles {
				files[StepDir+"/"+name] = b
			}
			if err := typeCheck(files, ip); errors.Is(err, errNoStdlib) {
				fmt.Fprintf(c.stderr, "attnc build: warning: the package is not type-checked: %v\n", err)
			} else if err != nil {
				fmt.Fprintf(c.stderr, "attnc build: internal error: %v\nThis is a bug in attnc: nothing was written. Please report it with the model.\n", err)
				return exitError
			}
			if err := writePackage(dir, files, *force); err != nil {
				fmt.Fprintf(c.stderr, "attnc build: %v\n", err)
				return exitError
			}
			fmt.Fprintf(c.stdout, "wrote %s (package %s, %d files)\n", *out, ip, len(files))
			if stepFiles != nil {
				fmt.Fprintf(c.stdout, "and its decode step: package %s/%s (step.NewDecoder(m.Params()) runs the model one token at a time, with a KV cache)\n", ip, StepDir)
			}
			if pointer != nil {
				fmt.Fprintf(c.stdout, "and greedy pointer decoding: m.GreedyPointers(in) chooses input %s's positions step by step (greedy.go)\n", pointer.Target)
			}
			return exitOK
		}
	},
}

func configValues(m *lang.Model) []gogen.ConfigValue {
	var out []gogen.ConfigValue
	for _, s := range m.Config {
		var v any
		switch s.Value.Kind {
		case "int":
			v = s.Value.Int
		case "float":
			v = s.Value.Float
		case "bool":
			v = s.Value.Bool
		case "string":
			v = s.Value.Str
		default:
			continue
		}
		out = append(out, gogen.ConfigValue{Name: s.Key, Value: v})
	}
	return out
}

// checkOutDir returns an error when dir, or the nearest of its parents
// that exists, is not a directory: the package could not be written
// there, and the error would otherwise be about the go.mod looked for
// inside it.
// outputDir returns the absolute path of attnc build's -o directory,
// checked as checkOutDir does.
func outputDir(out string) (string, error) {
	dir, err := filepath.Abs(out)
	if err == nil {
		err = checkOutDir(dir)
	}
	return dir, err
}

func checkOutDir(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		// Any error (missing, a path through a file, no permission)
		// sends the check up; writing reports what is left.
		if fi, err := os.Stat(d); err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is a file, not a directory: give -o a directory (it is created if missing)", d)
			}
			return nil
		}
		if filepath.Dir(d) == d {
			return nil
		}
	}
}

// modulePath returns the import path of dir: the module path of the
// nearest go.mod above it, joined with dir's path below that.
func modulePath(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		b, err := runtime.ReadRegularFile(filepath.Join(d, "go.mod"), 16<<20, "go.mod")
		if err == nil {
			mod := ""
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
					mod = strings.Trim(f[1], `"`)
					break
				}
			}
			if mod == "" {
				return "", fmt.Errorf("%s has no module line", filepath.Join(d, "go.mod"))
			}
			rel, err := filepath.Rel(d, dir)
			if err != nil {
				return "", err
			}
			if rel == "." {
				return mod, nil
			}
			return mod + "/" + filepath.ToSlash(rel), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%s is not inside a Go module (no go.mod above it): run 'go mod init' there, or give the import path with -import", dir)
		}
	}
}

// generatedMarker starts every model.go attnc writes.
const generatedMarker = "// Code generated by attnc"

// manifestName is the file in which attnc build lists what it wrote in a
// package directory, each file with its SHA-256, so that a later build
// replaces exactly those files: a user's helper.go, notes or testdata/
// beside them are never touched, and a generated file the user edited is
// noticed before it is overwritten.
const manifestName = ".attnc-manifest"

const manifestHeader = `# attnc build manifest: the files attnc build wrote in this directory,
# with their SHA-256. A later attnc build replaces only these; it refuses
# to overwrite one you have edited (unless -force) and never touches
# other files.
`

// manifestLine is one entry of the manifest: the SHA-256 of data and the
// file's slash-separated path in the package directory.
func manifestLine(name string, data []byte) string {
	return fmt.Sprintf("%x  %s\n", sha256.Sum256(data), name)
}

// readManifest returns the files a manifest lists, by path, with their
// hashes; nil without error when dir has no manifest. A manifest is read
// like user input: every path must stay inside dir.
func readManifest(dir string) (map[string]string, error) {
	p := filepath.Join(dir, manifestName)
	b, err := runtime.ReadRegularFile(p, 1<<20, "a build manifest")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, name, ok := strings.Cut(line, "  ")
		if ok {
			_, hexErr := hex.DecodeString(sum)
			ok = hexErr == nil && len(sum) == 2*sha256.Size && localSlashPath(name) && name != manifestName
		}
		if !ok {
			return nil, fmt.Errorf("%s:%d: not a manifest line (want SHA-256, two spaces, a path inside the directory); fix the line or delete the manifest", p, i+1)
		}
		out[name] = sum
	}
	return out, nil
}

// localSlashPath reports whether name is a clean, relative, slash-separated
// path that stays inside its directory.
func localSlashPath(name string) bool {
	return name != "" && path.Clean(name) == name && filepath.IsLocal(filepath.FromSlash(name)) && !strings.Contains(name, "\\")
}

// fileHash returns the SHA-256 of the regular file p in hex; an error
// wrapping fs.ErrNotExist when there is none, and a plain error when p is
// something else (a directory, a symlink).
func fileHash(p string) (string, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("is not a regular file")
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// legacyManifest stands in for the manifest of a directory written by an
// attnc that kept none: the .go files there and in rt/ that carry
// attnc's generated-code header count as attnc's, unedited. nil when model.go is
// not attnc's, i.e. the directory is not a generated package.
func legacyManifest(dir string) map[string]string {
	b, err := runtime.ReadRegularFile(filepath.Join(dir, "model.go"), 64<<20, "a generated file")
	if err != nil || !strings.HasPrefix(string(b), generatedMarker) {
		return nil
	}
	out := map[string]string{}
	for _, sub := range []string{".", gogen.RuntimeDir} {
		files, _ := filepath.Glob(filepath.Join(dir, sub, "*.go"))
		for _, p := range files {
			b, err := runtime.ReadRegularFile(p, 64<<20, "a generated file")
			if err == nil && strings.HasPrefix(string(b), generatedMarker) {
				out[path.Join(sub, filepath.Base(p))] = fmt.Sprintf("%x", sha256.Sum256(b))
			}
		}
	}
	return out
}

// writePackage writes files (paths relative to dir, slash-separated) into
// dir with a manifest of them. A new directory appears complete or not at
// all. In an existing one only the files the previous build wrote (its
// manifest) are replaced or, when this build no longer writes them,
// removed; every other file stays. A file attnc wrote that has been
// edited since, or one in the way that attnc did not write, is an error
// naming it, unless force. Every new file is first written to a
// temporary file beside its target, and only when all are written are
// they renamed into place, so a failure leaves the old files.
func writePackage(dir string, files map[string][]byte, force bool) error {
	manifest := manifestHeader
	for _, name := range sortedKeys(files) {
		manifest += manifestLine(name, files[name])
	}
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		all := map[string][]byte{manifestName: []byte(manifest)}
		for name, b := range files {
			all[name] = b
		}
		return writeNewDir(dir, all)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", dir)
	}
	old, err := readManifest(dir)
	if err != nil {
		return err
	}
	if old == nil {
		old = legacyManifest(dir)
	}
	if old == nil && !force {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		if len(entries) > 0 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			return fmt.Errorf("%s exists and was not written by attnc build (it holds %s); refusing to replace it: choose an empty or new directory, or pass -force to write the package there (other files are kept)", dir, listNames(names))
		}
	}

	// conflicts are files in the way: edited since attnc wrote them, or
	// not attnc's at all. With force they are overwritten (or, when this
	// build no longer writes them, removed).
	type conflict struct{ name, why string }
	var conflicts []conflict
	var stale []string
	for _, name := range sortedKeys(files) {
		cur, err := fileHash(filepath.Join(dir, filepath.FromSlash(name)))
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			conflicts = append(conflicts, conflict{name, err.Error()})
		case cur == fmt.Sprintf("%x", sha256.Sum256(files[name])):
			// Already what this build writes (an interrupted build, or
			// nothing changed).
		case old[name] == cur:
		case old[name] != "":
			conflicts = append(conflicts, conflict{name, "edited since attnc build wrote it"})
		default:
			conflicts = append(conflicts, conflict{name, "not written by attnc build"})
		}
	}
	for _, name := range sortedKeys(old) {
		if _, ok := files[name]; ok {
			continue
		}
		cur, err := fileHash(filepath.Join(dir, filepath.FromSlash(name)))
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			conflicts = append(conflicts, conflict{name, err.Error()})
		case cur != old[name]:
			conflicts = append(conflicts, conflict{name, "edited since attnc build wrote it; this build would remove it"})
			if force {
				stale = append(stale, name)
			}
		default:
			stale = append(stale, name)
		}
	}
	if len(conflicts) > 0 && !force {
		var msgs []string
		for _, c := range conflicts {
			msgs = append(msgs, fmt.Sprintf("%s (%s)", c.name, c.why))
		}
		return fmt.Errorf("refusing to overwrite in %s: %s; move them away, or pass -force to overwrite them", dir, strings.Join(msgs, ", "))
	}

	// Write everything to temporary files first; rename only when all
	// of them are written.
	type pending struct{ tmp, dst string }
	var todo []pending
	defer func() {
		for _, p := range todo {
			os.Remove(p.tmp) // no-op once renamed
		}
	}()
	for _, name := range append(sortedKeys(files), manifestName) {
		data, ok := files[name]
		if !ok {
			data = []byte(manifest)
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		tmp, err := writeTemp(dst, data, 0o644)
		if err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		todo = append(todo, pending{tmp, dst})
	}
	// Generated files first, the manifest last: a build interrupted
	// between the renames leaves files that match either the old
	// manifest or this build, and the next build accepts both.
	for _, p := range todo {
		if err := os.Rename(p.tmp, p.dst); err != nil {
			return err
		}
	}
	for _, name := range stale {
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(name))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// writeTemp writes data to a new temporary file beside dst, with mode
// perm and synced, and returns its path; renaming it to dst then replaces
// dst at once.
func writeTemp(dst string, data []byte, perm os.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// writeNewDir creates dir holding files: they go to a temporary sibling
// directory that is then renamed to dir, so dir appears complete or not
// at all.
func writeNewDir(dir string, files map[string][]byte) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // no-op after the rename
	for _, name := range sortedKeys(files) {
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// listNames joins names for a message, eliding all but the first few.
func listNames(names []string) string {
	const shown = 5
	if len(names) > shown {
		return strings.Join(names[:shown], ", ") + fmt.Sprintf(" and %d more", len(names)-shown)
	}
	return strings.Join(names, ", ")
}

// errNoStdlib is typeCheck's error when the Go standard library's source,
// which the check needs, cannot be found (no Go toolchain here).
var errNoStdlib = errors.New("the Go standard library's source was not found (is Go installed? GOROOT)")

// typeCheck type-checks a generated package, given as Package returns
// it, whose import path is importPath: its rt/ copy of the runtime, then
// the model against it, with go/types and the standard library from
// source. A renderer bug that writes code that does not compile is
// reported here, before anything is written, instead of by the user's go
// build.
func typeCheck(files map[string][]byte, importPath string) error {
	stdTypes.Lock()
	defer stdTypes.Unlock()
	if stdTypes.imp == nil {
		stdTypes.fset = token.NewFileSet()
		stdTypes.imp = importer.ForCompiler(stdTypes.fset, "source", nil)
	}
	fset, std := stdTypes.fset, stdTypes.imp
	if _, err := std.Import("fmt"); err != nil {
		return fmt.Errorf("%w: %v", errNoStdlib, err)
	}
	// Only the files the go command would compile on this machine: the
	// runtime has assembly-backed files for amd64 and pure-Go twins for
	// everything else, which declare the same functions.
	ctxt := build.Default
	ctxt.OpenFile = func(name string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(files[name])), nil
	}
	ctxt.JoinPath = path.Join
	byDir := map[string][]*ast.File{}
	for _, name := range sortedKeys(files) {
		if !strings.HasSuffix(name, ".go") {
			continue
		}
		if ok, err := ctxt.MatchFile(path.Dir(name), path.Base(name)); err != nil {
			return fmt.Errorf("the generated package's %s: %v", name, err)
		} else if !ok {
			continue
		}
		f, err := parser.ParseFile(fset, name, files[name], parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("the generated package does not parse: %v", err)
		}
		byDir[path.Dir(name)] = append(byDir[path.Dir(name)], f)
	}
	check := func(pkgPath string, files []*ast.File, imp types.Importer) (*types.Package, error) {
		var errs []string
		conf := types.Config{Importer: imp, Error: func(err error) {
			if len(errs) < 10 {
				errs = append(errs, "\t"+err.Error())
			}
		}}
		pkg, _ := conf.Check(pkgPath, fset, files, nil)
		if len(errs) > 0 {
			return nil, fmt.Errorf("the generated package does not type-check:\n%s", strings.Join(errs, "\n"))
		}
		return pkg, nil
	}
	rtPath := importPath + "/" + gogen.RuntimeDir
	rt, err := check(rtPath, byDir[gogen.RuntimeDir], std)
	if err != nil {
		return err
	}
	imp := importerFunc(func(p string) (*types.Package, error) {
		if p == rtPath {
			return rt, nil
		}
		return std.Import(p)
	})
	model, err := check(importPath, byDir["."], imp)
	if err != nil || len(byDir[StepDir]) == 0 {
		return err
	}
	_ = model
	_, err = check(importPath+"/"+StepDir, byDir[StepDir], imp)
	return err
}

// stdTypes keeps the standard library's packages, type-checked from
// source, for every typeCheck of the process: checking them is most of
// the work, and they do not change.
var stdTypes struct {
	sync.Mutex
	fset *token.FileSet
	imp  types.Importer
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }
