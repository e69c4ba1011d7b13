package eval

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/attnc/attnc/ir"
)

// BindSyms returns the size of each of m's symbols that given or the
// shapes of inputs determine. It checks every input tensor against its
// declaration (presence, dtype, rank, element count, integral i32 values,
// 0/1 bools) and every dim against the symbols:
//
//   - a dim that is a single symbol (N) binds it, or must equal the value
//     it already has;
//   - an affine dim (S+T, 2*N, N-1) is checked once its symbols are bound,
//     or solved when exactly one of its symbols is still unknown.
//
// Errors name the input and the dim, and say where a conflicting value came
// from. Symbols nothing determines are left out of the result.
func BindSyms(m *ir.Module, inputs map[string]*Tensor, given map[string]int64) (map[string]int64, error) {
	b, err := newBinder(m, given)
	if err != nil {
		return nil, err
	}
	srcs, err := sources("input", m.Inputs(), inputs)
	if err != nil {
		return nil, err
	}
	if err := b.bind(srcs); err != nil {
		return nil, err
	}
	return b.syms, nil
}

// A binder accumulates symbol values and where each came from.
type binder struct {
	syms map[string]int64
	from map[string]string // symbol → "input \"x\"" or "Env.Syms"
}

func newBinder(m *ir.Module, given map[string]int64) (*binder, error) {
	b := &binder{syms: map[string]int64{}, from: map[string]string{}}
	declared := map[string]bool{}
	for _, s := range m.Syms {
		declared[s] = true
	}
	for _, s := range sortedNames(given) {
		v := given[s]
		if !declared[s] {
			return nil, fmt.Errorf("Env.Syms: unknown symbol %q (the module's symbols are %s)", s, listOrNone(m.Syms))
		}
		if v < 0 {
			return nil, fmt.Errorf("Env.Syms: symbol %s = %d is negative", s, v)
		}
		b.syms[s] = v
		b.from[s] = "Env.Syms"
	}
	return b, nil
}

// A source is a declared value (input or param) and the tensor supplied
// for it.
type source struct {
	what string // `input "x"`
	decl ir.Type
	t    *Tensor
}

// sources pairs the module's declarations of one kind with the supplied
// tensors, reporting missing and unknown names.
func sources(kind string, decls []*ir.Instr, got map[string]*Tensor) ([]source, error) {
	var out []source
	names := map[string]bool{}
	for _, in := range decls {
		name := in.Name()
		names[name] = true
		t, ok := got[name]
		if !ok {
			return nil, fmt.Errorf("missing %s %q (%s)", in.Op, name, in.Type)
		}
		out = append(out, source{what: fmt.Sprintf("%s %q", in.Op, name), decl: in.Type, t: t})
	}
	for _, name := range sortedNames(got) {
		if !names[name] {
			var known []string
			for _, in := range decls {
				known = append(known, in.Name())
			}
			return nil, fmt.Errorf("unknown %s %q (the module's %ss are %s)", kind, name, kind, listOrNone(known))
		}
	}
	return out, nil
}

// bind checks each source's tensor and binds the symbols of its shape:
// first every dim that is a lone symbol, then the affine dims, repeatedly,
// while solving one of them binds something new.
func (b *binder) bind(srcs []source) error {
	for _, s := range srcs {
		if err := checkTensor(s); err != nil {
			return err
		}
	}
	type pending struct {
		src source
		dim int
	}
	var affine []pending
	for _, s := range srcs {
		for i, d := range s.decl.Shape {
			got := int64(s.t.Shape[i])
			if v, ok := d.IsConst(); ok {
				if v != got {
					return fmt.Errorf("%s: dim %d is %d but the tensor has %d", s.what, i, v, got)
				}
				continue
			}
			if len(d.Terms) != 1 || d.Terms[0].Coef != 1 || d.Const != 0 {
				affine = append(affine, pending{s, i})
				continue
			}
			sym := d.Terms[0].Sym
			if v, ok := b.syms[sym]; ok {
				if v != got {
					return fmt.Errorf("%s: dim %d is %s = %d from %s but the tensor has %d", s.what, i, sym, v, b.from[sym], got)
				}
				continue
			}
			b.syms[sym] = got
			b.from[sym] = s.what
		}
	}
	for progress := true; progress && len(affine) > 0; {
		progress = false
		var still []pending
		for _, p := range affine {
			done, err := b.solve(p.src, p.dim)
			if err != nil {
				return err
			}
			if done {
				progress = true
			} else {
				still = append(still, p)
			}
		}
		affine = still
	}
	if len(affine) > 0 {
		p := affine[0]
		d := p.src.decl.Shape[p.dim]
		return fmt.Errorf("%s: dim %d is %s = %d, which does not determine %s; give them in Env.Syms",
			p.src.what, p.dim, d, p.src.t.Shape[p.dim], strings.Join(b.unknown(d), " and "))
	}
	return nil
}

// unknown returns the symbols of d that have no value yet.
func (b *binder) unknown(d ir.Dim) []string {
	var out []string
	for _, t := range d.Terms {
		if _, ok := b.syms[t.Sym]; !ok && t.Coef != 0 {
			out = append(out, t.Sym)
		}
	}
	return out
}

// solve checks an affine dim whose symbols are all bound, or binds the one
// unknown symbol it leaves. It reports whether the dim is settled.
func (b *binder) solve(s source, i int) (bool, error) {
	d := s.decl.Shape[i]
	got := int64(s.t.Shape[i])
	unknown := b.unknown(d)
	switch len(unknown) {
	case 0:
		v, err := d.Eval(b.syms)
		if err != nil {
			return false, err
		}
		if v != got {
			return false, fmt.Errorf("%s: dim %d is %s = %d (%s) but the tensor has %d", s.what, i, d, v, b.origins(d), got)
		}
		return true, nil
	case 1:
		// got = Const + Σ known + coef·x
		sym := unknown[0]
		rest := d.Const
		var coef int64
		for _, t := range d.Terms {
			if t.Sym == sym {
				coef = t.Coef
			} else {
				rest += t.Coef * b.syms[t.Sym]
			}
		}
		num := got - rest
		known := ""
		if o := b.origins(d); o != "" {
			known = " with " + o
		}
		if num%coef != 0 {
			return false, fmt.Errorf("%s: dim %d is %s%s, which cannot be %d", s.what, i, d, known, got)
		}
		if x := num / coef; x >= 0 {
			b.syms[sym] = x
			b.from[sym] = s.what
			return true, nil
		}
		return false, fmt.Errorf("%s: dim %d is %s%s, which cannot be %d (it would make %s = %d)", s.what, i, d, known, got, sym, num/coef)
	}
	return false, nil
}

// origins describes the bound symbols of d: "S = 5 from input "a", …".
func (b *binder) origins(d ir.Dim) string {
	var parts []string
	for _, t := range d.Terms {
		if v, ok := b.syms[t.Sym]; ok {
			parts = append(parts, fmt.Sprintf("%s = %d from %s", t.Sym, v, b.from[t.Sym]))
		}
	}
	return strings.Join(parts, ", ")
}

// checkTensor checks a supplied tensor against its declared type, apart
// from the symbolic sizes: dtype, rank, element count and element values.
func checkTensor(s source) error {
	t := s.t
	if t == nil {
		return fmt.Errorf("%s is a nil tensor", s.what)
	}
	if t.DType != s.decl.DType {
		return fmt.Errorf("%s: dtype is %s, want %s (%s)", s.what, t.DType, s.decl.DType, s.decl)
	}
	if len(t.Shape) != len(s.decl.Shape) {
		return fmt.Errorf("%s: tensor has rank %d (shape %v), want rank %d (%s)", s.what, len(t.Shape), t.Shape, len(s.decl.Shape), s.decl)
	}
	for i, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("%s: dim %d of the tensor is negative (%d)", s.what, i, d)
		}
	}
	if !sizeOK(t.Shape) {
		return fmt.Errorf("%s: shape %v has too many elements", s.what, t.Shape)
	}
	if n := numel(t.Shape); n != len(t.Data) {
		return fmt.Errorf("%s: shape %v needs %d values, the tensor holds %d", s.what, t.Shape, n, len(t.Data))
	}
	for i, v := range t.Data {
		if err := checkValue(t.DType, v); err != nil {
			idx := make([]int, len(t.Shape))
			unravel(i, t.Shape, idx)
			return fmt.Errorf("%s: element %v is %v, %v", s.what, idx, v, err)
		}
	}
	return nil
}

// checkValue reports whether v is a valid element of dtype dt.
func checkValue(dt ir.DType, v float64) error {
	switch dt {
	case ir.I32:
		if v != math.Trunc(v) || v < math.MinInt32 || v > math.MaxInt32 {
			return fmt.Errorf("not an i32")
		}
	case ir.Bool:
		if v != 0 && v != 1 {
			return fmt.Errorf("not a bool (0 or 1)")
		}
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
