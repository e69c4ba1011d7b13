package ir

import (
	"errors"
	"fmt"
	"math"
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

// ErrOverflow is wrapped by every error of a dimension or element count
// that does not fit in an int64. The checked operations return it where
// plain arithmetic would wrap silently (2^62·4 + 8 would become 8).
var ErrOverflow = errors.New("integer overflow")

// Add returns d + e. It wraps on overflow; AddChecked does not, and is
// what anything fed by user input must use.
func (d Dim) Add(e Dim) Dim { out, _ := combine(d, e, false); return out }

// Sub returns d - e. It wraps on overflow, like Add.
func (d Dim) Sub(e Dim) Dim { out, _ := combine(d, e, true); return out }

// Scale returns c·d. It wraps on overflow, like Add.
func (d Dim) Scale(c int64) Dim { out, _ := scale(d, c); return out }

// AddChecked returns d + e, or an error wrapping ErrOverflow if a
// coefficient does not fit in an int64.
func (d Dim) AddChecked(e Dim) (Dim, error) {
	out, ok := combine(d, e, false)
	if !ok {
		return Dim{}, overflow(d, "+", e)
	}
	return out, nil
}

// SubChecked returns d - e, or an error wrapping ErrOverflow.
func (d Dim) SubChecked(e Dim) (Dim, error) {
	out, ok := combine(d, e, true)
	if !ok {
		return Dim{}, overflow(d, "-", e)
	}
	return out, nil
}

// ScaleChecked returns c·d, or an error wrapping ErrOverflow.
func (d Dim) ScaleChecked(c int64) (Dim, error) {
	out, ok := scale(d, c)
	if !ok {
		return Dim{}, overflow(ConstDim(c), "*", d)
	}
	return out, nil
}

func overflow(a any, op string, b any) error {
	return fmt.Errorf("%w: %v %s %v does not fit in 64 bits", ErrOverflow, a, op, b)
}

func scale(d Dim, c int64) (Dim, bool) {
	if c == 0 {
		return Dim{}, true
	}
	k, ok := MulInt64(d.Const, c)
	out := Dim{Const: k}
	for _, t := range d.Terms {
		v, ok1 := MulInt64(t.Coef, c)
		ok = ok && ok1
		out.Terms = append(out.Terms, Term{t.Sym, v})
	}
	return out, ok
}

// combine returns d + e, or d - e when neg, and whether no coefficient
// overflowed.
func combine(d, e Dim, neg bool) (Dim, bool) {
	ok := true
	op := AddInt64
	if neg {
		op = SubInt64
	}
	coef := map[string]int64{}
	for _, t := range d.Terms {
		coef[t.Sym] = t.Coef
	}
	for _, t := range e.Terms {
		v, ok1 := op(coef[t.Sym], t.Coef)
		ok = ok && ok1
		coef[t.Sym] = v
	}
	k, ok1 := op(d.Const, e.Const)
	out := Dim{Const: k}
	for s, c := range coef {
		if c != 0 {
			out.Terms = append(out.Terms, Term{s, c})
		}
	}
	sort.Slice(out.Terms, func(i, j int) bool { return out.Terms[i].Sym < out.Terms[j].Sym })
	return out, ok && ok1
}

// AddInt64 returns a + b and whether it fits in an int64 (when it does
// not, the wrapped sum).
func AddInt64(a, b int64) (int64, bool) {
	s := a + b
	return s, (s > a) == (b > 0)
}

// SubInt64 returns a - b and whether it fits in an int64.
func SubInt64(a, b int64) (int64, bool) {
	s := a - b
	return s, (s < a) == (b > 0)
}

// MulInt64 returns a·b and whether it fits in an int64.
func MulInt64(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	p := a * b
	if (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return p, false
	}
	return p, p/b == a
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
		p, ok1 := MulInt64(t.Coef, x)
		s, ok2 := AddInt64(v, p)
		if !ok1 || !ok2 {
			return 0, fmt.Errorf("dimension %s with %s = %d: %w (the size does not fit in 64 bits)", d, t.Sym, x, ErrOverflow)
		}
		v = s
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
// symbols, so reshape can compare element counts of symbolic shapes. It
// wraps on overflow; NumElementsChecked does not.
func (s Shape) NumElements() Poly {
	p, _ := s.numElements()
	return p
}

// NumElementsChecked is NumElements, or an error wrapping ErrOverflow
// when a coefficient of the product does not fit in an int64. For a
// shape with no symbols, the element count is the result's [""].
func (s Shape) NumElementsChecked() (Poly, error) {
	p, ok := s.numElements()
	if !ok {
		return nil, fmt.Errorf("%w: the element count of %s does not fit in 64 bits", ErrOverflow, s)
	}
	return p, nil
}

func (s Shape) numElements() (Poly, bool) {
	p := Poly{"": 1}
	ok := true
	for _, d := range s {
		var ok1 bool
		p, ok1 = p.mul(dimPoly(d))
		ok = ok && ok1
	}
	return p, ok
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

// Mul returns p·q. It wraps on overflow.
func (p Poly) Mul(q Poly) Poly {
	out, _ := p.mul(q)
	return out
}

// mul returns p·q and whether every coefficient fit in an int64.
func (p Poly) mul(q Poly) (Poly, bool) {
	ok := true
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
			prod, ok1 := MulInt64(c1, c2)
			sum, ok2 := AddInt64(out[m], prod)
			ok = ok && ok1 && ok2
			out[m] = sum
			if out[m] == 0 {
				delete(out, m)
			}
		}
	}
	return out, ok
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
