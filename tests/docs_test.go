package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
)

// Docs that run (issue 10): TestDocs reads README.md and docs/*.md and runs
// what they show, so that a doc cannot drift from the tool again.
//
//   - Every ```attn example is written, under the name its `// file:` line
//     gives, into a directory of its own doc's examples (they import each
//     other), and must pass `attnc check`, unless the doc shows a command on
//     it with its output (`$ attnc check bad.attn` and the errors), which
//     must then print exactly that.
//   - Every attnc command line of a code block (`attnc …`, `$ attnc …`,
//     `go run ./cmd/attnc …`) and every complete one in inline code runs
//     from that directory, where the repository's stdlib/ is linked in, and
//     must exit 0 (or 1, when the output shown has errors; 2, with the
//     message shown, for `attnc chekc` → `unknown command …`). attnc build
//     runs in a fresh user module and must write the files the doc lists.
//     Training, runs and benchmarks are slow and are skipped, as are lines
//     with placeholders (FILE, RUN_DIR, your/module); each skip is logged
//     with its reason, and the counts at the end.
//   - IR text: an ```ir module must verify, run in the reference
//     interpreter and print back as written; a module must print as the
//     doc says it "prints as"; lines quoted "(from `FILE`)" must be in FILE.
//     The grammar shown is the one lang/grammar.ebnf pins. LANGUAGE.md's
//     synopsis lists every command and one-letter flag attnc has, and
//     README.md's layout table every folder of Go code and every doc.
//
// The Go program of docs/GO_API.md is run by TestGoAPIExample and only
// counted here.

// docTimeout bounds one attnc command: the slowest run, attnc build, takes
// about a second.
const docTimeout = 2 * time.Minute

// A docBlock is a code block of a Markdown file: fenced, or indented four
// spaces.
type docBlock struct {
	doc    string   // the Markdown file, relative to the repository root
	line   int      // 1-based line of the fence, or of an indented block's first line
	lang   string   // the fence's info string: "attn", "text", "" (untagged or indented)
	fenced bool     // a ``` block rather than an indented one
	lines  []string // the text, without fences and indentation
	lead   string   // the paragraph right before it, on one line ("" after a block)
}

func (b docBlock) where() string { return fmt.Sprintf("%s:%d", b.doc, b.line) }

// A docSpan is an inline code span of the prose.
type docSpan struct {
	doc   string
	line  int
	text  string
	shows string // the span after it when an arrow joins them: `attnc chekc` → `unknown command …`
}

// parseDoc splits a Markdown file into its code blocks and the inline code
// spans of its prose. It knows what these docs use: ``` fences (also
// indented, inside list items) and blocks indented four spaces after a
// blank line.
func parseDoc(t *testing.T, doc, src string) (blocks []docBlock, spans []docSpan) {
	t.Helper()
	lines := strings.Split(src, "\n")
	var para []string // the paragraph being read
	paraLine := 0
	lead := ""
	flush := func() {
		if len(para) == 0 {
			return
		}
		text := strings.Join(para, "\n")
		ms := spanRE.FindAllStringSubmatchIndex(text, -1)
		for i, m := range ms {
			s := docSpan{doc: doc, line: paraLine + strings.Count(text[:m[0]], "\n"), text: strings.Join(strings.Fields(text[m[2]:m[3]]), " ")}
			if i+1 < len(ms) && strings.TrimSpace(text[m[1]:ms[i+1][0]]) == "→" {
				s.shows = strings.Join(strings.Fields(text[ms[i+1][2]:ms[i+1][3]]), " ")
			}
			spans = append(spans, s)
		}
		lead = strings.Join(strings.Fields(text), " ")
		para = nil
	}
	blank := true // the line before was blank, or the file starts
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		trimmed := strings.TrimLeft(l, " ")
		switch {
		case strings.HasPrefix(trimmed, "```"):
			flush()
			indent := len(l) - len(trimmed)
			b := docBlock{doc: doc, line: i + 1, lang: strings.TrimSpace(trimmed[3:]), fenced: true, lead: lead}
			j := i + 1
			for ; j < len(lines) && strings.TrimSpace(lines[j]) != "```"; j++ {
				b.lines = append(b.lines, dedent(lines[j], indent))
			}
			require.Less(t, j, len(lines), "%s: the fence is never closed", b.where())
			blocks = append(blocks, b)
			i, lead, blank = j, "", false
		case strings.HasPrefix(l, "    ") && blank && len(para) == 0:
			b := docBlock{doc: doc, line: i + 1, lead: lead}
			j := i
			for ; j < len(lines) && (strings.HasPrefix(lines[j], "    ") || strings.TrimSpace(lines[j]) == ""); j++ {
				b.lines = append(b.lines, dedent(lines[j], 4))
			}
			for len(b.lines) > 0 && strings.TrimSpace(b.lines[len(b.lines)-1]) == "" {
				b.lines = b.lines[:len(b.lines)-1]
			}
			blocks = append(blocks, b)
			i, lead, blank = j-1, "", true
		case strings.TrimSpace(l) == "":
			flush()
			blank = true
		default:
			if len(para) == 0 {
				paraLine = i + 1
			}
			para = append(para, l)
			blank = false
		}
	}
	flush()
	return blocks, spans
}

var spanRE = regexp.MustCompile("`([^`]+)`")

// dedent removes up to n leading spaces.
func dedent(s string, n int) string {
	for i := 0; i < n && strings.HasPrefix(s, " "); i++ {
		s = s[1:]
	}
	return s
}

// A docCommand is one attnc command line a doc shows.
type docCommand struct {
	where  string
	text   string   // as written, less the prompt and comment
	args   []string // attnc's arguments
	cd     string   // the directory of a leading `cd DIR &&`
	other  bool     // not attnc: go test, go build, apt-get, …
	inline bool     // from inline code in the prose, not a code block
	shows  string   // for inline code, the error message the doc says it gives
	output []string // the output shown after a `$ ` line, or nil
	block  int      // index of its block in the doc, or -1
}

// commandLine reads a line as a command, the way the docs write them: an
// optional `$ ` prompt, `attnc`, `/path/to/attnc` or `go run ./cmd/attnc`,
// the arguments, and a `# comment` or, in a synopsis, a description after
// two spaces. ok is false for a line that is not a command.
func commandLine(line string) (c docCommand, ok bool) {
	s := strings.TrimPrefix(strings.TrimSpace(line), "$ ")
	if loc := descriptionRE.FindStringIndex(s); loc != nil {
		s = s[:loc[0]]
	}
	words, end := shellWords(s)
	if len(words) == 0 {
		return c, false
	}
	c.text = strings.TrimSpace(s[:end])
	if words[0] == "cd" && len(words) > 3 && words[2] == "&&" {
		c.cd, words = words[1], words[3:]
	}
	switch {
	case words[0] == "attnc" || filepath.IsAbs(words[0]) && path.Base(words[0]) == "attnc": // also /tmp/attnc
		c.args = words[1:]
	case len(words) >= 3 && words[0] == "go" && words[1] == "run" && words[2] == "./cmd/attnc":
		c.args = words[3:]
	case slices.Contains([]string{"go", "bash", "apt-get", "python3", "cd"}, words[0]):
		c.other = true
	default:
		return c, false
	}
	if slices.Contains(c.args, "&&") {
		c.other = true // attnc and then something else: a script, not one command
	}
	return c, true
}

// descriptionRE finds the description of a synopsis line
// (`attnc version   print attnc's version`): text after two spaces that is
// not a # comment.
var descriptionRE = regexp.MustCompile(`\s{2,}[^\s#]`)

// shellWords splits a command line into words as sh would for the lines
// the docs hold: quotes group, an unquoted # after a space starts a
// comment. Globs and variables are left alone (no such command runs).
// end is where the command ends: at its comment, if it has one.
func shellWords(s string) (words []string, end int) {
	var w strings.Builder
	inWord := false
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case r == '#' && !inWord && (i == 0 || s[i-1] == ' '):
			return words, i
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, len(s)
}

// Commands too slow for go test: they build a trainer and train, or need
// a trained run.
var slowCommands = map[string]string{
	"train":    "trains a model",
	"eval":     "needs a trained run",
	"predict":  "needs a trained run",
	"generate": "needs a trained run",
	"export":   "needs a trained run",
	"plot":     "needs a trained run",
	"bench":    "builds a trainer and times it",
}

// Commands that take model files.
var fileCommands = map[string]bool{"check": true, "ir": true, "fmt": true, "build": true}

// placeholderRE matches a placeholder argument: FILE, RUN_DIR,
// stdlib/MODEL.attn, std/X.attn.
var placeholderRE = regexp.MustCompile(`(^|/)[A-Z][A-Z_]*(\.attn)?$`)

// skipReason says why a command is not run, or "" to run it. work is the
// directory it would run in, for inline code, which names files only in
// passing.
func skipReason(c docCommand, work string) string {
	if c.other {
		return "not an attnc command"
	}
	if len(c.args) == 0 {
		return "names attnc, not a command line"
	}
	if c.shows != "" {
		// An error example (`attnc train -stpes 10 m.attn` → `unknown
		// flag …`) fails before any work, whatever the command.
		return ""
	}
	if why, ok := slowCommands[c.args[0]]; ok {
		return "attnc " + c.args[0] + " " + why + ": too slow for go test"
	}
	if strings.Contains(c.cd, "your/module") {
		return "placeholder directory " + c.cd
	}
	for _, a := range c.args {
		switch {
		case placeholderRE.MatchString(a), strings.ContainsAny(a, "[]|<>…"), strings.Contains(a, "..."):
			return "placeholder " + a
		case a == "-resume" || a == "--resume":
			return "-resume continues a run"
		}
	}
	if c.args[0] == "fmt" && slices.ContainsFunc(c.args, func(a string) bool { return a == "-w" || strings.TrimLeft(a, "-") == "write" }) {
		return "fmt -w rewrites files"
	}
	if !c.inline {
		return ""
	}
	// Inline code names commands and flags in passing (`attnc ir
	// -dump=fuse`, `attnc chekc`): run only what is a whole command line.
	if !fileCommands[c.args[0]] && !slices.Contains([]string{"version", "help", "completion"}, c.args[0]) {
		return "not a command line"
	}
	var files []string
	for _, a := range c.args[1:] {
		if strings.HasSuffix(a, ".attn") {
			files = append(files, a)
		}
	}
	if fileCommands[c.args[0]] && len(files) == 0 {
		return "names a command or flag, not a command line"
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(work, f)); err != nil && !strings.HasPrefix(f, "std/") {
			return "names a file no example of the doc defines: " + f
		}
	}
	return ""
}

// docTally counts what was checked and what was skipped, by kind and by
// reason, across the docs.
type docTally struct {
	mu      sync.Mutex
	checked map[string]int
	skipped map[string]int
}

func (d *docTally) check(kind string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.checked[kind]++
}

func (d *docTally) skip(t *testing.T, where, what, reason string) {
	t.Logf("skip %s: %s: %s", where, what, reason)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.skipped[reason]++
}

// docRun runs one doc's examples and commands.
type docRun struct {
	bin, root string
	doc       string
	blocks    []docBlock
	spans     []docSpan
	work      string // the doc's examples, with stdlib/ linked in
	tally     *docTally
}

func TestDocs(t *testing.T) {
	start := time.Now()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "attnc")
	build := exec.Command("go", "build", "-o", bin, "./cmd/attnc")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/attnc:\n%s", out)

	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	docs = append([]string{filepath.Join(root, "README.md")}, docs...)
	tally := &docTally{checked: map[string]int{}, skipped: map[string]int{}}
	ran := 0 // docs whose subtest ran (go test -run can select fewer)
	for _, p := range docs {
		rel, err := filepath.Rel(root, p)
		require.NoError(t, err)
		rel = filepath.ToSlash(rel)
		src, err := os.ReadFile(p)
		require.NoError(t, err)
		t.Run(rel, func(t *testing.T) {
			blocks, spans := parseDoc(t, rel, string(src))
			ran++
			r := &docRun{bin: bin, root: root, doc: rel, blocks: blocks, spans: spans, work: t.TempDir(), tally: tally}
			require.NoError(t, os.Symlink(filepath.Join(root, "stdlib"), filepath.Join(r.work, "stdlib")))
			r.run(t)
		})
	}
	t.Run("synopsis", func(t *testing.T) { checkSynopsis(t, bin, root) })
	t.Run("layout", func(t *testing.T) { checkLayout(t, root) })

	var lines []string
	for kind, n := range tally.checked {
		lines = append(lines, fmt.Sprintf("checked %3d %s", n, kind))
	}
	for reason, n := range tally.skipped {
		lines = append(lines, fmt.Sprintf("skipped %3d: %s", n, reason))
	}
	sort.Strings(lines)
	t.Logf("%d docs in %v:\n%s", len(docs), time.Since(start).Round(time.Millisecond), strings.Join(lines, "\n"))
	// A parser that stopped finding blocks would pass vacuously.
	if ran < len(docs) {
		return
	}
	assert.Positive(t, tally.checked["attn example (attnc check exits 0)"], "no attn example was checked")
	assert.Positive(t, tally.checked["attnc command (code block)"], "no attnc command was run")
}

// run checks every block and command of the doc.
func (r *docRun) run(t *testing.T) {
	examples := r.writeExamples(t)
	cmds := r.commands()

	// An example is checked by the command the doc shows on it, with its
	// output, when there is one; else it must pass attnc check.
	shown := map[string]bool{}
	for _, c := range cmds {
		if c.output != nil && len(c.args) > 0 && c.args[0] == "check" {
			for _, a := range c.args[1:] {
				shown[a] = true
			}
		}
	}
	for _, ex := range examples {
		if shown[ex.name] {
			r.tally.check("attn example (against the output the doc shows)")
			continue // checked with its output below
		}
		r.tally.check("attn example (attnc check exits 0)")
		t.Run(fmt.Sprintf("line%d_check_%s", ex.block.line, ex.name), func(t *testing.T) {
			t.Parallel()
			code, out := r.attnc(t, r.work, "check", ex.name)
			if assert.Equal(t, 0, code, "%s: attnc check %s:\n%s", ex.block.where(), ex.name, out) {
				assert.True(t, strings.HasPrefix(out, ex.name+": ok"), "%s: attnc check %s:\n%s", ex.block.where(), ex.name, out)
			}
		})
	}

	for _, c := range cmds {
		if why := skipReason(c, r.work); why != "" {
			what := c.text
			if c.inline {
				what = "`" + what + "`" // inline code, as the doc writes it
			}
			r.tally.skip(t, c.where, what, why)
			continue
		}
		if c.inline {
			r.tally.check("attnc command (inline code)")
		} else {
			r.tally.check("attnc command (code block)")
		}
		t.Run(fmt.Sprintf("%s_%s", strings.TrimPrefix(c.where, r.doc+":"), strings.Join(c.args, "_")), func(t *testing.T) {
			t.Parallel()
			r.runCommand(t, c)
		})
	}

	r.otherBlocks(t)
}

// An example is an attn block written to the doc's directory.
type example struct {
	block docBlock
	name  string
}

// writeExamples writes every attn block of the doc, all before any is
// checked, since examples import each other.
func (r *docRun) writeExamples(t *testing.T) []example {
	var out []example
	seen := map[string]string{}
	for _, b := range r.blocks {
		if b.lang != "attn" {
			continue
		}
		name, ok := strings.CutPrefix(b.lines[0], "// file: ")
		if !ok {
			if !completeFile(b.lines) {
				r.tally.skip(t, b.where(), "attn block", "a fragment, not a whole file, and no // file: line")
				continue
			}
			name = fmt.Sprintf("example_line%d.attn", b.line)
		}
		name = strings.TrimSpace(name)
		require.True(t, filepath.IsLocal(name) && strings.HasSuffix(name, ".attn"), "%s: // file: %s is not a relative .attn path", b.where(), name)
		require.NotContains(t, seen, name, "%s: %s is also the name of the example at %s", b.where(), name, seen[name])
		seen[name] = b.where()
		p := filepath.Join(r.work, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(strings.Join(b.lines, "\n")+"\n"), 0o644))
		out = append(out, example{block: b, name: name})
	}
	return out
}

// completeFile says whether an attn block without a // file: line is a
// whole file: it has a model, or only top-level declarations.
func completeFile(lines []string) bool {
	decls := 0
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "model "):
			return true
		case strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "//") || strings.HasPrefix(l, " ") || strings.HasPrefix(l, "}"):
		case declRE.MatchString(l):
			decls++
		default:
			return false
		}
	}
	return decls > 0
}

var declRE = regexp.MustCompile(`^(import|mask|score|block) `)

// commands lists the doc's command lines: those of its code blocks, with
// the output a `$ ` block shows, and those of its inline code.
func (r *docRun) commands() []docCommand {
	var cmds []docCommand
	for i, b := range r.blocks {
		if b.fenced && !slices.Contains([]string{"", "text", "sh", "shell", "bash", "console"}, b.lang) {
			continue
		}
		var last *docCommand
		for j, l := range b.lines {
			prompt := strings.HasPrefix(l, "$ ")
			if last != nil && last.output != nil && !prompt {
				last.output = append(last.output, l)
				continue
			}
			c, ok := commandLine(l)
			if !ok {
				continue
			}
			c.where, c.block = fmt.Sprintf("%s:%d", r.doc, b.line+j+boolInt(b.fenced)), i
			if prompt {
				c.output = []string{}
			}
			cmds = append(cmds, c)
			last = &cmds[len(cmds)-1]
		}
	}
	for _, s := range r.spans {
		// `attnc` and `attnc check` in prose name the tool or a command; a
		// command line has at least an argument too.
		if c, ok := commandLine(s.text); ok && !c.other && (len(c.args) >= 2 || s.shows != "") {
			c.where, c.inline, c.block, c.shows = fmt.Sprintf("%s:%d", r.doc, s.line), true, -1, s.shows
			cmds = append(cmds, c)
		}
	}
	return cmds
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// attnc runs the built attnc in dir and returns its exit status and its
// standard output and error interleaved, as a terminal shows them.
func (r *docRun) attnc(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), docTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && ctx.Err() == nil {
		return exit.ExitCode(), out.String()
	}
	require.NoError(t, err, "attnc %s", strings.Join(args, " "))
	return 0, out.String()
}

// diagRE matches a positioned diagnostic, file:line:col: message.
var diagRE = regexp.MustCompile(`(?m)^[^\s:]+:\d+:\d+: `)

// runCommand runs one command line and compares its output with what the
// doc shows, if it shows any.
func (r *docRun) runCommand(t *testing.T, c docCommand) {
	dir := r.work
	if c.args[0] == "build" {
		// attnc build writes a package into the user's module (GO_API.md).
		dir = userModule(t)
	}
	code, out := r.attnc(t, dir, c.args...)
	if c.shows != "" {
		assert.Equal(t, 2, code, "%s: %s is a usage error:\n%s", c.where, c.text, out)
		assert.Contains(t, strings.Join(strings.Fields(out), " "), c.shows, "%s: what %s says", c.where, c.text)
		return
	}
	want := 0
	if c.output != nil && diagRE.MatchString(strings.Join(c.output, "\n")) {
		want = 1 // the doc shows errors: attnc exits 1
	}
	require.Equal(t, want, code, "%s: %s exits %d:\n%s", c.where, c.text, code, out)
	if c.output != nil {
		matchOutput(t, c, out)
	}
	if c.args[0] == "build" {
		r.checkWritten(t, c, dir)
	}
}

// matchOutput compares a command's output with the doc's, line for line;
// a line "..." in the doc stands for any number of lines it leaves out.
func matchOutput(t *testing.T, c docCommand, got string) {
	t.Helper()
	want := c.output
	for len(want) > 0 && strings.TrimSpace(want[len(want)-1]) == "" {
		want = want[:len(want)-1]
	}
	gotLines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	if !slices.Contains(want, "...") {
		assert.Equal(t, strings.Join(want, "\n"), strings.Join(gotLines, "\n"), "%s: the output of %s differs from the doc's", c.where, c.text)
		return
	}
	// The doc's lines between "..."s are runs that must appear in order;
	// without a "..." at either end, the output starts or ends with them.
	var runs [][]string
	cur := []string{}
	for _, l := range want {
		if l == "..." {
			runs = append(runs, cur)
			cur = []string{}
			continue
		}
		cur = append(cur, l)
	}
	runs = append(runs, cur)
	pos := 0
	for i, run := range runs {
		switch {
		case len(run) == 0:
			continue
		case i == 0:
			if !hasRunAt(gotLines, run, 0) {
				assert.Fail(t, "output differs", "%s: the output of %s does not start with\n%s\ngot:\n%s", c.where, c.text, strings.Join(run, "\n"), got)
				return
			}
			pos = len(run)
		case i == len(runs)-1:
			at := len(gotLines) - len(run)
			if at < pos || !hasRunAt(gotLines, run, at) {
				assert.Fail(t, "output differs", "%s: the output of %s does not end with\n%s\ngot:\n%s", c.where, c.text, strings.Join(run, "\n"), got)
				return
			}
		default:
			found := -1
			for at := pos; at+len(run) <= len(gotLines); at++ {
				if hasRunAt(gotLines, run, at) {
					found = at
					break
				}
			}
			if found < 0 {
				assert.Fail(t, "output differs", "%s: the output of %s has no\n%s\n(in this order, after what the doc shows before it); got:\n%s", c.where, c.text, strings.Join(run, "\n"), got)
				return
			}
			pos = found + len(run)
		}
	}
}

func hasRunAt(lines, run []string, at int) bool {
	return at >= 0 && at+len(run) <= len(lines) && slices.Equal(lines[at:at+len(run)], run)
}

// checkWritten checks the files a doc says attnc build writes: a block
// right after the command's whose lines all start with the -o directory
// (GO_API.md's `gen/sorter/model.go …`).
func (r *docRun) checkWritten(t *testing.T, c docCommand, dir string) {
	if c.inline || c.block+1 >= len(r.blocks) {
		return
	}
	out := ""
	for i, a := range c.args {
		if f := strings.TrimLeft(a, "-"); (f == "o" || f == "out") && i+1 < len(c.args) {
			out = c.args[i+1]
		}
	}
	listing := r.blocks[c.block+1]
	if out == "" || len(listing.lines) == 0 {
		return
	}
	for _, l := range listing.lines {
		if !strings.HasPrefix(l, out+"/") {
			return // not a listing of what it writes
		}
	}
	for _, l := range listing.lines {
		name := strings.Fields(l)[0]
		m, err := filepath.Glob(filepath.Join(dir, filepath.FromSlash(name)))
		require.NoError(t, err)
		assert.NotEmpty(t, m, "%s: %s says it writes %s", listing.where(), c.text, name)
		// "gen/sorter/model.go  // package pointersort: the model"
		if pm := packageRE.FindStringSubmatch(l); pm != nil {
			for _, f := range m {
				src, err := os.ReadFile(f)
				require.NoError(t, err)
				assert.Regexp(t, `(?m)^package `+pm[1]+`$`, string(src), "%s: %s is not package %s", listing.where(), f, pm[1])
			}
		}
	}
}

// packageRE finds the package a listing says a Go file is in.
var packageRE = regexp.MustCompile(`\.go\s+// package (\w+)`)

// otherBlocks checks the blocks that are neither attn examples nor command
// lines: IR, grammars, Go; and counts the rest as skipped.
func (r *docRun) otherBlocks(t *testing.T) {
	pairs := map[int]bool{} // blocks checked as the input of "prints as"
	for i, b := range r.blocks {
		switch {
		case b.lang == "attn":
			continue // an example
		case b.lang == "ir":
			r.tally.check("ir block")
			checkIRBlock(t, b)
		case b.lang == "ebnf":
			r.checkGrammar(t, b)
		case b.lang == "go":
			if r.doc == "docs/GO_API.md" && slices.Contains(b.lines, "package main") && r.firstBlock("go") == i {
				// TestGoAPIExample (gobackend_test.go) builds and runs the
				// first Go block of GO_API.md against the generated package.
				r.tally.check("go program (run by TestGoAPIExample)")
				continue
			}
			r.tally.skip(t, b.where(), "go block", "a fragment of Go, not a program")
		case strings.HasPrefix(b.lead, "prints as") && i > 0:
			// IR.md: a hand-written module and the canonical text it prints as.
			r.tally.check("ir block")
			pairs[i-1] = true
			in, err := ir.Parse("messy.ir", strings.Join(r.blocks[i-1].lines, "\n"))
			require.NoError(t, err, r.blocks[i-1].where())
			assert.Equal(t, strings.Join(b.lines, "\n")+"\n", ir.Print(in), "%s: what the module at %s prints as", b.where(), r.blocks[i-1].where())
		case fromFileRE.MatchString(b.lead):
			r.tally.check("ir block")
			r.checkQuoted(t, b, fromFileRE.FindStringSubmatch(b.lead)[1])
		case r.hasCommand(i):
			continue // its command lines run above
		case pairs[i]:
			continue
		case i+1 < len(r.blocks) && strings.HasPrefix(r.blocks[i+1].lead, "prints as"):
			continue // checked with the next block
		default:
			if i > 0 && r.listedBy(i) {
				continue // the files attnc build writes, checked with it
			}
			r.tally.skip(t, b.where(), "block", "a synopsis, output, listing or sketch, not an example or command")
		}
	}
}

func (r *docRun) firstBlock(lang string) int {
	return slices.IndexFunc(r.blocks, func(b docBlock) bool { return b.lang == lang })
}

// hasCommand says whether block i holds a command line (run or skipped).
func (r *docRun) hasCommand(i int) bool {
	b := r.blocks[i]
	if b.fenced && !slices.Contains([]string{"", "text", "sh", "shell", "bash", "console"}, b.lang) {
		return false
	}
	for _, l := range b.lines {
		if _, ok := commandLine(l); ok {
			return true
		}
	}
	return false
}

// listedBy says whether block i lists the files of a build command in
// block i-1 (checked by checkWritten).
func (r *docRun) listedBy(i int) bool {
	for _, l := range r.blocks[i-1].lines {
		if c, ok := commandLine(l); ok && len(c.args) > 0 && c.args[0] == "build" {
			return true
		}
	}
	return false
}

// fromFileRE finds where a doc says its lines come from: "Examples (from
// `ir/testdata/attention.ir`):".
var fromFileRE = regexp.MustCompile("\\(from `([^`]+)`\\)")

// checkQuoted requires each line of b to be a line of the repository file
// it says it quotes.
func (r *docRun) checkQuoted(t *testing.T, b docBlock, file string) {
	src, err := os.ReadFile(filepath.Join(r.root, filepath.FromSlash(file)))
	require.NoError(t, err, "%s quotes %s", b.where(), file)
	var have []string
	for _, l := range strings.Split(string(src), "\n") {
		have = append(have, strings.TrimSpace(l))
	}
	for _, l := range b.lines {
		assert.Contains(t, have, strings.TrimSpace(l), "%s: a line it quotes from %s is not there", b.where(), file)
	}
}

// checkIRBlock parses, verifies and prints a module of IR text, which must
// print back as written, and runs it in the reference interpreter on
// random inputs.
func checkIRBlock(t *testing.T, b docBlock) {
	var body []string
	name := "doc.ir"
	for _, l := range b.lines {
		if f, ok := strings.CutPrefix(l, "// file: "); ok {
			name = f
			continue
		}
		body = append(body, l)
	}
	src := strings.Join(body, "\n") + "\n"
	m, err := ir.Parse(name, src)
	require.NoError(t, err, b.where())
	require.NoError(t, ir.Verify(m), b.where())
	assert.Equal(t, src, ir.Print(m), "%s: the module does not print back as written", b.where())
	params, err := eval.InitParams(m, 1)
	require.NoError(t, err, b.where())
	syms := map[string]int64{}
	for _, s := range m.Syms {
		syms[s] = 5
	}
	// Integers in [0, 2) are valid tokens, targets and indices for any
	// table or class count.
	inputs, err := eval.RandomInputs(m, syms, 1, func(string) (int, int) { return 0, 2 })
	require.NoError(t, err, b.where())
	res, err := eval.Run(m, eval.Env{Inputs: inputs, Params: params})
	require.NoError(t, err, "%s: the reference interpreter", b.where())
	if loss, ok := res.Loss(); ok {
		assert.False(t, math.IsNaN(loss) || math.IsInf(loss, 0), "%s: loss %v", b.where(), loss)
	}
}

// checkGrammar compares a grammar the doc says is lang/grammar.ebnf with
// that file, which TestGrammarEBNF (lang) pins to the parser.
func (r *docRun) checkGrammar(t *testing.T, b docBlock) {
	m := regexp.MustCompile("`([^`]+\\.ebnf)`").FindStringSubmatch(b.lead)
	if m == nil {
		r.tally.skip(t, b.where(), "ebnf block", "a hand-written grammar no file pins")
		return
	}
	r.tally.check("grammar")
	want, err := os.ReadFile(filepath.Join(r.root, filepath.FromSlash(m[1])))
	require.NoError(t, err, "%s names %s", b.where(), m[1])
	assert.Equal(t, strings.TrimRight(string(want), "\n"), strings.Join(b.lines, "\n"), "%s: the grammar differs from %s", b.where(), m[1])
}

// checkSynopsis requires LANGUAGE.md's synopsis of the command line (§12)
// to list every command `attnc help` lists.
func checkSynopsis(t *testing.T, bin, root string) {
	out, err := exec.Command(bin, "help").Output()
	require.NoError(t, err)
	_, list, ok := strings.Cut(string(out), "Commands:\n")
	require.True(t, ok, "attnc help lists its commands:\n%s", out)
	var names []string
	for _, l := range strings.Split(list, "\n") {
		if !strings.HasPrefix(l, "  ") {
			break
		}
		names = append(names, strings.Fields(l)[0])
	}
	require.NotEmpty(t, names)

	src, err := os.ReadFile(filepath.Join(root, "docs", "LANGUAGE.md"))
	require.NoError(t, err)
	blocks, _ := parseDoc(t, "docs/LANGUAGE.md", string(src))
	i := slices.IndexFunc(blocks, func(b docBlock) bool {
		return len(b.lines) > 0 && strings.HasPrefix(b.lines[0], "attnc check ")
	})
	require.GreaterOrEqual(t, i, 0, "docs/LANGUAGE.md has a synopsis of the commands")
	for _, name := range names {
		assert.True(t, slices.ContainsFunc(blocks[i].lines, func(l string) bool { return strings.HasPrefix(l, "attnc "+name+" ") || l == "attnc "+name }),
			"%s: the synopsis does not list attnc %s", blocks[i].where(), name)
	}

	// The paragraph after it lists the one-letter flags: all of them.
	_, after, ok := strings.Cut(strings.Join(strings.Fields(string(src)), " "), "a few flags also have a one-letter form (")
	require.True(t, ok, "docs/LANGUAGE.md lists the one-letter flags")
	listed, _, _ := strings.Cut(after, ")")
	for _, name := range names {
		help, err := exec.Command(bin, "help", name).Output()
		require.NoError(t, err, "attnc help %s", name)
		for _, m := range shortFlagRE.FindAllStringSubmatch(string(help), -1) {
			if m[1] != "-h" { // every command's -h, said separately
				assert.Contains(t, listed, "`"+m[1]+"`", "docs/LANGUAGE.md §12 does not list attnc %s's %s among the one-letter flags", name, m[1])
			}
		}
	}
}

// shortFlagRE finds a one-letter flag in a command's help: "  -o, --out string".
var shortFlagRE = regexp.MustCompile(`(?m)^\s+(-[a-zA-Z]), --`)

// checkLayout requires README.md's layout table to have a row for every
// top-level folder that holds Go code, and its docs/ row to name every doc.
func checkLayout(t *testing.T, root string) {
	src, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	rows := map[string]string{} // first cell, without backquotes: the rest
	for _, l := range strings.Split(string(src), "\n") {
		if cells := strings.Split(l, "|"); len(cells) > 2 && strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			rows[strings.Trim(strings.TrimSpace(cells[1]), "`")] = l
		}
	}
	require.NotEmpty(t, rows, "README.md has a layout table")

	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || e.Name() == "testdata" || !hasGo(t, filepath.Join(root, e.Name())) {
			continue // runs/ and other folders a user makes hold no Go code
		}
		listed := false
		for cell := range rows {
			listed = listed || cell == e.Name()+"/" || strings.HasPrefix(cell, e.Name()+"/")
		}
		assert.True(t, listed, "README.md's layout table has no row for %s/", e.Name())
	}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	for _, d := range docs {
		assert.Contains(t, rows["docs/"], "`"+filepath.Base(d)+"`", "README.md's layout row for docs/ does not name %s", filepath.Base(d))
	}
}

// hasGo says whether a folder holds a .go file, at any depth.
func hasGo(t *testing.T, dir string) bool {
	found := errors.New("found")
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") {
			return found
		}
		return nil
	})
	if errors.Is(err, found) {
		return true
	}
	require.NoError(t, err)
	return false
}
