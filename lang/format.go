package lang

import (
	"strconv"
	"strings"
)

// Format parses src and prints it in canonical form: two-space indents,
// one statement per line, single spaces around binary operators, at most
// one blank line in a row, short config and train sections on one line.
// Comments are kept: a comment on its own line stays before the
// declaration or statement that follows it, and a comment at the end of a
// line stays at the end of that line. A byte order mark at the start is
// dropped, as gofmt drops it.
func Format(filename, src string) (string, Diagnostics) {
	src = stripBOM(src)
	f, diags := Parse(filename, src)
	if f == nil {
		return "", diags
	}
	p := &printer{comments: comments(filename, src), src: strings.Split(src, "\n"), trail: map[int]int{}}
	p.file(f)
	return alignComments(p.sb.String(), p.trail), diags
}

// alignComments lines up the trailing comments of consecutive lines, as
// gofmt does. trail maps an output line to the byte offset where its
// trailing comment starts (comments may contain any byte, so the offset
// is recorded rather than marked in the text).
func alignComments(s string, trail map[int]int) string {
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); {
		if _, ok := trail[i]; !ok {
			i++
			continue
		}
		j, width := i, 0
		for ; j < len(lines); j++ {
			at, ok := trail[j]
			if !ok {
				break
			}
			width = max(width, len([]rune(lines[j][:at])))
		}
		for ; i < j; i++ {
			at := trail[i]
			code, text := lines[i][:at], lines[i][at:]
			lines[i] = code + strings.Repeat(" ", width-len([]rune(code))+2) + text
		}
	}
	return strings.Join(lines, "\n")
}

type comment struct {
	line, col int
	text      string
	own       bool // alone on its line
}

// comments re-lexes src for its comments, which the parser drops.
func comments(filename, src string) []comment {
	lex, err := attnLexer.LexString(filename, src)
	if err != nil {
		return nil
	}
	kind := attnLexer.Symbols()["Comment"]
	lines := strings.Split(src, "\n")
	var out []comment
	for {
		t, err := lex.Next()
		if err != nil || t.EOF() {
			break
		}
		if t.Type == kind {
			line := lines[t.Pos.Line-1]
			own := strings.TrimSpace(line[:min(t.Pos.Column-1, len(line))]) == ""
			out = append(out, comment{line: t.Pos.Line, col: t.Pos.Column, text: strings.TrimRight(t.Value, " \t\r"), own: own})
		}
	}
	return out
}

type printer struct {
	sb       strings.Builder
	comments []comment
	src      []string
	indent   int
	lastLine int         // source line of the last thing printed
	trail    map[int]int // output line → offset of its trailing comment
}

func (p *printer) line(s string) {
	p.sb.WriteString(strings.Repeat("  ", p.indent))
	p.sb.WriteString(s)
}

// leading prints the comments before source line l, keeping a blank
// line wherever the source had one between two printed items. force asks
// for a blank line before the first item (and so before its comments).
func (p *printer) leading(l int, force bool) {
	gap := func(line int) {
		out := p.sb.String()
		if out == "" || strings.HasSuffix(out, "{\n") || strings.HasSuffix(out, "\n\n") {
			return
		}
		if force || p.hadBlank(line) {
			p.sb.WriteString("\n")
		}
		force = false
	}
	for len(p.comments) > 0 && p.comments[0].line < l {
		c := p.comments[0]
		p.comments = p.comments[1:]
		gap(c.line)
		p.line(c.text + "\n")
		p.lastLine = c.line
	}
	if l <= len(p.src) {
		gap(l)
	}
}

// hadBlank reports whether a blank line separates line l from the last
// printed source line.
func (p *printer) hadBlank(l int) bool {
	for i := p.lastLine + 1; i < l && i-1 < len(p.src); i++ {
		if i >= 1 && strings.TrimSpace(p.src[i-1]) == "" {
			return true
		}
	}
	return false
}

// trailing ends the current output line, with the comment at the end of
// source line l if there is one.
func (p *printer) trailing(l int) {
	if len(p.comments) > 0 && p.comments[0].line == l && !p.comments[0].own {
		out := p.sb.String()
		p.trail[strings.Count(out, "\n")] = len(out) - (strings.LastIndexByte(out, '\n') + 1)
		p.sb.WriteString(p.comments[0].text)
		p.comments = p.comments[1:]
	}
	p.sb.WriteString("\n")
	p.lastLine = l
}

// closing prints the comments left before a closing brace on line l.
func (p *printer) closing(l int) {
	p.indent++
	for len(p.comments) > 0 && p.comments[0].line < l {
		c := p.comments[0]
		p.comments = p.comments[1:]
		p.line(c.text + "\n")
	}
	p.indent--
}

func (p *printer) file(f *File) {
	for i, d := range f.Decls {
		// Blocks and models stand apart; one-line definitions keep the
		// source's grouping.
		force := i > 0 && (!isOneLine(d) || !isOneLine(f.Decls[i-1]))
		p.leading(d.Start().Line, force)
		p.decl(d)
	}
	// Comments after the last declaration.
	p.leading(len(p.src)+1, false)
}

func isOneLine(d Decl) bool {
	switch d.(type) {
	case *FuncDef, *Import:
		return true
	}
	return false
}

func (p *printer) decl(d Decl) {
	switch d := d.(type) {
	case *Import:
		p.line("import " + strconv.Quote(d.Path.Value))
		p.trailing(d.End().Line)
	case *FuncDef:
		s := d.Kind + " " + d.Name.Name
		if len(d.Params) > 0 {
			s += "(" + params(d.Params) + ")"
		}
		p.line(s + " = " + FormatExpr(d.Body))
		p.trailing(d.End().Line)
	case *BlockDef:
		s := "block " + d.Name.Name + "(" + params(d.Params) + ")"
		if d.Result != nil {
			s += " -> " + formatType(d.Result)
		}
		p.line(s + " {")
		p.trailing(d.Name.Start().Line)
		p.body(d.Body, d.End().Line)
	case *ModelDef:
		p.line("model " + d.Name.Name + " {")
		p.trailing(d.Name.Start().Line)
		p.body(d.Body, d.End().Line)
	}
}

// body prints statements inside braces and the closing brace, which is
// on source line end.
func (p *printer) body(list []Stmt, end int) {
	p.indent++
	for _, s := range list {
		p.leading(s.Start().Line, false)
		p.stmt(s)
	}
	p.indent--
	p.closing(end)
	p.line("}")
	p.trailing(end)
}

func (p *printer) stmt(s Stmt) {
	switch s := s.(type) {
	case *LetStmt:
		var names []string
		for _, n := range s.Names() {
			names = append(names, n.Name)
		}
		p.line("let " + strings.Join(names, ", ") + " = " + FormatExpr(s.Value))
	case *AssignStmt:
		p.line(s.Name.Name + " = " + FormatExpr(s.Value))
	case *ReturnStmt:
		var vals []string
		for _, x := range s.Values() {
			vals = append(vals, FormatExpr(x))
		}
		p.line("return " + strings.Join(vals, ", "))
	case *LossStmt:
		p.line("loss " + FormatExpr(s.Value))
	case *MetricStmt:
		p.line(s.Kind + " " + s.Name.Name + " = " + FormatExpr(s.Value))
	case *InputStmt:
		p.line("input " + s.Name.Name + ": " + formatType(s.Type))
	case *RepeatStmt:
		p.line("repeat " + s.Var.Name + " in " + FormatExpr(s.From) + ".." + FormatExpr(s.To) + " {")
		p.trailing(s.Var.Start().Line)
		p.body(s.Body, s.End().Line)
		return
	case *ConfigStmt:
		p.section("config", " = ", s.Items, s.Start().Line, s.End().Line)
		return
	case *TrainStmt:
		p.section("train", ": ", s.Items, s.Start().Line, s.End().Line)
		return
	}
	p.trailing(s.End().Line)
}

// section prints a config or train section: on one line when it fits in
// 80 columns and has no comments inside, else one item per line.
func (p *printer) section(kw, sep string, items []*KeyValue, start, end int) {
	var parts []string
	for _, kv := range items {
		parts = append(parts, kv.Key.Name+sep+FormatExpr(kv.Value))
	}
	one := kw + " { " + strings.Join(parts, ", ") + " }"
	if len(items) == 0 {
		one = kw + " {}"
	}
	inner := false
	for _, c := range p.comments {
		if c.line > start && c.line < end || c.line == start && c.line != end {
			inner = true
		}
	}
	if !inner && len(one)+2*p.indent <= 80 {
		p.line(one)
		p.trailing(end)
		return
	}
	p.line(kw + " {")
	p.trailing(start)
	p.indent++
	for i, kv := range items {
		p.leading(kv.Start().Line, false)
		p.line(parts[i] + ",")
		p.trailing(kv.End().Line)
	}
	p.indent--
	p.closing(end)
	p.line("}")
	p.trailing(end)
}

func params(ps []*Param) string {
	var parts []string
	for _, p := range ps {
		s := p.Name.Name
		if p.Type != nil {
			s += ": " + formatType(p.Type)
		}
		if p.Default != nil {
			s += " = " + FormatExpr(p.Default)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func formatType(t *TypeExpr) string {
	s := ""
	if t.Name != nil {
		s = t.Name.Name
	}
	if t.Shaped {
		var dims []string
		for _, d := range t.Dims {
			dims = append(dims, FormatExpr(d))
		}
		s += "[" + strings.Join(dims, ", ") + "]"
	}
	return s
}

// FormatExpr prints an expression in canonical form. Parentheses are
// exactly the user's (ParenExpr), which the parser kept.
func FormatExpr(x Expr) string {
	switch x := x.(type) {
	case *Ident:
		return x.Name
	case *IntLit:
		return strconv.FormatInt(x.Value, 10)
	case *FloatLit:
		if x.Text != "" {
			return x.Text
		}
		return strconv.FormatFloat(x.Value, 'g', -1, 64)
	case *StringLit:
		return strconv.Quote(x.Value)
	case *BoolLit:
		return strconv.FormatBool(x.Value)
	case *UnaryExpr:
		return x.Op + FormatExpr(x.X)
	case *BinaryExpr:
		return FormatExpr(x.X) + " " + x.Op + " " + FormatExpr(x.Y)
	case *ParenExpr:
		return "(" + FormatExpr(x.X) + ")"
	case *IfExpr:
		return "if " + FormatExpr(x.Cond) + " then " + FormatExpr(x.Then) + " else " + FormatExpr(x.Else)
	case *CallExpr:
		var args []string
		for _, a := range x.Args {
			s := FormatExpr(a.Value)
			if a.Name != nil {
				s = a.Name.Name + ": " + s
			}
			args = append(args, s)
		}
		return FormatExpr(x.Fn) + "(" + strings.Join(args, ", ") + ")"
	case *IndexExpr:
		var items []string
		for _, it := range x.Items {
			s := ""
			if it.Lo != nil {
				s = FormatExpr(it.Lo)
			}
			if it.Slice {
				s += ":"
				if it.Hi != nil {
					s += FormatExpr(it.Hi)
				}
			}
			items = append(items, s)
		}
		return FormatExpr(x.X) + "[" + strings.Join(items, ", ") + "]"
	}
	return "?"
}
