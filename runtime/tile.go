package runtime

import (
	"fmt"
	"math"
)

// What the Go renderer's kernels of the kernel IR (kir) call: a grid
// launcher with per-worker scratch memory, and tile loads, stores,
// elementwise maps and row reductions. A kernel is a function over the
// programs of its grid; a tile is at most two-dimensional here (the fuse
// pass's tiles: rows of the second-last axis by a run of the last), and
// holds only the elements inside the buffers it came from — a partial
// last tile is shorter, not padded, since elementwise results outside
// the buffer are never stored, and a row reduction's tile holds whole
// rows.

// A Tile is a rows × cols window of float32s: element (i, j) at
// Data[i*RS + j]. Its rows are contiguous (a tile whose rows are not is
// copied when loaded).
type Tile struct {
	Data       []float32
	Rows, Cols int
	RS         int // the distance between rows
}

// row returns row i of t (row 0 when t has one row: it broadcasts).
func (t *Tile) row(i int) []float32 {
	if t.Rows == 1 {
		i = 0
	}
	return t.Data[i*t.RS:][:t.Cols]
}

// Launch runs fn for every program (p0, p1, p2) of a g0 × g1 × g2 grid,
// in parallel, each worker with its own scratch of scratch floats
// (pooled, not cleared). Programs run in chunks of consecutive indices,
// p0 fastest; fn must write only its program's elements.
func Launch(g0, g1, g2, scratch int, fn func(p0, p1, p2 int, s []float32)) {
	n := g0 * g1 * g2
	if n <= 0 {
		return
	}
	grain := max(1, elemGrain/max(scratch, 1))
	ParallelFor(n, grain, func(lo, hi int) {
		buf := getBuffer(max(scratch, 1))
		defer putBuffer(buf)
		s := *buf
		for p := lo; p < hi; p++ {
			fn(p%g0, p/g0%g1, p/(g0*g1), s)
		}
	})
}

// Empty returns an f32 or other tensor of shape whose elements are
// arbitrary (a recycled buffer): for kernels that write every element.
func Empty(dt DType, shape ...int) *Tensor { return newUninit(dt, shape...) }

// window finds the elements of a tile of x: at offsets offs (one per
// axis of x), rows along rowAxis and columns along colAxis (-1 for a tile
// without that axis), at most rows × cols of them, fewer where x ends.
// It returns the base offset, the valid rows and cols and the strides of
// both in x; rows is 0 when the tile is outside x.
func window(x *Tensor, rowAxis, colAxis, rows, cols int, offs []int) (base, r, c, rs, cs int) {
	if len(offs) != len(x.Shape) {
		panic(fmt.Sprintf("runtime: a tile with %d offsets of a tensor of rank %d", len(offs), len(x.Shape)))
	}
	// The strides, from the last axis: no allocation, as this runs for
	// every tile of every program.
	stride := 1
	for a := len(offs) - 1; a >= 0; a-- {
		o := offs[a]
		if o < 0 || o >= x.Shape[a] {
			return 0, 0, 0, 0, 0
		}
		base += o * stride
		switch a {
		case rowAxis:
			rs = stride
		case colAxis:
			cs = stride
		}
		stride *= x.Shape[a]
	}
	r, c = 1, 1
	if rowAxis >= 0 {
		r = min(rows, x.Shape[rowAxis]-offs[rowAxis])
	}
	if colAxis >= 0 {
		c = min(cols, x.Shape[colAxis]-offs[colAxis])
	}
	return base, r, c, rs, cs
}

// LoadTile returns the tile of x at offsets offs whose rows run along
// axis rowAxis and columns along colAxis (-1 for a tile without that
// axis: one row, or one column), of at most rows × cols elements: fewer
// where x ends (a tile entirely outside x is empty). Where its rows are
// contiguous in x the tile is a window of x itself; otherwise it is
// copied into scratch.
func LoadTile(x *Tensor, scratch []float32, rowAxis, colAxis, rows, cols int, offs ...int) Tile {
	base, r, c, rs, cs := window(x, rowAxis, colAxis, rows, cols, offs)
	if r <= 0 || c <= 0 {
		return Tile{}
	}
	if cs == 1 || c == 1 {
		return Tile{Data: x.F[base : base+(r-1)*rs+c], Rows: r, Cols: c, RS: rs}
	}
	t := Tile{Data: scratch[:r*c], Rows: r, Cols: c, RS: c}
	for i := range r {
		for j := range c {
			t.Data[i*c+j] = x.F[base+i*rs+j*cs]
		}
	}
	return t
}

// Dest returns where a kernel should compute the tile it will store
// into x at offsets offs (as StoreTile takes them): the tile's window of
// x itself when it is one contiguous run of x, so that the store finds
// it already there; else scratch.
func Dest(x *Tensor, scratch []float32, rowAxis, colAxis, rows, cols int, offs ...int) []float32 {
	base, r, c, rs, cs := window(x, rowAxis, colAxis, rows, cols, offs)
	if r <= 0 || c <= 0 || cs != 1 && c > 1 || r > 1 && rs != c {
		return scratch
	}
	return x.F[base : base+r*c]
}

// StoreTile writes t into x at offsets offs, as LoadTile reads a tile,
// elements past x's end skipped. A tile computed in place (Dest) is not
// copied again.
func StoreTile(x *Tensor, t Tile, rowAxis, colAxis int, offs ...int) {
	if t.Rows == 0 || t.Cols == 0 {
		return
	}
	base, r, c, rs, cs := window(x, rowAxis, colAxis, t.Rows, t.Cols, offs)
	r, c = min(r, t.Rows), min(c, t.Cols)
	if r > 0 && c > 0 && &x.F[base] == &t.Data[0] && (r == 1 || rs == t.RS) && (c == 1 || cs == 1) {
		return
	}
	for i := range r {
		src := t.Data[i*t.RS:][:c]
		if cs == 1 || c == 1 {
			copy(x.F[base+i*rs:][:c], src)
			continue
		}
		for j, v := range src {
			x.F[base+i*rs+j*cs] = v
		}
	}
}

// tileInto returns a rows × cols tile on scratch.
func tileInto(scratch []float32, rows, cols int) Tile {
	return Tile{Data: scratch[:rows*cols], Rows: rows, Cols: cols, RS: cols}
}

// UnaryTile returns op(x) element by element, written into scratch, by
// the kernels Unary uses (so the results are Unary's).
func UnaryTile(op UnaryOp, scratch []float32, x Tile) Tile {
	f := unaryF32(op)
	if f == nil || op == Not {
		panic(fmt.Sprintf("runtime.UnaryTile: %s is not an f32 op", op))
	}
	t := tileInto(scratch, x.Rows, x.Cols)
	if x.RS == x.Cols {
		f(t.Data, x.Data[:x.Rows*x.Cols])
		return t
	}
	for i := range x.Rows {
		f(t.Data[i*t.Cols:][:t.Cols], x.row(i))
	}
	return t
}

// BinaryTile returns op(x, y) element by element, x and y broadcasting
// (a tile of one row or one column spreads along the other), written
// into scratch, by the kernels Binary uses.
func BinaryTile(op BinaryOp, scratch []float32, x, y Tile) Tile {
	rows, cols := max(x.Rows, y.Rows), max(x.Cols, y.Cols)
	if x.Rows == 0 || y.Rows == 0 {
		return Tile{}
	}
	if x.Rows != rows && x.Rows != 1 || y.Rows != rows && y.Rows != 1 || x.Cols != cols && x.Cols != 1 || y.Cols != cols && y.Cols != 1 {
		panic(fmt.Sprintf("runtime.BinaryTile: %d×%d and %d×%d do not broadcast", x.Rows, x.Cols, y.Rows, y.Cols))
	}
	t := tileInto(scratch, rows, cols)
	xs, ys := min(x.Cols-1, 1), min(y.Cols-1, 1)
	if cols == 1 {
		xs, ys = 1, 1
	}
	arith := op >= Add && op <= Div && op != Pow
	f := binaryF32(op)
	if !arith && f == nil {
		panic(fmt.Sprintf("runtime.BinaryTile: %s is not an f32 arithmetic op", op))
	}
	row := func(dst, a, b []float32) {
		if arith {
			arithRowF32(op, dst, a, xs, b, ys)
		} else {
			rowMap(dst, a, xs, b, ys, f)
		}
	}
	if x.Rows == rows && y.Rows == rows && x.RS == cols && y.RS == cols && xs == 1 && ys == 1 {
		row(t.Data, x.Data[:rows*cols], y.Data[:rows*cols])
		return t
	}
	if v := activeVec; arith && v != nil && xs == 1 && ys == 1 && cols%v.lanes == 0 {
		// Whole vectors a row (a bias row over a tile): the vector kernel
		// itself, row by row, without arithRowF32's dispatch each time.
		for i := range rows {
			arithVec(v, op, 0, t.Data[i*cols:][:cols], x.row(i), y.row(i))
		}
		return t
	}
	for i := range rows {
		row(t.Data[i*cols:][:cols], x.row(i), y.row(i))
	}
	return t
}

// A RowReduce is what ReduceTile computes of each row of a tile.
type RowReduce uint8

const (
	RowSum RowReduce = iota // the sum, in float64 as ReduceSum's rows are
	RowMax                  // the maximum: NaN if any is, -Inf of nothing
	RowMin                  // the minimum: NaN if any is, +Inf of nothing
)

// ReduceTile returns each row of x reduced by op, as a tile of one row
// of x.Rows elements (the kernel IR's [rows] tile) written into dst: a
// sum by sum64 and a maximum by maxSlice, the vector kernels ReduceSum
// and ReduceMax use on a last axis, so that a fused row reduction gives
// their results (a maximum of zeros may differ in its sign). An empty x
// gives an empty tile.
func ReduceTile(op RowReduce, dst []float32, x Tile) Tile {
	if x.Rows == 0 {
		return Tile{}
	}
	t := Tile{Data: dst[:x.Rows], Rows: 1, Cols: x.Rows, RS: x.Rows}
	for i := range x.Rows {
		row := x.Data[i*x.RS:][:x.Cols]
		switch op {
		case RowSum:
			t.Data[i] = float32(sum64(row))
		case RowMax:
			t.Data[i] = maxSlice(row)
		case RowMin:
			m := float32(math.Inf(1))
			for _, v := range row {
				m = min(m, v)
			}
			t.Data[i] = m
		default:
			panic(fmt.Sprintf("runtime.ReduceTile: reduction %d", op))
		}
	}
	return t
}

// ScalarTile returns the 1×1 tile v, written into scratch: a constant
// that broadcasts over any tile (a mean's divisor).
func ScalarTile(scratch []float32, v float32) Tile {
	scratch[0] = v
	return Tile{Data: scratch[:1], Rows: 1, Cols: 1, RS: 1}
}

// FloorDiv, FloorMod and CeilDiv are the kernel IR's idiv, irem and cdiv
// on indices; a zero divisor panics with a message.
func FloorDiv(a, b int) int {
	if b == 0 {
		panic("runtime: index division by zero")
	}
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func FloorMod(a, b int) int { return a - b*FloorDiv(a, b) }

func CeilDiv(a, b int) int { return -FloorDiv(-a, b) }
