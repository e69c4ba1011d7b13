package ir

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Parse reads a module in the text form Print writes (see print.go). It
// also accepts text that is not canonical: any spacing and line breaks
// between tokens, "//" comments to the end of a line, operands that are
// defined later in the module (Verify reports the use before definition),
// outputs between instructions, a leading "+" on a dimension or integers
// where a float is expected.
//
// Parse resolves every %ID but does not run Verify: a module that parses
// may still be ill-typed. On failure the error is a ParseErrors listing up
// to ten problems, each as "file:line:col: message".
func Parse(filename, src string) (*Module, error) {
	p := newParser(filename, src, false)
	m := p.parseModule()
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return m, nil
}

// ParseExpr reads an index expression in the syntax Expr.String prints:
// q - k < 128 && k <= q, s + $0[h, clamp(q - k, 0, 255)]. Unary minus
// applied directly to a number literal folds into the literal, so "-3" is
// the literal -3 (as Expr.String prints it) and "-(3)" is the negation of 3.
// The expression is not checked; call Expr.Check before evaluating it.
func ParseExpr(src string) (*Expr, error) {
	p := newParser("", src, true)
	var e *Expr
	p.parseAll(func() { e, _ = p.parseExpr(1) })
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return e, nil
}

// ParseDim reads a dimension in the form Dim.String prints: 128, N,
// S+T-1, 2*N, -2*N+3. The result is in canonical form (terms sorted by
// symbol, like terms combined, zero coefficients dropped).
func ParseDim(src string) (Dim, error) {
	p := newParser("", src, false)
	var d Dim
	p.parseAll(func() { d = p.parseDim() })
	if len(p.errs) > 0 {
		return Dim{}, p.errs
	}
	return d, nil
}

// ParseType reads a type in the form Type.String prints: f32[B, N, 128],
// i32[], bool[B, S+T], (f32[B, N], f32[B]).
func ParseType(src string) (Type, error) {
	p := newParser("", src, false)
	var t Type
	p.parseAll(func() { t = p.parseType() })
	if len(p.errs) > 0 {
		return Type{}, p.errs
	}
	return t, nil
}

// A ParseError is one problem in IR text, at a 1-based line and byte
// column.
type ParseError struct {
	Filename  string
	Line, Col int
	Msg       string
}

func (e *ParseError) Error() string {
	if e.Filename == "" {
		return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.Filename, e.Line, e.Col, e.Msg)
}

// ParseErrors lists the problems Parse found, in the order of the text.
type ParseErrors []*ParseError

func (l ParseErrors) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the individual errors.
func (l ParseErrors) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

const (
	maxParseErrors = 10
	// maxExprDepth bounds the height of a parsed expression tree, so that
	// the recursive walks over it (String, Check, Bounds) stay shallow
	// whatever the input.
	maxExprDepth = 200
)

// Tokens.

type tokKind uint8

const (
	tEOF     tokKind = iota
	tIdent           // name
	tInt             // 123
	tFloat           // 1.5, 1e-05
	tString          // "a\tb", text holds the quoted form
	tValue           // %12, text holds the digits
	tCapture         // $0, text holds the digits
	tPunct           // ( ) { } [ ] , = : + - * / % ! < <= > >= == != && ||
	tIllegal         // text holds the error message
)

type pos struct{ line, col int }

type token struct {
	kind tokKind
	text string
	pos  pos
}

func (t token) is(punct string) bool { return t.kind == tPunct && t.text == punct }

func (t token) isIdent(name string) bool { return t.kind == tIdent && t.text == name }

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tValue:
		return "%" + t.text
	case tCapture:
		return "$" + t.text
	case tString:
		return t.text
	case tIllegal:
		return "invalid input"
	}
	return strconv.Quote(t.text)
}

// A scanner splits IR text into tokens. In expression mode '%' is the
// modulo operator and '$' starts a capture; otherwise '%' starts a value
// reference.
type scanner struct {
	src       string
	off       int
	line      int
	lineStart int
	exprMode  bool
}

func isLetter(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

func (s *scanner) skipSpace() {
	for s.off < len(s.src) {
		c := s.src[s.off]
		switch {
		case c == '\n':
			s.off++
			s.line++
			s.lineStart = s.off
		case c == ' ' || c == '\t' || c == '\r':
			s.off++
		case c == '/' && s.off+1 < len(s.src) && s.src[s.off+1] == '/':
			for s.off < len(s.src) && s.src[s.off] != '\n' {
				s.off++
			}
		default:
			return
		}
	}
}

func (s *scanner) digits() {
	for s.off < len(s.src) && isDigit(s.src[s.off]) {
		s.off++
	}
}

func (s *scanner) next() token {
	s.skipSpace()
	start := s.off
	t := token{pos: pos{s.line, start - s.lineStart + 1}}
	if s.off >= len(s.src) {
		t.kind = tEOF
		return t
	}
	c := s.src[s.off]
	switch {
	case isLetter(c):
		for s.off < len(s.src) && (isLetter(s.src[s.off]) || isDigit(s.src[s.off])) {
			s.off++
		}
		t.kind, t.text = tIdent, s.src[start:s.off]
	case isDigit(c):
		t.kind = tInt
		s.digits()
		if s.off < len(s.src) && s.src[s.off] == '.' {
			t.kind = tFloat
			s.off++
			s.digits()
		}
		if s.off < len(s.src) && (s.src[s.off] == 'e' || s.src[s.off] == 'E') {
			j := s.off + 1
			if j < len(s.src) && (s.src[j] == '+' || s.src[j] == '-') {
				j++
			}
			if j < len(s.src) && isDigit(s.src[j]) {
				t.kind = tFloat
				s.off = j
				s.digits()
			}
		}
		t.text = s.src[start:s.off]
	case c == '"':
		s.off++
		for {
			if s.off >= len(s.src) || s.src[s.off] == '\n' {
				return token{kind: tIllegal, text: "string literal not terminated", pos: t.pos}
			}
			ch := s.src[s.off]
			s.off++
			if ch == '\\' && s.off < len(s.src) && s.src[s.off] != '\n' {
				s.off++
			} else if ch == '"' {
				break
			}
		}
		t.kind, t.text = tString, s.src[start:s.off]
	case c == '%' && !s.exprMode || c == '$' && s.exprMode:
		s.off++
		s.digits()
		if s.off == start+1 {
			return token{kind: tIllegal, text: fmt.Sprintf("%c must be followed by a number", c), pos: t.pos}
		}
		t.kind, t.text = tValue, s.src[start+1:s.off]
		if c == '$' {
			t.kind = tCapture
		}
	default:
		if s.off+1 < len(s.src) {
			switch two := s.src[s.off : s.off+2]; two {
			case "<=", ">=", "==", "!=", "&&", "||":
				s.off += 2
				t.kind, t.text = tPunct, two
				return t
			}
		}
		if strings.IndexByte("(){}[],=:+-*/%!<>", c) < 0 {
			s.off++
			return token{kind: tIllegal, text: fmt.Sprintf("unexpected character %q", rune(c)), pos: t.pos}
		}
		s.off++
		t.kind, t.text = tPunct, string(c)
	}
	return t
}

// The parser: recursive descent with one token of lookahead. An error
// records a ParseError and unwinds to the enclosing statement with a
// bailout panic, which the statement loop recovers from by skipping to the
// next line that starts a statement; Parse never lets a panic escape.

type parser struct {
	filename string
	sc       scanner
	tok      token
	errs     ParseErrors
	nest     int // nesting of expressions being parsed
	bodies   int // nesting of op bodies being parsed
}

type bailout struct{}

func newParser(filename, src string, exprMode bool) *parser {
	p := &parser{filename: filename, sc: scanner{src: src, line: 1, exprMode: exprMode}}
	p.advance()
	return p
}

func (p *parser) advance() { p.tok = p.sc.next() }

// errorAt records an error and unwinds to the nearest recovery point.
func (p *parser) errorAt(at pos, format string, args ...any) {
	p.errs = append(p.errs, &ParseError{Filename: p.filename, Line: at.line, Col: at.col, Msg: fmt.Sprintf(format, args...)})
	panic(bailout{})
}

// fail reports that the current token is not what was wanted.
func (p *parser) fail(want string) {
	if p.tok.kind == tIllegal {
		p.errorAt(p.tok.pos, "%s", p.tok.text)
	}
	p.errorAt(p.tok.pos, "expected %s, found %s", want, p.tok)
}

func (p *parser) expect(punct string) pos {
	if !p.tok.is(punct) {
		p.fail(strconv.Quote(punct))
	}
	at := p.tok.pos
	p.advance()
	return at
}

func (p *parser) ident(want string) token {
	if p.tok.kind != tIdent {
		p.fail(want)
	}
	t := p.tok
	p.advance()
	return t
}

// recovering runs fn, turning a bailout into a return of false.
func (p *parser) recovering(fn func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, isBail := r.(bailout); !isBail {
				panic(r)
			}
			ok = false
		}
	}()
	fn()
	return true
}

// parseAll runs fn on the whole input and checks that nothing follows.
func (p *parser) parseAll(fn func()) {
	p.recovering(func() {
		fn()
		if p.tok.kind != tEOF {
			p.fail("end of input")
		}
	})
}

// ref is an operand or output naming a value, resolved when the whole
// module has been read.
type ref struct {
	id  int
	pos pos
}

type pendingInstr struct {
	in   *Instr
	args []ref
}

type pendingOutput struct {
	out Output
	ref ref
}

func (p *parser) parseModule() *Module {
	m := &Module{}
	var instrs []pendingInstr
	var outputs []pendingOutput
	defs := map[int]pos{}
	header := p.recovering(func() {
		if !p.tok.isIdent("module") {
			p.fail(`"module"`)
		}
		p.advance()
		switch p.tok.kind {
		case tIdent:
			m.Name = p.tok.text
		case tString:
			m.Name = p.unquote(p.tok)
		default:
			p.fail("module name")
		}
		p.advance()
		p.expect("(")
		seen := map[string]bool{}
		for !p.tok.is(")") {
			if len(m.Syms) > 0 {
				p.expect(",")
			}
			t := p.ident("symbol name")
			if seen[t.text] {
				p.errorAt(t.pos, "symbol %s declared twice", t.text)
			}
			seen[t.text] = true
			m.Syms = append(m.Syms, t.text)
		}
		p.advance()
		p.expect("{")
	})
	if !header {
		return nil
	}
	for len(p.errs) < maxParseErrors {
		if p.tok.is("}") || p.tok.kind == tEOF {
			break
		}
		start := p.tok
		ok := p.recovering(func() {
			switch {
			case p.tok.kind == tValue:
				pi := p.parseInstr()
				if prev, dup := defs[pi.in.ID]; dup {
					p.errorAt(start.pos, "%%%d is already defined at %d:%d", pi.in.ID, prev.line, prev.col)
				}
				defs[pi.in.ID] = start.pos
				instrs = append(instrs, pi)
			case p.tok.isIdent("loss"), p.tok.isIdent("metric"), p.tok.isIdent("output"), p.tok.isIdent("grad"), p.tok.isIdent("update"):
				outputs = append(outputs, p.parseOutput())
			default:
				p.fail("an instruction (%N = ...) or an output (loss, metric, output, grad)")
			}
		})
		if !ok {
			p.sync(start.pos.line)
		}
	}
	if len(p.errs) < maxParseErrors {
		p.recovering(func() {
			p.expect("}")
			if p.tok.kind != tEOF {
				p.fail("end of input after the module")
			}
		})
	}
	// Resolve value references now that every definition is known.
	byID := map[int]*Instr{}
	for _, pi := range instrs {
		byID[pi.in.ID] = pi.in
	}
	resolve := func(r ref) *Instr {
		in, ok := byID[r.id]
		if !ok && len(p.errs) < maxParseErrors {
			p.recovering(func() { p.errorAt(r.pos, "%%%d is not defined", r.id) })
		}
		return in
	}
	for _, pi := range instrs {
		for _, r := range pi.args {
			pi.in.Args = append(pi.in.Args, resolve(r))
		}
		m.Instrs = append(m.Instrs, pi.in)
	}
	for _, po := range outputs {
		po.out.Value = resolve(po.ref)
		m.Outputs = append(m.Outputs, po.out)
	}
	SetBodySyms(m.Instrs, m.Syms)
	sort.SliceStable(p.errs, func(i, j int) bool {
		a, b := p.errs[i], p.errs[j]
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	return m
}

// sync skips past the statement that failed on line: to the first token
// on a later line that can start a statement, or the module's closing
// brace, or the end.
func (p *parser) sync(line int) {
	p.sc.exprMode = false
	for p.tok.kind != tEOF {
		if p.tok.pos.line > line && (p.tok.kind == tValue || p.tok.is("}") ||
			p.tok.isIdent("loss") || p.tok.isIdent("metric") || p.tok.isIdent("output") || p.tok.isIdent("grad") || p.tok.isIdent("update")) {
			return
		}
		p.advance()
	}
}

func (p *parser) parseRef() ref {
	if p.tok.kind != tValue {
		p.fail("a value (%N)")
	}
	r := ref{pos: p.tok.pos}
	id, err := strconv.ParseInt(p.tok.text, 10, 0)
	if err != nil {
		p.errorAt(p.tok.pos, "value number %s is out of range", p.tok.text)
	}
	r.id = int(id)
	p.advance()
	return r
}

func (p *parser) parseInstr() pendingInstr {
	def := p.parseRef()
	p.expect("=")
	name := p.ident("an op name")
	op, ok := OpByName(name.text)
	if !ok {
		p.errorAt(name.pos, "unknown op %q", name.text)
	}
	in := &Instr{ID: def.id, Op: op, Attrs: Attrs{}}
	pi := pendingInstr{in: in}
	if p.tok.kind == tValue {
		pi.args = append(pi.args, p.parseRef())
		for p.tok.is(",") {
			p.advance()
			pi.args = append(pi.args, p.parseRef())
		}
	}
	if p.tok.is("{") {
		p.advance()
		for !p.tok.is("}") {
			if len(in.Attrs) > 0 {
				p.expect(",")
			}
			p.parseAttr(in)
		}
		p.advance()
	}
	p.expect(":")
	in.Type = p.parseType()
	return pi
}

func (p *parser) parseAttr(in *Instr) {
	name := p.ident("an attribute name")
	var spec *AttrSpec
	for i, s := range in.Op.Info().Attrs {
		if s.Name == name.text {
			spec = &in.Op.Info().Attrs[i]
		}
	}
	if spec == nil {
		p.errorAt(name.pos, "%s has no attribute %s", in.Op, name.text)
	}
	if _, dup := in.Attrs[name.text]; dup {
		p.errorAt(name.pos, "attribute %s given twice", name.text)
	}
	p.expect("=")
	in.Attrs[name.text] = p.parseAttrValue(spec.Kind)
}

func (p *parser) parseAttrValue(kind AttrKind) Attr {
	switch kind {
	case AttrInt:
		return IntAttr(p.parseSignedInt())
	case AttrFloat:
		return FloatAttr(p.parseFloatValue())
	case AttrBool:
		t := p.ident("true or false")
		if t.text != "true" && t.text != "false" {
			p.errorAt(t.pos, "expected true or false, found %s", t)
		}
		return BoolAttr(t.text == "true")
	case AttrString:
		if p.tok.kind != tString {
			p.fail("a string")
		}
		s := p.unquote(p.tok)
		p.advance()
		return StringAttr(s)
	case AttrWord:
		return WordAttr(p.ident("a word").text)
	case AttrInts:
		p.expect("[")
		var vs []int64
		for !p.tok.is("]") {
			if len(vs) > 0 {
				p.expect(",")
			}
			vs = append(vs, p.parseSignedInt())
		}
		p.advance()
		return IntsAttr(vs...)
	case AttrDim:
		return DimAttr(p.parseDim())
	case AttrDType:
		return DTypeAttr(p.parseDType())
	case AttrModule:
		return ModuleAttr(p.parseBody())
	case AttrExpr:
		if !p.tok.is("(") {
			p.fail(`"(" to start an expression`)
		}
		// Switch the scanner before reading past "(", so the first token
		// of the expression is scanned in expression mode.
		p.sc.exprMode = true
		p.advance()
		e, _ := p.parseExpr(1)
		if !p.tok.is(")") {
			p.fail(`")" or an operator`)
		}
		p.sc.exprMode = false
		p.advance()
		return ExprAttr(e)
	}
	p.errorAt(p.tok.pos, "attribute of unknown kind %s", kind)
	return Attr{}
}

// parseBody reads an op's body module as bodyString prints it. Its
// references resolve among its own instructions; its symbols are set to
// the enclosing module's once that is read (SetBodySyms).
func (p *parser) parseBody() *Module {
	p.expect("{")
	p.bodies++
	defer func() { p.bodies-- }()
	if p.bodies > maxBodyNesting {
		p.errorAt(p.tok.pos, "bodies nested more than %d deep", maxBodyNesting)
	}
	body := &Module{}
	var instrs []pendingInstr
	var outputs []pendingOutput
	for !p.tok.is("}") {
		if len(instrs)+len(outputs) > 0 {
			p.expect(",")
		}
		if p.tok.kind == tValue {
			instrs = append(instrs, p.parseInstr())
		} else {
			outputs = append(outputs, p.parseOutput())
		}
	}
	p.advance()
	byID := map[int]*Instr{}
	for _, pi := range instrs {
		if _, dup := byID[pi.in.ID]; dup {
			p.errorAt(p.tok.pos, "%%%d is defined twice in a body", pi.in.ID)
		}
		byID[pi.in.ID] = pi.in
	}
	resolve := func(r ref) *Instr {
		in, ok := byID[r.id]
		if !ok {
			p.errorAt(r.pos, "%%%d is not defined in the body", r.id)
		}
		return in
	}
	for _, pi := range instrs {
		for _, r := range pi.args {
			pi.in.Args = append(pi.in.Args, resolve(r))
		}
		body.Instrs = append(body.Instrs, pi.in)
	}
	for _, po := range outputs {
		po.out.Value = resolve(po.ref)
		body.Outputs = append(body.Outputs, po.out)
	}
	return body
}

// maxBodyNesting bounds bodies within bodies, so a hostile text cannot
// exhaust the stack.
const maxBodyNesting = 16

// SetBodySyms gives every body in instrs (and in their bodies) the
// symbols syms.
func SetBodySyms(instrs []*Instr, syms []string) {
	for _, in := range instrs {
		for _, a := range in.Attrs {
			if a.Kind == AttrModule && a.Module != nil {
				a.Module.Syms = syms
				SetBodySyms(a.Module.Instrs, syms)
			}
		}
	}
}

func (p *parser) unquote(t token) string {
	s, err := strconv.Unquote(t.text)
	if err != nil {
		p.errorAt(t.pos, "invalid string literal %s", t.text)
	}
	return s
}

// parseSignedInt reads an integer with an optional leading minus.
func (p *parser) parseSignedInt() int64 {
	at := p.tok.pos
	sign := ""
	if p.tok.is("-") {
		sign = "-"
		p.advance()
	}
	if p.tok.kind != tInt {
		p.fail("an integer")
	}
	v, err := strconv.ParseInt(sign+p.tok.text, 10, 64)
	if err != nil {
		p.errorAt(at, "integer %s%s is out of range", sign, p.tok.text)
	}
	p.advance()
	return v
}

// parseFloatValue reads a float attribute: an optionally negated number
// (integers included), inf or nan.
func (p *parser) parseFloatValue() float64 {
	neg := false
	if p.tok.is("-") {
		neg = true
		p.advance()
	}
	v, ok := p.floatLiteral()
	if !ok {
		p.fail("a number")
	}
	if neg {
		v = -v
	}
	return v
}

// floatLiteral reads a number, inf or nan as a float, if the current
// token is one.
func (p *parser) floatLiteral() (float64, bool) {
	var v float64
	switch {
	case p.tok.isIdent("inf"):
		v = math.Inf(1)
	case p.tok.isIdent("nan"):
		v = math.NaN()
	case p.tok.kind == tInt || p.tok.kind == tFloat:
		var err error
		v, err = strconv.ParseFloat(p.tok.text, 64)
		if err != nil {
			p.errorAt(p.tok.pos, "number %s is out of range", p.tok.text)
		}
	default:
		return 0, false
	}
	p.advance()
	return v, true
}

func (p *parser) parseDType() DType {
	t := p.ident("a dtype (f32, i32, bool)")
	dt, ok := ParseDType(t.text)
	if !ok {
		p.errorAt(t.pos, "unknown dtype %s", t.text)
	}
	return dt
}

func (p *parser) parseType() Type {
	if p.tok.is("(") {
		// A tuple: (t1, t2, ...), its elements tensors.
		p.advance()
		t := Type{Tuple: []Type{}}
		for !p.tok.is(")") {
			if len(t.Tuple) > 0 {
				p.expect(",")
			}
			t.Tuple = append(t.Tuple, p.parseTensorType())
		}
		p.advance()
		return t
	}
	return p.parseTensorType()
}

func (p *parser) parseTensorType() Type {
	t := Type{DType: p.parseDType()}
	p.expect("[")
	for !p.tok.is("]") {
		if len(t.Shape) > 0 {
			p.expect(",")
		}
		t.Shape = append(t.Shape, p.parseDim())
	}
	p.advance()
	return t
}

// parseDim reads an affine dimension: terms (an integer, a symbol, or
// integer*symbol / symbol*integer) joined by + and -. Arithmetic that
// overflows int64 is an error, as is a coefficient of -2^63, which has no
// positive counterpart to print.
func (p *parser) parseDim() Dim {
	start := p.tok.pos
	var c int64
	coef := map[string]int64{}
	var order []string
	for first := true; ; first = false {
		neg := false
		switch {
		case p.tok.is("-"):
			neg = true
			p.advance()
		case p.tok.is("+"):
			p.advance()
		case !first:
			return p.finishDim(start, c, coef, order)
		}
		at := p.tok.pos
		var n int64 = 1
		sym := ""
		switch p.tok.kind {
		case tInt:
			n = p.dimInt(neg)
			if p.tok.is("*") {
				p.advance()
				sym = p.ident("a symbol").text
			}
		case tIdent:
			sym = p.tok.text
			p.advance()
			if p.tok.is("*") {
				p.advance()
				n = p.dimInt(neg)
			} else if neg {
				n = -1
			}
		default:
			p.fail("a dimension")
		}
		var ok bool
		if sym == "" {
			c, ok = addInt64(c, n)
		} else {
			if _, seen := coef[sym]; !seen {
				order = append(order, sym)
			}
			coef[sym], ok = addInt64(coef[sym], n)
		}
		if !ok {
			p.errorAt(at, "dimension overflows int64")
		}
	}
}

func (p *parser) dimInt(neg bool) int64 {
	if p.tok.kind != tInt {
		p.fail("an integer")
	}
	text := p.tok.text
	if neg {
		text = "-" + text
	}
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		p.errorAt(p.tok.pos, "integer %s is out of range", text)
	}
	p.advance()
	return v
}

func (p *parser) finishDim(start pos, c int64, coef map[string]int64, order []string) Dim {
	d := Dim{Const: c}
	sort.Strings(order)
	for _, s := range order {
		switch k := coef[s]; k {
		case 0:
		case math.MinInt64:
			p.errorAt(start, "coefficient of %s is out of range", s)
		default:
			d.Terms = append(d.Terms, Term{Sym: s, Coef: k})
		}
	}
	return d
}

func addInt64(a, b int64) (int64, bool) {
	s := a + b
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		return 0, false
	}
	return s, true
}

// Expressions.

var binaryBySym = func() map[string]ExprKind {
	m := map[string]ExprKind{}
	for k, o := range binaryExprOps {
		m[o.sym] = k
	}
	return m
}()

// parseExpr reads a binary expression whose operators bind at least as
// tightly as minPrec, returning it with its tree height.
func (p *parser) parseExpr(minPrec int) (*Expr, int) {
	x, h := p.parseUnary()
	for p.tok.kind == tPunct {
		k, ok := binaryBySym[p.tok.text]
		if !ok || binaryExprOps[k].prec < minPrec {
			break
		}
		at := p.tok.pos
		p.advance()
		y, hy := p.parseExpr(binaryExprOps[k].prec + 1)
		x, h = Bin(k, x, y), 1+max(h, hy)
		p.checkDepth(at, h)
	}
	return x, h
}

func (p *parser) checkDepth(at pos, h int) {
	if h > maxExprDepth {
		p.errorAt(at, "expression nested more than %d deep", maxExprDepth)
	}
}

func (p *parser) parseUnary() (*Expr, int) {
	at := p.tok.pos
	// Parentheses, calls and captures nest through here, so this bounds
	// the parser's own recursion as checkDepth bounds the tree's height.
	p.nest++
	defer func() { p.nest-- }()
	p.checkDepth(at, p.nest)
	switch {
	case p.tok.is("-"):
		p.advance()
		if p.tok.kind == tInt {
			// -3 is the literal -3: that is how Expr.String prints it.
			v, err := strconv.ParseInt("-"+p.tok.text, 10, 64)
			if err != nil {
				p.errorAt(at, "integer -%s is out of range", p.tok.text)
			}
			p.advance()
			return Int(v), 1
		}
		if v, ok := p.floatLiteral(); ok {
			return Float(-v), 1
		}
		x, h := p.parseUnary()
		p.checkDepth(at, h+1)
		return &Expr{Kind: ENeg, Args: []*Expr{x}}, h + 1
	case p.tok.is("!"):
		p.advance()
		x, h := p.parseUnary()
		p.checkDepth(at, h+1)
		return &Expr{Kind: ENot, Args: []*Expr{x}}, h + 1
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() (*Expr, int) {
	t := p.tok
	switch t.kind {
	case tInt:
		v, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			p.errorAt(t.pos, "integer %s is out of range", t.text)
		}
		p.advance()
		return Int(v), 1
	case tFloat:
		v, _ := p.floatLiteral()
		return Float(v), 1
	case tIdent:
		switch t.text {
		case "true", "false":
			p.advance()
			return &Expr{Kind: EBool, Int: b2i(t.text == "true")}, 1
		case "inf", "nan":
			v, _ := p.floatLiteral()
			return Float(v), 1
		}
		p.advance()
		if !p.tok.is("(") {
			return Var(t.text), 1
		}
		n, ok := ExprFuncs[t.text]
		if !ok {
			p.errorAt(t.pos, "unknown function %s", t.text)
		}
		args, h := p.parseExprList(")")
		if len(args) != n {
			p.errorAt(t.pos, "%s takes %d arguments, got %d", t.text, n, len(args))
		}
		p.checkDepth(t.pos, h+1)
		return Call(t.text, args...), h + 1
	case tCapture:
		i, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			p.errorAt(t.pos, "capture number %s is out of range", t.text)
		}
		p.advance()
		if !p.tok.is("[") {
			p.fail(`"[" after $` + t.text)
		}
		args, h := p.parseExprList("]")
		p.checkDepth(t.pos, h+1)
		return Capture(int(i), args...), h + 1
	case tPunct:
		if t.is("(") {
			p.advance()
			x, h := p.parseExpr(1)
			p.expect(")")
			return x, h
		}
	}
	p.fail("an expression")
	return nil, 0
}

// parseExprList reads "(" or "[" (the current token), a comma-separated
// list of expressions and the closing token, returning the list and the
// greatest height in it.
func (p *parser) parseExprList(closing string) ([]*Expr, int) {
	p.advance()
	var args []*Expr
	h := 0
	for !p.tok.is(closing) {
		if len(args) > 0 {
			if !p.tok.is(",") {
				p.fail(strconv.Quote(",") + " or " + strconv.Quote(closing))
			}
			p.advance()
		}
		a, ha := p.parseExpr(1)
		args = append(args, a)
		h = max(h, ha)
	}
	p.advance()
	return args, h
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (p *parser) parseOutput() pendingOutput {
	kw := p.ident("loss, metric, output or grad")
	var o pendingOutput
	switch kw.text {
	case "loss":
		o.out.Kind = OutLoss
		if p.tok.kind == tValue {
			o.out.Name = LossName
			o.ref = p.parseRef()
			return o
		}
	case "metric":
		o.out.Kind = OutMetric
	case "grad":
		o.out.Kind = OutGrad
	case "update":
		o.out.Kind = OutUpdate
	default:
		o.out.Kind = OutValue
	}
	if p.tok.kind != tString {
		p.fail("the output's name (a string)")
	}
	o.out.Name = p.unquote(p.tok)
	p.advance()
	p.expect("=")
	o.ref = p.parseRef()
	return o
}

// exprLiteralNames are the identifiers that index expressions read as
// literals; no variable or symbol may take these names.
var exprLiteralNames = []string{"true", "false", "inf", "nan"}
