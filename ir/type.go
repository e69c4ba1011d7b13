package ir

import "fmt"

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

// A Type is a dtype and a symbolic shape. Rank 0 is a scalar.
type Type struct {
	DType DType
	Shape Shape
}

// Rank returns the number of dimensions.
func (t Type) Rank() int { return len(t.Shape) }

// Equal reports whether t and u are the same type.
func (t Type) Equal(u Type) bool { return t.DType == u.DType && t.Shape.Equal(u.Shape) }

// String prints t as in "f32[B, N, 128]" or "f32[]".
func (t Type) String() string { return t.DType.String() + t.Shape.String() }

// TensorOf returns the type dtype[dims...].
func TensorOf(dt DType, dims ...Dim) Type { return Type{DType: dt, Shape: Shape(dims)} }
