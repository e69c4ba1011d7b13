package lang

import (
	"fmt"
	"sort"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
	"github.com/attnc/attnc/ir"
)

// A Model is an elaborated model: its IR, its configuration and its
// default training setup.
type Model struct {
	Name   string
	IR     *ir.Module
	Config []Setting // in source order, after overrides
	Train  []Setting // the train section, in source order
}

// A Setting is one entry of a config or train section.
type Setting struct {
	Key   string
	Value Value
}

// TrainValue returns the train section's entry for key.
func (m *Model) TrainValue(key string) (Value, bool) { return lookup(m.Train, key) }

// ConfigValue returns the config entry for key.
func (m *Model) ConfigValue(key string) (Value, bool) { return lookup(m.Config, key) }

func lookup(list []Setting, key string) (Value, bool) {
	for _, s := range list {
		if s.Key == key {
			return s.Value, true
		}
	}
	return Value{}, false
}

// ElabOptions adjusts elaboration.
type ElabOptions struct {
	// Config overrides config values by name (each must exist).
	Config map[string]Value
	// Limits bounds the work of elaboration; nil means DefaultLimits,
	// and a zero field its default.
	Limits *Limits
}

// TrainKeys are the entries a train section may have.
var TrainKeys = []string{"task", "batch", "steps", "optimizer", "schedule", "eval_every", "eval_size", "target", "seed", "clip", "log_every"}

// Elaborate instantiates the model called name ("" for the root file's
// only model) into a verified IR module. Every problem is reported; the
// model is nil when there are any.
func (p *Program) Elaborate(name string, opts ElabOptions) (*Model, Diagnostics) {
	var diags diagSink
	if name == "" {
		names := p.ModelNames()
		switch len(names) {
		case 0:
			diags.at(fileStart(p), "no model in this file")
			return nil, diags.list
		case 1:
			name = names[0]
		default:
			diags.at(fileStart(p), "%d models in this file (%s); name one", len(names), strings.Join(names, ", "))
			return nil, diags.list
		}
	}
	def, ok := p.Models[name]
	if !ok {
		var all []string
		for n := range p.Models {
			all = append(all, n)
		}
		diags.at(fileStart(p), "no model named %s%s", name, didYouMean(name, all))
		return nil, diags.list
	}
	var limits Limits
	if opts.Limits != nil {
		limits = *opts.Limits
	}
	root := ir.NewBuilder(name)
	e := &elab{prog: p, b: root, root: root, overrides: opts.Config, used: map[string]bool{}, limits: limits.orDefaults()}
	e.diags = &diags
	diags.remap = e.fromStd
	m := e.model(def)
	ir.SetBodySyms(m.IR.Instrs, m.IR.Syms)
	diags.list.Sort()
	if len(diags.list) > 0 {
		return nil, diags.list
	}
	if err := ir.Verify(m.IR); err != nil {
		// The elaborator only builds through the builder, which verifies
		// each instruction; reaching here is a compiler bug, but the user
		// still deserves a positioned message rather than a crash.
		diags.errorf(def.Name, "internal error: elaborated IR does not verify: %v", err)
		return nil, diags.list
	}
	return m, nil
}

func fileStart(p *Program) (pos lexer.Position) {
	if p.Root != nil {
		return p.Root.Pos
	}
	return pos
}

// elab is the state of one model's elaboration.
type elab struct {
	prog      *Program
	diags     *diagSink
	b         *ir.Builder // where ops go: the model's, or a recur cell's body
	root      *ir.Builder // the model's: where weights go
	overrides map[string]Value

	// Weight naming: path holds the name segments of the enclosing block
	// instances and loop iterations; scopes[i] counts the segments used
	// directly under path[:i], so two norms in one block become norm and
	// norm_1. used holds every param name made.
	path   []string
	scopes []map[string]int
	used   map[string]bool
	// stmtName is the let-bound name that names the only weight-creating
	// call of the statement being evaluated, or "".
	stmtName string

	// limits bound the work; the counters below are measured against
	// them, and tooBig stops elaboration once one is crossed.
	limits     Limits
	iterations int64
	blockCalls int
	maskNodes  int
	blockDepth int
	tooBig     bool

	// frames are the block instances being elaborated, outermost first.
	frames []frame

	// updates are the buffers' update rules, in the order given.
	updates []bufferUpdate
}

// bufferUpdate is one buffer's rule: after a training step it takes value.
type bufferUpdate struct {
	buffer, value *ir.Instr
	at            Node
}

// frame is one block instance (or mask or score instance): its name and
// the call that made it.
type frame struct {
	block string
	call  *CallExpr
	def   Span // the definition's source
}

// fromStd moves an error found inside a standard library block to the
// call in the user's code that instantiated it: the library is not where
// the user can fix it, and its arguments came from that call. The message
// names the chain of blocks and the library file. An error in the user's
// own files stays where it is.
func (e *elab) fromStd(d Diagnostic) Diagnostic {
	if !strings.HasPrefix(d.Pos.Filename, StdPrefix) {
		// An error inside the user's own block or mask stays at the
		// definition, which is where to fix it, and says which call
		// instantiated it: its arguments may be the cause.
		if n := len(e.frames); n > 0 && within(d.Pos, e.frames[n-1].def) {
			f := e.frames[n-1]
			at := fmt.Sprintf("%d:%d", f.call.Pos.Line, f.call.Pos.Column)
			if f.call.Pos.Filename != d.Pos.Filename {
				at = posString(f.call.Pos)
			}
			d.Msg = fmt.Sprintf("%s (in %s, called at %s)", d.Msg, f.block, at)
		}
		return d
	}
	for i := len(e.frames) - 1; i >= 0; i-- {
		call := e.frames[i].call
		if strings.HasPrefix(call.Pos.Filename, StdPrefix) {
			continue
		}
		var chain []string
		for _, f := range e.frames[i:] {
			chain = append(chain, f.block)
		}
		d.Msg = fmt.Sprintf("%s (inside %s, %s)", d.Msg, strings.Join(chain, " → "), d.Pos.Filename)
		d.Pos, d.End = call.Pos, call.EndPos
		return d
	}
	return d
}

// within reports whether p lies inside the span s.
func within(p lexer.Position, s Span) bool {
	if p.Filename != s.Pos.Filename {
		return false
	}
	after := p.Line > s.Pos.Line || p.Line == s.Pos.Line && p.Column >= s.Pos.Column
	before := p.Line < s.EndPos.Line || p.Line == s.EndPos.Line && p.Column <= s.EndPos.Column
	return after && before
}

// env is a lexical scope of values.
type env struct {
	vars   map[string]value
	parent *env
}

func newEnv(parent *env) *env { return &env{vars: map[string]value{}, parent: parent} }

func (s *env) lookup(n string) (value, bool) {
	for ; s != nil; s = s.parent {
		if v, ok := s.vars[n]; ok {
			return v, true
		}
	}
	return nil, false
}

// set rebinds an existing name in the scope that holds it.
func (s *env) set(n string, v value) bool {
	for ; s != nil; s = s.parent {
		if _, ok := s.vars[n]; ok {
			s.vars[n] = v
			return true
		}
	}
	return false
}

func (s *env) names() []string {
	var out []string
	for ; s != nil; s = s.parent {
		for n := range s.vars {
			out = append(out, n)
		}
	}
	return out
}

func (e *elab) errorf(n Node, format string, args ...any) value {
	e.diags.errorf(n, format, args...)
	return errVal{}
}

func (e *elab) model(def *ModelDef) *Model {
	m := &Model{Name: def.Name.Name, IR: e.b.M}
	top := newEnv(nil)
	e.scopes = []map[string]int{{}}
	var configAt, lossAt, trainAt Node
	for _, s := range def.Body {
		if e.tooBig {
			break
		}
		switch s := s.(type) {
		case *ConfigStmt:
			if configAt != nil {
				e.errorf(s, "a model has one config section; the first is at line %d", configAt.Start().Line)
				continue
			}
			configAt = s
			m.Config = e.config(s, top)
		case *InputStmt:
			e.input(s, top)
		case *LossStmt:
			v := e.expr(s.Value, top)
			if t, ok := v.(tensorVal); ok {
				if t.in.Type.DType != ir.F32 || t.in.Type.Rank() != 0 {
					hint := ""
					if t.in.Type.Rank() > 0 {
						hint = "; reduce it, e.g. with mean(...)"
					} else if t.in.Type.DType != ir.F32 {
						hint = "; convert it with float(...)"
					}
					e.errorf(s.Value, "loss must be an f32 scalar, got %s%s", t.in.Type, hint)
				} else if lossAt != nil {
					e.errorf(s, "a model has one loss; the first is at line %d (add terms to combine losses)", lossAt.Start().Line)
				} else {
					lossAt = s
					e.b.Output(ir.OutLoss, "loss", t.in)
				}
			} else if _, bad := v.(errVal); !bad {
				e.errorf(s.Value, "loss must be a tensor, got %s", describe(v))
			}
		case *MetricStmt:
			e.metric(s, top)
		case *TrainStmt:
			if trainAt != nil {
				e.errorf(s, "a model has one train section; the first is at line %d", trainAt.Start().Line)
				continue
			}
			trainAt = s
			m.Train = e.train(s, top)
		case *ReturnStmt:
			e.errorf(s, "return is only allowed in a block; a model declares loss, metric and output")
		default:
			e.stmt(s, top)
		}
	}
	for _, u := range e.updates {
		e.root.Output(ir.OutUpdate, u.buffer.Name(), u.value)
	}
	for k := range e.overrides {
		if _, ok := lookup(m.Config, k); !ok {
			var keys []string
			for _, c := range m.Config {
				keys = append(keys, c.Key)
			}
			e.errorf(def.Name, "config override %s: model %s has no config value %s%s", k, def.Name.Name, k, didYouMean(k, keys))
		}
	}
	if m.IR.Loss() == nil && len(e.diags.list) == 0 {
		e.errorf(def.Name, "model %s has no loss", def.Name.Name)
	}
	return m
}

func (e *elab) config(s *ConfigStmt, top *env) []Setting {
	var out []Setting
	for _, kv := range s.Items {
		if _, dup := top.vars[kv.Key.Name]; dup {
			e.errorf(kv.Key, "config value %s is already defined", kv.Key.Name)
			continue
		}
		v := e.expr(kv.Value, top)
		if o, ok := e.overrides[kv.Key.Name]; ok {
			ov := privateValue(o)
			if iv, isInt := ov.(intVal); isInt && v.kind() == "float" {
				n, _ := iv.isConst()
				ov = floatVal{float64(n)} // --config lr=1 for a float setting
			}
			if ov.kind() != v.kind() {
				e.errorf(kv.Key, "config override %s: want %s, got %s", kv.Key.Name, v.kind(), describe(ov))
			} else {
				v = ov
			}
		}
		pub, ok := publicValue(v)
		if !ok {
			if _, bad := v.(errVal); !bad {
				e.errorf(kv.Value, "config value %s must be a compile-time constant, got %s", kv.Key.Name, describe(v))
			}
			v = errVal{}
		}
		top.vars[kv.Key.Name] = v
		out = append(out, Setting{Key: kv.Key.Name, Value: pub})
	}
	return out
}

func (e *elab) input(s *InputStmt, top *env) {
	if _, dup := top.lookup(s.Name.Name); dup {
		e.errorf(s.Name, "%s is already defined", s.Name.Name)
		return
	}
	// Until the input is made, its name stands for an error, so a bad
	// declaration is reported once and not again at every use.
	top.vars[s.Name.Name] = errVal{}
	dt := ir.F32
	if s.Type.Name != nil {
		d, ok := parseDType(e.diags, s.Type.Name)
		if !ok {
			return
		}
		dt = d
	}
	if !s.Type.Shaped {
		e.errorf(s.Type, "input %s needs a shape, like i32[B, N]", s.Name.Name)
		return
	}
	var shape ir.Shape
	for _, d := range s.Type.Dims {
		// A name not yet bound becomes a symbol of the module: a size
		// known only when inputs arrive (B, N).
		bad := false
		walkExpr(d, func(x Expr) {
			if id, ok := x.(*Ident); ok {
				if _, bound := top.lookup(id.Name); !bound {
					if id.Name == "q" || id.Name == "k" || id.Name == "h" || id.Name == "b" || id.Name == "s" {
						e.errorf(id, "%s cannot name a dimension: it is an index variable of masks and scores", id.Name)
						bad = true
						return
					}
					if id.Name == "inf" || id.Name == "nan" {
						e.errorf(id, "%s cannot name a dimension: it reads as a number in masks and in the IR", id.Name)
						bad = true
						return
					}
					e.b.AddSym(id.Name)
					top.vars[id.Name] = intVal{ir.SymDim(id.Name)}
				}
			}
		})
		if bad {
			return
		}
		dim, ok := e.dimOf(d, top)
		if !ok {
			return
		}
		shape = append(shape, dim)
	}
	in := e.must(s, func() (*ir.Instr, error) {
		return e.b.Given(ir.OpInput, ir.Type{DType: dt, Shape: shape}, ir.Attrs{"name": ir.StringAttr(s.Name.Name)})
	})
	if in != nil {
		top.vars[s.Name.Name] = tensorVal{in}
	}
}

// dtypeNames are the element types a tensor type may name.
var dtypeNames = []string{"f32", "i32", "bool"}

// parseDType reads the dtype of a tensor type, reporting an unknown one.
func parseDType(diags *diagSink, id *Ident) (ir.DType, bool) {
	d, ok := ir.ParseDType(id.Name)
	if !ok {
		hint := didYouMean(id.Name, dtypeNames)
		if hint == "" {
			hint = " (want f32, i32 or bool)"
		}
		diags.errorf(id, "unknown dtype %s%s", id.Name, hint)
	}
	return d, ok
}

// dimOf evaluates a dimension expression to an affine dim.
func (e *elab) dimOf(x Expr, sc *env) (ir.Dim, bool) {
	v := e.expr(x, sc)
	switch v := v.(type) {
	case intVal:
		if c, ok := v.isConst(); ok && c < 0 {
			e.errorf(x, "dimension %d is negative", c)
			return ir.Dim{}, false
		}
		return v.d, true
	case errVal:
		return ir.Dim{}, false
	}
	e.errorf(x, "a dimension must be an integer, got %s", describe(v))
	return ir.Dim{}, false
}

func (e *elab) metric(s *MetricStmt, top *env) {
	v := e.expr(s.Value, top)
	t, ok := v.(tensorVal)
	if !ok {
		if _, bad := v.(errVal); !bad {
			e.errorf(s.Value, "%s %s must be a tensor, got %s", s.Kind, s.Name.Name, describe(v))
		}
		return
	}
	kind := ir.OutValue
	if s.Kind == "metric" {
		kind = ir.OutMetric
		if t.in.Type.Rank() != 0 || t.in.Type.DType == ir.Bool {
			e.errorf(s.Value, "metric %s must be a numeric scalar, got %s", s.Name.Name, t.in.Type)
			return
		}
	}
	for _, o := range e.b.M.Outputs {
		if o.Name == s.Name.Name && o.Kind == kind {
			e.errorf(s.Name, "%s %s is already defined", s.Kind, s.Name.Name)
			return
		}
	}
	e.b.Output(kind, s.Name.Name, t.in)
}

func (e *elab) train(s *TrainStmt, top *env) []Setting {
	out := []Setting{}
	seen := map[string]bool{}
	for _, kv := range s.Items {
		key := kv.Key.Name
		if !contains(TrainKeys, key) {
			hint := didYouMean(key, TrainKeys)
			if hint == "" {
				hint = " (settings: " + strings.Join(TrainKeys, ", ") + ")"
			}
			e.errorf(kv.Key, "unknown train setting %s%s", key, hint)
			continue
		}
		if seen[key] {
			e.errorf(kv.Key, "train setting %s given twice", key)
			continue
		}
		seen[key] = true
		v := e.data(kv.Value, top)
		if pub, ok := publicValue(v); ok {
			out = append(out, Setting{Key: key, Value: pub})
		}
	}
	return out
}

// data evaluates a train value: calls are records, names are config
// values, literals are themselves.
func (e *elab) data(x Expr, sc *env) value {
	switch x := x.(type) {
	case *CallExpr:
		fn, ok := x.Fn.(*Ident)
		if !ok {
			return e.errorf(x.Fn, "expected a name")
		}
		r := recordVal{name: fn.Name}
		for _, a := range x.Args {
			if a.Name == nil {
				return e.errorf(a, "arguments of %s must be named, like %s(n: 10)", fn.Name, fn.Name)
			}
			v := e.data(a.Value, sc)
			pub, ok := publicValue(v)
			if !ok {
				if _, bad := v.(errVal); !bad {
					e.errorf(a.Value, "%s must be a constant, got %s", a.Name.Name, describe(v))
				}
				return errVal{}
			}
			r.args = append(r.args, RecordArg{Name: a.Name.Name, Value: pub})
		}
		return r
	case *ParenExpr:
		return e.data(x.X, sc)
	}
	v := e.expr(x, sc)
	if _, ok := publicValue(v); !ok {
		if _, bad := v.(errVal); !bad {
			return e.errorf(x, "a train setting must be a constant, got %s", describe(v))
		}
	}
	return v
}

// stmts runs a statement list in scope sc; it returns the value of a
// return statement (blocks), or nil.
func (e *elab) stmts(list []Stmt, sc *env) value {
	for _, s := range list {
		if e.tooBig {
			return errVal{}
		}
		if r, ok := s.(*ReturnStmt); ok {
			if len(r.More) == 0 {
				return e.expr(r.Value, sc)
			}
			var vals []value
			for _, x := range r.Values() {
				v := e.expr(x, sc)
				if _, bad := v.(errVal); bad {
					return v
				}
				if _, nested := v.(tupleVal); nested {
					return e.errorf(x, "a result cannot itself be %s", describe(v))
				}
				vals = append(vals, v)
			}
			return tupleVal{vals}
		}
		e.stmt(s, sc)
	}
	return nil
}

func (e *elab) stmt(s Stmt, sc *env) {
	switch s := s.(type) {
	case *LetStmt:
		for _, n := range s.Names() {
			if _, dup := sc.vars[n.Name]; dup {
				e.errorf(n, "%s is already declared in this scope; assign with %s = ...", n.Name, n.Name)
				return
			}
		}
		e.stmtName = ""
		if e.countCreating(s.Value) == 1 {
			e.stmtName = s.Name.Name
		}
		v := e.expr(s.Value, sc)
		e.stmtName = ""
		names := s.Names()
		tv, isTuple := v.(tupleVal)
		switch {
		case len(names) == 1 && isTuple:
			e.errorf(s.Value, "this gives %s, but the let binds one name", describe(v))
			v = errVal{}
		case len(names) > 1 && !isTuple:
			if _, bad := v.(errVal); !bad {
				e.errorf(s.Value, "let binds %d names, but this gives one value (%s)", len(names), describe(v))
			}
			for _, n := range names {
				sc.vars[n.Name] = errVal{}
			}
			return
		case len(names) > 1 && len(tv.vals) != len(names):
			e.errorf(s.Value, "let binds %d names, but this gives %d values", len(names), len(tv.vals))
			for _, n := range names {
				sc.vars[n.Name] = errVal{}
			}
			return
		case len(names) > 1:
			for i, n := range names {
				sc.vars[n.Name] = tv.vals[i]
			}
			return
		}
		sc.vars[s.Name.Name] = v
	case *AssignStmt:
		old, ok := sc.lookup(s.Name.Name)
		if !ok {
			e.errorf(s.Name, "assignment to undeclared %s (declare it with let)%s", s.Name.Name, didYouMean(s.Name.Name, sc.names()))
			return
		}
		v := e.expr(s.Value, sc)
		_, oldBad := old.(errVal)
		_, newBad := v.(errVal)
		ot, oldT := old.(tensorVal)
		nt, newT := v.(tensorVal)
		switch {
		case oldBad || newBad:
		case oldT && newT && !ot.in.Type.Equal(nt.in.Type):
			e.errorf(s.Value, "%s was %s and cannot become %s", s.Name.Name, ot.in.Type, nt.in.Type)
			return
		case oldT != newT:
			// A name keeps its kind: a tensor stays a tensor.
			e.errorf(s.Value, "%s was %s and cannot become %s", s.Name.Name, describe(old), describe(v))
			return
		}
		sc.set(s.Name.Name, v)
	case *RepeatStmt:
		e.repeat(s, sc)
	case *ConfigStmt, *InputStmt, *TrainStmt:
		e.errorf(s, "%s is only allowed at the top level of a model", stmtKeyword(s))
	case *LossStmt, *MetricStmt:
		e.errorf(s, "%s is only allowed at the top level of a model", stmtKeyword(s))
	case *ReturnStmt:
		e.errorf(s, "return is only allowed in a block")
	}
}

func stmtKeyword(s Stmt) string {
	switch s := s.(type) {
	case *ConfigStmt:
		return "config"
	case *InputStmt:
		return "input"
	case *TrainStmt:
		return "train"
	case *LossStmt:
		return "loss"
	case *MetricStmt:
		return s.Kind
	}
	return "statement"
}

func (e *elab) repeat(s *RepeatStmt, sc *env) {
	bound := func(x Expr) (int64, bool) {
		v := e.expr(x, sc)
		if iv, ok := v.(intVal); ok {
			if n, ok := iv.isConst(); ok {
				if n < 0 {
					e.errorf(x, "repeat bound %d is negative", n)
					return 0, false
				}
				return n, true
			}
			e.errorf(x, "repeat bounds must be compile-time integers, but %s is a dimension known only at run time", iv.d)
			return 0, false
		}
		if _, bad := v.(errVal); !bad {
			e.errorf(x, "repeat bounds must be compile-time integers, got %s", describe(v))
		}
		return 0, false
	}
	from, ok1 := bound(s.From)
	to, ok2 := bound(s.To)
	if !ok1 || !ok2 {
		return
	}
	// Unrolling is compile-time work even when the body emits nothing,
	// so the iterations are counted, in this loop and in all loops of
	// the model together (bounds are not negative: to-from cannot
	// overflow).
	n := max(to-from, 0)
	limit := e.limits.Iterations
	switch {
	case n > limit:
		e.tooBig = true
		e.errorf(s, "repeat unrolls %d iterations; the limit is %d", n, limit)
		return
	case n > limit-e.iterations:
		e.tooBig = true
		e.errorf(s, "repeat unrolls %d iterations here, %d in all so far; the limit is %d unrolled iterations per model", n, e.iterations+n, limit)
		return
	}
	e.iterations += n
	// Weights of iteration i live under "<bound>.<i>" (layers.2.…) when
	// the upper bound is a name, else under "<var>.<i>".
	prefix := s.Var.Name
	if id, ok := s.To.(*Ident); ok {
		prefix = id.Name
	}
	// Two loops over the same bound in one scope get layers and layers_1.
	prefix = e.segment(prefix)
	for i := from; i < to && !e.tooBig; i++ {
		inner := newEnv(sc)
		inner.vars[s.Var.Name] = constInt(i)
		e.push(fmt.Sprintf("%s.%d", prefix, i))
		e.stmts(s.Body, inner)
		e.pop()
	}
}

// push enters a naming scope; pop leaves it.
func (e *elab) push(seg string) {
	e.path = append(e.path, seg)
	e.scopes = append(e.scopes, map[string]int{})
}

func (e *elab) pop() {
	e.path = e.path[:len(e.path)-1]
	e.scopes = e.scopes[:len(e.scopes)-1]
}

// segment returns a name for a weight-creating call in the current scope:
// want, or want_1, want_2… when want is taken.
func (e *elab) segment(want string) string {
	sc := e.scopes[len(e.scopes)-1]
	name := want
	// Every name handed out is recorded, so a later let called linear_1
	// cannot collide with a generated linear_1.
	for n := 1; sc[name] > 0; n++ {
		name = fmt.Sprintf("%s_%d", want, n)
	}
	sc[name]++
	return name
}

// paramName joins the current path with the given segments.
func (e *elab) paramName(segs ...string) string {
	return strings.Join(append(append([]string(nil), e.path...), segs...), ".")
}

// countCreating counts the calls in x that create weights (blocks and
// weight-creating built-ins), to decide whether a let's name can name
// its weights.
func (e *elab) countCreating(x Expr) int {
	n := 0
	walkExpr(x, func(y Expr) {
		c, ok := y.(*CallExpr)
		if !ok {
			return
		}
		fn, ok := c.Fn.(*Ident)
		if !ok {
			return
		}
		if _, ok := e.prog.Blocks[fn.Name]; ok {
			n++
		} else if b, ok := builtins[fn.Name]; ok && b.creates {
			n++
		}
	})
	return n
}

// newParam creates a weight named after the current path and segs.
func (e *elab) newParam(at Node, shape ir.Shape, init string, scale float64, segs ...string) value {
	return e.newStorage(ir.OpParam, at, shape, init, scale, segs...)
}

// newStorage creates a weight (op param) or a buffer (op buffer) named
// after the current path and segs. Both are the model's, whatever
// builder is current.
func (e *elab) newStorage(op ir.Op, at Node, shape ir.Shape, init string, scale float64, segs ...string) value {
	name := e.paramName(segs...)
	for _, d := range shape {
		if _, ok := d.IsConst(); !ok {
			return e.errorf(at, "weight %s would have the shape %s, but weights need sizes known at compile time, and %s is known only at run time", name, shape, d)
		}
	}
	// A weight is allocated, initialised, trained and saved whole: refuse
	// one whose size is absurd here, not when the trainer runs out of
	// memory (or a count wraps negative).
	elems, err := shape.NumElementsChecked()
	if err != nil {
		return e.errorf(at, "weight %s would have %s elements, which does not fit in 64 bits", name, dimProduct(shape))
	}
	if n := elems[""]; n > e.limits.WeightElements {
		return e.errorf(at, "weight %s would have %d elements; the limit is %d elements", name, n, e.limits.WeightElements)
	}
	if e.used[name] {
		return e.errorf(at, "internal error: weight name %s used twice", name)
	}
	e.used[name] = true
	attrs := ir.Attrs{"name": ir.StringAttr(name), "init": ir.WordAttr(init)}
	if init == "normal" || init == "uniform" {
		attrs["scale"] = ir.FloatAttr(scale)
	}
	in := e.must(at, func() (*ir.Instr, error) {
		return e.root.Given(op, ir.Type{DType: ir.F32, Shape: shape}, attrs)
	})
	if in == nil {
		return errVal{}
	}
	return tensorVal{in}
}

// dimProduct writes a shape as a product: 64 × 512.
func dimProduct(s ir.Shape) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return strings.Join(parts, " × ")
}

// must runs a builder call, reporting its error at n. It returns nil on
// error.
func (e *elab) must(n Node, f func() (*ir.Instr, error)) *ir.Instr {
	if e.tooBig {
		return nil
	}
	if len(e.b.M.Instrs) >= e.limits.Instructions {
		e.tooBig = true
		e.errorf(n, "model too large: more than %d IR instructions (the instruction limit)", e.limits.Instructions)
		return nil
	}
	in, err := f()
	if err != nil {
		e.errorf(n, "%v", err)
		return nil
	}
	return in
}

// op builds an op with an inferred type, reporting errors at n.
func (e *elab) op(n Node, op ir.Op, attrs ir.Attrs, args ...*ir.Instr) value {
	in := e.must(n, func() (*ir.Instr, error) { return e.b.Op(op, attrs, args...) })
	if in == nil {
		return errVal{}
	}
	return tensorVal{in}
}

// given builds an op with a stated type.
func (e *elab) given(n Node, op ir.Op, t ir.Type, attrs ir.Attrs, args ...*ir.Instr) value {
	in := e.must(n, func() (*ir.Instr, error) { return e.b.Given(op, t, attrs, args...) })
	if in == nil {
		return errVal{}
	}
	return tensorVal{in}
}

// constant returns a scalar constant of dtype dt.
func (e *elab) constant(n Node, dt ir.DType, v float64) *ir.Instr {
	return e.must(n, func() (*ir.Instr, error) {
		return e.b.Given(ir.OpConst, ir.Type{DType: dt}, ir.Attrs{"value": ir.FloatAttr(v)})
	})
}

func sortedIndexFuncs() []string {
	out := make([]string, 0, len(indexFuncs))
	for n := range indexFuncs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var indexFuncs = ir.ExprFuncs
