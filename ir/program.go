package ir

// A Program is a module lowered for the renderers: its instructions
// grouped into the functions the generated code exposes, each in
// execution order. Renderers read Programs; passes decide what is in them.
type Program struct {
	Module *Module
	Funcs  []*Func
}

// A Func is one entry point of generated code (Forward, LossAndGrad).
type Func struct {
	Name    string
	Doc     string   // one sentence for the generated doc comment
	Body    []*Instr // in execution order; every operand is defined earlier in Body
	Results []Output // the module outputs this function returns
	// Last[i] lists the values whose last use is Body[i] and that are
	// not results: a renderer may release them after Body[i].
	Last [][]*Instr
}

// Func returns the function called name, or nil.
func (p *Program) Func(name string) *Func {
	for _, f := range p.Funcs {
		if f.Name == name {
			return f
		}
	}
	return nil
}
