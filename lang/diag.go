package lang

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// A Diagnostic is one problem found in a source file, with the span it
// comes from.
type Diagnostic struct {
	Pos, End lexer.Position // End may be zero: a point diagnostic
	Msg      string
}

func (d Diagnostic) Error() string { return posString(d.Pos) + ": " + d.Msg }

// Diagnostics is a list of problems; as an error it prints one per line.
type Diagnostics []Diagnostic

func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns ds as an error, or nil when it is empty.
func (ds Diagnostics) Err() error {
	if len(ds) == 0 {
		return nil
	}
	return ds
}

// Sort orders ds by file, line and column, and drops exact duplicates
// (an error reached through two paths is reported once).
func (ds *Diagnostics) Sort() {
	sort.SliceStable(*ds, func(i, j int) bool {
		a, b := (*ds)[i].Pos, (*ds)[j].Pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	out := (*ds)[:0]
	for i, d := range *ds {
		if i > 0 && d.Pos == (*ds)[i-1].Pos && d.Msg == (*ds)[i-1].Msg {
			continue
		}
		out = append(out, d)
	}
	*ds = out
}

// Print writes each diagnostic as file:line:col: message, followed by the
// source line and a caret under the span. sources maps file names to their
// text; a file it lacks is printed without the source line.
func (ds Diagnostics) Print(w io.Writer, sources map[string]string) {
	for _, d := range ds {
		fmt.Fprintln(w, d.Error())
		src, ok := sources[d.Pos.Filename]
		if !ok || d.Pos.Line < 1 {
			continue
		}
		// Positions are counted after a byte order mark (see Parse).
		lines := strings.Split(stripBOM(src), "\n")
		if d.Pos.Line > len(lines) {
			continue
		}
		line := strings.TrimRight(lines[d.Pos.Line-1], "\r")
		fmt.Fprintf(w, "    %s\n", expandTabs(line))
		fmt.Fprintf(w, "    %s\n", caret(line, d.Pos, d.End))
	}
}

func expandTabs(s string) string { return strings.ReplaceAll(s, "\t", "    ") }

// caret draws ^~~~ under columns [pos, end) of line, or a single ^ when
// the span is empty or runs past the line.
func caret(line string, pos, end lexer.Position) string {
	runes := []rune(line)
	col := max(pos.Column-1, 0)
	width := 1
	if end.Line == pos.Line && end.Column > pos.Column {
		width = end.Column - pos.Column
	}
	if col > len(runes) {
		col = len(runes)
	}
	if col+width > len(runes) {
		width = max(len(runes)-col, 1)
	}
	var sb strings.Builder
	for _, r := range runes[:col] {
		if r == '\t' {
			sb.WriteString("    ")
		} else {
			sb.WriteByte(' ')
		}
	}
	sb.WriteByte('^')
	sb.WriteString(strings.Repeat("~", width-1))
	return sb.String()
}

// diagSink collects diagnostics during one stage.
type diagSink struct {
	list Diagnostics
	// remap, if set, may move a diagnostic before it is kept (the
	// elaborator moves errors inside the standard library to the user's
	// call).
	remap func(Diagnostic) Diagnostic
}

func (s *diagSink) add(d Diagnostic) {
	if s.remap != nil {
		d = s.remap(d)
	}
	s.list = append(s.list, d)
}

func (s *diagSink) errorf(n Node, format string, args ...any) {
	s.add(Diagnostic{Pos: n.Start(), End: n.End(), Msg: fmt.Sprintf(format, args...)})
}

func (s *diagSink) at(pos lexer.Position, format string, args ...any) {
	s.add(Diagnostic{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// Suggest returns ` (did you mean "x"?)` for the candidate closest to
// name, or "": the same suggestion the compiler's diagnostics make, for
// the command line's own errors.
func Suggest(name string, candidates []string) string { return didYouMean(name, candidates) }

// didYouMean returns ` (did you mean "x"?)` for the candidate closest to
// name by edit distance, if one is close enough to be a plausible typo.
func didYouMean(name string, candidates []string) string {
	best, bestD := "", 0
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := editDistance(strings.ToLower(name), strings.ToLower(c))
		if best == "" || d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	// A one-letter name is only a typo of itself in another case: "i"
	// is not a plausible misspelling of "B".
	limit := len(name) / 3
	if len(name) > 1 {
		limit = max(1, limit)
	}
	if best == "" || bestD > limit {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// Three rows of the optimal-string-alignment table: i-2, i-1, i.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			// Swapping two adjacent letters counts as one edit.
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
