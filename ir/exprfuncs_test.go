package ir

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"sort"
	"strings"
	"testing"
)

// TestExprFuncTableComplete: every row of the function table has all its
// parts, the table is sorted and its names are unique, and every row
// types a call of numbers (where: a condition and numbers).
func TestExprFuncTableComplete(t *testing.T) {
	var names []string
	for _, f := range ExprFuncTable {
		var missing []string
		for part, ok := range map[string]bool{
			"Name": f.Name != "", "Arity": f.Arity > 0, "Doc": f.Doc != "",
			"Kind": f.Kind != nil, "Eval": f.Eval != nil, "Bounds": f.Bounds != nil, "Deriv": f.Deriv != nil,
		} {
			if !ok {
				missing = append(missing, part)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("function %q lacks %s", f.Name, strings.Join(missing, ", "))
			continue
		}
		names = append(names, f.Name)
		if k, err := f.Kind(funcArgKinds(f, KFloat)); err != nil || k == KInvalid {
			t.Errorf("%s of floats: %v, %v", f.Name, k, err)
		}
		if g, ok := LookupExprFunc(f.Name); !ok || g != f || ExprFuncs[f.Name] != f.Arity {
			t.Errorf("%s is not indexed", f.Name)
		}
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("ExprFuncTable is not sorted by name: %v", names)
	}
	if len(exprFuncs) != len(ExprFuncTable) || len(ExprFuncs) != len(ExprFuncTable) {
		t.Errorf("duplicate names in ExprFuncTable")
	}
}

// funcArgKinds returns the argument kinds of a well-typed call of f
// whose numbers are of kind k.
func funcArgKinds(f *ExprFunc, k ScalarKind) []ScalarKind {
	kinds := make([]ScalarKind, f.Arity)
	for i := range kinds {
		kinds[i] = k
	}
	if f.Chooses {
		kinds[0] = KBool
	}
	return kinds
}

// An ivCase is an interval of one kind and a way to draw points in it.
type ivCase struct {
	iv   Interval
	kind ScalarKind
}

// randInterval draws an interval of kind k: bools among the three bool
// intervals; ints small, around 0, sometimes a point; floats small or
// wide, sometimes with an infinite end.
func randInterval(r *rand.Rand, k ScalarKind) Interval {
	switch k {
	case KBool:
		return []Interval{{0, 0}, {1, 1}, {0, 1}}[r.Intn(3)]
	case KInt:
		lo := float64(r.Intn(41) - 20)
		return Interval{lo, lo + float64(r.Intn(3)*r.Intn(12))}
	}
	scale := []float64{0.01, 1, 4, 30, 1e6}[r.Intn(5)]
	a, b := scale*r.NormFloat64(), scale*r.NormFloat64()
	iv := Interval{math.Min(a, b), math.Max(a, b)}
	switch r.Intn(12) {
	case 0:
		iv.Lo = math.Inf(-1)
	case 1:
		iv.Hi = math.Inf(1)
	case 2:
		iv.Hi = iv.Lo
	}
	return iv
}

// randPoint draws a value of kind k in iv, its ends often.
func randPoint(r *rand.Rand, iv Interval, k ScalarKind) float64 {
	switch n := r.Intn(6); {
	case n == 0 || math.IsInf(iv.Hi, 0) && math.IsInf(iv.Lo, 0):
		if !math.IsInf(iv.Lo, 0) {
			return iv.Lo
		}
	case n == 1:
		if !math.IsInf(iv.Hi, 0) {
			return iv.Hi
		}
	}
	lo, hi := iv.Lo, iv.Hi
	if math.IsInf(lo, -1) {
		lo = math.Min(hi, 0) - 1e3
	}
	if math.IsInf(hi, 1) {
		hi = math.Max(lo, 0) + 1e3
	}
	if k != KFloat {
		return lo + float64(r.Intn(int(hi-lo)+1))
	}
	return lo + (hi-lo)*r.Float64()
}

// boundsCase is an expression over the variables x0, x1, … of the given
// kinds, for the soundness tests.
type boundsCase struct {
	e     *Expr
	kinds []ScalarKind
}

// boundsCases are a call of every function, with int and float numbers,
// and the operators whose rules need care: / and % on ints with
// divisors of either sign and holding 0, / on floats, * with infinite
// ends.
func boundsCases(t testing.TB) []boundsCase {
	var out []boundsCase
	add := func(e *Expr, kinds ...ScalarKind) {
		vars := map[string]ScalarKind{}
		for i, k := range kinds {
			vars[fmt.Sprintf("x%d", i)] = k
		}
		if _, err := e.Check(ExprEnv{Vars: vars}); err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		out = append(out, boundsCase{e, kinds})
	}
	x := func(i int) *Expr { return Var(fmt.Sprintf("x%d", i)) }
	for _, f := range ExprFuncTable {
		for _, k := range []ScalarKind{KInt, KFloat} {
			kinds := funcArgKinds(f, k)
			args := make([]*Expr, f.Arity)
			for i := range args {
				args[i] = x(i)
			}
			add(Call(f.Name, args...), kinds...)
		}
	}
	for _, k := range []ExprKind{EDiv, EMod, EMul, EAdd, ESub} {
		add(Bin(k, x(0), x(1)), KInt, KInt)
	}
	for _, k := range []ExprKind{EDiv, EMul, EAdd, ESub, ELt, ELe, EEq, ENe} {
		add(Bin(k, x(0), x(1)), KFloat, KFloat)
	}
	add(&Expr{Kind: ENeg, Args: []*Expr{x(0)}}, KFloat)
	add(Bin(EAnd, x(0), x(1)), KBool, KBool)
	add(Bin(EOr, x(0), x(1)), KBool, KBool)
	add(&Expr{Kind: ENot, Args: []*Expr{x(0)}}, KBool)
	return out
}

// checkBounds evaluates c at points of the intervals and reports one
// outside Bounds (plain, and with the divisor-non-zero rules of Overflow
// for ints).
func checkBounds(c boundsCase, ivs []Interval, points [][]float64) error {
	vars := map[string]Interval{}
	for i, iv := range ivs {
		vars[fmt.Sprintf("x%d", i)] = iv
	}
	plain := c.e.Bounds(vars)
	w := boundsWalk{vars: vars, checked: true}
	checked := w.bounds(c.e)
	for _, p := range points {
		at := map[string]float64{}
		for i, v := range p {
			at[fmt.Sprintf("x%d", i)] = v
		}
		v, err := c.e.Eval(at, nil)
		if err != nil || math.IsNaN(v) {
			continue // a zero divisor, or NaN (log of a negative, sin of inf), which no interval holds
		}
		for _, b := range []Interval{plain, checked} {
			if !(v >= b.Lo && v <= b.Hi) {
				return fmt.Errorf("%s at %v = %v, outside [%v, %v] over %v", c.e, p, v, b.Lo, b.Hi, ivs)
			}
		}
	}
	return nil
}

// TestExprFuncBoundsSound: for random intervals and random points in them,
// every function's and operator's value lies in its Bounds.
func TestExprFuncBoundsSound(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for _, c := range boundsCases(t) {
		for range 3000 {
			ivs := make([]Interval, len(c.kinds))
			for i, k := range c.kinds {
				ivs[i] = randInterval(r, k)
			}
			points := make([][]float64, 8)
			for j := range points {
				points[j] = make([]float64, len(ivs))
				for i, iv := range ivs {
					points[j][i] = randPoint(r, iv, c.kinds[i])
				}
			}
			if err := checkBounds(c, ivs, points); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestExprBoundsNoClaimAtZeroDivisor: an integer / or % whose divisor
// may be 0 decides no comparison (the tile stays partial and the
// division runs, failing as it would without tiles).
func TestExprBoundsNoClaimAtZeroDivisor(t *testing.T) {
	for _, src := range []string{"q / (k - 3) < 100", "q % (k - 3) < 100", "q / (k - 3) >= -100", "q % (k - 3) >= -100"} {
		e := mustExpr(src)
		if _, err := e.Check(attnEnv()); err != nil {
			t.Fatal(err)
		}
		b := e.Bounds(map[string]Interval{"q": {0, 10}, "k": {0, 10}})
		if b != ivUnknownBool {
			t.Errorf("Bounds(%s) = %v, want [0, 1]", src, b)
		}
	}
}

// TestPeriodicBoundsTight: sin and cos do better than [-1, 1] on narrow
// intervals, and reach ±1 where an extreme lies inside.
func TestPeriodicBoundsTight(t *testing.T) {
	for _, tc := range []struct {
		fn     string
		iv     Interval
		lo, hi float64 // roughly
	}{
		{"sin", Interval{0, 1}, 0, math.Sin(1)},
		{"sin", Interval{1, 2}, math.Sin(1), 1},
		{"sin", Interval{4, 5}, -1, math.Sin(4)},
		{"cos", Interval{0.5, 3}, math.Cos(3), math.Cos(0.5)},
		{"cos", Interval{-1, 1}, math.Cos(1), 1},
		{"cos", Interval{3, 3.5}, -1, math.Cos(3.5)},
		{"sin", Interval{0, 7}, -1, 1},
		{"sin", Interval{1e7, 1e7 + 1}, -1, 1},
	} {
		f, _ := LookupExprFunc(tc.fn)
		b := f.Bounds([]Interval{tc.iv})
		if math.Abs(b.Lo-tc.lo) > 1e-12 || math.Abs(b.Hi-tc.hi) > 1e-12 {
			t.Errorf("%s over %v = %v, want about [%v, %v]", tc.fn, tc.iv, b, tc.lo, tc.hi)
		}
	}
}

// FuzzExprBounds: any intervals and points in them (drawn from the
// fuzzer's seed), evaluated by any function or operator, stay inside its
// Bounds.
//
//	go test -run '^$' -fuzz FuzzExprBounds -fuzztime 30s ./ir/
func FuzzExprBounds(f *testing.F) {
	cases := boundsCases(f)
	for i := range 8 {
		f.Add(uint(i), int64(i))
	}
	f.Fuzz(func(t *testing.T, which uint, seed int64) {
		c := cases[which%uint(len(cases))]
		r := rand.New(rand.NewSource(seed))
		ivs := make([]Interval, len(c.kinds))
		for i, k := range c.kinds {
			ivs[i] = randInterval(r, k)
		}
		points := [][]float64{make([]float64, len(ivs))}
		for i, iv := range ivs {
			points[0][i] = randPoint(r, iv, c.kinds[i])
		}
		if err := checkBounds(c, ivs, points); err != nil {
			t.Fatal(err)
		}
	})
}

// TestExprFuncDerivs: the derivative of a score through every function,
// ∂e/∂s from DerivVar, matches central finite differences at random
// points (away from kinks and jumps, where two step sizes disagree).
func TestExprFuncDerivs(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	env := ExprEnv{Vars: map[string]ScalarKind{"s": KFloat, "q": KInt, "k": KInt}}
	// The i-th argument: a different smooth function of s, so that a rule
	// that mixes up its arguments fails.
	arg := func(i int) string {
		return []string{"0.7 * s + 0.3", "1.3 - 0.4 * s", "0.5 * s * s - 0.2"}[i]
	}
	for _, f := range ExprFuncTable {
		args := make([]string, f.Arity)
		for i := range args {
			args[i] = arg(i)
		}
		if f.Chooses {
			args[0] = "s > 0.2"
		}
		srcs := []string{
			fmt.Sprintf("%s(%s)", f.Name, strings.Join(args, ", ")),
			// The chain through another function, and s twice.
			fmt.Sprintf("s * %s(%s) + sin(s)", f.Name, strings.Join(args, ", ")),
		}
		for _, src := range srcs {
			e := mustExpr(src)
			if _, err := e.Check(env); err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			d := e.DerivVar("s")
			at := func(s float64) float64 {
				v, err := e.Eval(map[string]float64{"s": s}, nil)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			compared := 0
			for range 200 {
				s := 3 * r.NormFloat64()
				fd1 := (at(s+1e-5) - at(s-1e-5)) / 2e-5
				fd2 := (at(s+1e-6) - at(s-1e-6)) / 2e-6
				if math.IsNaN(fd1) || math.IsInf(fd1, 0) || math.Abs(fd1-fd2) > 1e-4*(1+math.Abs(fd1)) {
					continue // a kink, a jump or outside the domain
				}
				got, err := d.Eval(map[string]float64{"s": s}, nil)
				if err != nil {
					t.Fatalf("d/ds %s = %s: %v", src, d, err)
				}
				if math.Abs(got-fd1) > 1e-5*(1+math.Abs(fd1)) {
					t.Fatalf("d/ds %s at s = %v: %s = %v, finite differences %v", src, s, d, got, fd1)
				}
				compared++
			}
			if compared < 50 {
				t.Errorf("d/ds %s: only %d smooth points of 200", src, compared)
			}
		}
	}
}

// TestExprInfLiteral: inf reads as +Inf, -inf as its negation, and both
// print back.
func TestExprInfLiteral(t *testing.T) {
	for src, want := range map[string]float64{"inf": math.Inf(1), "-inf": math.Inf(-1), "-(inf)": math.Inf(-1)} {
		e := mustExpr(src)
		if _, err := e.Check(attnEnv()); err != nil {
			t.Fatal(err)
		}
		v, err := e.Eval(nil, nil)
		if err != nil || v != want {
			t.Errorf("%s = %v, %v; want %v", src, v, err, want)
		}
		if b := e.Bounds(nil); b != Point(want) {
			t.Errorf("Bounds(%s) = %v", src, b)
		}
		if back := mustExpr(e.String()); !back.Equal(e) {
			t.Errorf("%s prints as %s", src, e)
		}
	}
}

// TestExprFuncsDocumented: every function is in the language reference
// and in the IR's function table.
func TestExprFuncsDocumented(t *testing.T) {
	for _, doc := range []string{"../docs/LANGUAGE.md", "../docs/IR.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range ExprFuncNames() {
			if !strings.Contains(string(b), "`"+name+"(") {
				t.Errorf("%s does not document index function %s", doc, name)
			}
		}
	}
}
