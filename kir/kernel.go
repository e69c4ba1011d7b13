package kir

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/attnc/attnc/ir"
)

// A Kind says what a value is: an index scalar, a tile or a buffer.
type Kind uint8

const (
	KInvalid Kind = iota
	KIndex        // a scalar integer: program ids, offsets, bounds
	KTile         // a value of static shape in registers or on-chip memory
	KBuffer       // a tensor in memory, a kernel parameter
)

// A Type is the type of a value. Tiles have a dtype and a static shape
// (rank 0 for a scalar); buffers a dtype and the graph IR's symbolic
// dims; an index has neither.
type Type struct {
	Kind  Kind
	DType ir.DType
	Shape []int    // KTile
	Dims  ir.Shape // KBuffer
}

// Index is the index type.
var Index = Type{Kind: KIndex}

// Tile returns the tile type of dt and shape.
func Tile(dt ir.DType, shape ...int) Type {
	return Type{Kind: KTile, DType: dt, Shape: append([]int{}, shape...)}
}

// Buffer returns the buffer type of dt and dims.
func Buffer(dt ir.DType, dims ...ir.Dim) Type {
	return Type{Kind: KBuffer, DType: dt, Dims: append(ir.Shape{}, dims...)}
}

// Equal reports whether t and u are the same type.
func (t Type) Equal(u Type) bool {
	if t.Kind != u.Kind || t.DType != u.DType || !slices.Equal(t.Shape, u.Shape) || len(t.Dims) != len(u.Dims) {
		return false
	}
	for i := range t.Dims {
		if !t.Dims[i].Equal(u.Dims[i]) {
			return false
		}
	}
	return true
}

// Rank is a tile's or a buffer's number of axes (0 for an index).
func (t Type) Rank() int {
	if t.Kind == KBuffer {
		return len(t.Dims)
	}
	return len(t.Shape)
}

// Elems is a tile's number of elements.
func (t Type) Elems() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// String prints the type: index, f32[64, 32], f32[], f32[B, N, 128].
func (t Type) String() string {
	switch t.Kind {
	case KIndex:
		return "index"
	case KTile:
		parts := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			parts[i] = strconv.Itoa(d)
		}
		return t.DType.String() + "[" + strings.Join(parts, ", ") + "]"
	case KBuffer:
		return t.DType.String() + t.Dims.String()
	}
	return "invalid"
}

// A Module is the kernels of one model.
type Module struct {
	Name    string
	Syms    []string // the symbols the kernels' dims and grids use
	Kernels []*Kernel
}

// A Kernel is a grid of programs over buffers. Params are its buffers, in
// order; Grid the number of programs along each of its (1 to 3) axes, as
// index expressions over the module's symbols; Body what one program
// computes, ending without a terminator (stores are its effect).
type Kernel struct {
	Name   string
	Params []*Value
	Grid   []*ir.Expr
	Body   *Block
}

// A Block is a region's body: its arguments (a loop's counter and
// carried values) and instructions. A region of for or if ends with a
// yield; a kernel's body does not.
type Block struct {
	Args   []*Value
	Instrs []*Instr
}

// A Value is a buffer parameter (Name set, ID < 0), an instruction's
// result or a block argument (numbered by ID, printed %ID).
type Value struct {
	ID   int
	Name string
	Type Type
	Def  *Instr // the instruction defining it; nil for params and block args
}

// Ref returns the value as operands print it: %name or %ID.
func (v *Value) Ref() string {
	if v == nil {
		return "%<nil>"
	}
	if v.Name != "" {
		return "%" + v.Name
	}
	return "%" + strconv.Itoa(v.ID)
}

// An Instr applies an op to operands. Elem is the graph IR's
// elementwise function when Op is OpElem. Results are the values it
// defines (none for store and yield); Regions its nested blocks (for:
// one, if: two).
type Instr struct {
	Op      Op
	Elem    ir.Op
	Args    []*Value
	Attrs   ir.Attrs
	Results []*Value
	Regions []*Block
}

// Name returns the instruction's op name as printed: the elementwise
// function's for OpElem.
func (in *Instr) Name() string {
	if in.Op == OpElem {
		return in.Elem.String()
	}
	return in.Op.String()
}

// Walk calls fn on every instruction of b and of the regions below it,
// parents first.
func (b *Block) Walk(fn func(*Instr)) {
	for _, in := range b.Instrs {
		fn(in)
		for _, r := range in.Regions {
			r.Walk(fn)
		}
	}
}

// Kernel returns the module's kernel named name, or nil.
func (m *Module) Kernel(name string) *Kernel {
	for _, k := range m.Kernels {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// Param returns the kernel's buffer named name, or nil.
func (k *Kernel) Param(name string) *Value {
	for _, p := range k.Params {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func (k *Kernel) String() string { return fmt.Sprintf("kernel %s", k.Name) }
