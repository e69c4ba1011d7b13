package lang

import (
	"fmt"
	"math"

	"github.com/attnc/attnc/ir"
)

// A value is what an expression evaluates to during elaboration: a tensor
// (an IR value), a compile-time number, bool or string, a mask or score
// (an index expression with its captured tensors), or a record (a call to
// a name that is data, like recall(pairs: 16) in a train section).
type value interface{ kind() string }

type (
	tensorVal struct{ in *ir.Instr }
	// intVal is a compile-time integer; it may be symbolic (N, S+T), which
	// shapes need, so it is an affine ir.Dim.
	intVal    struct{ d ir.Dim }
	floatVal  struct{ v float64 }
	boolVal   struct{ v bool }
	stringVal struct{ v string }
	// exprVal is a mask (bool) or score modification (number): an index
	// expression whose captures are IR values.
	exprVal struct {
		score bool
		e     *ir.Expr
		caps  []*ir.Instr
		// vecs marks the captures that stand for a vector read of the
		// score, qdot(t[…]) or kdot(t[…]): placeholders that attend
		// replaces with the product of q (or k) and t (vecread.go).
		vecs map[*ir.Instr]vecRead
	}
	// noneVal is the absence of a mask or score (the default of attend).
	noneVal   struct{}
	recordVal struct {
		name string
		args []RecordArg
	}
	// tupleVal is the results of a block that returns several values
	// (return a, b), which only let a, b = … takes apart.
	tupleVal struct{ vals []value }
	// errVal poisons an expression whose error was already reported, so
	// one mistake gives one diagnostic.
	errVal struct{}
)

func (tensorVal) kind() string { return "tensor" }
func (v intVal) kind() string {
	if _, ok := v.d.IsConst(); ok {
		return "int"
	}
	return "dimension"
}
func (floatVal) kind() string  { return "float" }
func (boolVal) kind() string   { return "bool" }
func (stringVal) kind() string { return "string" }
func (v exprVal) kind() string {
	if v.score {
		return "score"
	}
	return "mask"
}
func (noneVal) kind() string   { return "none" }
func (recordVal) kind() string { return "record" }
func (errVal) kind() string    { return "error" }
func (v tupleVal) kind() string {
	return fmt.Sprintf("%d values (a block's results: bind them with let a, b = …)", len(v.vals))
}

func constInt(n int64) intVal { return intVal{ir.ConstDim(n)} }

func (v intVal) isConst() (int64, bool) { return v.d.IsConst() }

// describe names a value for an error message: "tensor f32[B, N, 64]",
// "int 4", "mask".
func describe(v value) string {
	switch v := v.(type) {
	case tensorVal:
		return "tensor " + v.in.Type.String()
	case intVal:
		return v.kind() + " " + v.d.String()
	case floatVal:
		return "float " + ir.FormatFloat(v.v)
	case boolVal:
		return fmt.Sprintf("bool %v", v.v)
	case stringVal:
		return fmt.Sprintf("string %q", v.v)
	}
	return v.kind()
}

// RecordArg is one named argument of a record value.
type RecordArg struct {
	Name  string
	Value Value
}

// A Value is a compile-time value as the rest of attnc sees it: config
// entries and the train section. Exactly one field is meaningful, per Kind.
type Value struct {
	Kind   string // "int", "float", "bool", "string", "record"
	Int    int64
	Float  float64
	Bool   bool
	Str    string
	Record *Record
}

// A Record is a named set of arguments: recall(pairs: 16, len: 512).
type Record struct {
	Name string
	Args []RecordArg
}

// Get returns the argument named name.
func (r *Record) Get(name string) (Value, bool) {
	for _, a := range r.Args {
		if a.Name == name {
			return a.Value, true
		}
	}
	return Value{}, false
}

func (v Value) String() string {
	switch v.Kind {
	case "int":
		return fmt.Sprint(v.Int)
	case "float":
		return ir.FormatFloat(v.Float)
	case "bool":
		return fmt.Sprint(v.Bool)
	case "string":
		return fmt.Sprintf("%q", v.Str)
	case "record":
		s := v.Record.Name + "("
		for i, a := range v.Record.Args {
			if i > 0 {
				s += ", "
			}
			s += a.Name + ": " + a.Value.String()
		}
		return s + ")"
	}
	return "?"
}

// AsFloat returns a numeric value as float64.
func (v Value) AsFloat() (float64, bool) {
	switch v.Kind {
	case "int":
		return float64(v.Int), true
	case "float":
		return v.Float, true
	}
	return math.NaN(), false
}

// publicValue converts a compile-time value for the Model's users.
func publicValue(v value) (Value, bool) {
	switch v := v.(type) {
	case intVal:
		n, ok := v.isConst()
		return Value{Kind: "int", Int: n}, ok
	case floatVal:
		return Value{Kind: "float", Float: v.v}, true
	case boolVal:
		return Value{Kind: "bool", Bool: v.v}, true
	case stringVal:
		return Value{Kind: "string", Str: v.v}, true
	case recordVal:
		return Value{Kind: "record", Record: &Record{Name: v.name, Args: v.args}}, true
	}
	return Value{}, false
}

// privateValue converts a public value back (config overrides).
func privateValue(v Value) value {
	switch v.Kind {
	case "int":
		return constInt(v.Int)
	case "float":
		return floatVal{v.Float}
	case "bool":
		return boolVal{v.Bool}
	case "string":
		return stringVal{v.Str}
	case "record":
		return recordVal{name: v.Record.Name, args: v.Record.Args}
	}
	return errVal{}
}
