package ir

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"
)

func TestDimArithmetic(t *testing.T) {
	for _, tc := range []struct {
		d    Dim
		want string
	}{
		{c(128), "128"},
		{c(-3), "-3"},
		{dN, "N"},
		{dN.Sub(c(1)), "N-1"},
		{dN.Add(c(1)), "N+1"},
		{dS.Add(dT), "S+T"},
		{dT.Add(dS), "S+T"},
		{dS.Add(dT).Sub(c(1)), "S+T-1"},
		{dN.Scale(2), "2*N"},
		{dN.Scale(-1), "-N"},
		{dN.Scale(-2).Add(c(3)), "-2*N+3"},
		{c(3).Sub(dN.Scale(2)), "-2*N+3"},
		{dN.Sub(dN), "0"},
		{dN.Scale(0), "0"},
		{dS.Add(dT).Sub(dS), "T"},
		{dB.Scale(3).Sub(dN).Add(c(-7)), "3*B-N-7"},
		{dT.Sub(dS), "-S+T"},
	} {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("dim %+v prints %s, want %s", tc.d, got, tc.want)
		}
	}
	if !dS.Add(dT).Equal(dT.Add(dS)) {
		t.Error("S+T != T+S")
	}
	if dS.Equal(dT) || dN.Equal(dN.Add(c(1))) || dN.Equal(dN.Scale(2)) {
		t.Error("different dims compare equal")
	}
	if v, ok := dN.Sub(dN).Add(c(5)).IsConst(); !ok || v != 5 {
		t.Errorf("N-N+5 IsConst = %d, %v", v, ok)
	}
	if _, ok := dN.IsConst(); ok {
		t.Error("N is not constant")
	}
	if got := dS.Add(dT).Add(dS).Syms(); strings.Join(got, ",") != "S,T" {
		t.Errorf("Syms = %v", got)
	}
	v, err := dS.Scale(2).Add(dT).Sub(c(1)).Eval(map[string]int64{"S": 10, "T": 3})
	if err != nil || v != 22 {
		t.Errorf("(2*S+T-1) at S=10, T=3 = %d, %v", v, err)
	}
	if _, err := dN.Eval(map[string]int64{}); err == nil || !strings.Contains(err.Error(), "symbol N is not bound") {
		t.Errorf("unbound symbol: %v", err)
	}
	sizes, err := Shape{dB, dN.Sub(c(1)), c(4)}.Eval(map[string]int64{"B": 2, "N": 8})
	if err != nil || len(sizes) != 3 || sizes[0] != 2 || sizes[1] != 7 || sizes[2] != 4 {
		t.Errorf("Shape.Eval = %v, %v", sizes, err)
	}
	if _, err := (Shape{dN.Sub(c(9))}).Eval(map[string]int64{"N": 8}); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative dim: %v", err)
	}
	if got := (Shape{dB, dS.Add(dT), c(128)}).String(); got != "[B, S+T, 128]" {
		t.Errorf("shape prints %s", got)
	}
	if got := TensorOf(F32).String(); got != "f32[]" {
		t.Errorf("scalar prints %s", got)
	}
}

func TestDTypes(t *testing.T) {
	for _, dt := range []DType{Bool, I32, F32} {
		back, ok := ParseDType(dt.String())
		if !ok || back != dt {
			t.Errorf("ParseDType(%s) = %v, %v", dt, back, ok)
		}
	}
	if _, ok := ParseDType("invalid"); ok {
		t.Error("invalid is not a dtype")
	}
	if got := DType(99).String(); got != "dtype(99)" {
		t.Errorf("DType(99) prints %s", got)
	}
	if TensorOf(F32, dN).Equal(TensorOf(I32, dN)) || !TensorOf(F32, dN).Equal(TensorOf(F32, dN)) {
		t.Error("Type.Equal")
	}
}

func TestNumElements(t *testing.T) {
	from := Shape{dB, dN, c(4), c(32)}
	if !from.NumElements().Equal(Shape{dB, dN, c(128)}.NumElements()) {
		t.Error("[B, N, 4, 32] and [B, N, 128] should have equal element counts")
	}
	if from.NumElements().Equal(Shape{dB, dN, c(100)}.NumElements()) {
		t.Error("[B, N, 4, 32] and [B, N, 100] should differ")
	}
	if !(Shape{dN.Add(c(1)), dN.Sub(c(1))}).NumElements().Equal(Poly{"N*N": 1, "": -1}) {
		t.Error("(N+1)(N-1) should be N*N - 1")
	}
	if (Shape{dN, dN}).NumElements().Equal(Shape{dN.Scale(2), dN}.NumElements()) {
		t.Error("N*N should differ from 2*N*N")
	}
	if !(Shape{}).NumElements().Equal(Poly{"": 1}) {
		t.Error("a scalar has one element")
	}
	if !(Shape{dS, dT}).NumElements().Equal(Shape{dT, dS}.NumElements()) {
		t.Error("S*T should equal T*S")
	}

	b := NewBuilder("m", "B", "N")
	x := b.MustGiven(OpInput, TensorOf(F32, dB, dN, c(4), c(32)), Attrs{"name": StringAttr("x")})
	if _, err := b.Given(OpReshape, TensorOf(F32, dB, dN, c(128)), nil, x); err != nil {
		t.Errorf("reshape [B, N, 4, 32] to [B, N, 128]: %v", err)
	}
	_, err := b.Given(OpReshape, TensorOf(F32, dB, dN, c(100)), nil, x)
	if err == nil || !strings.Contains(err.Error(), "element counts differ") {
		t.Errorf("reshape to [B, N, 100]: %v", err)
	}
}

func TestBroadcast(t *testing.T) {
	for _, tc := range []struct {
		in   []Shape
		want string
	}{
		{[]Shape{{dB, dN, c(1)}, {c(1), c(64)}}, "[B, N, 64]"},
		{[]Shape{{}, {dB}}, "[B]"},
		{[]Shape{{dB, c(1)}, {c(1), dN}, {dN}}, "[B, N]"},
		{[]Shape{{dS.Add(dT)}, {dT.Add(dS)}}, "[S+T]"},
		{[]Shape{}, "[]"},
	} {
		got, err := Broadcast(tc.in...)
		if err != nil || got.String() != tc.want {
			t.Errorf("Broadcast%v = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	if _, err := Broadcast(Shape{dN}, Shape{dS}); err == nil || !strings.Contains(err.Error(), "do not broadcast: dim N vs S") {
		t.Errorf("N vs S: %v", err)
	}
	if _, err := Broadcast(Shape{c(2), dN}, Shape{c(3), dN}); err == nil {
		t.Error("2 vs 3 should not broadcast")
	}
}

// attnEnv is the environment attention gives mask and score expressions,
// with two captured tensors: f32[4, 256] and i32[B, N].
func attnEnv(captures ...Type) ExprEnv {
	env := ExprEnv{Vars: map[string]ScalarKind{"q": KInt, "k": KInt, "h": KInt, "b": KInt, "N": KInt, "s": KFloat}, Captures: captures}
	return env
}

func TestExprCheck(t *testing.T) {
	env := attnEnv(TensorOf(F32, c(4), c(256)), TensorOf(I32, dB, dN), TensorOf(Bool, dB, dN))
	for _, tc := range []struct {
		src  string
		want ScalarKind
	}{
		{"k <= q", KBool},
		{"k <= q && q - k < 128", KBool},
		{"q - k", KInt},
		{"(q - k) / 64", KInt},
		{"s * 2", KFloat},
		{"q / 2.0", KFloat},
		{"s + $0[h, clamp(q - k, 0, 255)]", KFloat},
		{"$1[b, q] == $1[b, k]", KBool},
		{"$2[b, k] && !(k > q)", KBool},
		{"where(k <= q, s, -inf)", KFloat},
		{"where(k <= q, 1, 2)", KInt},
		{"abs(q - k)", KInt},
		{"min(q, 2.5)", KFloat},
		{"tanh(q)", KFloat},
		{"true == false", KBool},
	} {
		e := mustExpr(tc.src)
		got, err := e.Check(env)
		if err != nil || got != tc.want {
			t.Errorf("Check(%s) = %s, %v; want %s", tc.src, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ src, want string }{
		{"$1[b, $0[h, q]]", "index 1 of $1 is float, want int"},
		{"$0[h, $1[b, q] * 0.5]", "index 1 of $0 is float, want int"},
		{"s % 2", "% needs ints, got float and int"},
		{"q % 2.0", "% needs ints"},
		{"z < q", `unknown variable "z"`},
		{"$3[q]", "capture $3 out of range (3 captured)"},
		{"$0[q]", "captured tensor $0 has rank 2 but is indexed with 1 indices"},
		{"-(k < q)", "cannot negate a bool"},
		{"!q", "! needs a bool, got int"},
		{"k < q && 1", "&& needs bools, got bool and int"},
		{"(k < q) == 1", "cannot compare bool with int"},
		{"(k < q) < 1", "< needs numbers"},
		{"where(q, 1, 2)", "where condition is int, want bool"},
		{"exp(k < q)", "exp of a bool"},
		{"q + (k < q)", "+ needs numbers, got int and bool"},
	} {
		_, err := mustExpr(tc.src).Check(env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%s) = %v, want an error containing %q", tc.src, err, tc.want)
		}
	}
	if _, err := Call("foo", Var("q")).Check(env); err == nil || !strings.Contains(err.Error(), `unknown function "foo"`) {
		t.Errorf("unknown function: %v", err)
	}
	if _, err := Call("clamp", Var("q")).Check(env); err == nil || !strings.Contains(err.Error(), "clamp takes 3 arguments, got 1") {
		t.Errorf("clamp arity: %v", err)
	}
	var nilExpr *Expr
	if _, err := nilExpr.Check(env); err == nil {
		t.Error("nil expression checks")
	}
}

// evalAt checks src, then evaluates it with vars.
func evalAt(t *testing.T, src string, vars map[string]float64) float64 {
	t.Helper()
	e := mustExpr(src)
	if _, err := e.Check(attnEnv(TensorOf(F32, c(4), c(8)))); err != nil {
		t.Fatalf("Check(%s): %v", src, err)
	}
	v, err := e.Eval(vars, func(i int, idx []int) (float64, error) { return float64(10*idx[0] + idx[1]), nil })
	if err != nil {
		t.Fatalf("Eval(%s): %v", src, err)
	}
	return v
}

func TestExprEval(t *testing.T) {
	vars := map[string]float64{"q": 5, "k": 3, "h": 1, "b": 0, "N": 16, "s": 0.5}
	for _, tc := range []struct {
		src  string
		want float64
	}{
		{"(-7) / 2", -4},
		{"-7 / 2", -4},
		{"-(7 / 2)", -3},
		{"(-7) % 3", 2},
		{"7 % (-3)", -2},
		{"(-8) % 4", 0},
		{"7 / 2", 3},
		{"7 / 2.0", 3.5},
		{"(k - q) / 4", -1},
		{"(k - q) % 4", 2},
		{"q - k < 128 && k <= q", 1},
		{"k > q || false", 0},
		{"!(k > q)", 1},
		{"s + $0[h, clamp(q - k, 0, 7)]", 12.5},
		{"where(k < q, s, -inf)", 0.5},
		{"where(k > q, s, -inf)", math.Inf(-1)},
		{"max(q, k) - min(q, k) + abs(k - q)", 4},
		{"clamp(q, 6, 9) + clamp(q, 0, 2)", 8},
		{"sigmoid(0.0) + tanh(0.0) + exp(0.0) + log(1.0)", 1.5},
		{"N - q", 11},
		{"2 * -3", -6},
		{"q == 5 && k != 5", 1},
		{"q >= 5 && q > 4 && q <= 5 && q < 6", 1},
	} {
		if got := evalAt(t, tc.src, vars); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.src, got, tc.want)
		}
	}
	// Without Check, / has no kind and divides as floats.
	if v, _ := mustExpr("7 / 2").Eval(nil, nil); v != 3.5 {
		t.Errorf("unchecked 7 / 2 = %v", v)
	}
	for _, tc := range []struct{ src, want string }{
		{"q / (k - k)", "integer division by zero"},
		{"q % (k - k)", "modulo by zero"},
	} {
		e := mustExpr(tc.src)
		if _, err := e.Check(attnEnv()); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Eval(vars, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.src, err, tc.want)
		}
	}
	if _, err := mustExpr("z + 1").Eval(vars, nil); err == nil || !strings.Contains(err.Error(), "variable z is not bound") {
		t.Errorf("unbound variable: %v", err)
	}
	if _, err := mustExpr("$0[q]").Eval(vars, nil); err == nil || !strings.Contains(err.Error(), "no captured tensors") {
		t.Errorf("unbound capture: %v", err)
	}
}

func TestExprBoundsTiles(t *testing.T) {
	iv := func(lo, hi float64) Interval { return Interval{lo, hi} }
	const (
		alwaysTrue  = "always true"
		alwaysFalse = "always false"
		unknown     = "unknown"
	)
	verdict := func(b Interval) string {
		switch {
		case b.AlwaysTrue():
			return alwaysTrue
		case b.AlwaysFalse():
			return alwaysFalse
		case b.Lo == 0 && b.Hi == 1:
			return unknown
		}
		return "not a bool interval: " + FormatFloat(b.Lo) + ", " + FormatFloat(b.Hi)
	}
	for _, tc := range []struct {
		name, mask string
		vars       map[string]Interval
		want       string
	}{
		{"causal above the diagonal", "k <= q", map[string]Interval{"q": iv(0, 63), "k": iv(64, 127)}, alwaysFalse},
		{"causal below the diagonal", "k <= q", map[string]Interval{"q": iv(64, 127), "k": iv(0, 63)}, alwaysTrue},
		{"causal on the diagonal", "k <= q", map[string]Interval{"q": iv(64, 127), "k": iv(64, 127)}, unknown},
		{"sliding window, far past", "k <= q && q - k < w", map[string]Interval{"q": iv(512, 575), "k": iv(0, 63), "w": Point(128)}, alwaysFalse},
		{"sliding window, inside", "k <= q && q - k < w", map[string]Interval{"q": iv(512, 575), "k": iv(448, 511), "w": Point(128)}, alwaysTrue},
		{"sliding window, window edge", "k <= q && q - k < w", map[string]Interval{"q": iv(512, 575), "k": iv(384, 447), "w": Point(128)}, unknown},
		{"sliding window, future", "k <= q && q - k < 128", map[string]Interval{"q": iv(0, 63), "k": iv(64, 127)}, alwaysFalse},
		{"prefix-LM, keys in the prefix", "k < S || k <= q", map[string]Interval{"q": iv(0, 63), "k": iv(64, 127), "S": Point(128)}, alwaysTrue},
		{"prefix-LM, future keys past the prefix", "k < S || k <= q", map[string]Interval{"q": iv(0, 63), "k": iv(64, 127), "S": Point(64)}, alwaysFalse},
		{"prefix-LM, past keys past the prefix", "k < S || k <= q", map[string]Interval{"q": iv(128, 191), "k": iv(64, 127), "S": Point(64)}, alwaysTrue},
		{"prefix-LM, diagonal past the prefix", "k < S || k <= q", map[string]Interval{"q": iv(128, 191), "k": iv(128, 191), "S": Point(64)}, unknown},
		{"prefix-LM, prefix edge", "k < S || k <= q", map[string]Interval{"q": iv(0, 63), "k": iv(64, 127), "S": Point(100)}, unknown},
		{"unbounded prefix", "k < S || k <= q", map[string]Interval{"q": iv(0, 63), "k": iv(64, 127)}, unknown},
		{"block diagonal", "q / 64 == k / 64", map[string]Interval{"q": iv(0, 63), "k": iv(64, 127)}, alwaysFalse},
		{"block diagonal, same block", "q / 64 == k / 64", map[string]Interval{"q": iv(64, 127), "k": iv(64, 127)}, alwaysTrue},
		{"negation", "!(k <= q)", map[string]Interval{"q": iv(0, 63), "k": iv(64, 127)}, alwaysTrue},
	} {
		e := mustExpr(tc.mask)
		env := attnEnv()
		env.Vars["w"], env.Vars["S"] = KInt, KInt
		if _, err := e.Check(env); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := verdict(e.Bounds(tc.vars)); got != tc.want {
			t.Errorf("%s: %s over %v is %s, want %s", tc.name, tc.mask, tc.vars, got, tc.want)
		}
	}
	// Numeric bounds.
	for _, tc := range []struct {
		src    string
		vars   map[string]Interval
		lo, hi float64
	}{
		{"q - k", map[string]Interval{"q": iv(0, 3), "k": iv(0, 3)}, -3, 3},
		{"clamp(q - k, 0, 255)", map[string]Interval{"q": iv(0, 1000), "k": iv(0, 10)}, 0, 255},
		{"(q - k) % 8", map[string]Interval{"q": iv(16, 19), "k": Point(0)}, 0, 3},
		{"(q - k) % 8", map[string]Interval{"q": iv(0, 100), "k": Point(0)}, 0, 7},
		{"q / 4", map[string]Interval{"q": iv(-5, 9)}, -2, 2},
		{"abs(q)", map[string]Interval{"q": iv(-5, 3)}, 0, 5},
		{"q * k", map[string]Interval{"q": iv(-2, 3), "k": iv(-5, 4)}, -15, 12},
		{"s + $0[h, q]", map[string]Interval{"s": iv(0, 1)}, math.Inf(-1), math.Inf(1)},
		{"q", nil, math.Inf(-1), math.Inf(1)},
	} {
		e := mustExpr(tc.src)
		if _, err := e.Check(attnEnv(TensorOf(F32, c(4), c(8)))); err != nil {
			t.Fatal(err)
		}
		if b := e.Bounds(tc.vars); b.Lo != tc.lo || b.Hi != tc.hi {
			t.Errorf("Bounds(%s) over %v = [%v, %v], want [%v, %v]", tc.src, tc.vars, b.Lo, b.Hi, tc.lo, tc.hi)
		}
	}
}

// TestExprBoundsSound is the property the sparsity pass relies on: for
// random expressions, random small intervals and random points inside
// them, the value at the point lies inside the bounds.
func TestExprBoundsSound(t *testing.T) { checkBoundsSound(t, 3, 3000) }

func checkBoundsSound(t *testing.T, seed int64, n int) {
	r := rand.New(rand.NewSource(seed))
	env := attnEnv(TensorOf(F32, c(4), c(8)), TensorOf(Bool, c(8)))
	checked := 0
	for i := 0; i < n; i++ {
		var e *Expr
		if r.Intn(2) == 0 {
			e = randomBool(r, 4)
		} else {
			e = randomNum(r, 4)
		}
		if _, err := e.Check(env); err != nil {
			t.Fatalf("generated %s does not check: %v", e, err)
		}
		vars := map[string]Interval{}
		for _, v := range []string{"q", "k", "h", "N"} {
			lo := float64(r.Intn(41) - 20)
			vars[v] = Interval{lo, lo + float64(r.Intn(10))}
		}
		slo := float64(r.Intn(9)-4) / 2
		vars["s"] = Interval{slo, slo + float64(r.Intn(4))/4}
		b := e.Bounds(vars)
		if math.IsNaN(b.Lo) || math.IsNaN(b.Hi) || b.Lo > b.Hi {
			t.Fatalf("Bounds(%s) over %v = [%v, %v] is not an interval", e, vars, b.Lo, b.Hi)
		}
		for range 20 {
			point := map[string]float64{}
			for v, iv := range vars {
				if v == "s" {
					point[v] = iv.Lo + r.Float64()*(iv.Hi-iv.Lo)
				} else {
					point[v] = iv.Lo + float64(r.Intn(int(iv.Hi-iv.Lo)+1))
				}
			}
			if !evalsClean(e, point, fakeCapture) {
				// Division by zero, or a NaN (the log of a negative)
				// somewhere inside: intervals do not describe NaN, and
				// a comparison with NaN is false, not unknown.
				continue
			}
			val, _ := e.Eval(point, fakeCapture)
			checked++
			if val < b.Lo || val > b.Hi {
				t.Fatalf("%s at %v = %v, outside Bounds [%v, %v] over %v", e, point, val, b.Lo, b.Hi, vars)
			}
		}
	}
	if checked < 3*n {
		t.Errorf("only %d points checked", checked)
	}
}

// fakeCapture gives captured tensor 0 (f32) and 1 (bool) values that
// depend only on the indices.
func fakeCapture(i int, idx []int) (float64, error) {
	h := 0
	for _, x := range idx {
		h = h*31 + x
	}
	if i == 1 {
		return float64(h & 1), nil
	}
	return float64(h%201) / 2, nil
}

// evalsClean reports whether every node of e evaluates at point without
// an error or a NaN.
func evalsClean(e *Expr, point map[string]float64, capture func(int, []int) (float64, error)) bool {
	ok := true
	e.Walk(func(x *Expr) {
		if v, err := x.Eval(point, capture); err != nil || math.IsNaN(v) {
			ok = false
		}
	})
	return ok
}

var (
	intVars  = []string{"q", "k", "h", "N"}
	cmpKinds = []ExprKind{ELt, ELe, EGt, EGe, EEq, ENe}
)

// unaryFuncs are the functions of one number.
var unaryFuncs = func() []string {
	var out []string
	for _, f := range ExprFuncTable {
		if f.Arity == 1 {
			out = append(out, f.Name)
		}
	}
	return out
}()

// randomNum generates a well-typed int or float expression.
func randomNum(r *rand.Rand, depth int) *Expr {
	if depth == 0 || r.Intn(5) == 0 {
		switch r.Intn(5) {
		case 0:
			return Int(int64(r.Intn(21) - 10))
		case 1:
			return Float(float64(r.Intn(17)-8) / 4)
		case 2:
			return Var("s")
		default:
			return Var(intVars[r.Intn(len(intVars))])
		}
	}
	switch r.Intn(12) {
	case 0:
		return &Expr{Kind: ENeg, Args: []*Expr{randomNum(r, depth-1)}}
	case 1:
		return Call("clamp", randomNum(r, depth-1), randomNum(r, depth-1), randomNum(r, depth-1))
	case 2:
		return Call([]string{"min", "max"}[r.Intn(2)], randomNum(r, depth-1), randomNum(r, depth-1))
	case 3:
		return Call(unaryFuncs[r.Intn(len(unaryFuncs))], randomNum(r, depth-1))
	case 4:
		return Call("where", randomBool(r, depth-1), randomNum(r, depth-1), randomNum(r, depth-1))
	case 5:
		return Bin(EMod, randomInt(r, depth-1), randomInt(r, depth-1))
	case 6:
		return Capture(0, randomInt(r, depth-1), randomInt(r, depth-1))
	default:
		kinds := []ExprKind{EAdd, ESub, EMul, EDiv}
		return Bin(kinds[r.Intn(len(kinds))], randomNum(r, depth-1), randomNum(r, depth-1))
	}
}

// randomInt generates an int expression (no floats, no captures).
func randomInt(r *rand.Rand, depth int) *Expr {
	if depth == 0 || r.Intn(3) == 0 {
		if r.Intn(2) == 0 {
			return Int(int64(r.Intn(21) - 10))
		}
		return Var(intVars[r.Intn(len(intVars))])
	}
	kinds := []ExprKind{EAdd, ESub, EMul, EDiv, EMod}
	return Bin(kinds[r.Intn(len(kinds))], randomInt(r, depth-1), randomInt(r, depth-1))
}

// randomBool generates a bool expression.
func randomBool(r *rand.Rand, depth int) *Expr {
	if depth == 0 || r.Intn(6) == 0 {
		switch r.Intn(3) {
		case 0:
			return &Expr{Kind: EBool, Int: int64(r.Intn(2))}
		case 1:
			return Capture(1, randomInt(r, 0))
		}
		return Bin(ELe, Var("k"), Var("q"))
	}
	switch r.Intn(6) {
	case 0:
		return &Expr{Kind: ENot, Args: []*Expr{randomBool(r, depth-1)}}
	case 1:
		return Bin([]ExprKind{EAnd, EOr}[r.Intn(2)], randomBool(r, depth-1), randomBool(r, depth-1))
	case 2:
		return Bin([]ExprKind{EEq, ENe}[r.Intn(2)], randomBool(r, depth-1), randomBool(r, depth-1))
	default:
		return Bin(cmpKinds[r.Intn(len(cmpKinds))], randomNum(r, depth-1), randomNum(r, depth-1))
	}
}

func TestExprHelpers(t *testing.T) {
	e := mustExpr("$1[b, k] && $0[h, q - k] > 0.0 || $1[b, q]")
	if got := e.Captures(); len(got) != 2 || got[0] != 1 || got[1] != 0 {
		t.Errorf("Captures = %v, want [1 0]", got)
	}
	n := 0
	e.Walk(func(*Expr) { n++ })
	if n != 15 {
		t.Errorf("Walk visited %d nodes, want 15", n)
	}
	if !Float(math.NaN()).Equal(Float(math.NaN())) {
		t.Error("NaN literals should be equal trees")
	}
	if Int(1).Equal(Float(1)) || Var("q").Equal(Var("k")) || Int(1).Equal(nil) {
		t.Error("different trees compare equal")
	}
	for _, sym := range []string{"+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=", "&&", "||"} {
		k, ok := BinaryExprKind(sym)
		if !ok || Bin(k, Var("a"), Var("b")).String() != "a "+sym+" b" {
			t.Errorf("BinaryExprKind(%q) = %v, %v", sym, k, ok)
		}
	}
	if _, ok := BinaryExprKind("^"); ok {
		t.Error("^ is not an operator")
	}
	// Malformed trees print without panicking.
	for _, bad := range []*Expr{{Kind: ENeg}, {Kind: EAdd, Args: []*Expr{Int(1)}}, {Kind: ExprKind(99)}, nil} {
		_ = bad.String()
	}
	for _, tc := range []struct {
		v    float64
		want string
	}{{1, "1.0"}, {0.125, "0.125"}, {1e-5, "1e-05"}, {1e21, "1e+21"}, {-2, "-2.0"}, {math.Inf(1), "inf"}, {math.NaN(), "nan"}} {
		if got := FormatFloat(tc.v); got != tc.want {
			t.Errorf("FormatFloat(%v) = %s, want %s", tc.v, got, tc.want)
		}
	}
	if KFloat.String() != "float" || KBool.String() != "bool" {
		t.Error("ScalarKind names")
	}
}

// instr is a hand-made instruction for verifier tests, which need IR the
// Builder refuses to make.
func instr(id int, op Op, t Type, attrs Attrs, args ...*Instr) *Instr {
	if attrs == nil {
		attrs = Attrs{}
	}
	return &Instr{ID: id, Op: op, Args: args, Attrs: attrs, Type: t}
}

func TestVerifyErrors(t *testing.T) {
	scalar := TensorOf(F32)
	one := Attrs{"value": FloatAttr(1)}
	later := instr(1, OpConst, scalar, one)
	tests := []struct {
		name  string
		build func(m *Module)
		want  string
	}{
		{"use before def", func(m *Module) {
			m.Instrs = []*Instr{instr(0, OpNeg, scalar, nil, later), later}
		}, "%0 = neg: operand 0 (%1) is used before it is defined"},
		{"operand not in module", func(m *Module) {
			m.Instrs = []*Instr{instr(0, OpNeg, scalar, nil, instr(9, OpConst, scalar, one))}
		}, "operand 0 (%9) is used before it is defined"},
		{"wrong arity", func(m *Module) {
			m.Instrs = []*Instr{instr(0, OpNeg, scalar, nil)}
		}, "%0 = neg: takes 1 operands, got 0"},
		{"too few variadic operands", func(m *Module) {
			m.Instrs = []*Instr{instr(0, OpConcat, scalar, Attrs{"axis": IntAttr(0)})}
		}, "takes at least 1 operands, got 0"},
		{"nil operand", func(m *Module) {
			m.Instrs = []*Instr{instr(0, OpNeg, scalar, nil, nil)}
		}, "operand 0 is missing"},
		{"unknown op", func(m *Module) {
			m.Instrs = []*Instr{instr(0, OpInvalid, scalar, nil)}
		}, "unknown op op(0)"},
		{"unknown attribute", func(m *Module) {
			m.Instrs = []*Instr{instr(0, OpConst, scalar, Attrs{"value": FloatAttr(1), "color": StringAttr("red")})}
		}, "unknown attribute color"},
		{"missing attribute", func(m *Module) {
			m.Instrs = []*Instr{instr(0, OpConst, scalar, nil)}
		}, "missing attribute value"},
		{"wrong attribute kind", func(m *Module) {
			m.Instrs = []*Instr{instr(0, OpConst, scalar, Attrs{"value": IntAttr(1)})}
		}, "attribute value is a int, want a float"},
		{"bad word", func(m *Module) {
			m.Instrs = []*Instr{instr(0, OpParam, scalar, Attrs{"name": StringAttr("w"), "init": WordAttr("gaussian")})}
		}, "attribute init = gaussian: want one of [normal uniform zeros ones]"},
		{"type mismatch", func(m *Module) {
			x := instr(0, OpConst, scalar, one)
			m.Instrs = []*Instr{x, instr(1, OpAdd, TensorOf(I32), nil, x, x)}
		}, "%1 = add: result type is i32[], but the operands give f32[]"},
		{"operand type", func(m *Module) {
			x := instr(0, OpConst, TensorOf(I32), one)
			m.Instrs = []*Instr{x, instr(1, OpExp, TensorOf(I32), nil, x)}
		}, "operand is i32, want f32"},
		{"undeclared symbol", func(m *Module) {
			m.Instrs = []*Instr{instr(0, OpInput, TensorOf(F32, dB, SymDim("Q")), Attrs{"name": StringAttr("x")})}
		}, "type f32[B, Q] mentions undeclared symbol Q"},
		{"negative dim", func(m *Module) {
			m.Instrs = []*Instr{instr(0, OpInput, TensorOf(F32, c(-1)), Attrs{"name": StringAttr("x")})}
		}, "has a negative dimension"},
		{"no dtype", func(m *Module) {
			m.Instrs = []*Instr{instr(0, OpInput, Type{}, Attrs{"name": StringAttr("x")})}
		}, "result has no dtype"},
		{"duplicate param name", func(m *Module) {
			w := Attrs{"name": StringAttr("w"), "init": WordAttr("zeros")}
			m.Instrs = []*Instr{instr(0, OpParam, scalar, w), instr(1, OpParam, scalar, w)}
		}, `%1 = param: param "w" already defined by %0`},
		{"duplicate value", func(m *Module) {
			m.Instrs = []*Instr{instr(0, OpConst, scalar, one), instr(0, OpConst, scalar, one)}
		}, "value %0 defined twice"},
		{"nil instruction", func(m *Module) {
			m.Instrs = []*Instr{nil}
		}, "nil instruction"},
		{"non-scalar loss", func(m *Module) {
			x := instr(0, OpInput, TensorOf(F32, dB), Attrs{"name": StringAttr("x")})
			m.Instrs = []*Instr{x}
			m.Outputs = []Output{{Kind: OutLoss, Name: "loss", Value: x}}
		}, "loss must be an f32 scalar, got f32[B]"},
		{"bool metric", func(m *Module) {
			x := instr(0, OpInput, TensorOf(Bool), Attrs{"name": StringAttr("x")})
			m.Instrs = []*Instr{x}
			m.Outputs = []Output{{Kind: OutMetric, Name: "ok", Value: x}}
		}, `metric "ok" must be a numeric scalar`},
		{"two losses", func(m *Module) {
			x := instr(0, OpConst, scalar, one)
			m.Instrs = []*Instr{x}
			m.Outputs = []Output{{Kind: OutLoss, Name: "a", Value: x}, {Kind: OutLoss, Name: "b", Value: x}}
		}, "module has 2 losses"},
		{"output listed twice", func(m *Module) {
			x := instr(0, OpConst, scalar, one)
			m.Instrs = []*Instr{x}
			m.Outputs = []Output{{Kind: OutValue, Name: "y", Value: x}, {Kind: OutValue, Name: "y", Value: x}}
		}, `output output "y" listed twice`},
		{"output not in module", func(m *Module) {
			m.Outputs = []Output{{Kind: OutValue, Name: "y", Value: instr(0, OpConst, scalar, one)}}
		}, `output output "y" refers to a value not in the module`},
		{"bad symbol", func(m *Module) { m.Syms = []string{"B", "q"} }, `symbol "q" is not a valid name`},
		{"symbol that reads as a literal", func(m *Module) { m.Syms = []string{"inf"} }, `symbol "inf" is not a valid name`},
		{"symbol declared twice", func(m *Module) { m.Syms = []string{"B", "B"} }, "symbol B declared twice"},
		{"bad mask", func(m *Module) {
			q := instr(0, OpInput, TensorOf(F32, dB, c(2), dN, c(8)), Attrs{"name": StringAttr("q")})
			m.Instrs = []*Instr{q, instr(1, OpAttention, q.Type, Attrs{"mask": ExprAttr(mustExpr("s < 0.0")), "scale": FloatAttr(1)}, q, q, q)}
		}, `mask s < 0.0: unknown variable "s"`},
		{"unused capture", func(m *Module) {
			q := instr(0, OpInput, TensorOf(F32, dB, c(2), dN, c(8)), Attrs{"name": StringAttr("q")})
			m.Instrs = []*Instr{q, instr(1, OpAttention, q.Type, Attrs{"scale": FloatAttr(1)}, q, q, q, q)}
		}, "captured operand $0 is not read by mask or score"},
	}
	all := &Module{Name: "all", Syms: []string{"B", "N"}}
	for _, tc := range tests {
		m := &Module{Name: tc.name, Syms: []string{"B", "N"}}
		tc.build(m)
		err := Verify(m)
		var verr *VerifyError
		if !errors.As(err, &verr) {
			t.Errorf("%s: Verify = %v, want a *VerifyError", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Verify =\n%v\nwant an error containing %q", tc.name, err, tc.want)
		}
		// Gather the same mistakes, renumbered, into one module.
		if tc.name != "bad symbol" && tc.name != "symbol declared twice" && tc.name != "symbol that reads as a literal" && tc.name != "duplicate value" {
			base := 100 * (len(all.Instrs) + 1)
			for _, in := range m.Instrs {
				if in != nil {
					in.ID += base
				}
			}
			all.Instrs = append(all.Instrs, m.Instrs...)
			all.Outputs = append(all.Outputs, m.Outputs...)
		}
	}
	// Every kind of mistake is reported at once, not just the first.
	err := Verify(all)
	var verr *VerifyError
	if !errors.As(err, &verr) {
		t.Fatalf("Verify(all) = %v", err)
	}
	if len(verr.Errs) < 20 {
		t.Errorf("Verify collected %d errors, want at least 20:\n%v", len(verr.Errs), err)
	}
	for _, want := range []string{"used before it is defined", "takes 1 operands", "unknown attribute color", "want a float",
		"want one of", "but the operands give", "undeclared symbol Q", `param "w" already defined`, "loss must be an f32 scalar"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Verify(all) does not report %q", want)
		}
	}
	if len(verr.Unwrap()) != len(verr.Errs) {
		t.Error("Unwrap")
	}
}

func TestVerifyGolden(t *testing.T) {
	for _, g := range goldenModules {
		if _, err := g.build(); err != nil {
			t.Errorf("%s: %v", g.name, err)
		}
	}
}

func TestBuilder(t *testing.T) {
	b := NewBuilder("m", "B", "N", "B")
	b.AddSym("N")
	b.AddSym("D")
	if got := strings.Join(b.M.Syms, ","); got != "B,N,D" {
		t.Errorf("Syms = %s", got)
	}
	x := b.MustGiven(OpInput, TensorOf(F32, dB, dN), Attrs{"name": StringAttr("x")})
	y := b.Must(OpExp, nil, x)
	if x.ID != 0 || y.ID != 1 || !y.Type.Equal(x.Type) || y.Attrs == nil {
		t.Errorf("got %s and %s", x, y)
	}
	// Op on a Given op without a type fails; the error is returned, not sticky.
	if _, err := b.Op(OpInput, Attrs{"name": StringAttr("z")}); err == nil || !strings.Contains(err.Error(), "result has no dtype") {
		t.Errorf("Op(input) = %v", err)
	}
	if _, err := b.Op(OpNeg, nil, nil); err == nil || !strings.Contains(err.Error(), "missing operand") {
		t.Errorf("nil operand: %v", err)
	}
	if b.Err() != nil {
		t.Fatalf("Op errors must not stick: %v", b.Err())
	}
	// Must errors stick: the first is kept and later calls do nothing.
	if in := b.Must(OpAdd, nil, x, b.MustGiven(OpInput, TensorOf(I32, dB, dN), Attrs{"name": StringAttr("i")})); in != nil {
		t.Errorf("mismatched add built %s", in)
	}
	first := b.Err()
	if first == nil || !strings.Contains(first.Error(), "add: operands have different dtypes") {
		t.Fatalf("Err = %v", first)
	}
	if in := b.Must(OpExp, nil, x); in != nil || b.Err() != first {
		t.Errorf("a call after an error built %v / changed Err to %v", in, b.Err())
	}
	if got := len(b.M.Instrs); got != 3 {
		t.Errorf("%d instructions, want 3", got)
	}
	b.Output(OutValue, "y", y)
	if len(b.M.Outputs) != 1 || b.M.Outputs[0].Value != y {
		t.Error("Output")
	}
}

func TestModuleAccessors(t *testing.T) {
	m, err := seq2seqModule()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(m.Params()); got != 4 {
		t.Errorf("%d params", got)
	}
	if ins := m.Inputs(); len(ins) != 2 || ins[1].Name() != "tgt" {
		t.Errorf("inputs %v", ins)
	}
	if l := m.Loss(); l == nil || l.Op != OpCrossEntropy {
		t.Errorf("loss %v", l)
	}
	if (&Module{}).Loss() != nil {
		t.Error("empty module has a loss")
	}
	for _, tc := range []struct {
		k    OutputKind
		want string
	}{{OutLoss, "loss"}, {OutMetric, "metric"}, {OutValue, "output"}, {OutputKind(9), "output(9)"}} {
		if got := tc.k.String(); got != tc.want {
			t.Errorf("%d prints %s", tc.k, got)
		}
	}
	a := Attrs{"i": IntAttr(3), "f": FloatAttr(0.5), "b": BoolAttr(true), "s": WordAttr("probs"), "l": IntsAttr(1, 2), "e": ExprAttr(Var("q"))}
	if a.Int("i") != 3 || a.Float("f") != 0.5 || !a.Bool("b") || a.Str("s") != "probs" || len(a.Ints("l")) != 2 || a.Expr("e") == nil || !a.Has("i") || a.Has("zz") {
		t.Error("Attrs accessors")
	}
	if a.Int("zz") != 0 || a.Expr("zz") != nil || len(a.Ints("zz")) != 0 {
		t.Error("absent attributes should read as zero values")
	}
}

func TestAttrEqual(t *testing.T) {
	same := []Attr{IntAttr(1), FloatAttr(math.NaN()), BoolAttr(true), StringAttr("a"), WordAttr("a"), IntsAttr(1, 2), DimAttr(dN), DTypeAttr(F32), ExprAttr(Var("q"))}
	other := []Attr{IntAttr(2), FloatAttr(1), BoolAttr(false), StringAttr("b"), WordAttr("b"), IntsAttr(1, 3), DimAttr(dB), DTypeAttr(I32), ExprAttr(Var("k"))}
	for i := range same {
		if !same[i].Equal(same[i]) {
			t.Errorf("%s != itself", same[i])
		}
		if same[i].Equal(other[i]) {
			t.Errorf("%s == %s", same[i], other[i])
		}
	}
	if IntsAttr(1).Equal(IntsAttr(1, 2)) || StringAttr("a").Equal(WordAttr("a")) || (Attr{}).Equal(Attr{}) {
		t.Error("Attr.Equal")
	}
}

func TestModuleDiff(t *testing.T) {
	build := func() *Module {
		m, err := gatherModule()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if d := build().Diff(build()); d != "" {
		t.Fatalf("identical modules differ: %s", d)
	}
	for _, tc := range []struct {
		change func(m *Module)
		want   string
	}{
		{func(m *Module) { m.Name = "x" }, "name"},
		{func(m *Module) { m.Syms = m.Syms[:2] }, "symbols"},
		{func(m *Module) { m.Instrs = m.Instrs[:3] }, "instructions"},
		{func(m *Module) { m.Instrs[5].ID = 50 }, "instruction 5"},
		{func(m *Module) { m.Instrs[6].Args[1] = m.Instrs[2] }, "argument 1 differs"},
		{func(m *Module) { m.Instrs[6].Attrs["axis"] = IntAttr(0) }, "attribute axis differs"},
		{func(m *Module) { m.Outputs = m.Outputs[:1] }, "outputs"},
		{func(m *Module) { m.Outputs[1].Name = "z" }, "output 1 differs"},
	} {
		m := build()
		tc.change(m)
		if d := build().Diff(m); !strings.Contains(d, tc.want) {
			t.Errorf("Diff = %q, want %q", d, tc.want)
		}
		if build().Equal(m) {
			t.Errorf("Equal after a change (%s)", tc.want)
		}
	}
}

// TestOpTable checks every row of the op table: a unique name that
// OpByName finds, a type rule, a meaning, and attribute specs a printer
// can write.
func TestOpTable(t *testing.T) {
	names := map[string]bool{}
	for _, op := range AllOps() {
		info := op.Info()
		if info.Name == "" || !isIdent(info.Name) || names[info.Name] {
			t.Errorf("op %d has a bad or duplicate name %q", op, info.Name)
		}
		names[info.Name] = true
		if back, ok := OpByName(info.Name); !ok || back != op {
			t.Errorf("OpByName(%s) = %v, %v", info.Name, back, ok)
		}
		if info.Infer == nil || info.Doc == "" || info.Class == 0 {
			t.Errorf("op %s lacks a type rule, a doc or a class", info.Name)
		}
		if info.Args == Variadic && info.MinArgs < 1 || info.Args != Variadic && info.Args < 0 {
			t.Errorf("op %s has a bad arity", info.Name)
		}
		attrs := map[string]bool{}
		for _, spec := range info.Attrs {
			if attrs[spec.Name] || !isIdent(spec.Name) {
				t.Errorf("op %s: bad or duplicate attribute %q", info.Name, spec.Name)
			}
			attrs[spec.Name] = true
			if spec.Kind == AttrWord {
				if len(spec.Words) == 0 {
					t.Errorf("op %s: word attribute %s lists no words", info.Name, spec.Name)
				}
				for _, w := range spec.Words {
					if !isIdent(w) {
						t.Errorf("op %s: word %q cannot be printed bare", info.Name, w)
					}
				}
			}
		}
	}
	if _, ok := OpByName("frob"); ok {
		t.Error("OpByName(frob)")
	}
	if got := Op(200).String(); got != "op(200)" {
		t.Errorf("Op(200) prints %s", got)
	}
}

func TestAttentionOperands(t *testing.T) {
	args := []int{0, 1, 2, 3, 4}
	q, k, v, caps := AttentionOperands(args, Attrs{})
	if q != 0 || k != 1 || v == nil || *v != 2 || len(caps) != 2 {
		t.Errorf("out: %d %d %v %v", q, k, v, caps)
	}
	_, _, v, caps = AttentionOperands(args, Attrs{"returns": WordAttr("probs")})
	if v != nil || len(caps) != 3 || caps[0] != 2 {
		t.Errorf("probs: %v %v", v, caps)
	}
	_, _, v, caps = AttentionOperands(args[:2], Attrs{"returns": WordAttr("out")})
	if v != nil || len(caps) != 0 {
		t.Errorf("out without v: %v %v", v, caps)
	}
}

func TestEinsumSpec(t *testing.T) {
	ins, out, err := ParseEinsum("bnd,de->bne", 2)
	if err != nil || len(ins) != 2 || ins[1] != "de" || out != "bne" {
		t.Errorf("ParseEinsum = %v %q %v", ins, out, err)
	}
	for _, tc := range []struct {
		spec string
		n    int
		want string
	}{
		{"ab,bc", 2, "has no ->"},
		{"ab,bc->ac", 1, "names 2 operands, got 1"},
		{"aB->a", 1, "is not a lowercase letter"},
		{"ab->aa", 1, "repeats"},
		{"ab->c", 1, "is not in any operand"},
	} {
		if _, _, err := ParseEinsum(tc.spec, tc.n); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseEinsum(%q) = %v, want %q", tc.spec, err, tc.want)
		}
	}
}

// TestTypeRuleErrors spot-checks the type rules' messages through the
// Builder, the way a pass author meets them.
func TestTypeRuleErrors(t *testing.T) {
	b := NewBuilder("m", "B", "N", "S")
	x := b.MustGiven(OpInput, TensorOf(F32, dB, dN, c(64)), Attrs{"name": StringAttr("x")})
	idx := b.MustGiven(OpInput, TensorOf(I32, dB, dN), Attrs{"name": StringAttr("idx")})
	q := b.MustGiven(OpInput, TensorOf(F32, dB, c(4), dN, c(16)), Attrs{"name": StringAttr("q")})
	pair := b.Must(OpAttention, Attrs{"scale": FloatAttr(1), "with_lse": BoolAttr(true)}, q, q, q)
	lse := b.Must(OpExtract, Attrs{"index": IntAttr(1)}, pair)
	gradAttrs := func(wrt ...int64) Attrs {
		return Attrs{"scale": FloatAttr(1), "wrt": IntsAttr(wrt...)}
	}
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		op    Op
		given Type
		attrs Attrs
		args  []*Instr
		want  string
	}{
		{OpSoftmax, Type{}, Attrs{"axis": IntAttr(3)}, []*Instr{x}, "axis 3 out of range for rank 3"},
		{OpTranspose, Type{}, Attrs{"perm": IntsAttr(0, 0, 1)}, []*Instr{x}, "is not a permutation"},
		{OpSlice, Type{}, Attrs{"axis": IntAttr(1), "start": DimAttr(c(2)), "end": DimAttr(c(1))}, []*Instr{x}, "negative length"},
		{OpSlice, Type{}, Attrs{"axis": IntAttr(1), "start": DimAttr(c(0)), "end": DimAttr(dN.Add(c(1)))}, []*Instr{x}, "past the end"},
		{OpConcat, Type{}, Attrs{"axis": IntAttr(1)}, []*Instr{x, idx}, "operand 1 is i32"},
		{OpMatMul, Type{}, nil, []*Instr{x, x}, "inner dims differ"},
		{OpGather, Type{}, Attrs{"axis": IntAttr(1), "batch_dims": IntAttr(2)}, []*Instr{x, idx}, "batch_dims 2 must be ≤ axis 1"},
		{OpCrossEntropy, Type{}, nil, []*Instr{x, x}, "targets must be i32"},
		{OpAttention, Type{}, Attrs{"scale": FloatAttr(1)}, []*Instr{q, q}, "attention returning out needs q, k and v"},
		{OpAttention, Type{}, Attrs{"scale": FloatAttr(1), "mask": ExprAttr(mustExpr("q - k"))}, []*Instr{q, q, q}, "is int, want bool"},
		{OpAttention, Type{}, Attrs{"scale": FloatAttr(1), "score": ExprAttr(mustExpr("k < q"))}, []*Instr{q, q, q}, "is bool, want a number"},
		{OpAttention, Type{}, Attrs{"scale": FloatAttr(1)}, []*Instr{x, x, x}, "attention q must be f32[B, H, N, D]"},
		{OpScan, Type{}, Attrs{"axis": IntAttr(1)}, []*Instr{x, q}, "differ in shape"},
		{OpEinsum, Type{}, Attrs{"spec": StringAttr("ab->a")}, []*Instr{x}, "has rank 3 but its term"},
		{OpBroadcast, TensorOf(F32, dB, dS, c(64)), nil, []*Instr{x}, "cannot broadcast"},
		{OpScatterAdd, TensorOf(F32, dB, dS, c(32)), Attrs{"axis": IntAttr(1), "batch_dims": IntAttr(1)}, []*Instr{x, idx}, "scatter_add updates have shape"},
		{OpConst, TensorOf(F32, dB), Attrs{"value": FloatAttr(1)}, nil, "const must be a scalar"},
		{OpIota, TensorOf(F32, dB), Attrs{"axis": IntAttr(0)}, nil, "iota must be i32"},
		{OpParam, TensorOf(I32, dB), Attrs{"name": StringAttr("p"), "init": WordAttr("zeros")}, nil, "param must be f32"},
		{OpCast, Type{}, Attrs{"to": DTypeAttr(InvalidDType)}, []*Instr{x}, "cast to an invalid dtype"},
		{OpSelect, Type{}, nil, []*Instr{x, x, x}, "condition is f32"},
		{OpReduceSum, Type{}, Attrs{"axes": IntsAttr(1, 1)}, []*Instr{x}, "axis 1 listed twice"},
		{OpAttention, Type{}, Attrs{"scale": FloatAttr(1), "returns": WordAttr("lse"), "with_lse": BoolAttr(true)}, []*Instr{q, q}, "with_lse cannot return lse"},
		{OpExtract, Type{}, Attrs{"index": IntAttr(0)}, []*Instr{x}, "extract needs a tuple operand"},
		{OpLayerNorm, Type{}, Attrs{"eps": FloatAttr(1e-5)}, []*Instr{x, lse}, "layer_norm takes 1 operands (x), got 2"},
		{OpLayerNorm, Type{}, Attrs{"eps": FloatAttr(1e-5), "affine": BoolAttr(true)}, []*Instr{x, lse}, "layer_norm takes 3 operands (x, γ and β), got 2"},
		{OpRMSNorm, Type{}, Attrs{"eps": FloatAttr(1e-5), "affine": BoolAttr(true)}, []*Instr{x, lse, lse}, "rms_norm takes 2 operands (x and γ), got 3"},
		{OpRMSNorm, Type{}, Attrs{"eps": FloatAttr(1e-5), "affine": BoolAttr(true)}, []*Instr{x, lse}, "rms_norm affine operand 1 (f32[B, 4, N]) is not an f32 vector along the last axis"},
		{OpLayerNormGrad, Type{}, Attrs{"eps": FloatAttr(1e-5), "params": BoolAttr(true)}, []*Instr{x, x}, "params needs scale = true"},
		{OpExtract, Type{}, Attrs{"index": IntAttr(2)}, []*Instr{pair}, "extract index 2 is outside the tuple"},
		{OpExp, Type{}, nil, []*Instr{pair}, "only extract takes one"},
		{OpAttentionGrad, Type{}, gradAttrs(), []*Instr{q, q, q, lse, lse, q}, "wrt is empty"},
		{OpAttentionGrad, Type{}, gradAttrs(1, 0), []*Instr{q, q, q, lse, lse, q}, "must be increasing operand numbers"},
		{OpAttentionGrad, Type{}, gradAttrs(3), []*Instr{q, q, q, lse, lse, q}, "must be increasing operand numbers in [0, 3)"},
		{OpAttentionGrad, Type{}, gradAttrs(0), []*Instr{q, q, q, lse, q, q}, "the row sums are"},
	} {
		var err error
		if tc.op.Info().Given {
			_, err = b.Given(tc.op, tc.given, tc.attrs, tc.args...)
		} else {
			_, err = b.Op(tc.op, tc.attrs, tc.args...)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.op, err, tc.want)
		}
	}
}

// A tuple is no output: its results are, through extract.
func TestVerifyTupleOutput(t *testing.T) {
	b := NewBuilder("m", "N")
	q := b.MustGiven(OpInput, TensorOf(F32, c(1), c(1), dN, c(2)), Attrs{"name": StringAttr("q")})
	pair := b.Must(OpAttention, Attrs{"scale": FloatAttr(1), "with_lse": BoolAttr(true)}, q, q, q)
	b.Output(OutValue, "pair", pair)
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	if err := Verify(b.M); err == nil || !strings.Contains(err.Error(), "extract its results") {
		t.Errorf("Verify = %v, want an error about the tuple output", err)
	}
	for _, src := range []string{
		"module m() {\n  %0 = const {value = 1.0} : (f32[])\n}\n",
		"module m() {\n  %0 = input {name = \"x\"} : (f32[2])\n}\n",
	} {
		m, err := Parse("t.ir", src)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(m); err == nil || !strings.Contains(err.Error(), "cannot be the tuple") {
			t.Errorf("Verify(%q) = %v, want an error about the declared tuple", src, err)
		}
	}
}

// Before places the new instruction ahead of the one it is given, with an
// ID nothing else has, so a later append gets a fresh ID too.
func TestBuilderBefore(t *testing.T) {
	b := NewBuilder("m")
	x := b.MustGiven(OpConst, TensorOf(F32), Attrs{"value": FloatAttr(1)})
	y := b.Must(OpExp, nil, x)
	z := b.Before(y, OpNeg, nil, x)
	w := b.Must(OpLog, nil, x)
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	if got := []*Instr{x, z, y, w}; fmt.Sprint(b.M.Instrs) != fmt.Sprint(got) {
		t.Errorf("order %v, want %v", b.M.Instrs, got)
	}
	if z.ID == w.ID || z.ID == y.ID || z.ID == x.ID {
		t.Errorf("IDs %d %d %d %d are not distinct", x.ID, z.ID, y.ID, w.ID)
	}
	if err := Verify(b.M); err != nil {
		t.Error(err)
	}
}
