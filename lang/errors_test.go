package lang_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/stdlib"
)

// TestErrors runs the diagnostics corpus in testdata/errors, in the style
// of starlark-go's test files. Each file holds cases separated by a line
// that is exactly "---". Every error a case must produce is written on the
// line where it must be reported, in a trailing // comment, as
//
//	### "regexp"
//
// (several on a line for several errors there). The text between the
// quotes is the regexp as written, with no string unquoting: \( matches a
// paren, \" a quote. ### `regexp`, in backquotes, serves a line where a "
// would change what is tested (an unterminated string).
//
// A case is checked by lang.Load and, when that finds nothing, by
// elaborating every model of the file. Each expectation must be met by a
// diagnostic on its line, and each diagnostic must be expected, so a case
// with no ### must compile. Every diagnostic must also point into its
// line, and Print must draw a caret under it.
//
// A case is compiled as the file testdata/errors/<name>.attn itself, up
// to the case's end, with the cases before it blanked out, so reported
// lines are the lines of the .attn file. Imports of "imports/…" are served
// from testdata/errors/imports/, whose ### lines count too, for the cases
// that import them; an import of the file's own name gets the case. A line
//
//	// override: key = value
//
// passes a config override to Elaborate (int, float, bool or "string").
//
// ATTNC_ERRORS_DUMP=1 go test ./lang -run TestErrors -v prints what each
// case reports, to write expectations from.
func TestErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.attn")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no files in testdata/errors")
	}
	total := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		base := strings.TrimSuffix(filepath.Base(file), ".attn")
		for i, c := range splitCases(string(b)) {
			total++
			t.Run(fmt.Sprintf("%s/case%d", base, i+1), func(t *testing.T) {
				checkCase(t, file, c)
			})
		}
	}
	t.Logf("%d cases", total)
}

// splitCases returns each case of src as the file's text up to the end
// of the case, with the lines before the case blanked, so line numbers
// are the file's own and the case ends where its text does.
func splitCases(src string) []string {
	lines := strings.Split(src, "\n")
	var cases []string
	start := 0
	for i := 0; i <= len(lines); i++ {
		if i < len(lines) && strings.TrimRight(lines[i], "\r") != "---" {
			continue
		}
		out := make([]string, i)
		copy(out[start:], lines[start:i])
		cases = append(cases, strings.Join(out, "\n"))
		start = i + 1
	}
	return cases
}

var (
	expectRE   = regexp.MustCompile("###\\s*(\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`)")
	overrideRE = regexp.MustCompile(`(?m)^\s*// override: (\w+) = (.+?)\s*$`)
)

// expectation is one ### "re" of a file.
type expectation struct {
	file string
	line int
	re   *regexp.Regexp
	src  string
	met  bool
}

// expectations returns the ### expectations written in src.
func expectations(t *testing.T, file, src string) []*expectation {
	var out []*expectation
	for i, line := range strings.Split(src, "\n") {
		_, comment, ok := strings.Cut(line, "###")
		if !ok {
			continue
		}
		ms := expectRE.FindAllStringSubmatch("###"+comment, -1)
		if len(ms) == 0 || strings.Count(line, "###") != len(ms) {
			t.Fatalf("%s:%d: malformed expectation, want ### \"regexp\": %s", file, i+1, line)
		}
		for _, m := range ms {
			// The text between the quotes is the regexp as written: \" in
			// it is an escaped quote, which a regexp reads as a quote.
			pat := m[1][1 : len(m[1])-1]
			re, err := regexp.Compile(pat)
			if err != nil {
				t.Fatalf("%s:%d: bad regexp: %v", file, i+1, err)
			}
			out = append(out, &expectation{file: file, line: i + 1, re: re, src: pat})
		}
	}
	return out
}

func overrides(t *testing.T, src string) map[string]lang.Value {
	out := map[string]lang.Value{}
	for _, m := range overrideRE.FindAllStringSubmatch(src, -1) {
		key, text := m[1], m[2]
		var v lang.Value
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			v = lang.Value{Kind: "int", Int: n}
		} else if f, err := strconv.ParseFloat(text, 64); err == nil {
			v = lang.Value{Kind: "float", Float: f}
		} else if b, err := strconv.ParseBool(text); err == nil {
			v = lang.Value{Kind: "bool", Bool: b}
		} else if s, err := strconv.Unquote(text); err == nil {
			v = lang.Value{Kind: "string", Str: s}
		} else {
			t.Fatalf("override %s: cannot read value %s", key, text)
		}
		out[key] = v
	}
	return out
}

func checkCase(t *testing.T, file, src string) {
	name := filepath.ToSlash(file)
	importDir := path.Join(path.Dir(name), "imports")
	read := func(p string) ([]byte, error) {
		p = filepath.ToSlash(p)
		if p == name {
			return []byte(src), nil // the case itself, for self-imports
		}
		if path.Dir(p) == importDir {
			return os.ReadFile(filepath.FromSlash(p))
		}
		return nil, fs.ErrNotExist
	}
	var diags lang.Diagnostics
	var prog *lang.Program
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		prog, diags = lang.Load(name, src, lang.LoadOptions{Std: stdlib.FS, ReadFile: read})
		if len(diags) > 0 {
			return
		}
		opts := lang.ElabOptions{Config: overrides(t, src)}
		for _, m := range prog.ModelNames() {
			_, ds := prog.Elaborate(m, opts)
			diags = append(diags, ds...)
		}
	}()

	if os.Getenv("ATTNC_ERRORS_DUMP") != "" {
		for _, d := range diags {
			t.Logf("%s", d.Error())
		}
	}

	// Expectations come from the case and from every imported file of
	// the testdata (not the standard library).
	exps := expectations(t, name, src)
	var others []string
	for f := range prog.Sources {
		if f != name && strings.HasPrefix(f, importDir+"/") {
			others = append(others, f)
		}
	}
	sort.Strings(others)
	for _, f := range others {
		exps = append(exps, expectations(t, f, prog.Sources[f])...)
	}

	for _, d := range diags {
		checkPosition(t, prog.Sources, d)
		matched := false
		for _, x := range exps {
			if !x.met && x.file == d.Pos.Filename && x.line == d.Pos.Line && x.re.MatchString(d.Msg) {
				x.met, matched = true, true
				break
			}
		}
		if !matched {
			t.Errorf("unexpected error: %s", d.Error())
		}
	}
	for _, x := range exps {
		if !x.met {
			t.Errorf("%s:%d: no error matching %q", x.file, x.line, x.src)
		}
	}

	if len(diags) > 0 {
		var buf bytes.Buffer
		diags.Print(&buf, prog.Sources)
		if !caretLine.MatchString(buf.String()) {
			t.Errorf("Print wrote no caret line:\n%s", buf.String())
		}
	}
}

var caretLine = regexp.MustCompile(`(?m)^\s+\^~*$`)

// checkPosition checks that d points into its file: a real line, and a
// column on it (or just past its end, for an error at the end of a line).
func checkPosition(t *testing.T, sources map[string]string, d lang.Diagnostic) {
	src, ok := sources[d.Pos.Filename]
	if !ok {
		t.Errorf("%s: diagnostic in a file with no source", d.Error())
		return
	}
	lines := strings.Split(src, "\n")
	if d.Pos.Line < 1 || d.Pos.Line > len(lines) {
		t.Errorf("%s: line out of range (file has %d lines)", d.Error(), len(lines))
		return
	}
	n := len([]rune(strings.TrimRight(lines[d.Pos.Line-1], "\r")))
	if d.Pos.Column < 1 || d.Pos.Column > n+1 {
		t.Errorf("%s: column out of range (line has %d characters)", d.Error(), n)
	}
	if d.End.Line != 0 && (d.End.Line < d.Pos.Line || d.End.Line == d.Pos.Line && d.End.Column < d.Pos.Column) {
		t.Errorf("%s: span ends before it starts (%d:%d)", d.Error(), d.End.Line, d.End.Column)
	}
}
