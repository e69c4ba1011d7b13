package ir

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// A Dim is one dimension of a shape: an affine form Const + Σ Coef·Sym over
// the module's symbols (B, N, S+T, N-1, 2*N, 128). Dims are values: every
// operation returns a new Dim in canonical form (terms sorted by symbol,
// no zero coefficients), so == on String() is equality of forms.
type Dim struct {
	Const int64
	Terms []Term
}

// A Term is Coef·Sym inside a Dim.
type Term struct {
	Sym  string
	Coef int64
}

// ConstDim returns the constant dimension n.
func ConstDim(n int64) Dim { return Dim{Const: n} }

// SymDim returns the dimension named by the symbol s.
func SymDim(s string) Dim { return Dim{Terms: []Term{{Sym: s, Coef: 1}}} }

// IsConst reports whether d has no symbolic terms, and its value if so.
func (d Dim) IsConst() (int64, bool) {
	if len(d.Terms) == 0 {
		return d.Const, true
	}
	return 0, false
}

// Add returns d + e.
func (d Dim) Add(e Dim) Dim { return combine(d, e, 1) }

// Sub returns d - e.
func (d Dim) Sub(e Dim) Dim { return combine(d, e, -1) }

// Scale returns c·d.
func (d Dim) Scale(c int64) Dim {
	if c == 0 {
		return Dim{}
	}
	out := Dim{Const: d.Const * c}
	for _, t := range d.Terms {
		out.Terms = append(out.Terms, Term{t.Sym, t.Coef * c})
	}
	return out
}

func combine(d, e Dim, sign int64) Dim {
	coef := map[string]int64{}
	for _, t := range d.Terms {
		coef[t.Sym] += t.Coef
	}
	for _, t := range e.Terms {
		coef[t.Sym] += sign * t.Coef
	}
	out := Dim{Const: d.Const + sign*e.Const}
	for s, c := range coef {
		if c != 0 {
			out.Terms = append(out.Terms, Term{s, c})
		}
	}
	sort.Slice(out.Terms, func(i, j int) bool { return out.Terms[i].Sym < out.Terms[j].Sym })
	return out
}

// Equal reports whether d and e are the same affine form.
func (d Dim) Equal(e Dim) bool {
	if d.Const != e.Const || len(d.Terms) != len(e.Terms) {
		return false
	}
	for i := range d.Terms {
		if d.Terms[i] != e.Terms[i] {
			return false
		}
	}
	return true
}

// Syms returns the symbols d mentions.
func (d Dim) Syms() []string {
	var out []string
	for _, t := range d.Terms {
		out = append(out, t.Sym)
	}
	return out
}

// Eval returns the value of d with the symbols bound by env.
func (d Dim) Eval(env map[string]int64) (int64, error) {
	v := d.Const
	for _, t := range d.Terms {
		x, ok := env[t.Sym]
		if !ok {
			return 0, fmt.Errorf("dimension %s: symbol %s is not bound", d, t.Sym)
		}
		v += t.Coef * x
	}
	return v, nil
}

// String prints d in the IR's text form: "B", "S+T", "N-1", "2*N", "128".
func (d Dim) String() string {
	var sb strings.Builder
	for i, t := range d.Terms {
		c := t.Coef
		switch {
		case c < 0:
			sb.WriteString("-")
			c = -c
		case i > 0:
			sb.WriteString("+")
		}
		if c != 1 {
			sb.WriteString(strconv.FormatInt(c, 10))
			sb.WriteString("*")
		}
		sb.WriteString(t.Sym)
	}
	switch {
	case len(d.Terms) == 0:
		sb.WriteString(strconv.FormatInt(d.Const, 10))
	case d.Const > 0:
		sb.WriteString("+" + strconv.FormatInt(d.Const, 10))
	case d.Const < 0:
		sb.WriteString(strconv.FormatInt(d.Const, 10))
	}
	return sb.String()
}

// A Shape is a list of dimensions, outermost first.
type Shape []Dim

// Equal reports whether s and t have the same rank and equal dims.
func (s Shape) Equal(t Shape) bool {
	if len(s) != len(t) {
		return false
	}
	for i := range s {
		if !s[i].Equal(t[i]) {
			return false
		}
	}
	return true
}

// Eval returns the concrete sizes of s with env's symbols.
func (s Shape) Eval(env map[string]int64) ([]int, error) {
	out := make([]int, len(s))
	for i, d := range s {
		v, err := d.Eval(env)
		if err != nil {
			return nil, err
		}
		if v < 0 {
			return nil, fmt.Errorf("dimension %s is negative (%d)", d, v)
		}
		out[i] = int(v)
	}
	return out, nil
}

func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// NumElements returns the product of s's dims as a polynomial in the
// symbols, so reshape can compare element counts of symbolic shapes.
func (s Shape) NumElements() Poly {
	p := Poly{"": 1}
	for _, d := range s {
		p = p.Mul(dimPoly(d))
	}
	return p
}

// A Poly is a polynomial over symbols: monomial (symbols joined by "*",
// sorted; "" for the constant) → coefficient.
type Poly map[string]int64

func dimPoly(d Dim) Poly {
	p := Poly{}
	if d.Const != 0 {
		p[""] = d.Const
	}
	for _, t := range d.Terms {
		p[t.Sym] += t.Coef
	}
	return p
}

// Mul returns p·q.
func (p Poly) Mul(q Poly) Poly {
	out := Poly{}
	for m1, c1 := range p {
		for m2, c2 := range q {
			var syms []string
			if m1 != "" {
				syms = append(syms, strings.Split(m1, "*")...)
			}
			if m2 != "" {
				syms = append(syms, strings.Split(m2, "*")...)
			}
			sort.Strings(syms)
			m := strings.Join(syms, "*")
			out[m] += c1 * c2
			if out[m] == 0 {
				delete(out, m)
			}
		}
	}
	return out
}

// Equal reports whether p and q are the same polynomial.
func (p Poly) Equal(q Poly) bool {
	for m, c := range p {
		if c != 0 && q[m] != c {
			return false
		}
	}
	for m, c := range q {
		if c != 0 && p[m] != c {
			return false
		}
	}
	return true
}
