package gogen

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/attnc/attnc/ir"
	rt "github.com/attnc/attnc/runtime"
)

// rtIntervals are the runtime's interval functions by name, for the
// tests: a spelling that names one not listed here fails
// TestGoFuncsSpellEveryFunction, so a new function's interval rule gets
// compared with ir's below.
var rtIntervals = map[string]func(a []rt.Iv) rt.Iv{
	"IvAbs":     func(a []rt.Iv) rt.Iv { return rt.IvAbs(a[0]) },
	"IvClamp":   func(a []rt.Iv) rt.Iv { return rt.IvClamp(a[0], a[1], a[2]) },
	"IvCos":     func(a []rt.Iv) rt.Iv { return rt.IvCos(a[0]) },
	"IvExp":     func(a []rt.Iv) rt.Iv { return rt.IvExp(a[0]) },
	"IvFloor":   func(a []rt.Iv) rt.Iv { return rt.IvFloor(a[0]) },
	"IvLog":     func(a []rt.Iv) rt.Iv { return rt.IvLog(a[0]) },
	"IvMax":     func(a []rt.Iv) rt.Iv { return rt.IvMax(a[0], a[1]) },
	"IvMin":     func(a []rt.Iv) rt.Iv { return rt.IvMin(a[0], a[1]) },
	"IvSigmoid": func(a []rt.Iv) rt.Iv { return rt.IvSigmoid(a[0]) },
	"IvSin":     func(a []rt.Iv) rt.Iv { return rt.IvSin(a[0]) },
	"IvTanh":    func(a []rt.Iv) rt.Iv { return rt.IvTanh(a[0]) },
	"IvWhere":   func(a []rt.Iv) rt.Iv { return rt.IvWhere(a[0], a[1], a[2]) },
}

// callOf returns a checked call of f on the symbols x0, x1, … with
// numbers of kind k (where's condition a bool), and the environment.
func callOf(t *testing.T, f *ir.ExprFunc, k ir.ScalarKind) (*ir.Expr, []ir.ScalarKind) {
	t.Helper()
	env := ir.ExprEnv{Vars: map[string]ir.ScalarKind{}}
	args := make([]*ir.Expr, f.Arity)
	kinds := make([]ir.ScalarKind, f.Arity)
	for i := range args {
		kinds[i] = k
		if f.Chooses && i == 0 {
			kinds[i] = ir.KBool
		}
		name := fmt.Sprintf("x%d", i)
		env.Vars[name] = kinds[i]
		args[i] = ir.Var(name)
	}
	e := ir.Call(f.Name, args...)
	if _, err := e.Check(env); err != nil {
		t.Fatalf("%s: %v", e, err)
	}
	return e, kinds
}

// TestGoFuncsSpellEveryFunction: every row of ir.ExprFuncTable has a Go
// spelling that type-checks as Go, for int and float numbers, and an
// interval function of the runtime; no spelling names a function the
// table lacks.
func TestGoFuncsSpellEveryFunction(t *testing.T) {
	for name := range goFuncs {
		if _, ok := ir.LookupExprFunc(name); !ok {
			t.Errorf("goFuncs spells %s, which is not in ir.ExprFuncTable", name)
		}
	}
	fset := token.NewFileSet()
	for _, f := range ir.ExprFuncTable {
		sp, ok := goFuncs[f.Name]
		if !ok || sp.float == "" || sp.iv == "" {
			t.Errorf("the Go renderer has no spelling (float and interval) for index function %s", f.Name)
			continue
		}
		if rtIntervals[sp.iv] == nil {
			t.Errorf("%s: interval function rt.%s is not in rtIntervals", f.Name, sp.iv)
		}
		for _, k := range []ir.ScalarKind{ir.KInt, ir.KFloat} {
			e, kinds := callOf(t, f, k)
			r := &renderer{helpers: map[string]bool{}}
			w := &exprWriter{r: r}
			code, kind, err := w.write(e)
			if err != nil {
				t.Fatalf("%s: %v", e, err)
			}
			var params []string
			for i, pk := range kinds {
				params = append(params, fmt.Sprintf("s_x%d %s", i, goType(pk)))
			}
			src := "package p\n\nimport \"math\"\n\nvar _ = math.Pi\n\n" + helperSource[sp.helper] +
				fmt.Sprintf("\nfunc f(%s) %s { return %s }\n", strings.Join(params, ", "), goType(kind), code)
			file, err := parser.ParseFile(fset, f.Name+".go", src, 0)
			if err != nil {
				t.Fatalf("%s renders as %s: %v", e, code, err)
			}
			conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
			if _, err := conf.Check("p", fset, []*ast.File{file}, nil); err != nil {
				t.Errorf("%s renders as %s, which does not type-check: %v", e, code, err)
			}
			if strings.Contains(code, "math.") != r.useMath {
				t.Errorf("%s renders as %s but notes math: %v", e, code, r.useMath)
			}
			if sp.helper != "" && strings.Contains(code, sp.helper) != r.helpers[sp.helper] {
				t.Errorf("%s renders as %s but notes helper %s: %v", e, code, sp.helper, r.helpers[sp.helper])
			}
			if _, err := w.interval(e); err != nil {
				t.Errorf("%s: %v", e, err)
			}
		}
	}
}

// TestRuntimeIntervalsFollowIR: the runtime's interval function of every
// index function and operator computes the same interval as ir's
// rule on random intervals (ints around 0 with divisors of either sign,
// floats small, wide and infinite), so the tile classifier the renderer
// writes decides as ir.Expr.Bounds does.
func TestRuntimeIntervalsFollowIR(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	draw := func(k ir.ScalarKind) ir.Interval {
		switch k {
		case ir.KBool:
			return []ir.Interval{{Lo: 0, Hi: 0}, {Lo: 1, Hi: 1}, {Lo: 0, Hi: 1}}[rng.IntN(3)]
		case ir.KInt:
			lo := float64(rng.IntN(41) - 20)
			return ir.Interval{Lo: lo, Hi: lo + float64(rng.IntN(3)*rng.IntN(12))}
		}
		s := []float64{0.01, 1, 4, 1e6}[rng.IntN(4)]
		a, b := s*rng.NormFloat64(), s*rng.NormFloat64()
		iv := ir.Interval{Lo: math.Min(a, b), Hi: math.Max(a, b)}
		switch rng.IntN(10) {
		case 0:
			iv.Lo = math.Inf(-1)
		case 1:
			iv.Hi = math.Inf(1)
		}
		return iv
	}
	same := func(a ir.Interval, b rt.Iv) bool {
		eq := func(x, y float64) bool { return x == y || math.IsNaN(x) && math.IsNaN(y) }
		return eq(a.Lo, b.Lo) && eq(a.Hi, b.Hi)
	}
	type rule struct {
		name  string
		e     *ir.Expr
		kinds []ir.ScalarKind
		rt    func([]rt.Iv) rt.Iv
	}
	var rules []rule
	for _, f := range ir.ExprFuncTable {
		for _, k := range []ir.ScalarKind{ir.KInt, ir.KFloat} {
			e, kinds := callOf(t, f, k)
			rules = append(rules, rule{f.Name, e, kinds, rtIntervals[goFuncs[f.Name].iv]})
		}
	}
	for _, op := range []struct {
		kind ir.ExprKind
		k    ir.ScalarKind
		rt   func([]rt.Iv) rt.Iv
	}{
		{ir.EDiv, ir.KInt, func(a []rt.Iv) rt.Iv { return rt.IvDiv(a[0], a[1], true) }},
		{ir.EDiv, ir.KFloat, func(a []rt.Iv) rt.Iv { return rt.IvDiv(a[0], a[1], false) }},
		{ir.EMod, ir.KInt, func(a []rt.Iv) rt.Iv { return rt.IvMod(a[0], a[1]) }},
		{ir.EMul, ir.KFloat, func(a []rt.Iv) rt.Iv { return rt.IvMul(a[0], a[1]) }},
		{ir.EAdd, ir.KFloat, func(a []rt.Iv) rt.Iv { return rt.IvAdd(a[0], a[1]) }},
		{ir.ESub, ir.KFloat, func(a []rt.Iv) rt.Iv { return rt.IvSub(a[0], a[1]) }},
		{ir.ELt, ir.KFloat, func(a []rt.Iv) rt.Iv { return rt.IvLt(a[0], a[1]) }},
		{ir.ELe, ir.KFloat, func(a []rt.Iv) rt.Iv { return rt.IvLe(a[0], a[1]) }},
		{ir.EGt, ir.KFloat, func(a []rt.Iv) rt.Iv { return rt.IvGt(a[0], a[1]) }},
		{ir.EGe, ir.KFloat, func(a []rt.Iv) rt.Iv { return rt.IvGe(a[0], a[1]) }},
		{ir.EEq, ir.KInt, func(a []rt.Iv) rt.Iv { return rt.IvEq(a[0], a[1]) }},
		{ir.ENe, ir.KInt, func(a []rt.Iv) rt.Iv { return rt.IvNe(a[0], a[1]) }},
		{ir.EAnd, ir.KBool, func(a []rt.Iv) rt.Iv { return rt.IvAnd(a[0], a[1]) }},
		{ir.EOr, ir.KBool, func(a []rt.Iv) rt.Iv { return rt.IvOr(a[0], a[1]) }},
	} {
		e := ir.Bin(op.kind, ir.Var("x0"), ir.Var("x1"))
		if _, err := e.Check(ir.ExprEnv{Vars: map[string]ir.ScalarKind{"x0": op.k, "x1": op.k}}); err != nil {
			t.Fatal(err)
		}
		rules = append(rules, rule{e.String(), e, []ir.ScalarKind{op.k, op.k}, op.rt})
	}
	for _, op := range []struct {
		kind ir.ExprKind
		k    ir.ScalarKind
		rt   func([]rt.Iv) rt.Iv
	}{
		{ir.ENeg, ir.KFloat, func(a []rt.Iv) rt.Iv { return rt.IvNeg(a[0]) }},
		{ir.ENot, ir.KBool, func(a []rt.Iv) rt.Iv { return rt.IvNot(a[0]) }},
	} {
		e := &ir.Expr{Kind: op.kind, Args: []*ir.Expr{ir.Var("x0")}}
		if _, err := e.Check(ir.ExprEnv{Vars: map[string]ir.ScalarKind{"x0": op.k}}); err != nil {
			t.Fatal(err)
		}
		rules = append(rules, rule{e.String(), e, []ir.ScalarKind{op.k}, op.rt})
	}
	for _, r := range rules {
		if r.rt == nil {
			continue // reported by TestGoFuncsSpellEveryFunction
		}
		for range 3000 {
			vars := map[string]ir.Interval{}
			ivs := make([]rt.Iv, len(r.kinds))
			for i, k := range r.kinds {
				iv := draw(k)
				vars[fmt.Sprintf("x%d", i)] = iv
				ivs[i] = rt.Iv{Lo: iv.Lo, Hi: iv.Hi}
			}
			want := r.e.Bounds(vars)
			got := r.rt(ivs)
			// ir widens a NaN end to the unbounded side; the runtime's
			// rules make no NaN ends from non-NaN intervals.
			if !same(want, got) {
				t.Fatalf("%s over %v: runtime %v, ir %v", r.name, ivs, got, want)
			}
		}
	}
}
