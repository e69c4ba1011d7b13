package lang

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Syntax error messages. participle reports where its parse gave up,
// which with backtracking is often a token or two before the mistake
// (x + * 2 fails at the +), and words its message in terms of the
// grammar's structs ("expected GExpr"). syntaxError looks at the tokens
// itself first, for the mistakes it can name exactly: a character that
// starts no token, an unterminated string, a bracket that is never closed
// or closes the wrong thing, an operator with no right operand, a chained
// comparison, a misspelled keyword. Otherwise it rewords participle's
// message.

// tok is one token of the source, comments and whitespace left out.
type tok struct {
	pos  lexer.Position
	end  lexer.Position
	kind string // "Ident", "Int", "Float", "String", "Op" or "EOF"
	text string
}

// lexTokens returns src's tokens up to the end, or up to a character no
// token can start, whose position it returns with ok false.
func lexTokens(filename, src string) (toks []tok, bad lexer.Position, ok bool) {
	lx, err := attnLexer.LexString(filename, src)
	if err != nil {
		return nil, lexer.Position{Filename: filename, Line: 1, Column: 1}, false
	}
	names := map[lexer.TokenType]string{}
	for name, t := range attnLexer.Symbols() {
		names[t] = name
	}
	for {
		t, err := lx.Next()
		if err != nil {
			if e, isPos := err.(interface{ Position() lexer.Position }); isPos {
				return toks, e.Position(), false
			}
			return toks, lexer.Position{Filename: filename, Line: 1, Column: 1}, false
		}
		kind := names[t.Type]
		if t.EOF() {
			return append(toks, tok{pos: t.Pos, end: t.Pos, kind: "EOF"}), lexer.Position{}, true
		}
		if kind == "Comment" || kind == "Whitespace" {
			continue
		}
		end := t.Pos
		end.Offset += len(t.Value)
		end.Column += len([]rune(t.Value))
		toks = append(toks, tok{pos: t.Pos, end: end, kind: kind, text: t.Value})
	}
}

// syntaxError turns participle's error (at pos, with message msg) into the
// diagnostic to report.
func syntaxError(filename, src string, pos lexer.Position, msg string) Diagnostic {
	toks, bad, ok := lexTokens(filename, src)
	if !ok {
		return badCharacter(src, bad)
	}
	if p, found := tokenProblem(toks); found {
		open := openAt(toks, pos)
		switch {
		case p.unclosed != nil && open != nil && before(p.unclosed.pos, pos) && before(pos, p.d.Pos) && expects(msg, open.text):
			// participle stopped where the closer was due: say so there.
			got := expectedRE.ReplaceAllString(msg, "$1")
			if got == "<EOF>" {
				got = "end of file"
			} else {
				got = fmt.Sprintf("%q", got)
			}
			return Diagnostic{Pos: pos, Msg: fmt.Sprintf("syntax error: unexpected %s: expected %q to close the %q at %s",
				got, openers[open.text], open.text, place(open.pos, pos))}
		case p.weak && before(pos, p.d.Pos):
			// A stray closer is often the echo of an earlier mistake
			// (repeat with no "{"), which participle reports first.
		default:
			return p.d
		}
	}
	at := -1
	for i, t := range toks {
		if t.pos.Offset == pos.Offset {
			at = i
			break
		}
	}
	if at >= 0 {
		if d, found := misspelledKeyword(toks, at); found {
			return d
		}
	}
	return Diagnostic{Pos: pos, Msg: "syntax error: " + reword(msg)}
}

// before reports whether a comes before b in the same file.
func before(a, b lexer.Position) bool {
	return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
}

// badCharacter explains a character that starts no token.
func badCharacter(src string, pos lexer.Position) Diagnostic {
	r := []rune(src[min(pos.Offset, len(src)):])
	if len(r) == 0 {
		return Diagnostic{Pos: pos, Msg: "syntax error: unexpected end of file"}
	}
	end := pos
	end.Column++
	switch c := r[0]; c {
	case '"':
		line := src[pos.Offset:]
		if i := strings.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
		}
		end.Column = pos.Column + len([]rune(line))
		return Diagnostic{Pos: pos, End: end, Msg: `syntax error: unterminated string: a string ends with " on the same line`}
	case '#':
		return Diagnostic{Pos: pos, End: end, Msg: `syntax error: unexpected "#": comments start with //`}
	case '\'':
		return Diagnostic{Pos: pos, End: end, Msg: `syntax error: unexpected "'": strings are written in double quotes`}
	case '@':
		return Diagnostic{Pos: pos, End: end, Msg: `syntax error: unexpected "@": for a matrix product call matmul(x, y)`}
	default:
		return Diagnostic{Pos: pos, End: end, Msg: fmt.Sprintf("syntax error: unexpected character %q", string(c))}
	}
}

var (
	binaryOps = map[string]bool{
		"+": true, "-": true, "*": true, "/": true, "%": true, "&&": true, "||": true,
		"==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true,
	}
	comparisons = map[string]bool{"==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}
	closers     = map[string]string{")": "(", "]": "[", "}": "{"}
	openers     = map[string]string{"(": ")", "[": "]", "{": "}"}
	// Keywords that cannot start an operand: they begin or divide
	// statements and declarations.
	structural = map[string]bool{
		"import": true, "mask": true, "score": true, "block": true, "model": true,
		"config": true, "input": true, "let": true, "repeat": true, "in": true,
		"return": true, "loss": true, "metric": true, "output": true, "train": true,
		"then": true, "else": true,
	}
	declKeywords = []string{"import", "mask", "score", "block", "model"}
	stmtKeywords = []string{"let", "repeat", "return", "loss", "metric", "output", "config", "input", "train"}
)

// startsOperand reports whether t can begin an operand.
func startsOperand(t tok) bool {
	switch t.kind {
	case "Int", "Float", "String":
		return true
	case "Ident":
		return !structural[t.text]
	case "Op":
		return t.text == "(" || t.text == "-" || t.text == "!"
	}
	return false
}

// tokProblem is a mistake seen in the token sequence. weak marks one
// that may be the consequence of an earlier mistake; unclosed is the
// bracket left open, for a missing closer.
type tokProblem struct {
	d        Diagnostic
	weak     bool
	unclosed *tok
}

// tokenProblem finds the first mistake in toks that the token sequence
// alone shows: brackets, dangling operators, chained comparisons.
func tokenProblem(toks []tok) (tokProblem, bool) {
	type open struct {
		t     tok
		close string
	}
	var stack []open
	for i, t := range toks {
		switch {
		case t.kind == "EOF":
			if len(stack) > 0 {
				o := stack[len(stack)-1]
				return tokProblem{d: Diagnostic{Pos: t.pos, Msg: fmt.Sprintf("syntax error: unexpected end of file: the %q at %s is never closed (add %q)", o.t.text, place(o.t.pos, t.pos), o.close)}, unclosed: &o.t}, true
			}
		case t.kind == "Op" && openers[t.text] != "":
			stack = append(stack, open{t, openers[t.text]})
		case t.kind == "Op" && closers[t.text] != "":
			if len(stack) == 0 {
				return tokProblem{d: Diagnostic{Pos: t.pos, End: t.end, Msg: fmt.Sprintf("syntax error: unexpected %q: there is no %q to close", t.text, closers[t.text])}, weak: true}, true
			}
			o := stack[len(stack)-1]
			if o.close == t.text {
				stack = stack[:len(stack)-1]
				continue
			}
			opened := false
			for _, u := range stack {
				opened = opened || u.close == t.text
			}
			if !opened && t.text != "}" {
				// An extra ) or ]: more likely one too many than a
				// bracket left open before it.
				return tokProblem{d: Diagnostic{Pos: t.pos, End: t.end, Msg: fmt.Sprintf("syntax error: unexpected %q: there is no %q to close", t.text, closers[t.text])}}, true
			}
			return tokProblem{d: Diagnostic{Pos: t.pos, End: t.end, Msg: fmt.Sprintf("syntax error: unexpected %q: the %q at %s is not closed (add %q before it)", t.text, o.t.text, place(o.t.pos, t.pos), o.close)}, unclosed: &o.t}, true
		case t.kind == "Op" && t.text == "," && toks[i+1].text == ")":
			return tokProblem{d: Diagnostic{Pos: t.pos, End: t.end, Msg: `syntax error: unexpected "," before ")": remove it, or add the missing argument`}}, true
		case t.kind == "Op" && binaryOps[t.text]:
			next := toks[i+1] // toks ends with EOF
			if startsOperand(next) {
				if comparisons[t.text] {
					if prev, chained := chainedComparison(toks, i); chained {
						return tokProblem{d: Diagnostic{Pos: t.pos, End: t.end, Msg: fmt.Sprintf("syntax error: comparisons do not chain: write a %s b && b %s c, not a %s b %s c", prev.text, t.text, prev.text, t.text)}}, true
					}
				}
				continue
			}
			// Unary - and ! have no left operand to miss; an operator
			// followed by one that cannot start an operand is the gap.
			if next.kind == "Op" && binaryOps[next.text] {
				return tokProblem{d: Diagnostic{Pos: next.pos, End: next.end, Msg: fmt.Sprintf("syntax error: unexpected %q: operator %s is missing its right operand", next.text, t.text)}}, true
			}
			return tokProblem{d: Diagnostic{Pos: t.pos, End: t.end, Msg: fmt.Sprintf("syntax error: operator %s is missing its right operand", t.text)}}, true
		}
	}
	return tokProblem{}, false
}

// chainedComparison reports whether the comparison at toks[i] follows
// another in the same expression (a < b < c), and returns that one.
func chainedComparison(toks []tok, i int) (tok, bool) {
	depth := 0
	for j := i - 1; j >= 0; j-- {
		t := toks[j]
		if t.kind == "Ident" && structural[t.text] || t.kind == "Ident" && t.text == "if" {
			return tok{}, false
		}
		if t.kind != "Op" {
			continue
		}
		switch {
		case closers[t.text] != "":
			depth++
		case openers[t.text] != "":
			if depth == 0 {
				return tok{}, false
			}
			depth--
		case depth > 0:
		case comparisons[t.text]:
			return t, true
		case t.text == "&&" || t.text == "||" || t.text == "," || t.text == "=" || t.text == ":" || t.text == ".." || t.text == "->":
			return tok{}, false
		}
	}
	return tok{}, false
}

// misspelledKeyword recognises a near miss of a keyword where a
// declaration or statement starts: blok f(...), lett x = 1.
func misspelledKeyword(toks []tok, at int) (Diagnostic, bool) {
	t := toks[at]
	cands := stmtKeywords
	what := "statement"
	if at > 0 && toks[at-1].kind == "Ident" && at+1 < len(toks) && toks[at+1].kind == "Ident" {
		// The parse stopped at the second word: lett x.
		t = toks[at-1]
	}
	depth := 0
	for _, u := range toks[:at] {
		if u.kind == "Op" && openers[u.text] != "" {
			depth++
		} else if u.kind == "Op" && closers[u.text] != "" {
			depth--
		}
	}
	if depth == 0 {
		// A declaration starts a line; a word in the middle of one at
		// the top level is the tail of a broken declaration.
		if at > 0 && toks[at-1].pos.Line == t.pos.Line {
			return Diagnostic{}, false
		}
		cands, what = declKeywords, "declaration"
	}
	if t.kind != "Ident" || keywords[t.text] {
		return Diagnostic{}, false
	}
	hint := didYouMean(t.text, cands)
	if hint == "" {
		if depth != 0 {
			return Diagnostic{}, false
		}
		return Diagnostic{Pos: t.pos, End: t.end, Msg: fmt.Sprintf("syntax error: unexpected %s: a file holds declarations, each starting with %s", t.text, strings.Join(declKeywords, ", "))}, true
	}
	return Diagnostic{Pos: t.pos, End: t.end, Msg: fmt.Sprintf("syntax error: unknown %s %s%s", what, t.text, hint)}, true
}

// place names position p in a message reported at position at: "column
// 8" on the same line, "line 3, column 8" elsewhere.
func place(p, at lexer.Position) string {
	if p.Line == at.Line {
		return fmt.Sprintf("column %d", p.Column)
	}
	return fmt.Sprintf("line %d, column %d", p.Line, p.Column)
}

// openAt returns the innermost bracket open at pos, or nil.
func openAt(toks []tok, pos lexer.Position) *tok {
	var stack []tok
	for _, t := range toks {
		if !before(t.pos, pos) {
			break
		}
		switch {
		case t.kind == "Op" && openers[t.text] != "":
			stack = append(stack, t)
		case t.kind == "Op" && closers[t.text] != "" && len(stack) > 0:
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) == 0 {
		return nil
	}
	return &stack[len(stack)-1]
}

// expects reports whether participle's message says it wanted the
// closer of the bracket open.
func expects(msg, open string) bool {
	m := expectedRE.FindStringSubmatch(msg)
	return m != nil && strings.HasPrefix(m[2], fmt.Sprintf("%q", openers[open]))
}

var expectedRE = regexp.MustCompile(`^unexpected token "(.*?)"(?: \(expected (.*)\))?$`)

// grammarWords names participle's struct names in expectations.
var grammarWords = map[string]string{
	"GExpr": "an expression", "GStmt": "a statement", "GType": "a type", "GName": "a name",
	"GParam": "a parameter", "GArg": "an argument", "GKeyValue": "a key and value",
	"GDecl": "a declaration", "GString": "a string", "GIndexItem": "a subscript",
}

// reword makes participle's "unexpected token" message read as ours.
func reword(msg string) string {
	m := expectedRE.FindStringSubmatch(msg)
	if m == nil {
		return strings.TrimPrefix(msg, "lexer: ")
	}
	got := fmt.Sprintf("%q", m[1])
	if m[1] == "<EOF>" {
		got = "end of file"
	}
	if m[2] == "" {
		return "unexpected " + got
	}
	want := m[2]
	if strings.HasPrefix(want, `"`) {
		if i := strings.Index(want[1:], `"`); i >= 0 {
			want = want[:i+2]
		}
	} else {
		word := want
		if i := strings.IndexAny(word, " *?+()"); i >= 0 {
			word = word[:i]
		}
		if w, ok := grammarWords[word]; ok {
			want = w
		}
	}
	return "unexpected " + got + ", expected " + want
}
