package kir

import (
	"sort"
	"strings"

	"github.com/attnc/attnc/ir"
)

// The text form of a module:
//
//	kir lm4(B, N)
//
//	kernel scale(x: f32[N, 128], out: f32[N, 128]) grid [(N + 63) / 64] {
//	  %0 = program_id {axis = 0} : index
//	  …
//	  %7, %8 = for %9 = %1 to %2 step %3 iter(%10 = %4, %11 = %5) : (f32[64], f32[64, 32]) {
//	    …
//	    yield %12, %13
//	  }
//	  %14 = if %6 : (f32[64]) {
//	    yield %15
//	  } else {
//	    yield %16
//	  }
//	  store %out, %14, %2, %3 {dims = [0, 1]}
//	}
//
// One instruction a line, regions indented by two spaces; operands as
// %ID (params as %name); attributes in the order of the op's row, absent
// optional ones left out; result types after a colon (a list in
// parentheses when there are several, or for for and if), none when there
// are no results. Parse reads it back to an identical module, and Print
// of a parsed module is its input when that input was printed.

// Print returns the text form of m.
func Print(m *Module) string {
	var sb strings.Builder
	sb.WriteString("kir ")
	sb.WriteString(m.Name)
	sb.WriteString("(")
	sb.WriteString(strings.Join(m.Syms, ", "))
	sb.WriteString(")\n")
	for _, k := range m.Kernels {
		sb.WriteString("\n")
		writeKernel(&sb, k)
	}
	return sb.String()
}

func (m *Module) String() string { return Print(m) }

func writeKernel(sb *strings.Builder, k *Kernel) {
	sb.WriteString("kernel ")
	sb.WriteString(k.Name)
	sb.WriteString("(")
	for i, p := range k.Params {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(p.Name)
		sb.WriteString(": ")
		sb.WriteString(p.Type.String())
	}
	sb.WriteString(") grid [")
	for i, g := range k.Grid {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(g.String())
	}
	sb.WriteString("] {\n")
	writeBlock(sb, k.Body, 1)
	sb.WriteString("}\n")
}

func writeBlock(sb *strings.Builder, b *Block, depth int) {
	if b == nil {
		return
	}
	for _, in := range b.Instrs {
		sb.WriteString(strings.Repeat("  ", depth))
		in.writeHead(sb)
		if len(in.Regions) > 0 {
			sb.WriteString(" {\n")
			for i, r := range in.Regions {
				if i > 0 {
					sb.WriteString(strings.Repeat("  ", depth))
					sb.WriteString("} else {\n")
				}
				writeBlock(sb, r, depth+1)
			}
			sb.WriteString(strings.Repeat("  ", depth))
			sb.WriteString("}")
		}
		sb.WriteString("\n")
	}
}

// String returns the instruction's first line, its regions shown as
// {…}: the form error messages quote.
func (in *Instr) String() string {
	if in == nil {
		return "<nil>"
	}
	var sb strings.Builder
	in.writeHead(&sb)
	if len(in.Regions) > 0 {
		sb.WriteString(" {…}")
	}
	return sb.String()
}

func refs(vs []*Value) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.Ref()
	}
	return strings.Join(parts, ", ")
}

func typeList(vs []*Value) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		if v == nil {
			parts[i] = "<nil>"
			continue
		}
		parts[i] = v.Type.String()
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func (in *Instr) writeHead(sb *strings.Builder) {
	if len(in.Results) > 0 {
		sb.WriteString(refs(in.Results))
		sb.WriteString(" = ")
	}
	sb.WriteString(in.Name())
	switch in.Op {
	case OpFor:
		if len(in.Args) < 3 || len(in.Regions) != 1 || in.Regions[0] == nil || len(in.Regions[0].Args) != len(in.Args)-2 {
			sb.WriteString(" <malformed> ")
			sb.WriteString(refs(in.Args))
			return
		}
		body := in.Regions[0]
		sb.WriteString(" ")
		sb.WriteString(body.Args[0].Ref())
		sb.WriteString(" = ")
		sb.WriteString(in.Args[0].Ref())
		sb.WriteString(" to ")
		sb.WriteString(in.Args[1].Ref())
		sb.WriteString(" step ")
		sb.WriteString(in.Args[2].Ref())
		if len(in.Args) > 3 {
			sb.WriteString(" iter(")
			for i, init := range in.Args[3:] {
				if i > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString(body.Args[1+i].Ref())
				sb.WriteString(" = ")
				sb.WriteString(init.Ref())
			}
			sb.WriteString(")")
		}
		if len(in.Results) > 0 {
			sb.WriteString(" : ")
			sb.WriteString(typeList(in.Results))
		}
		return
	case OpIf:
		sb.WriteString(" ")
		sb.WriteString(refs(in.Args))
		if len(in.Results) > 0 {
			sb.WriteString(" : ")
			sb.WriteString(typeList(in.Results))
		}
		return
	}
	if len(in.Args) > 0 {
		sb.WriteString(" ")
		sb.WriteString(refs(in.Args))
	}
	if len(in.Attrs) > 0 {
		sb.WriteString(" {")
		for i, name := range attrOrder(in.Op.Info(), in.Attrs) {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(name)
			sb.WriteString(" = ")
			sb.WriteString(in.Attrs[name].String())
		}
		sb.WriteString("}")
	}
	switch len(in.Results) {
	case 0:
	case 1:
		sb.WriteString(" : ")
		sb.WriteString(in.Results[0].Type.String())
	default:
		sb.WriteString(" : ")
		sb.WriteString(typeList(in.Results))
	}
}

// attrOrder lists the names of attrs in the order of the op's specs, then
// any the op does not declare (the verifier rejects those), sorted.
func attrOrder(info *OpInfo, attrs ir.Attrs) []string {
	var out []string
	for _, spec := range info.Attrs {
		if _, ok := attrs[spec.Name]; ok {
			out = append(out, spec.Name)
		}
	}
	var extra []string
	for name := range attrs {
		known := false
		for _, spec := range info.Attrs {
			known = known || spec.Name == name
		}
		if !known {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	return append(out, extra...)
}
