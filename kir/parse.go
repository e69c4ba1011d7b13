package kir

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/attnc/attnc/ir"
)

// Parse reads a module in the text form Print writes. It accepts any
// spacing and line breaks between tokens and "//" comments to the end of
// a line. It resolves every %name and %ID (an operand must be defined
// earlier in the text) but does not run Verify. An error is
// "file:line:col: message".
func Parse(filename, src string) (m *Module, err error) {
	p := &parser{file: filename, src: src, line: 1, col: 1}
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(parseError)
			if !ok {
				panic(r)
			}
			m, err = nil, pe
		}
	}()
	return p.module(), nil
}

type parseError struct{ msg string }

func (e parseError) Error() string { return e.msg }

type parser struct {
	file      string
	src       string
	pos       int
	line, col int
	values    map[string]*Value // the current kernel's values by reference
}

func (p *parser) failf(format string, a ...any) {
	panic(parseError{fmt.Sprintf("%s:%d:%d: %s", p.file, p.line, p.col, fmt.Sprintf(format, a...))})
}

func (p *parser) advance(n int) {
	for _, r := range p.src[p.pos : p.pos+n] {
		if r == '\n' {
			p.line, p.col = p.line+1, 1
		} else {
			p.col++
		}
	}
	p.pos += n
}

// skip passes spaces, line breaks and comments.
func (p *parser) skip() {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.advance(1)
		case strings.HasPrefix(p.src[p.pos:], "//"):
			end := strings.IndexByte(p.src[p.pos:], '\n')
			if end < 0 {
				end = len(p.src) - p.pos
			}
			p.advance(end)
		default:
			return
		}
	}
}

func (p *parser) peek(s string) bool {
	p.skip()
	return strings.HasPrefix(p.src[p.pos:], s)
}

func (p *parser) accept(s string) bool {
	if p.peek(s) {
		p.advance(len(s))
		return true
	}
	return false
}

func (p *parser) expect(s string) {
	if !p.accept(s) {
		p.failf("want %q, got %s", s, p.next())
	}
}

// next describes what comes next, for messages.
func (p *parser) next() string {
	p.skip()
	if p.pos >= len(p.src) {
		return "the end of the text"
	}
	end := p.pos + 1
	for end < len(p.src) && end-p.pos < 12 && isWordByte(p.src[end]) && isWordByte(p.src[p.pos]) {
		end++
	}
	return strconv.Quote(p.src[p.pos:end])
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (p *parser) ident() string {
	p.skip()
	start, line, col := p.pos, p.line, p.col
	for p.pos < len(p.src) && isWordByte(p.src[p.pos]) {
		p.advance(1)
	}
	s := p.src[start:p.pos]
	if !isIdent(s) {
		p.pos, p.line, p.col = start, line, col
		p.failf("want a name, got %s", p.next())
	}
	return s
}

// keyword accepts the word w when it stands alone (not a prefix).
func (p *parser) keyword(w string) bool {
	if !p.peek(w) {
		return false
	}
	if end := p.pos + len(w); end < len(p.src) && isWordByte(p.src[end]) {
		return false
	}
	p.advance(len(w))
	return true
}

// balanced returns the text up to (not including) the first of stops at
// bracket depth 0, which it leaves unread.
func (p *parser) balanced(stops string) string {
	p.skip()
	start, depth := p.pos, 0
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if depth == 0 && strings.IndexByte(stops, c) >= 0 {
			break
		}
		switch c {
		case '(', '[':
			depth++
		case ')', ']':
			depth--
		}
		p.advance(1)
	}
	return strings.TrimSpace(p.src[start:p.pos])
}

// quoted reads a Go-quoted string.
func (p *parser) quoted() string {
	p.skip()
	if p.pos >= len(p.src) || p.src[p.pos] != '"' {
		p.failf("want a quoted string, got %s", p.next())
	}
	end := p.pos + 1
	for end < len(p.src) && p.src[end] != '"' && p.src[end] != '\n' {
		if p.src[end] == '\\' {
			end++
		}
		end++
	}
	if end >= len(p.src) || p.src[end] != '"' {
		p.failf("a string without its closing quote")
	}
	s, err := strconv.Unquote(p.src[p.pos : end+1])
	if err != nil {
		p.failf("bad string %s: %v", p.src[p.pos:end+1], err)
	}
	p.advance(end + 1 - p.pos)
	return s
}

func (p *parser) integer() int {
	p.skip()
	start := p.pos
	if p.pos < len(p.src) && p.src[p.pos] == '-' {
		p.advance(1)
	}
	for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
		p.advance(1)
	}
	v, err := strconv.Atoi(p.src[start:p.pos])
	if err != nil {
		p.failf("want an integer, got %s", strconv.Quote(p.src[start:p.pos]))
	}
	return v
}

func (p *parser) float() float64 {
	p.skip()
	for _, w := range []struct {
		s string
		v float64
	}{{"-inf", math.Inf(-1)}, {"inf", math.Inf(1)}, {"nan", math.NaN()}} {
		if p.keyword(w.s) {
			return w.v
		}
	}
	start := p.pos
	for p.pos < len(p.src) && strings.IndexByte("+-.0123456789eE", p.src[p.pos]) >= 0 {
		p.advance(1)
	}
	v, err := strconv.ParseFloat(p.src[start:p.pos], 64)
	if err != nil {
		p.failf("want a number, got %s", strconv.Quote(p.src[start:p.pos]))
	}
	return v
}

func (p *parser) module() *Module {
	if !p.keyword("kir") {
		p.failf("want \"kir\" and the module's name, got %s", p.next())
	}
	m := &Module{Name: p.ident()}
	p.expect("(")
	for !p.accept(")") {
		if len(m.Syms) > 0 {
			p.expect(",")
		}
		m.Syms = append(m.Syms, p.ident())
	}
	for {
		p.skip()
		if p.pos >= len(p.src) {
			return m
		}
		if !p.keyword("kernel") {
			p.failf("want \"kernel\", got %s", p.next())
		}
		m.Kernels = append(m.Kernels, p.kernel())
	}
}

func (p *parser) kernel() *Kernel {
	k := &Kernel{Name: p.ident()}
	p.values = map[string]*Value{}
	p.expect("(")
	for !p.accept(")") {
		if len(k.Params) > 0 {
			p.expect(",")
		}
		name := p.ident()
		p.expect(":")
		v := &Value{ID: -1, Name: name, Type: p.bufferType()}
		if p.values[name] != nil {
			p.failf("param %s declared twice", name)
		}
		p.values[name] = v
		k.Params = append(k.Params, v)
	}
	if !p.keyword("grid") {
		p.failf("want \"grid\", got %s", p.next())
	}
	p.expect("[")
	for !p.accept("]") {
		if len(k.Grid) > 0 {
			p.expect(",")
		}
		src := p.balanced(",]")
		e, err := ir.ParseExpr(src)
		if err != nil {
			p.failf("grid extent %q: %v", src, err)
		}
		k.Grid = append(k.Grid, e)
	}
	k.Body = p.block(nil)
	return k
}

func (p *parser) dtype() ir.DType {
	name := p.ident()
	dt, ok := ir.ParseDType(name)
	if !ok || dt == ir.InvalidDType {
		p.failf("unknown dtype %s", name)
	}
	return dt
}

func (p *parser) bufferType() Type {
	dt := p.dtype()
	t := Type{Kind: KBuffer, DType: dt, Dims: ir.Shape{}}
	p.expect("[")
	for !p.accept("]") {
		if len(t.Dims) > 0 {
			p.expect(",")
		}
		src := p.balanced(",]")
		d, err := ir.ParseDim(src)
		if err != nil {
			p.failf("dim %q: %v", src, err)
		}
		t.Dims = append(t.Dims, d)
	}
	return t
}

// valueType reads index or a tile type.
func (p *parser) valueType() Type {
	if p.keyword("index") {
		return Index
	}
	t := Type{Kind: KTile, DType: p.dtype(), Shape: []int{}}
	p.expect("[")
	for !p.accept("]") {
		if len(t.Shape) > 0 {
			p.expect(",")
		}
		n := p.integer()
		if n < 0 {
			p.failf("a tile dimension of %d", n)
		}
		t.Shape = append(t.Shape, n)
	}
	return t
}

func (p *parser) typeList() []Type {
	p.expect("(")
	var ts []Type
	for !p.accept(")") {
		if len(ts) > 0 {
			p.expect(",")
		}
		ts = append(ts, p.valueType())
	}
	return ts
}

// ref reads %name or %ID and returns the value it names.
func (p *parser) ref() *Value {
	p.expect("%")
	start := p.pos
	for p.pos < len(p.src) && isWordByte(p.src[p.pos]) {
		p.advance(1)
	}
	name := p.src[start:p.pos]
	v := p.values[name]
	if v == nil {
		p.failf("%%%s is not defined", name)
	}
	return v
}

// newValue reads %ID, a value being defined.
func (p *parser) newValue() *Value {
	p.expect("%")
	start := p.pos
	for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
		p.advance(1)
	}
	name := p.src[start:p.pos]
	id, err := strconv.Atoi(name)
	if err != nil {
		p.failf("a defined value is %%N, not %s", p.next())
	}
	if p.values[name] != nil {
		p.failf("%%%s is defined twice", name)
	}
	v := &Value{ID: id}
	p.values[name] = v
	return v
}

// block reads { instructions } with args as its arguments.
func (p *parser) block(args []*Value) *Block {
	p.expect("{")
	b := &Block{Args: args}
	for !p.accept("}") {
		b.Instrs = append(b.Instrs, p.instr())
	}
	return b
}

func (p *parser) instr() *Instr {
	var results []*Value
	if p.peek("%") {
		for {
			results = append(results, p.newValue())
			if !p.accept(",") {
				break
			}
		}
		p.expect("=")
	}
	p.skip()
	line, col := p.line, p.col
	name := p.ident()
	op, elem, ok := OpByName(name)
	if !ok {
		p.line, p.col = line, col
		p.failf("unknown op %s", name)
	}
	in := &Instr{Op: op, Elem: elem, Results: results}
	for _, r := range results {
		r.Def = in
	}
	switch op {
	case OpFor:
		p.forHead(in)
		return in
	case OpIf:
		in.Args = []*Value{p.ref()}
		p.resultTypes(in, true)
		in.Regions = append(in.Regions, p.block(nil))
		if !p.keyword("else") {
			p.failf("want \"else\", got %s", p.next())
		}
		in.Regions = append(in.Regions, p.block(nil))
		return in
	}
	if p.peek("%") {
		for {
			in.Args = append(in.Args, p.ref())
			if !p.accept(",") {
				break
			}
		}
	}
	if p.accept("{") {
		in.Attrs = ir.Attrs{}
		for !p.accept("}") {
			if len(in.Attrs) > 0 {
				p.expect(",")
			}
			name := p.ident()
			p.expect("=")
			in.Attrs[name] = p.attrValue(op.Info(), name)
		}
	}
	p.resultTypes(in, false)
	return in
}

// resultTypes reads ": T" or ": (T, …)" into the results' types; a list
// is required when list is set (for and if) or there are several.
func (p *parser) resultTypes(in *Instr, list bool) {
	if len(in.Results) == 0 {
		return
	}
	p.expect(":")
	var ts []Type
	if list || len(in.Results) > 1 {
		ts = p.typeList()
	} else {
		ts = []Type{p.valueType()}
	}
	if len(ts) != len(in.Results) {
		p.failf("%d types for %d results", len(ts), len(in.Results))
	}
	for i, t := range ts {
		in.Results[i].Type = t
	}
}

// forHead reads the rest of "for %i = %lo to %hi step %s iter(…) : (…)
// { … }".
func (p *parser) forHead(in *Instr) {
	counter := p.newValue()
	counter.Type = Index
	p.expect("=")
	lo := p.ref()
	if !p.keyword("to") {
		p.failf("want \"to\", got %s", p.next())
	}
	hi := p.ref()
	if !p.keyword("step") {
		p.failf("want \"step\", got %s", p.next())
	}
	step := p.ref()
	in.Args = []*Value{lo, hi, step}
	args := []*Value{counter}
	if p.keyword("iter") {
		p.expect("(")
		for !p.accept(")") {
			if len(args) > 1 {
				p.expect(",")
			}
			a := p.newValue()
			p.expect("=")
			init := p.ref()
			a.Type = init.Type
			args = append(args, a)
			in.Args = append(in.Args, init)
		}
	}
	p.resultTypes(in, true)
	in.Regions = []*Block{p.block(args)}
}

func (p *parser) attrValue(info *OpInfo, name string) ir.Attr {
	kind := ir.AttrKind(0)
	for _, s := range info.Attrs {
		if s.Name == name {
			kind = s.Kind
		}
	}
	switch kind {
	case ir.AttrInt:
		return ir.IntAttr(int64(p.integer()))
	case ir.AttrFloat:
		return ir.FloatAttr(p.float())
	case ir.AttrInts:
		p.expect("[")
		var v []int64
		for !p.accept("]") {
			if len(v) > 0 {
				p.expect(",")
			}
			v = append(v, int64(p.integer()))
		}
		return ir.IntsAttr(v...)
	case ir.AttrWord:
		return ir.WordAttr(p.ident())
	case ir.AttrString:
		return ir.StringAttr(p.quoted())
	}
	p.failf("%s has no attribute %s", info.Name, name)
	return ir.Attr{}
}
