package ir

import (
	"strconv"
	"strings"
)

// The IR's text form. One module prints as
//
//	module seq2seq(B, S, T) {
//	  %0 = input {name = "src"} : i32[B, S]
//	  %1 = param {name = "embed.weight", init = normal, scale = 0.02} : f32[256, 64]
//	  %2 = gather %1, %0 {axis = 0} : f32[B, S, 64]
//	  ...
//	  loss %20
//	  metric "acc" = %21
//	  output "pred" = %22
//	}
//
// One instruction per line; operands as %ID; attributes in the order of the
// op's row in the op table, absent optional ones left out and the braces
// left out when there are none; the result type always printed, even where
// the op infers it (the verifier then checks it). Parse reads this form
// back to an identical module (Module.Diff is empty), and Print of a parsed
// module is byte-identical to its input when that input was printed.
//
// A loss output named "loss" prints as "loss %N"; any other name prints as
// metrics and outputs do: loss "name" = %N.

// LossName is the name Parse gives a loss written as "loss %N".
const LossName = "loss"

// Print returns the text form of m.
func Print(m *Module) string {
	var sb strings.Builder
	sb.WriteString("module ")
	sb.WriteString(quoteName(m.Name))
	sb.WriteString("(")
	sb.WriteString(strings.Join(m.Syms, ", "))
	sb.WriteString(") {\n")
	for _, in := range m.Instrs {
		sb.WriteString("  ")
		in.write(&sb)
		sb.WriteString("\n")
	}
	for _, o := range m.Outputs {
		sb.WriteString("  ")
		o.write(&sb)
		sb.WriteString("\n")
	}
	sb.WriteString("}\n")
	return sb.String()
}

// String returns the text form of m, as Print does.
func (m *Module) String() string { return Print(m) }

// String returns the instruction's line of text, without indentation, as
// in "%2 = gather %1, %0 {axis = 0} : f32[B, S, 64]".
func (in *Instr) String() string {
	if in == nil {
		return "<nil>"
	}
	var sb strings.Builder
	in.write(&sb)
	return sb.String()
}

// String returns the output's line of text, as in `metric "acc" = %21`.
func (o Output) String() string {
	var sb strings.Builder
	o.write(&sb)
	return sb.String()
}

func (in *Instr) write(sb *strings.Builder) {
	if in == nil {
		sb.WriteString("<nil>")
		return
	}
	sb.WriteString("%")
	sb.WriteString(strconv.Itoa(in.ID))
	sb.WriteString(" = ")
	sb.WriteString(in.Op.String())
	for i, a := range in.Args {
		if i == 0 {
			sb.WriteString(" ")
		} else {
			sb.WriteString(", ")
		}
		writeRef(sb, a)
	}
	if len(in.Attrs) > 0 {
		sb.WriteString(" {")
		for i, name := range attrOrder(in.Op, in.Attrs) {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(name)
			sb.WriteString(" = ")
			sb.WriteString(in.Attrs[name].String())
		}
		sb.WriteString("}")
	}
	sb.WriteString(" : ")
	sb.WriteString(in.Type.String())
}

func (o Output) write(sb *strings.Builder) {
	sb.WriteString(o.Kind.String())
	if o.Kind != OutLoss || o.Name != LossName {
		sb.WriteString(" ")
		sb.WriteString(strconv.Quote(o.Name))
		sb.WriteString(" =")
	}
	sb.WriteString(" ")
	writeRef(sb, o.Value)
}

func writeRef(sb *strings.Builder, in *Instr) {
	if in == nil {
		sb.WriteString("%<nil>")
		return
	}
	sb.WriteString("%")
	sb.WriteString(strconv.Itoa(in.ID))
}

// attrOrder lists the names in attrs in print order: the op's attribute
// specs first, in table order, then any names the op does not declare
// (only an invalid instruction has those), sorted.
func attrOrder(op Op, attrs Attrs) []string {
	names := make([]string, 0, len(attrs))
	known := map[string]bool{}
	for _, spec := range op.Info().Attrs {
		known[spec.Name] = true
		if _, ok := attrs[spec.Name]; ok {
			names = append(names, spec.Name)
		}
	}
	for _, name := range sortedKeys(attrs) {
		if !known[name] {
			names = append(names, name)
		}
	}
	return names
}

// String prints the attribute value in the text form of its kind: 3,
// 0.125, true, "q.weight", normal, [0, 2, 1], N-1, f32, (k <= q).
func (x Attr) String() string {
	switch x.Kind {
	case AttrInt:
		return strconv.FormatInt(x.Int, 10)
	case AttrFloat:
		return FormatFloat(x.Float)
	case AttrBool:
		return strconv.FormatBool(x.Bool)
	case AttrString:
		return strconv.Quote(x.Str)
	case AttrWord:
		if isIdent(x.Str) {
			return x.Str
		}
		// Not a valid word; quoting keeps the line readable in messages.
		return strconv.Quote(x.Str)
	case AttrInts:
		parts := make([]string, len(x.Ints))
		for i, v := range x.Ints {
			parts[i] = strconv.FormatInt(v, 10)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case AttrDim:
		return x.Dim.String()
	case AttrDType:
		return x.DType.String()
	case AttrExpr:
		return "(" + x.Expr.String() + ")"
	case AttrModule:
		return bodyString(x.Module)
	}
	return "<bad attribute>"
}

// bodyString prints an op's body module on one line, its instructions
// and outputs in braces, separated by commas:
//
//	{%0 = input {name = "state"} : f32[B, 8], %1 = tanh %0 : f32[B, 8], output "next" = %1}
//
// The body's symbols are the enclosing module's and its name is empty, so
// neither is printed.
func bodyString(m *Module) string {
	if m == nil {
		return "{}"
	}
	var sb strings.Builder
	sb.WriteString("{")
	for i, in := range m.Instrs {
		if i > 0 {
			sb.WriteString(", ")
		}
		in.write(&sb)
	}
	for i, o := range m.Outputs {
		if i > 0 || len(m.Instrs) > 0 {
			sb.WriteString(", ")
		}
		o.write(&sb)
	}
	sb.WriteString("}")
	return sb.String()
}

// quoteName prints a module name bare when it is an identifier and
// Go-quoted otherwise, so any name survives a round trip.
func quoteName(s string) string {
	if isIdent(s) {
		return s
	}
	return strconv.Quote(s)
}
