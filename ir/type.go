package ir

import (
	"fmt"
	"strings"
)

// A DType is the element type of a tensor. Models compute in f32; the
// reference interpreter evaluates f32 in float64.
type DType uint8

const (
	InvalidDType DType = iota
	Bool
	I32
	F32
)

var dtypeNames = [...]string{InvalidDType: "invalid", Bool: "bool", I32: "i32", F32: "f32"}

func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// ParseDType returns the dtype named s ("f32", "i32", "bool").
func ParseDType(s string) (DType, bool) {
	for i, n := range dtypeNames {
		if n == s && DType(i) != InvalidDType {
			return DType(i), true
		}
	}
	return InvalidDType, false
}

// A Type is a dtype and a symbolic shape (rank 0 is a scalar), or, for
// an op with several results, a tuple of such types: Tuple is then
// non-nil, DType is InvalidDType and Shape is nil. A tuple's elements are
// tensors, never tuples, and only extract may take a tuple operand.
type Type struct {
	DType DType
	Shape Shape
	Tuple []Type
}

// TupleOf returns the tuple type (ts...).
func TupleOf(ts ...Type) Type { return Type{Tuple: append([]Type{}, ts...)} }

// IsTuple reports whether t is the type of a multi-result op.
func (t Type) IsTuple() bool { return t.Tuple != nil }

// Rank returns the number of dimensions (0 for a tuple).
func (t Type) Rank() int { return len(t.Shape) }

// Equal reports whether t and u are the same type.
func (t Type) Equal(u Type) bool {
	if t.IsTuple() || u.IsTuple() {
		if len(t.Tuple) != len(u.Tuple) || t.IsTuple() != u.IsTuple() {
			return false
		}
		for i := range t.Tuple {
			if !t.Tuple[i].Equal(u.Tuple[i]) {
				return false
			}
		}
		return true
	}
	return t.DType == u.DType && t.Shape.Equal(u.Shape)
}

// String prints t as in "f32[B, N, 128]", "f32[]" or, for a tuple,
// "(f32[B, N], f32[B])".
func (t Type) String() string {
	if t.IsTuple() {
		parts := make([]string, len(t.Tuple))
		for i, e := range t.Tuple {
			parts[i] = e.String()
		}
		return "(" + strings.Join(parts, ", ") + ")"
	}
	return t.DType.String() + t.Shape.String()
}

// TensorOf returns the type dtype[dims...].
func TensorOf(dt DType, dims ...Dim) Type { return Type{DType: dt, Shape: Shape(dims)} }
