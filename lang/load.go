package lang

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// StdPrefix starts the import path of a standard library file.
const StdPrefix = "std/"

// A Program is a root file and every file it imports, with their
// declarations in one namespace (a file imported twice is loaded once).
type Program struct {
	Root    *File
	Files   []*File           // every file, each after the files it imports
	Sources map[string]string // file name → text, for printing diagnostics

	Funcs  map[string]*FuncDef
	Blocks map[string]*BlockDef
	Models map[string]*ModelDef
}

// LoadOptions says where imports come from.
type LoadOptions struct {
	// Std holds the standard library; "std/layers.attn" is Std's
	// "layers.attn". Nil means std imports fail.
	Std fs.FS
	// ReadFile reads other imports, given a path already joined with the
	// importing file's directory. Nil means the file system, through
	// ReadSourceFile's checks: regular files of at most MaxSourceSize.
	ReadFile func(name string) ([]byte, error)
	// Limits bounds the imports (ImportDepth, Files); nil means
	// DefaultLimits.
	Limits *Limits
}

// Load parses filename (whose text is src), follows its imports, and
// collects the declarations. It returns the program and every problem
// found; the program is usable (for fmt, say) even with diagnostics, but
// not for elaboration.
func Load(filename, src string, opts LoadOptions) (*Program, Diagnostics) {
	var limits Limits
	if opts.Limits != nil {
		limits = *opts.Limits
	}
	l := &loader{opts: opts, limits: limits.orDefaults(), prog: &Program{
		Sources: map[string]string{},
		Funcs:   map[string]*FuncDef{},
		Blocks:  map[string]*BlockDef{},
		Models:  map[string]*ModelDef{},
	}, loaded: map[string]bool{}, onStack: map[string]int{}}
	// Made absolute once: filepath.Abs asks the OS for the working
	// directory at every call.
	l.cwd, _ = os.Getwd()
	l.prog.Root = l.load(filename, src)
	l.declare()
	if len(l.diags.list) == 0 {
		resolve(l.prog, &l.diags)
	}
	l.diags.list.Sort()
	return l.prog, l.diags.list
}

type loader struct {
	opts   LoadOptions
	limits Limits
	prog   *Program
	cwd    string
	// loaded holds the key (fileKey) of every file loaded.
	loaded map[string]bool
	// stack holds the files being loaded, outermost first, to report an
	// import cycle where it closes; onStack maps each one's key to its
	// index there, so that check costs the same at any depth.
	stack   []string
	onStack map[string]int
	// stopped is set once a limit is crossed: the one error says so, and
	// no more files are read.
	stopped bool
	diags   diagSink
}

// load parses one file and, depth first, its imports.
func (l *loader) load(name, src string) *File {
	key := l.fileKey(name)
	l.loaded[key] = true
	// Positions are counted after a byte order mark (see Parse), so the
	// text kept for printing diagnostics starts there too.
	src = stripBOM(src)
	l.prog.Sources[name] = src
	f, diags := Parse(name, src)
	l.diags.list = append(l.diags.list, diags...)
	if f == nil {
		return nil
	}
	// Files lists a file after its imports, so when two files define a
	// name, the importing file's definition is the one reported.
	defer func() { l.prog.Files = append(l.prog.Files, f) }()
	l.onStack[key] = len(l.stack)
	l.stack = append(l.stack, name)
	defer func() {
		delete(l.onStack, key)
		l.stack = l.stack[:len(l.stack)-1]
	}()
	for _, d := range f.Decls {
		imp, ok := d.(*Import)
		if !ok || l.stopped {
			continue
		}
		target, text, err := l.read(name, imp.Path.Value)
		if err != nil {
			l.diags.errorf(imp.Path, "cannot import %q: %v", imp.Path.Value, err)
			continue
		}
		tkey := l.fileKey(target)
		if i, ok := l.onStack[tkey]; ok {
			if tkey == key {
				l.diags.errorf(imp.Path, "file imports itself")
			} else {
				l.diags.errorf(imp.Path, "import cycle: %s", strings.Join(append(l.stack[i:len(l.stack):len(l.stack)], target), " → "))
			}
			continue
		}
		if l.loaded[tkey] {
			continue
		}
		if len(l.stack) >= l.limits.ImportDepth {
			next := target
			if len(l.stack) > 1 {
				next = l.stack[1]
			}
			l.diags.errorf(imp.Path, "imports nested more than %d deep (%s imports %s imports …); the limit is %d", l.limits.ImportDepth, l.stack[0], next, l.limits.ImportDepth)
			l.stopped = true
			continue
		}
		if len(l.loaded) >= l.limits.Files {
			l.diags.errorf(imp.Path, "the program has more than %d files; the limit is %d files", l.limits.Files, l.limits.Files)
			l.stopped = true
			continue
		}
		l.load(target, text)
	}
	return f
}

// read resolves an import path to a file name and its text.
func (l *loader) read(from, p string) (string, string, error) {
	if rest, ok := strings.CutPrefix(p, StdPrefix); ok {
		if l.opts.Std == nil {
			return "", "", errors.New("no standard library is available")
		}
		b, err := fs.ReadFile(l.opts.Std, rest)
		if err != nil {
			return "", "", notFound(err, p)
		}
		return p, string(b), nil
	}
	if p == "" {
		return "", "", errors.New("empty import path")
	}
	target := p
	if !filepath.IsAbs(p) {
		dir := filepath.Dir(from)
		if strings.HasPrefix(from, StdPrefix) {
			// A std file importing a relative path stays inside std.
			return l.read(from, StdPrefix+path.Join(path.Dir(strings.TrimPrefix(from, StdPrefix)), p))
		}
		target = filepath.Join(dir, p)
	}
	readFile := l.opts.ReadFile
	if readFile == nil {
		readFile = readSourceFile
	}
	b, err := readFile(target)
	if err != nil {
		return "", "", notFound(err, p)
	}
	return target, string(b), nil
}

func notFound(err error, p string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New("no such file")
	}
	return err
}

// declare puts every declaration in the namespace, reporting duplicates
// at the second definition.
func (l *loader) declare() {
	where := map[string]Node{}
	for _, f := range l.prog.Files {
		for _, d := range f.Decls {
			var name *Ident
			switch d := d.(type) {
			case *FuncDef:
				name = d.Name
			case *BlockDef:
				name = d.Name
			case *ModelDef:
				name = d.Name
			default:
				continue
			}
			if prev, ok := where[name.Name]; ok {
				l.diags.errorf(name, "%s is already defined at %s", name.Name, placeOf(prev.Start(), name.Pos))
				continue
			}
			if _, ok := builtins[name.Name]; ok {
				l.diags.errorf(name, "%s is a built-in and cannot be redefined", name.Name)
				continue
			}
			where[name.Name] = name
			switch d := d.(type) {
			case *FuncDef:
				l.prog.Funcs[name.Name] = d
			case *BlockDef:
				l.prog.Blocks[name.Name] = d
			case *ModelDef:
				l.prog.Models[name.Name] = d
			}
		}
	}
}

// placeOf names the position p for a message about position at: "line
// 12" in the same file, file:line:col in another.
func placeOf(p, at lexer.Position) string {
	if p.Filename == at.Filename {
		return fmt.Sprintf("line %d", p.Line)
	}
	return posString(p)
}

// ModelNames returns the models defined in the root file, in source order.
func (p *Program) ModelNames() []string {
	var out []string
	if p.Root == nil {
		return nil
	}
	for _, d := range p.Root.Decls {
		if m, ok := d.(*ModelDef); ok {
			out = append(out, m.Name.Name)
		}
	}
	return out
}

// names returns every global name, sorted, for "did you mean".
func (p *Program) names() []string {
	var out []string
	for n := range p.Funcs {
		out = append(out, n)
	}
	for n := range p.Blocks {
		out = append(out, n)
	}
	for n := range builtins {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool { return indexOf(list, s) >= 0 }

// fileKey identifies a file whatever spelling reached it (x.attn,
// ./x.attn, dir/../x.attn): the absolute, cleaned path; std files by
// their import path.
func (l *loader) fileKey(name string) string {
	if strings.HasPrefix(name, StdPrefix) {
		return name
	}
	if !filepath.IsAbs(name) && l.cwd != "" {
		return filepath.Join(l.cwd, name)
	}
	return filepath.Clean(name)
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
