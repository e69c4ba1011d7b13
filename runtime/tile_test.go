package runtime_test

import (
	"math"
	"slices"
	"sync"
	"testing"

	rt "github.com/attnc/attnc/runtime"
)

// TestLaunch checks that every program of a grid runs exactly once.
func TestLaunch(t *testing.T) {
	for _, g := range [][3]int{{1, 1, 1}, {7, 3, 2}, {1000, 1, 1}, {0, 5, 5}} {
		var mu sync.Mutex
		seen := map[[3]int]int{}
		rt.Launch(g[0], g[1], g[2], 16, func(p0, p1, p2 int, s []float32) {
			if len(s) < 16 {
				t.Errorf("scratch of %d floats, want 16", len(s))
			}
			mu.Lock()
			seen[[3]int{p0, p1, p2}]++
			mu.Unlock()
		})
		if len(seen) != g[0]*g[1]*g[2] {
			t.Fatalf("grid %v: %d programs ran", g, len(seen))
		}
		for p, n := range seen {
			if n != 1 || p[0] >= g[0] || p[1] >= g[1] || p[2] >= g[2] {
				t.Fatalf("grid %v: program %v ran %d times", g, p, n)
			}
		}
	}
}

// TestLoadStoreTile loads tiles of a [2, 5, 7] tensor — windows along
// the last axes, a partial last tile, a transposed tile (copied), a
// column, a scalar, one outside — and stores them into a zero tensor.
func TestLoadStoreTile(t *testing.T) {
	x := randF32(newRand(3), 2, 5, 7)
	at := func(b, i, j int) float32 { return x.F[(b*5+i)*7+j] }
	scratch := make([]float32, 64)
	check := func(what string, tl rt.Tile, rows, cols int, want func(i, j int) float32) {
		t.Helper()
		if tl.Rows != rows || tl.Cols != cols {
			t.Fatalf("%s: %d×%d, want %d×%d", what, tl.Rows, tl.Cols, rows, cols)
		}
		for i := range rows {
			for j := range cols {
				if got := tl.Data[i*tl.RS+j]; got != want(i, j) {
					t.Fatalf("%s: [%d,%d] = %v, want %v", what, i, j, got, want(i, j))
				}
			}
		}
	}
	check("rows 3.. of b=1", rt.LoadTile(x, scratch, 1, 2, 4, 7, 1, 3, 0), 2, 7, func(i, j int) float32 { return at(1, 3+i, j) })
	check("cols 4.. (cut)", rt.LoadTile(x, scratch, 1, 2, 2, 8, 0, 1, 4), 2, 3, func(i, j int) float32 { return at(0, 1+i, 4+j) })
	check("transposed", rt.LoadTile(x, scratch, 2, 1, 3, 5, 1, 0, 2), 3, 5, func(i, j int) float32 { return at(1, j, 2+i) })
	check("a column", rt.LoadTile(x, scratch, 1, -1, 5, 1, 0, 0, 6), 5, 1, func(i, _ int) float32 { return at(0, i, 6) })
	check("one element", rt.LoadTile(x, scratch, -1, -1, 1, 1, 1, 4, 6), 1, 1, func(int, int) float32 { return at(1, 4, 6) })
	if e := rt.LoadTile(x, scratch, 1, 2, 4, 7, 2, 0, 0); e.Rows != 0 {
		t.Fatalf("a tile outside the tensor has %d rows", e.Rows)
	}
	y := rt.New(rt.F32, 2, 5, 7)
	rt.StoreTile(y, rt.LoadTile(x, scratch, 1, 2, 4, 7, 1, 3, 0), 1, 2, 1, 3, 0)
	rt.StoreTile(y, rt.LoadTile(x, scratch, 2, 1, 3, 5, 0, 0, 4), 2, 1, 0, 0, 4) // transposed back
	for b := range 2 {
		for i := range 5 {
			for j := range 7 {
				want := float32(0)
				if b == 1 && i >= 3 || b == 0 && j >= 4 {
					want = at(b, i, j)
				}
				if got := y.F[(b*5+i)*7+j]; got != want {
					t.Fatalf("stored [%d,%d,%d] = %v, want %v", b, i, j, got, want)
				}
			}
		}
	}
}

// TestElementwiseTiles compares UnaryTile and BinaryTile, with every way
// of broadcasting, with Unary and Binary on whole tensors.
func TestElementwiseTiles(t *testing.T) {
	r := newRand(4)
	full, row, col, one := randF32(r, 6, 9), randF32(r, 1, 9), randF32(r, 6, 1), randF32(r, 1, 1)
	tile := func(x *rt.Tensor) rt.Tile {
		return rt.LoadTile(x, nil, 0, 1, x.Shape[0], x.Shape[1], 0, 0)
	}
	scratch := make([]float32, 64)
	for _, op := range []rt.BinaryOp{rt.Add, rt.Sub, rt.Mul, rt.Div, rt.Max, rt.Min} {
		for _, pair := range [][2]*rt.Tensor{{full, full}, {full, row}, {row, full}, {full, col}, {col, full}, {row, col}, {full, one}, {one, col}, {one, one}} {
			got := rt.BinaryTile(op, scratch, tile(pair[0]), tile(pair[1]))
			want := rt.Binary(op, pair[0], pair[1], nil)
			if got.Rows*got.Cols != len(want.F) || !slices.Equal(got.Data[:len(want.F)], want.F) {
				t.Fatalf("%s of %v and %v: %v, want %v", op, pair[0].Shape, pair[1].Shape, got.Data[:got.Rows*got.Cols], want.F)
			}
		}
	}
	for _, op := range []rt.UnaryOp{rt.Exp, rt.Tanh, rt.Gelu, rt.GeluDeriv, rt.Neg, rt.Sqrt} {
		// A window with a row stride longer than its rows.
		src := rt.LoadTile(full, nil, 0, 1, 6, 5, 0, 2)
		got := rt.UnaryTile(op, scratch, src)
		for i := range 6 {
			for j := range 5 {
				want := rt.Unary(op, rt.FromF32([]int{1}, []float32{full.F[i*9+2+j]}))
				if g := got.Data[i*5+j]; g != want.F[0] && !(g != g && want.F[0] != want.F[0]) {
					t.Fatalf("%s [%d,%d] = %v, want %v", op, i, j, g, want.F[0])
				}
			}
		}
	}
}

// TestReduceTile compares ReduceTile's row sums and maxima with
// ReduceSum and ReduceMax over the last axis, bit for bit, and its minima
// with a loop: rows of 1, 3, 64 and 1000 (past the vector kernels'
// blocks and with a tail), a window whose row stride exceeds its rows,
// NaN, infinities and an empty tile.
func TestReduceTile(t *testing.T) {
	r := newRand(6)
	scratch := make([]float32, 16)
	for _, cols := range []int{1, 3, 64, 1000} {
		x := randF32(r, 5, cols+2)
		x.F[3*(cols+2)+cols/2] = float32(math.NaN())
		x.F[4*(cols+2)] = float32(math.Inf(1))
		x.F[2*(cols+2)+cols-1] = float32(math.Inf(-1))
		src := rt.LoadTile(x, nil, 0, 1, 5, cols, 0, 1) // columns 1..cols of each row
		win := rt.New(rt.F32, 5, cols)
		for i := range 5 {
			copy(win.F[i*cols:][:cols], x.F[i*(cols+2)+1:][:cols])
		}
		for _, c := range []struct {
			op   rt.RowReduce
			want []float32
		}{
			{rt.RowSum, rt.ReduceSum(win, []int{1}, false).F},
			{rt.RowMax, rt.ReduceMax(win, []int{1}, false).F},
			{rt.RowMin, rowMins(win)},
		} {
			got := rt.ReduceTile(c.op, scratch, src)
			if got.Rows != 1 || got.Cols != 5 {
				t.Fatalf("%d columns, reduction %d: a %d×%d tile, want 1×5", cols, c.op, got.Rows, got.Cols)
			}
			for i, w := range c.want {
				if g := got.Data[i]; g != w && !(g != g && w != w) {
					t.Fatalf("%d columns, reduction %d: row %d is %v, want %v", cols, c.op, i, g, w)
				}
			}
		}
	}
	if e := rt.ReduceTile(rt.RowSum, scratch, rt.Tile{}); e.Rows != 0 || e.Cols != 0 {
		t.Fatalf("the reduction of an empty tile is %d×%d", e.Rows, e.Cols)
	}
	if s := rt.ScalarTile(scratch, 2.5); s.Rows != 1 || s.Cols != 1 || s.Data[0] != 2.5 {
		t.Fatalf("ScalarTile(2.5) = %+v", s)
	}
}

// rowMins is the minimum of each row of a [rows, cols] tensor, NaN when
// the row holds one.
func rowMins(x *rt.Tensor) []float32 {
	rows, cols := x.Shape[0], x.Shape[1]
	out := make([]float32, rows)
	for i := range rows {
		m := float32(math.Inf(1))
		for _, v := range x.F[i*cols:][:cols] {
			if v != v || m != m {
				m = float32(math.NaN())
				continue
			}
			m = min(m, v)
		}
		out[i] = m
	}
	return out
}

func TestIndexDivision(t *testing.T) {
	for _, c := range [][5]int{{7, 2, 3, 1, 4}, {-7, 2, -4, 1, -3}, {7, -2, -4, -1, -3}, {6, 3, 2, 0, 2}, {0, 5, 0, 0, 0}} {
		if d, m, cd := rt.FloorDiv(c[0], c[1]), rt.FloorMod(c[0], c[1]), rt.CeilDiv(c[0], c[1]); d != c[2] || m != c[3] || cd != c[4] {
			t.Errorf("%d, %d: floor %d mod %d ceil %d, want %v", c[0], c[1], d, m, cd, c[2:])
		}
	}
	mustPanic(t, "division by zero", func() { rt.FloorDiv(1, 0) })
}

// BenchmarkBinaryTile times a tile of a layer's width (12 rows of 128,
// the fuse pass's tile for lm4) plus a bias row, and the same tile plus
// a full tile.
func BenchmarkBinaryTile(b *testing.B) {
	r := newRand(5)
	x, row := randF32(r, 12, 128), randF32(r, 1, 128)
	scratch := make([]float32, 12*128)
	tile := func(t *rt.Tensor) rt.Tile { return rt.LoadTile(t, nil, 0, 1, t.Shape[0], t.Shape[1], 0, 0) }
	b.Run("row", func(b *testing.B) {
		for b.Loop() {
			rt.BinaryTile(rt.Add, scratch, tile(x), tile(row))
		}
	})
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			rt.BinaryTile(rt.Add, scratch, tile(x), tile(x))
		}
	})
}

// BenchmarkRowSumTiles times attention backward's rowsum(dy·out) over
// [8, 256, 64] as the fuse pass's reduce group runs it (tiles of 24
// rows: a product, then ReduceTile) and as two runtime calls (their
// buffers released, as the generated code does).
func BenchmarkRowSumTiles(b *testing.B) {
	r := newRand(7)
	x, y := randF32(r, 8, 256, 64), randF32(r, 8, 256, 64)
	b.Run("fused", func(b *testing.B) {
		out := rt.New(rt.F32, 8, 256)
		for b.Loop() {
			rt.Launch(11, 8, 1, 3072, func(p0, p1, _ int, scr []float32) {
				xt := rt.LoadTile(x, nil, 1, 2, 24, 64, p1, p0*24, 0)
				yt := rt.LoadTile(y, nil, 1, 2, 24, 64, p1, p0*24, 0)
				p := rt.BinaryTile(rt.Mul, scr[:1536], xt, yt)
				s := rt.ReduceTile(rt.RowSum, rt.Dest(out, scr[1536:], -1, 1, 1, 24, p1, p0*24), p)
				rt.StoreTile(out, s, -1, 1, p1, p0*24)
			})
		}
	})
	b.Run("calls", func(b *testing.B) {
		for b.Loop() {
			p := rt.Binary(rt.Mul, x, y, nil)
			rt.Release(rt.ReduceSum(p, []int{2}, false))
			rt.Release(p)
		}
	})
}
