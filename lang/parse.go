package lang

import (
	"errors"
	"strconv"
	"strings"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// Keywords cannot be used as names.
var keywords = map[string]bool{
	"import": true, "mask": true, "score": true, "block": true, "model": true,
	"config": true, "input": true, "let": true, "repeat": true, "in": true,
	"return": true, "loss": true, "metric": true, "output": true, "train": true,
	"if": true, "then": true, "else": true, "true": true, "false": true,
}

// Parse parses one .attn file. It returns the AST (nil only when the file
// could not be parsed at all) and every problem found. A syntax error
// stops the parse, so there is at most one syntax diagnostic; so does
// nesting deeper than Limits.Nesting, which the parser could not survive.
func Parse(filename, src string) (*File, Diagnostics) {
	src = stripBOM(src)
	if d := checkNesting(filename, src, DefaultLimits().Nesting); d != nil {
		return nil, Diagnostics{*d}
	}
	g, err := parser.ParseString(filename, src)
	if err != nil {
		var pe participle.Error
		pos := lexer.Position{Filename: filename, Line: 1, Column: 1}
		msg := err.Error()
		if errors.As(err, &pe) {
			pos = pe.Position()
			msg = pe.Message()
		}
		if pos.Filename == "" {
			pos.Filename = filename
		}
		d := syntaxError(filename, src, pos, msg)
		if d.Pos.Filename == "" {
			d.Pos.Filename = filename
		}
		return nil, Diagnostics{d}
	}
	c := &converter{}
	f := c.file(g)
	f.Name = filename
	c.diags.list.Sort()
	return f, c.diags.list
}

// byteOrderMark is U+FEFF in UTF-8.
const byteOrderMark = "\uFEFF"

// stripBOM drops a byte order mark at the start of src. Some editors
// (Notepad, on Windows) start a UTF-8 file with one; like Go, attnc skips
// it and counts positions from after it, where the editor, which hides
// it, shows the text to start. Elsewhere in a file it is an error.
func stripBOM(src string) string { return strings.TrimPrefix(src, byteOrderMark) }

// converter turns the parse tree into the AST, checking what the grammar
// cannot say (names are not keywords, numbers fit).
type converter struct{ diags diagSink }

func span(p gPos) Span { return Span{Pos: p.Pos, EndPos: p.EndPos} }

func (c *converter) file(g *gFile) *File {
	f := &File{Span: span(g.gPos)}
	for _, d := range g.Decls {
		if d := c.decl(d); d != nil {
			f.Decls = append(f.Decls, d)
		}
	}
	return f
}

func (c *converter) name(g gName) *Ident {
	id := &Ident{Span: span(g.gPos), Name: g.Name}
	if keywords[g.Name] {
		c.diags.errorf(id, "%q is a keyword and cannot be used as a name", g.Name)
	}
	return id
}

// label converts a name that is not a binding (an argument name, a key
// of config or train): keywords are fine there (attend(..., mask: m)).
func label(g gName) *Ident { return &Ident{Span: span(g.gPos), Name: g.Name} }

func (c *converter) str(g gString) *StringLit {
	v, err := strconv.Unquote(g.Value)
	s := &StringLit{Span: span(g.gPos), Value: v}
	if err != nil {
		c.diags.errorf(s, "malformed string %s", g.Value)
	}
	return s
}

func (c *converter) decl(d gDecl) Decl {
	switch d := d.(type) {
	case *gImport:
		return &Import{Span: span(d.gPos), Path: c.str(d.Path)}
	case *gFuncDef:
		return &FuncDef{Span: span(d.gPos), Kind: d.Kind, Name: c.name(d.Name), Params: c.params(d.Params), Body: c.expr(d.Body)}
	case *gBlockDef:
		b := &BlockDef{Span: span(d.gPos), Name: c.name(d.Name), Params: c.params(d.Params), Body: c.stmts(d.Body)}
		if d.Result != nil {
			b.Result = c.typ(d.Result)
		}
		return b
	case *gModelDef:
		return &ModelDef{Span: span(d.gPos), Name: c.name(d.Name), Body: c.stmts(d.Body)}
	}
	return nil
}

func (c *converter) params(gs []*gParam) []*Param {
	var out []*Param
	for _, g := range gs {
		p := &Param{Span: span(g.gPos), Name: c.name(g.Name)}
		if g.Type != nil {
			p.Type = c.typ(g.Type)
		}
		if g.Default != nil {
			p.Default = c.expr(g.Default)
		}
		out = append(out, p)
	}
	return out
}

func (c *converter) typ(g *gType) *TypeExpr {
	t := &TypeExpr{Span: span(g.gPos), Shaped: g.Shaped}
	if g.Name != nil {
		t.Name = &Ident{Span: span(g.Name.gPos), Name: g.Name.Name}
	}
	for _, d := range g.Dims {
		t.Dims = append(t.Dims, c.expr(d))
	}
	if t.Name == nil && !t.Shaped {
		c.diags.errorf(t, "missing type")
	}
	return t
}

func (c *converter) stmts(gs []gStmt) []Stmt {
	var out []Stmt
	for _, g := range gs {
		if s := c.stmt(g); s != nil {
			out = append(out, s)
		}
	}
	return out
}

func (c *converter) kvs(gs []*gKeyValue) []*KeyValue {
	var out []*KeyValue
	for _, g := range gs {
		out = append(out, &KeyValue{Span: span(g.gPos), Key: label(g.Key), Value: c.expr(g.Value)})
	}
	return out
}

func (c *converter) stmt(g gStmt) Stmt {
	switch g := g.(type) {
	case *gLet:
		st := &LetStmt{Span: span(g.gPos), Name: c.name(g.Name), Value: c.expr(g.Value)}
		for _, n := range g.More {
			st.More = append(st.More, c.name(n))
		}
		return st
	case *gAssign:
		return &AssignStmt{Span: span(g.gPos), Name: c.name(g.Name), Value: c.expr(g.Value)}
	case *gRepeat:
		return &RepeatStmt{Span: span(g.gPos), Var: c.name(g.Var), From: c.expr(g.From), To: c.expr(g.To), Body: c.stmts(g.Body)}
	case *gReturn:
		st := &ReturnStmt{Span: span(g.gPos), Value: c.expr(g.Value)}
		for _, x := range g.More {
			st.More = append(st.More, c.expr(x))
		}
		return st
	case *gLoss:
		return &LossStmt{Span: span(g.gPos), Value: c.expr(g.Value)}
	case *gMetric:
		return &MetricStmt{Span: span(g.gPos), Kind: g.Kind, Name: c.name(g.Name), Value: c.expr(g.Value)}
	case *gConfig:
		return &ConfigStmt{Span: span(g.gPos), Items: c.kvs(g.Items)}
	case *gInput:
		return &InputStmt{Span: span(g.gPos), Name: c.name(g.Name), Type: c.typ(&g.Type)}
	case *gTrain:
		return &TrainStmt{Span: span(g.gPos), Items: c.kvs(g.Items)}
	}
	return nil
}

func (c *converter) expr(g *gExpr) Expr {
	if g.If != nil {
		return &IfExpr{Span: span(g.If.gPos), Cond: c.expr(g.If.Cond), Then: c.expr(g.If.Then), Else: c.expr(g.If.Else)}
	}
	return c.or(g.Or)
}

func binary(op string, x, y Expr) Expr {
	return &BinaryExpr{Span: Span{Pos: x.Start(), EndPos: y.End()}, Op: op, X: x, Y: y}
}

func (c *converter) or(g *gOr) Expr {
	x := c.and(g.X)
	for _, t := range g.Rest {
		x = binary(t.Op, x, c.and(t.Y))
	}
	return x
}

func (c *converter) and(g *gAnd) Expr {
	x := c.cmp(g.X)
	for _, t := range g.Rest {
		x = binary(t.Op, x, c.cmp(t.Y))
	}
	return x
}

func (c *converter) cmp(g *gCmp) Expr {
	x := c.add(g.X)
	if g.Op != "" {
		x = binary(g.Op, x, c.add(g.Y))
	}
	return x
}

func (c *converter) add(g *gAdd) Expr {
	x := c.mul(g.X)
	for _, t := range g.Rest {
		x = binary(t.Op, x, c.mul(t.Y))
	}
	return x
}

func (c *converter) mul(g *gMul) Expr {
	x := c.unary(g.X)
	for _, t := range g.Rest {
		x = binary(t.Op, x, c.unary(t.Y))
	}
	return x
}

func (c *converter) unary(g *gUnary) Expr {
	if g.Postfix != nil {
		return c.postfix(g.Postfix)
	}
	return &UnaryExpr{Span: span(g.gPos), Op: g.Op, X: c.unary(g.Operand)}
}

func (c *converter) postfix(g *gPostfix) Expr {
	x := c.primary(g.X)
	for _, s := range g.Suffixes {
		sp := Span{Pos: x.Start(), EndPos: s.EndPos}
		if s.Call {
			call := &CallExpr{Span: sp, Fn: x}
			named := false
			for _, a := range s.Args {
				arg := &Arg{Span: span(a.gPos), Value: c.expr(a.Value)}
				if a.Name != nil {
					arg.Name = label(*a.Name)
					named = true
				} else if named {
					c.diags.errorf(arg, "positional argument after a named one")
				}
				call.Args = append(call.Args, arg)
			}
			x = call
			continue
		}
		ix := &IndexExpr{Span: sp, X: x}
		for _, it := range s.Items {
			item := &IndexItem{Span: span(it.gPos), Slice: it.Slice}
			if it.Lo != nil {
				item.Lo = c.expr(it.Lo)
			}
			if it.Hi != nil {
				item.Hi = c.expr(it.Hi)
			}
			if item.Lo == nil && !item.Slice {
				c.diags.errorf(item, "empty subscript")
			}
			ix.Items = append(ix.Items, item)
		}
		x = ix
	}
	return x
}

func (c *converter) primary(g *gPrimary) Expr {
	sp := span(g.gPos)
	switch {
	case g.Float != nil:
		v, err := strconv.ParseFloat(*g.Float, 64)
		lit := &FloatLit{Span: sp, Value: v, Text: *g.Float}
		if err != nil {
			c.diags.errorf(lit, "number %s is out of range", *g.Float)
		}
		return lit
	case g.Int != nil:
		v, err := strconv.ParseInt(*g.Int, 10, 64)
		lit := &IntLit{Span: sp, Value: v}
		if err != nil {
			c.diags.errorf(lit, "integer %s is out of range", *g.Int)
		}
		return lit
	case g.String != nil:
		return c.str(*g.String)
	case g.Bool != nil:
		return &BoolLit{Span: sp, Value: *g.Bool == "true"}
	case g.Name != nil:
		return c.name(*g.Name)
	case g.Paren != nil:
		return &ParenExpr{Span: sp, X: c.expr(g.Paren)}
	}
	c.diags.errorf(&Ident{Span: sp}, "missing expression")
	return &Ident{Span: sp, Name: "_"}
}
