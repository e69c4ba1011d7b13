package eval

import (
	"fmt"
	"math"
	"strings"

	"github.com/attnc/attnc/ir"
)

// A Tensor is a dense row-major array of float64. Every dtype is stored as
// float64: i32 elements hold integral values in the int32 range, bool
// elements hold 0 or 1. The value of a multi-result op (a tuple type) is
// a Tensor whose Tuple holds the results and nothing else.
type Tensor struct {
	DType ir.DType
	Shape []int
	Data  []float64
	Tuple []*Tensor
}

// NewTensor returns a zero tensor of dtype dt and the given shape (no
// dims: a scalar). It panics on a negative dim, as make does.
func NewTensor(dt ir.DType, shape ...int) *Tensor {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("eval.NewTensor: negative dim in shape %v", shape))
		}
		n *= d
	}
	return &Tensor{DType: dt, Shape: append([]int{}, shape...), Data: make([]float64, n)}
}

// FromData returns a tensor of dtype dt and the given shape holding data
// (used, not copied). It panics if the length of data does not match the
// shape; Run checks the tensors it is given and reports such a mismatch
// as an error instead.
func FromData(dt ir.DType, shape []int, data []float64) *Tensor {
	t := &Tensor{DType: dt, Shape: append([]int{}, shape...), Data: data}
	if n := numel(shape); n != len(data) {
		panic(fmt.Sprintf("eval.FromData: shape %v needs %d values, got %d", shape, n, len(data)))
	}
	return t
}

// Scalar returns a rank-0 tensor holding v.
func Scalar(dt ir.DType, v float64) *Tensor {
	return &Tensor{DType: dt, Data: []float64{v}}
}

// Rank returns the number of dimensions.
func (t *Tensor) Rank() int { return len(t.Shape) }

// Size returns the number of elements.
func (t *Tensor) Size() int { return numel(t.Shape) }

// offset returns the position in Data of the element at idx, panicking
// with a readable message when idx does not address an element.
func (t *Tensor) offset(idx []int) int {
	if len(idx) != len(t.Shape) {
		panic(fmt.Sprintf("eval.Tensor: %d indices for a tensor of shape %v", len(idx), t.Shape))
	}
	off := 0
	for i, x := range idx {
		if x < 0 || x >= t.Shape[i] {
			panic(fmt.Sprintf("eval.Tensor: index %v out of range for shape %v", idx, t.Shape))
		}
		off = off*t.Shape[i] + x
	}
	return off
}

// At returns the element at idx (one index per dim). It panics if idx is
// out of range, like a slice index.
func (t *Tensor) At(idx ...int) float64 { return t.Data[t.offset(idx)] }

// Set stores v at idx (one index per dim). It panics if idx is out of
// range, like a slice index.
func (t *Tensor) Set(v float64, idx ...int) { t.Data[t.offset(idx)] = v }

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{DType: t.DType, Shape: append([]int{}, t.Shape...), Data: append([]float64{}, t.Data...)}
}

// maxPrinted bounds how many elements String prints.
const maxPrinted = 64

// String prints t as its type followed by its elements in nested
// brackets, e.g. "f32[2, 2] [[1 2] [3 4]]"; past 64 elements the rest is
// elided with "…".
func (t *Tensor) String() string {
	var sb strings.Builder
	sb.WriteString(t.DType.String())
	sb.WriteString("[")
	for i, d := range t.Shape {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprint(&sb, d)
	}
	sb.WriteString("] ")
	if len(t.Data) != t.Size() {
		fmt.Fprintf(&sb, "<%d values>", len(t.Data))
		return sb.String()
	}
	printed := 0
	var rec func(dim, off int)
	rec = func(dim, off int) {
		if dim == len(t.Shape) {
			if printed == maxPrinted {
				sb.WriteString("…")
			} else if printed < maxPrinted {
				sb.WriteString(formatElem(t.DType, t.Data[off]))
			}
			printed++
			return
		}
		sb.WriteString("[")
		inner := numel(t.Shape[dim+1:])
		for i := 0; i < t.Shape[dim] && printed <= maxPrinted; i++ {
			if i > 0 {
				sb.WriteString(" ")
			}
			rec(dim+1, off+i*inner)
		}
		sb.WriteString("]")
	}
	rec(0, 0)
	return sb.String()
}

func formatElem(dt ir.DType, v float64) string {
	if dt == ir.Bool {
		return fmt.Sprint(v != 0)
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return ir.FormatFloat(v)
	}
	return fmt.Sprint(v)
}

// numel returns the product of shape's dims (1 for a scalar).
func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// sizeOK reports whether a tensor of shape is small enough for the
// interpreter: no dim negative or above maxElements, and at most
// maxElements elements (checked as it multiplies, so huge dims cannot
// overflow).
func sizeOK[T int | int64](shape []T) bool {
	n, empty := T(1), false
	for _, d := range shape {
		if d < 0 || d > maxElements {
			return false
		}
		empty = empty || d == 0
	}
	for _, d := range shape {
		if !empty && n > maxElements/d {
			return false
		}
		n *= d
	}
	return true
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

// unravel writes the multi-index of the row-major offset off in shape
// into idx.
func unravel(off int, shape, idx []int) {
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] > 0 {
			idx[i] = off % shape[i]
			off /= shape[i]
		}
	}
}
