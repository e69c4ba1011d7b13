package ir

import (
	"fmt"
	"sort"
)

// A Module is one model's tensor program: instructions in SSA order, each
// defining one value, and the named outputs (loss, metrics, predictions).
type Module struct {
	Name    string
	Syms    []string // symbolic dimensions, in order of first binding (B, N, …)
	Instrs  []*Instr
	Outputs []Output
}

// An Instr is one op applied to earlier values. ID is its value number,
// printed %ID; IDs are unique within a module but need not be dense.
type Instr struct {
	ID    int
	Op    Op
	Args  []*Instr
	Attrs Attrs
	Type  Type
}

// OutputKind says what an output of a module is for.
type OutputKind uint8

const (
	OutLoss   OutputKind = iota + 1 // the scalar training objective
	OutMetric                       // a scalar reported during evaluation
	OutValue                        // any other named result (predictions)
	OutGrad                         // the gradient of the loss with respect to the param Name
	OutUpdate                       // the value the buffer Name takes after a training step
)

var outputKindNames = [...]string{OutLoss: "loss", OutMetric: "metric", OutValue: "output", OutGrad: "grad", OutUpdate: "update"}

func (k OutputKind) String() string {
	if int(k) < len(outputKindNames) && outputKindNames[k] != "" {
		return outputKindNames[k]
	}
	return fmt.Sprintf("output(%d)", uint8(k))
}

// An Output names a value of the module.
type Output struct {
	Kind  OutputKind
	Name  string
	Value *Instr
}

// Params returns the module's param instructions in program order.
func (m *Module) Params() []*Instr { return m.byOp(OpParam) }

// Buffers returns the module's buffer instructions in program order.
func (m *Module) Buffers() []*Instr { return m.byOp(OpBuffer) }

// Inputs returns the module's input instructions in program order.
func (m *Module) Inputs() []*Instr { return m.byOp(OpInput) }

func (m *Module) byOp(op Op) []*Instr {
	var out []*Instr
	for _, in := range m.Instrs {
		if in.Op == op {
			out = append(out, in)
		}
	}
	return out
}

// Loss returns the module's loss value, or nil.
func (m *Module) Loss() *Instr {
	for _, o := range m.Outputs {
		if o.Kind == OutLoss {
			return o.Value
		}
	}
	return nil
}

// Name returns the name attribute of a param or input.
func (in *Instr) Name() string { return in.Attrs.Str("name") }

// An AttrKind is the type of an attribute value.
type AttrKind uint8

const (
	AttrInt    AttrKind = iota + 1 // 3, -1
	AttrFloat                      // 0.125, 1e-05
	AttrBool                       // true, false
	AttrString                     // "q.weight"
	AttrWord                       // a bare identifier from a fixed set: normal, probs
	AttrInts                       // [0, 2, 1, 3]
	AttrDim                        // N-1
	AttrDType                      // f32
	AttrExpr                       // (k <= q)
	AttrModule                     // {%0 = input {name = "state"} : f32[B, 8], …, output "next" = %3}
)

var attrKindNames = [...]string{AttrInt: "int", AttrFloat: "float", AttrBool: "bool", AttrString: "string",
	AttrWord: "word", AttrInts: "int list", AttrDim: "dim", AttrDType: "dtype", AttrExpr: "expression", AttrModule: "module"}

func (k AttrKind) String() string {
	if int(k) < len(attrKindNames) {
		return attrKindNames[k]
	}
	return "attr?"
}

// An Attr is one attribute value; Kind says which field holds it.
type Attr struct {
	Kind  AttrKind
	Int   int64
	Float float64
	Bool  bool
	Str   string // AttrString, AttrWord
	Ints  []int64
	Dim   Dim
	DType DType
	Expr  *Expr
	// Module is the body of an op that runs a function of its own
	// (recur's cell): a module with inputs and outputs only, whose types
	// use the enclosing module's symbols.
	Module *Module
}

// Attrs maps attribute names to values. The op table fixes which names an
// op takes and in which order they print.
type Attrs map[string]Attr

// Attribute constructors.
func IntAttr(v int64) Attr      { return Attr{Kind: AttrInt, Int: v} }
func FloatAttr(v float64) Attr  { return Attr{Kind: AttrFloat, Float: v} }
func BoolAttr(v bool) Attr      { return Attr{Kind: AttrBool, Bool: v} }
func StringAttr(s string) Attr  { return Attr{Kind: AttrString, Str: s} }
func WordAttr(s string) Attr    { return Attr{Kind: AttrWord, Str: s} }
func IntsAttr(v ...int64) Attr  { return Attr{Kind: AttrInts, Ints: v} }
func DimAttr(d Dim) Attr        { return Attr{Kind: AttrDim, Dim: d} }
func DTypeAttr(d DType) Attr    { return Attr{Kind: AttrDType, DType: d} }
func ExprAttr(e *Expr) Attr     { return Attr{Kind: AttrExpr, Expr: e} }
func ModuleAttr(m *Module) Attr { return Attr{Kind: AttrModule, Module: m} }

// Int returns attribute name as an int (0 if absent).
func (a Attrs) Int(name string) int { return int(a[name].Int) }

// Float returns attribute name as a float (0 if absent).
func (a Attrs) Float(name string) float64 { return a[name].Float }

// Bool returns attribute name as a bool (false if absent).
func (a Attrs) Bool(name string) bool { return a[name].Bool }

// Str returns a string or word attribute ("" if absent).
func (a Attrs) Str(name string) string { return a[name].Str }

// Ints returns an int-list attribute as ints.
func (a Attrs) Ints(name string) []int {
	out := make([]int, len(a[name].Ints))
	for i, v := range a[name].Ints {
		out[i] = int(v)
	}
	return out
}

// Expr returns an expression attribute, or nil.
func (a Attrs) Expr(name string) *Expr { return a[name].Expr }

// Has reports whether the attribute is set.
func (a Attrs) Has(name string) bool { _, ok := a[name]; return ok }

// Equal reports whether two attribute values are identical.
func (x Attr) Equal(y Attr) bool {
	if x.Kind != y.Kind {
		return false
	}
	switch x.Kind {
	case AttrInt:
		return x.Int == y.Int
	case AttrFloat:
		return x.Float == y.Float || (x.Float != x.Float && y.Float != y.Float)
	case AttrBool:
		return x.Bool == y.Bool
	case AttrString, AttrWord:
		return x.Str == y.Str
	case AttrInts:
		if len(x.Ints) != len(y.Ints) {
			return false
		}
		for i := range x.Ints {
			if x.Ints[i] != y.Ints[i] {
				return false
			}
		}
		return true
	case AttrDim:
		return x.Dim.Equal(y.Dim)
	case AttrDType:
		return x.DType == y.DType
	case AttrExpr:
		return x.Expr.Equal(y.Expr)
	case AttrModule:
		if x.Module == nil || y.Module == nil {
			return x.Module == y.Module
		}
		return x.Module.Equal(y.Module)
	}
	return false
}

// Equal reports whether two modules are identical: same name, symbols,
// instructions (ops, argument IDs, attributes, types) and outputs.
func (m *Module) Equal(n *Module) bool { return m.Diff(n) == "" }

// Diff describes the first difference between m and n, or returns "".
func (m *Module) Diff(n *Module) string {
	if m.Name != n.Name {
		return fmt.Sprintf("name %q vs %q", m.Name, n.Name)
	}
	if fmt.Sprint(m.Syms) != fmt.Sprint(n.Syms) {
		return fmt.Sprintf("symbols %v vs %v", m.Syms, n.Syms)
	}
	if len(m.Instrs) != len(n.Instrs) {
		return fmt.Sprintf("%d vs %d instructions", len(m.Instrs), len(n.Instrs))
	}
	for i, a := range m.Instrs {
		b := n.Instrs[i]
		if a.ID != b.ID || a.Op != b.Op || !a.Type.Equal(b.Type) || len(a.Args) != len(b.Args) || len(a.Attrs) != len(b.Attrs) {
			return fmt.Sprintf("instruction %d: %%%d %s %s vs %%%d %s %s", i, a.ID, a.Op, a.Type, b.ID, b.Op, b.Type)
		}
		for j := range a.Args {
			if a.Args[j].ID != b.Args[j].ID {
				return fmt.Sprintf("instruction %%%d: argument %d differs", a.ID, j)
			}
		}
		for _, k := range sortedKeys(a.Attrs) {
			if !a.Attrs[k].Equal(b.Attrs[k]) {
				return fmt.Sprintf("instruction %%%d: attribute %s differs", a.ID, k)
			}
		}
	}
	if len(m.Outputs) != len(n.Outputs) {
		return fmt.Sprintf("%d vs %d outputs", len(m.Outputs), len(n.Outputs))
	}
	for i, o := range m.Outputs {
		p := n.Outputs[i]
		if o.Kind != p.Kind || o.Name != p.Name || o.Value.ID != p.Value.ID {
			return fmt.Sprintf("output %d differs", i)
		}
	}
	return ""
}

func sortedKeys(a Attrs) []string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Clone returns a copy of m whose instructions are new values (same IDs,
// operands and attributes: a pass may rewrite the copy's instructions in
// place without touching m). Attribute values, bodies included, are
// shared.
func (m *Module) Clone() *Module {
	out := &Module{Name: m.Name, Syms: append([]string(nil), m.Syms...)}
	at := map[*Instr]*Instr{}
	for _, in := range m.Instrs {
		c := &Instr{ID: in.ID, Op: in.Op, Type: in.Type, Attrs: Attrs{}}
		for k, v := range in.Attrs {
			c.Attrs[k] = v
		}
		for _, a := range in.Args {
			if n := at[a]; n != nil {
				a = n
			}
			c.Args = append(c.Args, a)
		}
		at[in] = c
		out.Instrs = append(out.Instrs, c)
	}
	for _, o := range m.Outputs {
		if n := at[o.Value]; n != nil {
			o.Value = n
		}
		out.Outputs = append(out.Outputs, o)
	}
	return out
}
