package gogen

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/attnc/attnc/ir"
)

// maskRow renders a mask as the function literal of AttnSpec.MaskRow,
// which the kernels call once per query row of a partial tile instead of
// calling Mask once per (query, key) pair. The function fills keep[j] with
// the mask at k = k0 + j:
//
//   - every subexpression that does not read k is computed once, before
//     the loop over keys (equal ones once in all);
//   - a captured tensor read whose last index is k + r, r not reading k,
//     is one slice of the tensor cut before the loop, which the loop
//     indexes by j with no bounds check; other reads in the loop check
//     their indices against the shape with plain comparisons;
//   - integer divisions and modulos check their divisor.
//
// A check that fails (an index out of range, a divisor of zero) does not
// panic: the row is done again pair by pair with spec's Mask, which
// reports the error exactly as before (the first pair in key order, with
// its message) or finds that the mask's &&, || and where never reach the
// read. So MaskRow agrees with Mask everywhere, errors included, while
// only evaluating what cannot fail; values are written by the expression
// writer, as in Mask, so they are the same Go operations. The price is
// paid where a value computed before the loop fails although && would
// skip it (q == 0 || $0[b, q - 1] == $0[b, k] at q = 0): that row falls
// back. Checking a flag at each use instead would slow every row of the
// common masks, whose values never fail.
func (w *exprWriter) maskRow(m *ir.Expr, spec string) (string, error) {
	g := &rowWriter{
		w:     &exprWriter{caps: w.caps, capType: w.capType, r: w.r, subst: map[*ir.Expr]string{}},
		spec:  spec,
		named: map[string]string{},
	}
	var loop []string
	code, err := g.lower(m, &loop, true)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("func(b, h, q, k0 int, keep []bool) bool {\n")
	if g.fallback {
		// The pair-by-pair fallback: exact, errors included.
		fmt.Fprintf(&b, "\t\tpairs := func() bool {\n\t\t\thit := false\n\t\t\tfor j := range keep {\n\t\t\t\tkeep[j] = %s.Mask(b, h, q, k0+j)\n\t\t\t\thit = hit || keep[j]\n\t\t\t}\n\t\t\treturn hit\n\t\t}\n", spec)
	}
	for _, s := range g.pre {
		b.WriteString("\t\t" + s + "\n")
	}
	if !readsK(m) {
		// The same verdict for every key of the row.
		fmt.Fprintf(&b, "\t\tfor j := range keep {\n\t\t\tkeep[j] = %s\n\t\t}\n\t\treturn %s && len(keep) > 0\n\t}", code, code)
		return b.String(), nil
	}
	body := strings.Join(loop, "\n") + "\n" + code
	b.WriteString("\t\thit := false\n\t\tfor j := range keep {\n")
	if usesK.MatchString(body) {
		b.WriteString("\t\t\tk := k0 + j\n")
	}
	for _, s := range loop {
		b.WriteString("\t\t\t" + s + "\n")
	}
	fmt.Fprintf(&b, "\t\t\tkeep[j] = %s\n\t\t\thit = hit || keep[j]\n\t\t}\n\t\treturn hit\n\t}", code)
	return b.String(), nil
}

// usesK finds the key index k in code the expression writer wrote.
var usesK = regexp.MustCompile(`\bk\b`)

// A rowWriter holds a MaskRow under construction.
type rowWriter struct {
	w    *exprWriter // writes operators, with subst for operands lowered here
	spec string      // the Go name of the AttnSpec
	pre  []string    // statements before the loop over keys
	// named maps the text of each subexpression computed before the
	// loop to its variable, so equal ones are computed once.
	named    map[string]string
	n        int  // variables made
	fallback bool // some check returns pairs()
}

func (g *rowWriter) temp() string {
	g.n++
	return fmt.Sprintf("x%d", g.n-1)
}

// bail is the statement a failed check runs.
func (g *rowWriter) bail() string {
	g.fallback = true
	return "return pairs()"
}

// lower returns the code of e's value, appending to blk the statements
// it needs first (checks, reads, the branches of && and || whose right
// side needs statements). In the loop (inLoop), a subexpression that does
// not read k is computed before it instead.
func (g *rowWriter) lower(e *ir.Expr, blk *[]string, inLoop bool) (string, error) {
	if trivial(e) {
		code, _, err := g.w.write(e)
		return code, err
	}
	if inLoop && !readsK(e) {
		return g.hoist(e)
	}
	switch e.Kind {
	case ir.ECapture:
		return g.read(e, blk, inLoop)
	case ir.EAnd, ir.EOr:
		a, err := g.lower(e.Args[0], blk, inLoop)
		if err != nil {
			return "", err
		}
		var sub []string
		c, err := g.lower(e.Args[1], &sub, inLoop)
		if err != nil {
			return "", err
		}
		if len(sub) == 0 {
			return g.apply(e, a, c)
		}
		// The right side's statements run only where Mask would
		// evaluate it.
		t, cond := g.temp(), ""
		if e.Kind == ir.EOr {
			cond = "!"
		}
		*blk = append(*blk, t+" := "+a, "if "+cond+t+" {")
		*blk = append(*blk, indent(sub)...)
		*blk = append(*blk, "\t"+t+" = "+c, "}")
		return t, nil
	case ir.ECall:
		if f, ok := ir.LookupExprFunc(e.Name); ok && f.Chooses {
			return g.where(e, blk, inLoop)
		}
	case ir.EDiv, ir.EMod:
		if e.ValueKind() != ir.KInt {
			break
		}
		a, err := g.lower(e.Args[0], blk, inLoop)
		if err != nil {
			return "", err
		}
		d, err := g.lower(e.Args[1], blk, inLoop)
		if err != nil {
			return "", err
		}
		if x := e.Args[1]; x.Kind != ir.EInt || x.Int == 0 {
			if !isIdent(d) {
				t := g.temp()
				*blk = append(*blk, t+" := "+d)
				d = t
			}
			*blk = append(*blk, "if "+d+" == 0 {", "\t"+g.bail(), "}")
		}
		return g.apply(e, a, d)
	}
	args := make([]string, len(e.Args))
	for i, x := range e.Args {
		code, err := g.lower(x, blk, inLoop)
		if err != nil {
			return "", err
		}
		args[i] = code
	}
	return g.apply(e, args...)
}

// apply writes e's operator over its operands' codes.
func (g *rowWriter) apply(e *ir.Expr, args ...string) (string, error) {
	for i, a := range args {
		g.w.subst[e.Args[i]] = a
	}
	code, _, err := g.w.write(e)
	for _, x := range e.Args {
		delete(g.w.subst, x)
	}
	return code, err
}

// hoist computes e, which does not read k, before the loop and returns
// the variable holding it (a variable or literal as is).
func (g *rowWriter) hoist(e *ir.Expr) (string, error) {
	if trivial(e) {
		code, _, err := g.w.write(e)
		return code, err
	}
	key := e.String()
	if t, ok := g.named[key]; ok {
		return t, nil
	}
	code, err := g.lower(e, &g.pre, false)
	if err != nil {
		return "", err
	}
	if !isIdent(code) {
		t := g.temp()
		g.pre = append(g.pre, t+" := "+code)
		code = t
	}
	g.named[key] = code
	return code, nil
}

// trivial reports whether e is written as is wherever it is used: a
// variable, or a literal or expression of literals that cannot fail.
func trivial(e *ir.Expr) bool {
	if e.Kind == ir.EVar {
		return true
	}
	ok := constant(e)
	e.Walk(func(x *ir.Expr) { ok = ok && x.Kind != ir.EDiv && x.Kind != ir.EMod })
	return ok
}

// where renders where(c, x, y), evaluating only the branch taken where
// a branch needs statements (it may read out of range only where it is
// not taken).
func (g *rowWriter) where(e *ir.Expr, blk *[]string, inLoop bool) (string, error) {
	c, err := g.lower(e.Args[0], blk, inLoop)
	if err != nil {
		return "", err
	}
	var sx, sy []string
	x, err := g.lower(e.Args[1], &sx, inLoop)
	if err != nil {
		return "", err
	}
	y, err := g.lower(e.Args[2], &sy, inLoop)
	if err != nil {
		return "", err
	}
	k := e.ValueKind()
	x = convert(x, e.Args[1].ValueKind(), k)
	y = convert(y, e.Args[2].ValueKind(), k)
	t := g.temp()
	if len(sx) == 0 && len(sy) == 0 {
		// Both branches are plain values: no branch needs skipping.
		*blk = append(*blk, fmt.Sprintf("%s := %s(%s)", t, goType(k), y), "if "+c+" {", "\t"+t+" = "+x, "}")
		return t, nil
	}
	*blk = append(*blk, "var "+t+" "+goType(k), "if "+c+" {")
	*blk = append(*blk, indent(sx)...)
	*blk = append(*blk, "\t"+t+" = "+x, "} else {")
	*blk = append(*blk, indent(sy)...)
	*blk = append(*blk, "\t"+t+" = "+y, "}")
	return t, nil
}

// read renders a captured tensor read. Indices that do not read k are
// computed and checked before the loop; the read itself is too when no
// index reads k.
func (g *rowWriter) read(e *ir.Expr, blk *[]string, inLoop bool) (string, error) {
	i := int(e.Int)
	t := g.w.caps[i]
	dt := g.w.capType[i].DType
	data := t + "." + map[ir.DType]string{ir.F32: "F", ir.I32: "I", ir.Bool: "B"}[dt]
	conv := map[ir.DType]string{ir.F32: "float64(%s)", ir.I32: "int(%s)", ir.Bool: "%s"}[dt]
	rank := len(e.Args)
	dim := func(j int) string { return fmt.Sprintf("%s.Shape[%d]", t, j) }
	// index returns index j's code, a variable or literal, checked
	// against its dim in the block that computes it.
	index := func(j int) (string, error) {
		x := e.Args[j]
		if inLoop && !readsK(x) || blk == &g.pre {
			// Before the loop, unconditionally: the same index of the
			// same tensor is checked once.
			key := fmt.Sprintf("check $%d[%d] %s", i, j, x)
			if v, ok := g.named[key]; ok {
				return v, nil
			}
			v, err := g.hoist(x)
			if err != nil {
				return "", err
			}
			g.pre = append(g.pre, fmt.Sprintf("if %s < 0 || %s >= %s {", v, v, dim(j)), "\t"+g.bail(), "}")
			g.named[key] = v
			return v, nil
		}
		code, err := g.lower(x, blk, inLoop)
		if err != nil {
			return "", err
		}
		if !isIdent(code) {
			v := g.temp()
			*blk = append(*blk, v+" := "+code)
			code = v
		}
		*blk = append(*blk, fmt.Sprintf("if %s < 0 || %s >= %s {", code, code, dim(j)), "\t"+g.bail(), "}")
		return code, nil
	}
	// offset writes the row-major offset of indices [0, n) (Horner's rule).
	offset := func(idx []string) string {
		off := ""
		for j, x := range idx {
			if j == 0 {
				off = x
				continue
			}
			off = fmt.Sprintf("(%s)*%s + %s", off, dim(j), x)
		}
		return off
	}
	last := rank - 1
	variantBefore := false
	for _, x := range e.Args[:max(last, 0)] {
		variantBefore = variantBefore || readsK(x)
	}
	if !inLoop || rank == 0 || variantBefore {
		// The general case: every index checked where it is computed,
		// then one read.
		idx := make([]string, rank)
		for j := range idx {
			x, err := index(j)
			if err != nil {
				return "", err
			}
			idx[j] = x
		}
		off := "0"
		if rank > 0 {
			off = offset(idx)
		}
		v := g.temp()
		*blk = append(*blk, v+" := "+fmt.Sprintf(conv, data+"["+off+"]"))
		return v, nil
	}
	// Only the last index reads k: cut the row of the others once.
	prefix := make([]string, last)
	for j := range prefix {
		x, err := index(j)
		if err != nil {
			return "", err
		}
		prefix[j] = x
	}
	rowKey := fmt.Sprintf("row $%d[%s]", i, strings.Join(prefix, ", "))
	row, ok := g.named[rowKey]
	if !ok {
		row = g.temp()
		start := "0"
		if last > 0 {
			start = fmt.Sprintf("(%s)*%s", offset(prefix), dim(last))
		}
		g.pre = append(g.pre, fmt.Sprintf("%s := %s[%s:][:%s]", row, data, start, dim(last)))
		g.named[rowKey] = row
	}
	if r, ok, err := g.kPlus(e.Args[last]); err != nil {
		return "", err
	} else if ok {
		// The index is k + r: the keys of the row read one slice of it,
		// j by j, checked once.
		sliceKey := rowKey + " from k0 + " + r
		s, ok := g.named[sliceKey]
		if !ok {
			lo, s2 := "k0", g.temp()
			if r != "0" {
				lo = g.temp()
				g.pre = append(g.pre, fmt.Sprintf("%s := k0 + %s", lo, r))
			}
			g.pre = append(g.pre,
				fmt.Sprintf("if %s < 0 || %s > len(%s)-len(keep) {", lo, lo, row), "\t"+g.bail(), "}",
				fmt.Sprintf("%s := %s[%s:][:len(keep)]", s2, row, lo))
			s = s2
			g.named[sliceKey] = s
		}
		return fmt.Sprintf(conv, s+"[j]"), nil
	}
	code, err := g.lower(e.Args[last], blk, inLoop)
	if err != nil {
		return "", err
	}
	if !isIdent(code) {
		v := g.temp()
		*blk = append(*blk, v+" := "+code)
		code = v
	}
	*blk = append(*blk, fmt.Sprintf("if %s < 0 || %s >= len(%s) {", code, code, row), "\t"+g.bail(), "}")
	return fmt.Sprintf(conv, row+"["+code+"]"), nil
}

// kPlus reports whether the index e is k + r with r not reading k, and
// returns r's code (computed before the loop).
func (g *rowWriter) kPlus(e *ir.Expr) (string, bool, error) {
	if coefK(e) != 1 {
		return "", false, nil
	}
	r := ""
	var walk func(x *ir.Expr, sign string) error
	walk = func(x *ir.Expr, sign string) error {
		switch {
		case !readsK(x):
			code, err := g.hoist(x)
			r += sign + code
			return err
		case x.Kind == ir.ENeg:
			return walk(x.Args[0], flip[sign])
		case x.Kind == ir.EAdd || x.Kind == ir.ESub:
			if err := walk(x.Args[0], sign); err != nil {
				return err
			}
			if x.Kind == ir.ESub {
				sign = flip[sign]
			}
			return walk(x.Args[1], sign)
		}
		return nil // k itself
	}
	if err := walk(e, " + "); err != nil {
		return "", false, err
	}
	r = strings.TrimPrefix(r, " + ")
	if r == "" {
		return "0", true, nil
	}
	return "(" + r + ")", true, nil
}

var flip = map[string]string{" + ": " - ", " - ": " + "}

// coefK returns c where the integer expression e is c·k + r, r not
// reading k, built with +, - and unary -; 0 for other forms.
func coefK(e *ir.Expr) int {
	switch {
	case !readsK(e):
		return 0
	case e.Kind == ir.EVar:
		return 1
	case e.Kind == ir.ENeg:
		return -coefK(e.Args[0])
	case e.Kind == ir.EAdd || e.Kind == ir.ESub:
		a, b := coefK(e.Args[0]), coefK(e.Args[1])
		if (a == 0 && readsK(e.Args[0])) || (b == 0 && readsK(e.Args[1])) {
			return 0 // a side reads k in another form
		}
		if e.Kind == ir.ESub {
			return a - b
		}
		return a + b
	}
	return 0
}

// isIdent reports whether code is a Go identifier or an integer literal
// as the expression writer writes it: safe to repeat.
var identRe = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*|\(-?[0-9]+\))$`)

func isIdent(code string) bool { return identRe.MatchString(code) }

// indent indents statements one level.
func indent(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = "\t" + l
	}
	return out
}
