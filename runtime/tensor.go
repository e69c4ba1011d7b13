package runtime

import (
	"fmt"
	"math"
	"strings"
)

// A DType is the element type of a tensor.
type DType uint8

// The element types. The zero DType is invalid, so a Tensor whose DType
// was never set is caught rather than read as f32.
const (
	F32  DType = iota + 1 // float32, stored in Tensor.F
	I32                   // int32, stored in Tensor.I
	Bool                  // bool, stored in Tensor.B
)

// String returns the dtype's name in attnc's IR: "f32", "i32" or "bool".
func (dt DType) String() string {
	switch dt {
	case F32:
		return "f32"
	case I32:
		return "i32"
	case Bool:
		return "bool"
	}
	return fmt.Sprintf("dtype(%d)", uint8(dt))
}

// A Tensor is a dense row-major array. Exactly one of F, I and B holds
// the elements, the one DType names; its length is the product of Shape
// (1 for a rank-0 scalar).
type Tensor struct {
	DType DType
	Shape []int
	F     []float32 // F32 data, row-major
	I     []int32   // I32 data, row-major
	B     []bool    // Bool data, row-major
}

// New returns a tensor of dtype dt and the given shape holding zeros (no
// dims: a scalar). It panics on a negative dim, a shape of more than
// MaxElements elements or an invalid dtype.
func New(dt DType, shape ...int) *Tensor { return alloc(dt, shape, true) }

// FromF32 returns an f32 tensor of the given shape holding data (used,
// not copied). It panics if len(data) does not match the shape: it is for
// callers whose data is built to fit; WrapF32 checks data from outside.
func FromF32(shape []int, data []float32) *Tensor {
	t, err := WrapF32(shape, data)
	if err != nil {
		panic("runtime.FromF32: " + err.Error())
	}
	return t
}

// FromI32 returns an i32 tensor of the given shape holding data (used,
// not copied). It panics if len(data) does not match the shape; WrapI32
// checks.
func FromI32(shape []int, data []int32) *Tensor {
	t, err := WrapI32(shape, data)
	if err != nil {
		panic("runtime.FromI32: " + err.Error())
	}
	return t
}

// FromBool returns a bool tensor of the given shape holding data (used,
// not copied). It panics if len(data) does not match the shape; WrapBool
// checks.
func FromBool(shape []int, data []bool) *Tensor {
	t, err := WrapBool(shape, data)
	if err != nil {
		panic("runtime.FromBool: " + err.Error())
	}
	return t
}

// WrapF32 returns an f32 tensor of the given shape holding data (used,
// not copied), or an error when a dim is negative, the shape has more
// than MaxElements elements, or len(data) is not their number.
func WrapF32(shape []int, data []float32) (*Tensor, error) {
	if err := checkLen(shape, len(data)); err != nil {
		return nil, err
	}
	return &Tensor{DType: F32, Shape: cloneInts(shape), F: data}, nil
}

// WrapI32 is WrapF32 for int32 data.
func WrapI32(shape []int, data []int32) (*Tensor, error) {
	if err := checkLen(shape, len(data)); err != nil {
		return nil, err
	}
	return &Tensor{DType: I32, Shape: cloneInts(shape), I: data}, nil
}

// WrapBool is WrapF32 for bool data.
func WrapBool(shape []int, data []bool) (*Tensor, error) {
	if err := checkLen(shape, len(data)); err != nil {
		return nil, err
	}
	return &Tensor{DType: Bool, Shape: cloneInts(shape), B: data}, nil
}

// checkLen returns an error unless shape is valid and has n elements.
func checkLen(shape []int, n int) error {
	want, err := ShapeLen(shape)
	if err != nil {
		return err
	}
	if want != n {
		return fmt.Errorf("shape %v needs %d values, got %d", shape, want, n)
	}
	return nil
}

// CheckData returns an error unless t is a well-formed tensor: a valid
// dtype, a valid shape (ShapeLen), and data of exactly the shape's number
// of elements in the slice its dtype names. Generated code checks every
// input with it, since a caller can build a Tensor by hand.
func CheckData(t *Tensor) error {
	if t == nil {
		return fmt.Errorf("no tensor")
	}
	if t.DType != F32 && t.DType != I32 && t.DType != Bool {
		return fmt.Errorf("invalid dtype %v", t.DType)
	}
	n, err := ShapeLen(t.Shape)
	if err != nil {
		return err
	}
	if have := t.dataLen(); have != n {
		return fmt.Errorf("shape %v needs %d elements, the data has %d", t.Shape, n, have)
	}
	return nil
}

// MaxElements is the most elements one tensor may have: 2^40, about 4 TiB
// of f32. Far beyond any real tensor, it keeps element counts and their
// byte sizes far from overflowing an int, so a shape such as
// [2^32, 2^32] is an error rather than a product that wraps to 0.
const MaxElements = 1 << 40

// ShapeLen returns the number of elements of shape (1 for a scalar), or
// an error for a negative dim or more than MaxElements elements. It never
// overflows.
func ShapeLen(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dim in shape %v", shape)
		}
		if d == 0 {
			n = 0
		}
	}
	if n == 0 {
		return 0, nil
	}
	for _, d := range shape {
		if d > MaxElements/n {
			return 0, fmt.Errorf("shape %v has more than %d elements", shape, MaxElements)
		}
		n *= d
	}
	return n, nil
}

// Scalar returns a rank-0 tensor of dtype dt holding v converted as a cast
// converts: i32 truncates toward zero, bool is v != 0.
func Scalar(dt DType, v float64) *Tensor {
	t := New(dt)
	switch dt {
	case F32:
		t.F[0] = float32(v)
	case I32:
		t.I[0] = f64ToI32(v)
	case Bool:
		t.B[0] = v != 0
	}
	return t
}

// Const returns the IR's const op: the scalar v of dtype dt (rank 0),
// converted as Scalar converts. Broadcasting spreads it.
func Const(dt DType, v float64) *Tensor { return Scalar(dt, v) }

// Len returns the number of elements: the product of the shape.
func (t *Tensor) Len() int { return numel(t.Shape) }

// Rank returns the number of dims.
func (t *Tensor) Rank() int { return len(t.Shape) }

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{
		DType: t.DType,
		Shape: cloneInts(t.Shape),
		F:     cloneSlice(t.F),
		I:     cloneSlice(t.I),
		B:     cloneSlice(t.B),
	}
}

// Float64s returns the elements converted to float64 (bools as 0 and 1),
// for comparisons and printing.
func (t *Tensor) Float64s() []float64 {
	out := make([]float64, max(t.dataLen(), 0))
	for i := range out {
		out[i] = t.at(i)
	}
	return out
}

// at returns element i (row-major) as a float64.
func (t *Tensor) at(i int) float64 {
	switch t.DType {
	case F32:
		return float64(t.F[i])
	case I32:
		return float64(t.I[i])
	case Bool:
		if t.B[i] {
			return 1
		}
	}
	return 0
}

// dataLen returns the length of the slice that holds t's elements.
func (t *Tensor) dataLen() int {
	switch t.DType {
	case F32:
		return len(t.F)
	case I32:
		return len(t.I)
	case Bool:
		return len(t.B)
	}
	return -1
}

// maxShown bounds how many elements String prints.
const maxShown = 8

// String returns t's type followed by its first elements in row-major
// order, as in "f32[2 3] [1 2 3 4 5 6]"; past 8 elements the rest is
// elided with "…".
func (t *Tensor) String() string {
	if t == nil {
		return "<nil tensor>"
	}
	var sb strings.Builder
	sb.WriteString(typeString(t.DType, t.Shape))
	n := t.Len()
	if t.dataLen() != n {
		fmt.Fprintf(&sb, " <%d values>", t.dataLen())
		return sb.String()
	}
	sb.WriteString(" [")
	for i := range min(n, maxShown) {
		if i > 0 {
			sb.WriteByte(' ')
		}
		switch t.DType {
		case F32:
			sb.WriteString(formatF32(t.F[i]))
		case I32:
			fmt.Fprint(&sb, t.I[i])
		case Bool:
			fmt.Fprint(&sb, t.B[i])
		}
	}
	if n > maxShown {
		sb.WriteString(" …")
	}
	sb.WriteByte(']')
	return sb.String()
}

func formatF32(v float32) string {
	switch {
	case math.IsInf(float64(v), 1):
		return "inf"
	case math.IsInf(float64(v), -1):
		return "-inf"
	case v != v:
		return "nan"
	}
	return fmt.Sprint(v)
}

// typeString prints a dtype and shape as "f32[64 64]"; a negative dim
// (any size, in CheckShape) prints as "?".
func typeString(dt DType, shape []int) string {
	var sb strings.Builder
	sb.WriteString(dt.String())
	sb.WriteByte('[')
	for i, d := range shape {
		if i > 0 {
			sb.WriteByte(' ')
		}
		if d < 0 {
			sb.WriteByte('?')
		} else {
			fmt.Fprint(&sb, d)
		}
	}
	sb.WriteByte(']')
	return sb.String()
}

// CheckShape reports whether t has dtype dt and the given shape, with an
// error such as
//
//	param "attn.q.weight": want f32[64 64], got f32[64 32]
//
// A negative dim in shape matches any size (a symbolic dim). A nil
// tensor, or one whose data does not match its shape, is an error too.
func CheckShape(name string, t *Tensor, dt DType, shape []int) error {
	want := typeString(dt, shape)
	if t == nil {
		return fmt.Errorf("param %q: want %s, got no tensor", name, want)
	}
	ok := t.DType == dt && len(t.Shape) == len(shape)
	if ok {
		for i, d := range shape {
			if t.Shape[i] < 0 || (d >= 0 && t.Shape[i] != d) {
				ok = false
			}
		}
	}
	if !ok {
		return fmt.Errorf("param %q: want %s, got %s", name, want, typeString(t.DType, t.Shape))
	}
	if n := t.dataLen(); n != t.Len() {
		return fmt.Errorf("param %q: %s holds %d values, want %d", name, typeString(t.DType, t.Shape), n, t.Len())
	}
	return nil
}

// numel returns the product of shape's dims (1 for a scalar), panicking
// on a negative dim or a shape of more than MaxElements elements.
func numel(shape []int) int {
	n, err := ShapeLen(shape)
	if err != nil {
		panic("runtime: " + err.Error())
	}
	return n
}

// stridesOf returns the row-major strides of shape.
func stridesOf(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// split3 views shape as [outer, shape[axis], inner].
func split3(shape []int, axis int) (outer, n, inner int) {
	return numel(shape[:axis]), shape[axis], numel(shape[axis+1:])
}

func cloneInts(s []int) []int {
	if s == nil {
		return []int{}
	}
	return append([]int{}, s...)
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append([]T{}, s...)
}

// checkAxis panics unless 0 ≤ axis < rank.
func checkAxis(kernel string, axis, rank int) {
	if axis < 0 || axis >= rank {
		panic(fmt.Sprintf("runtime.%s: axis %d out of range for rank %d", kernel, axis, rank))
	}
}

// f64ToI32 truncates v toward zero, saturating at the int32 range (NaN
// gives 0), so a conversion never depends on the platform.
func f64ToI32(v float64) int32 {
	switch {
	case v != v:
		return 0
	case v >= math.MaxInt32:
		return math.MaxInt32
	case v <= math.MinInt32:
		return math.MinInt32
	}
	return int32(v)
}
