package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/passes"
	"github.com/attnc/attnc/stdlib"
)

// loadOpts is how the CLI resolves imports: std/ from the embedded
// standard library, other paths relative to the importing file.
var loadOpts = lang.LoadOptions{Std: stdlib.FS}

// readSource reads a model file; the name "std/x.attn" reads the
// embedded standard library, so 'attnc check std/seq2seq.attn' works from
// any directory.
func readSource(name string) (string, error) {
	if rest, ok := strings.CutPrefix(name, lang.StdPrefix); ok {
		if _, err := os.Stat(name); err != nil {
			b, err := stdlib.FS.ReadFile(rest)
			if err != nil {
				return "", fmt.Errorf("%s: no such file in the standard library", name)
			}
			return string(b), nil
		}
	}
	b, err := lang.ReadSourceFile(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// Outside attnc's repository, stdlib/x.attn is not there but
			// the embedded copy is: say how to name it.
			if base := filepath.Base(name); filepath.Base(filepath.Dir(name)) == "stdlib" {
				if _, serr := stdlib.FS.ReadFile(base); serr == nil {
					return "", fmt.Errorf("%s: no such file (the standard library's %s is %s%s, from any directory)", name, base, lang.StdPrefix, base)
				}
			}
			return "", fmt.Errorf("%s: no such file", name)
		}
		return "", err
	}
	return string(b), nil
}

// compile loads and elaborates the named model of file ("" = the only
// one, or all of them when all is set), printing diagnostics to stderr.
func (c *cli) compile(file, model string, all bool, config map[string]string) ([]*lang.Model, bool) {
	src, err := readSource(file)
	if err != nil {
		fmt.Fprintf(c.stderr, "attnc: %v\n", err)
		return nil, false
	}
	prog, diags := lang.Load(file, src, loadOpts)
	if len(diags) > 0 {
		diags.Print(c.stderr, prog.Sources)
		return nil, false
	}
	names := []string{model}
	if all && model == "" {
		names = prog.ModelNames()
	}
	var out []*lang.Model
	ok := true
	for _, n := range names {
		m, diags := prog.Elaborate(n, lang.ElabOptions{Config: configValuesOf(config)})
		if len(diags) > 0 {
			diags.Print(c.stderr, prog.Sources)
			ok = false
			continue
		}
		out = append(out, m)
	}
	return out, ok
}

// configValuesOf reads -config KEY=VALUE overrides: an int, a float,
// true or false, or else a string.
func configValuesOf(kv map[string]string) map[string]lang.Value {
	out := map[string]lang.Value{}
	for k, v := range kv {
		switch n, errInt := strconv.ParseInt(v, 10, 64); {
		case errInt == nil:
			out[k] = lang.Value{Kind: "int", Int: n}
		case v == "true" || v == "false":
			out[k] = lang.Value{Kind: "bool", Bool: v == "true"}
		default:
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				out[k] = lang.Value{Kind: "float", Float: f}
			} else {
				out[k] = lang.Value{Kind: "string", Str: v}
			}
		}
	}
	return out
}

var checkCmd = &command{
	name:    "check",
	args:    "FILE...",
	summary: "parse and type-check model files",
	help: `Check parses each file, follows its imports, checks every name and
shape, and elaborates every model it defines. Errors are printed as
file:line:col: message, with the source line and a caret under the span.
A file that defines no model (a library) is checked for names only.`,
	setup: func(fs *pflag.FlagSet) func(*cli, []string) int {
		quiet := fs.BoolP("quiet", "q", false, "print nothing for sound files")
		return func(c *cli, args []string) int {
			if len(args) == 0 {
				return c.usageError("check", "no files given")
			}
			status := exitOK
			for _, f := range args {
				models, ok := c.compile(f, "", true, nil)
				if !ok {
					status = exitError
					continue
				}
				if *quiet {
					continue
				}
				if len(models) == 0 {
					fmt.Fprintf(c.stdout, "%s: ok (no model)\n", f)
				}
				for _, m := range models {
					fmt.Fprintf(c.stdout, "%s: ok: model %s, %s\n", f, m.Name, summary(m.IR))
				}
			}
			return status
		}
	},
}

// summary describes a module's size: instructions, weights, inputs. The
// weight count is exact whatever the shapes (a big.Int): a module built
// past the front end's limits must not be summarised with a wrapped,
// negative count.
func summary(m *ir.Module) string {
	weights := new(big.Int)
	for _, p := range m.Params() {
		n := big.NewInt(1)
		for _, d := range p.Type.Shape {
			v, _ := d.IsConst()
			n.Mul(n, big.NewInt(v))
		}
		weights.Add(weights, n)
	}
	var inputs []string
	for _, in := range m.Inputs() {
		inputs = append(inputs, in.Name()+": "+in.Type.String())
	}
	bufs := ""
	if n := len(m.Buffers()); n > 0 {
		bufs = fmt.Sprintf(" and %d buffers", n)
		if n == 1 {
			bufs = " and 1 buffer"
		}
	}
	return fmt.Sprintf("%s weights in %d tensors%s, %d instructions; inputs %s",
		weights, len(m.Params()), bufs, len(m.Instrs), strings.Join(inputs, ", "))
}

var irCmd = &command{
	name:    "ir",
	args:    "FILE",
	summary: "print the typed IR of a model",
	help: `IR prints the IR of a model in its text form, which the ir package
parses back. -dump names the stage: elaborated (straight from the source,
the default) or the pass after which to print (see the list below); -time
prints how long each pass took, to standard error.`,
	setup: func(fs *pflag.FlagSet) func(*cli, []string) int {
		dump := fs.String("dump", "elaborated", "print the IR after this stage: "+strings.Join(passes.Names(), ", "))
		stage := fs.String("stage", "", "the same as -dump (older spelling)")
		timing := fs.Bool("time", false, "print the time each pass took to standard error")
		model := fs.String("model", "", "the model to print, when the file defines several")
		return func(c *cli, args []string) int {
			if len(args) != 1 {
				return c.usageError("ir", "want exactly one file, got %d", len(args))
			}
			if *stage != "" {
				*dump = *stage
			}
			if !contains(passes.Names(), *dump) {
				return c.usageError("ir", "unknown stage %q (stages: %s)", *dump, strings.Join(passes.Names(), ", "))
			}
			models, ok := c.compile(args[0], *model, false, nil)
			if !ok {
				return exitError
			}
			m := models[0].IR
			if *dump == "elaborated" && !*timing {
				fmt.Fprint(c.stdout, ir.Print(m))
				return exitOK
			}
			opts := passes.Options{Dump: *dump, DumpTo: c.stdout}
			if *timing {
				opts.Time = func(pass string, d time.Duration) {
					fmt.Fprintf(c.stderr, "%-10s %v\n", pass, d.Round(time.Microsecond))
				}
			}
			if _, err := passes.Run(m, opts); err != nil {
				fmt.Fprintf(c.stderr, "attnc ir: %v\n", err)
				return exitError
			}
			return exitOK
		}
	},
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var fmtCmd = &command{
	name:    "fmt",
	args:    "FILE...",
	summary: "format model files canonically",
	help: `Fmt prints each file in canonical form: two-space indents, one
statement per line, single spaces around operators. Comments are kept.
With -w it rewrites the files in place (atomically); with -l it lists the
files whose formatting differs.`,
	setup: func(fs *pflag.FlagSet) func(*cli, []string) int {
		write := fs.BoolP("write", "w", false, "write the result to the file instead of standard output")
		list := fs.BoolP("list", "l", false, "list files whose formatting differs")
		return func(c *cli, args []string) int {
			if len(args) == 0 {
				return c.usageError("fmt", "no files given")
			}
			status := exitOK
			for _, f := range args {
				src, err := readSource(f)
				if err != nil {
					fmt.Fprintf(c.stderr, "attnc: %v\n", err)
					status = exitError
					continue
				}
				out, diags := lang.Format(f, src)
				if len(diags) > 0 {
					diags.Print(c.stderr, map[string]string{f: src})
					status = exitError
					continue
				}
				if *list && out != src {
					fmt.Fprintln(c.stdout, f)
				}
				switch {
				case *write:
					if out != src {
						if err := writeThrough(f, []byte(out)); err != nil {
							fmt.Fprintf(c.stderr, "attnc: %v\n", err)
							status = exitError
						}
					}
				case !*list:
					fmt.Fprint(c.stdout, out)
				}
			}
			return status
		}
	},
}

// writeFileAtomic replaces path with data by writing a temporary file in
// the same directory and renaming it, so a crash never leaves half a
// file. The file keeps its permissions.
func writeFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := writeTemp(path, data, mode)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// writeThrough replaces the contents of the file path names, atomically
// (writeFileAtomic): when path is a symlink, the file it points to is
// rewritten, in its own directory and with its own mode, and the link
// stays a link, as an editor saving through a link would.
func writeThrough(path string, data []byte) error {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	return writeFileAtomic(target, data)
}

var versionCmd = &command{
	name:     "version",
	summary:  "print attnc's version",
	help:     `Version prints attnc's version.`,
	complete: argNone,
	setup: func(fs *pflag.FlagSet) func(*cli, []string) int {
		return func(c *cli, args []string) int {
			if len(args) > 0 {
				return c.usageError("version", "takes no arguments")
			}
			fmt.Fprintf(c.stdout, "attnc %s\n", Version)
			return exitOK
		}
	},
}
