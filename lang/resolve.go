package lang

import (
	"sort"
	"strings"
)

// resolve checks, without elaborating, that every name in every
// definition refers to something, and that blocks, masks and scores do
// not reach themselves (through calls, or the defaults of parameters). It catches mistakes in blocks no model instantiates, and
// gives "did you mean" for near misses.
func resolve(p *Program, diags *diagSink) {
	r := &resolver{prog: p, diags: diags}
	for _, f := range p.Files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *FuncDef:
				r.funcDef(d)
			case *BlockDef:
				r.blockDef(d)
			case *ModelDef:
				r.modelDef(d)
			}
		}
	}
	r.cycles()
}

type resolver struct {
	prog  *Program
	diags *diagSink
	// calls records, per block, mask or score, the blocks, masks and
	// scores it refers to (with the site), for cycle detection: what a
	// block's parameters and body name, and what a mask's or score's
	// defaults name. Each is expanded at compile time, so a cycle would
	// never end.
	calls map[string][]blockCall
	from  string // the definition whose references are being recorded
	cur   string // block being resolved
	// loops counts the repeats around the statement being resolved.
	loops int
	// funcKind is "mask" or "score" inside such a definition.
	funcKind string
	// curLet is the name the let being resolved declares.
	curLet *Ident
	// inTrain is set inside a train section, whose calls are records.
	inTrain bool
}

type blockCall struct {
	callee string
	site   Node
}

// scope is a chain of name sets.
type scope struct {
	names map[string]bool
	// later holds the lets of the statement list not yet reached, so a
	// use before its let says so rather than "unknown name".
	later  map[string]*Ident
	parent *scope
}

func newScope(parent *scope) *scope { return &scope{names: map[string]bool{}, parent: parent} }

func (s *scope) has(n string) bool {
	for ; s != nil; s = s.parent {
		if s.names[n] {
			return true
		}
	}
	return false
}

// declaredLater returns the let of n further down an enclosing
// statement list, or nil.
func (s *scope) declaredLater(n string) *Ident {
	for ; s != nil; s = s.parent {
		if id := s.later[n]; id != nil {
			return id
		}
	}
	return nil
}

func (s *scope) all() []string {
	var out []string
	for ; s != nil; s = s.parent {
		for n := range s.names {
			out = append(out, n)
		}
	}
	return out
}

// indexVars are the variables of mask and score bodies.
var indexVars = []string{"q", "k", "h", "b"}

// indexInf is the float literal +infinity of mask and score bodies
// (-inf is its negation): the score that masks a key.
const indexInf = "inf"

func (r *resolver) funcDef(d *FuncDef) {
	sc := newScope(nil)
	for _, v := range indexVars {
		sc.names[v] = true
	}
	if d.Kind == "score" {
		sc.names["s"] = true
	}
	for _, p := range d.Params {
		if sc.names[p.Name.Name] {
			r.diags.errorf(p.Name, "parameter %s shadows an index variable of a %s", p.Name.Name, d.Kind)
		}
		if p.Name.Name == indexInf {
			r.diags.errorf(p.Name, "parameter %s would hide the literal %s (+infinity) of a %s", p.Name.Name, indexInf, d.Kind)
		}
		if p.Default != nil {
			r.from = d.Name.Name
			r.expr(p.Default, newScope(nil), false)
			r.from = ""
		}
	}
	for _, p := range d.Params {
		sc.names[p.Name.Name] = true
	}
	r.funcKind = d.Kind
	r.expr(d.Body, sc, true)
	r.funcKind = ""
}

func (r *resolver) params(ps []*Param, sc *scope) {
	seen := map[string]bool{}
	for _, p := range ps {
		if seen[p.Name.Name] {
			r.diags.errorf(p.Name, "duplicate parameter %s", p.Name.Name)
		}
		seen[p.Name.Name] = true
		if p.Default != nil {
			// A default may use the parameters before it, as the
			// elaborator evaluates it: m: mask = prefix_lm(src_len).
			r.expr(p.Default, sc, false)
		}
		if p.Type != nil {
			r.typeName(p.Type)
			r.typeDims(p.Type, sc)
		}
		sc.names[p.Name.Name] = true
	}
}

// paramKinds are the types a parameter may have besides a tensor shape.
var paramKinds = []string{"int", "dim", "float", "bool", "string", "mask", "score", "tensor"}

// typeName checks the name in a parameter type: a dtype before a shape
// (i32[B, N]), else a kind (int, mask, …).
func (r *resolver) typeName(t *TypeExpr) {
	if t.Name == nil {
		return
	}
	n := t.Name.Name
	if t.Shaped {
		if !contains(dtypeNames, n) {
			hint := didYouMean(n, dtypeNames)
			if hint == "" {
				hint = " (want f32, i32 or bool)"
			}
			r.diags.errorf(t.Name, "unknown dtype %s%s", n, hint)
		}
		return
	}
	if !contains(paramKinds, n) {
		hint := didYouMean(n, paramKinds)
		if hint == "" {
			hint = " (want a shape like [B, N, D], or " + strings.Join(paramKinds, ", ") + ")"
		}
		r.diags.errorf(t.Name, "unknown type %s%s", n, hint)
	}
}

// typeDims declares the dimension names a type binds (B, N, D).
func (r *resolver) typeDims(t *TypeExpr, sc *scope) {
	for _, d := range t.Dims {
		walkExpr(d, func(e Expr) {
			if id, ok := e.(*Ident); ok && !sc.has(id.Name) {
				sc.names[id.Name] = true
			}
		})
	}
}

func (r *resolver) blockDef(d *BlockDef) {
	r.cur, r.from = d.Name.Name, d.Name.Name
	defer func() { r.cur, r.from = "", "" }()
	sc := newScope(nil)
	r.params(d.Params, sc)
	if d.Result != nil {
		for _, e := range d.Result.Dims {
			r.expr(e, sc, false)
		}
	}
	r.stmts(d.Body, newScope(sc))
	// A block is a function: it ends with its one return.
	hasReturn := false
	for i, st := range d.Body {
		if _, ok := st.(*ReturnStmt); ok {
			hasReturn = true
			if i < len(d.Body)-1 {
				r.diags.errorf(d.Body[i+1], "unreachable: this statement follows the return of block %s, which must come last", d.Name.Name)
				break
			}
		}
	}
	if !hasReturn {
		r.diags.errorf(d.Name, "block %s has no return: end it with return <value>", d.Name.Name)
	}
}

func (r *resolver) modelDef(d *ModelDef) {
	r.stmts(d.Body, newScope(nil))
}

func (r *resolver) stmts(list []Stmt, sc *scope) {
	sc.later = map[string]*Ident{}
	for _, s := range list {
		if l, ok := s.(*LetStmt); ok {
			for _, n := range l.Names() {
				if sc.later[n.Name] == nil {
					sc.later[n.Name] = n
				}
			}
		}
	}
	for _, s := range list {
		r.placement(s)
		switch s := s.(type) {
		case *LetStmt:
			r.curLet = s.Name
			r.expr(s.Value, sc, false)
			r.curLet = nil
			for _, n := range s.Names() {
				if r.loops > 0 && !sc.names[n.Name] && sc.parent.has(n.Name) {
					// let x = f(x) in a loop body makes a new x each time
					// round and leaves the outer one as it was: the
					// classic mistake for x = f(x).
					r.diags.errorf(n, "let %s inside repeat hides the %s outside it, which the loop then never updates; write %s = ... to update it, or pick another name", n.Name, n.Name, n.Name)
				}
				sc.names[n.Name] = true
				delete(sc.later, n.Name)
			}
		case *AssignStmt:
			r.expr(s.Value, sc, false)
			switch {
			case sc.has(s.Name.Name):
			case sc.declaredLater(s.Name.Name) != nil:
				r.diags.errorf(s.Name, "assignment to %s before it is defined: its let is at line %d", s.Name.Name, sc.declaredLater(s.Name.Name).Pos.Line)
			default:
				r.diags.errorf(s.Name, "assignment to undeclared %s (declare it with let)%s", s.Name.Name, didYouMean(s.Name.Name, sc.all()))
			}
		case *RepeatStmt:
			r.expr(s.From, sc, false)
			r.expr(s.To, sc, false)
			inner := newScope(sc)
			inner.names[s.Var.Name] = true
			r.loops++
			r.stmts(s.Body, inner)
			r.loops--
		case *ReturnStmt:
			for _, x := range s.Values() {
				r.expr(x, sc, false)
			}
		case *LossStmt:
			r.expr(s.Value, sc, false)
		case *MetricStmt:
			r.expr(s.Value, sc, false)
		case *ConfigStmt:
			for _, kv := range s.Items {
				r.expr(kv.Value, sc, false)
				sc.names[kv.Key.Name] = true
			}
		case *InputStmt:
			r.typeDims(s.Type, sc)
			sc.names[s.Name.Name] = true
		case *TrainStmt:
			// Train values are data: unknown calls are records. Only bare
			// names must resolve (to config values).
			r.inTrain = true
			for _, kv := range s.Items {
				r.expr(kv.Value, sc, false)
			}
			r.inTrain = false
		}
	}
}

// placement reports a statement in a place it cannot be: the model-level
// statements (config, input, loss, metric, output, train) inside a block
// or a repeat, and return outside a block or inside a repeat.
func (r *resolver) placement(s Stmt) {
	switch s := s.(type) {
	case *ConfigStmt, *InputStmt, *TrainStmt, *LossStmt, *MetricStmt:
		switch {
		case r.cur != "":
			r.diags.errorf(s, "%s is only allowed at the top level of a model, not in block %s", stmtKeyword(s), r.cur)
		case r.loops > 0:
			r.diags.errorf(s, "%s is only allowed at the top level of a model, not inside repeat", stmtKeyword(s))
		}
	case *ReturnStmt:
		switch {
		case r.cur == "":
			r.diags.errorf(s, "return is only allowed in a block; a model declares loss, metric and output")
		case r.loops > 0:
			r.diags.errorf(s, "return inside repeat: block %s returns once, with its last statement", r.cur)
		}
	}
}

// expr checks the names in e. inIndex is true inside mask and score
// bodies, where only index functions may be called.
func (r *resolver) expr(e Expr, sc *scope, inIndex bool) {
	switch e := e.(type) {
	case *Ident:
		if e.Name == "none" || sc.has(e.Name) {
			return
		}
		if !inIndex {
			if _, ok := r.prog.Funcs[e.Name]; ok {
				r.refer(e.Name, e) // a mask used by name: causal
				return
			}
			if _, ok := r.prog.Blocks[e.Name]; ok {
				return
			}
			if _, ok := builtins[e.Name]; ok {
				return
			}
		}
		if inIndex && e.Name == indexInf {
			return // the float literal +infinity
		}
		if inIndex && e.Name == "s" && r.funcKind == "mask" {
			r.diags.errorf(e, "s (the raw score) is only available in a score, not a mask")
			return
		}
		if r.curLet != nil && r.curLet.Name == e.Name && sc.declaredLater(e.Name) == r.curLet {
			r.diags.errorf(e, "%s is used in its own definition", e.Name)
			return
		}
		if let := sc.declaredLater(e.Name); let != nil {
			r.diags.errorf(e, "%s is used before it is defined: its let is at line %d", e.Name, let.Pos.Line)
			return
		}
		cands := sc.all()
		if !inIndex {
			cands = append(cands, r.prog.names()...)
		}
		r.diags.errorf(e, "unknown name %s%s", e.Name, didYouMean(e.Name, cands))
	case *CallExpr:
		switch fn := e.Fn.(type) {
		case *Ident:
			if r.inTrain {
				break // a record: recall(pairs: 16)
			}
			r.callee(fn, e, sc, inIndex)
		default:
			r.diags.errorf(e.Fn, "only a named block, mask, score or built-in can be called")
		}
		seen := map[string]bool{}
		for _, a := range e.Args {
			if a.Name != nil && r.inTrain {
				if seen[a.Name.Name] {
					r.diags.errorf(a.Name, "argument %s given twice", a.Name.Name)
				}
				seen[a.Name.Name] = true
			}
			r.expr(a.Value, sc, inIndex)
		}
	case *UnaryExpr:
		r.expr(e.X, sc, inIndex)
	case *BinaryExpr:
		r.expr(e.X, sc, inIndex)
		r.expr(e.Y, sc, inIndex)
	case *IndexExpr:
		r.expr(e.X, sc, inIndex)
		for _, it := range e.Items {
			if it.Lo != nil {
				r.expr(it.Lo, sc, inIndex)
			}
			if it.Hi != nil {
				r.expr(it.Hi, sc, inIndex)
			}
		}
	case *IfExpr:
		r.expr(e.Cond, sc, inIndex)
		r.expr(e.Then, sc, inIndex)
		r.expr(e.Else, sc, inIndex)
	case *ParenExpr:
		r.expr(e.X, sc, inIndex)
	}
}

func (r *resolver) callee(fn *Ident, call *CallExpr, sc *scope, inIndex bool) {
	if inIndex {
		if fn.Name == "qdot" || fn.Name == "kdot" {
			if len(call.Args) != 1 {
				r.diags.errorf(call, "%s takes 1 argument, got %d", fn.Name, len(call.Args))
			}
			return // the elaborator checks the rest (vecread.go)
		}
		n, ok := indexFuncs[fn.Name]
		switch {
		case !ok:
			r.diags.errorf(fn, "unknown function %s in an index expression%s (index expressions may call %s)",
				fn.Name, didYouMean(fn.Name, sortedIndexFuncs()), strings.Join(sortedIndexFuncs(), ", "))
		case len(call.Args) != n:
			r.diags.errorf(call, "%s takes %d arguments, got %d", fn.Name, n, len(call.Args))
		}
		return
	}
	if b, ok := r.prog.Blocks[fn.Name]; ok {
		r.refer(fn.Name, call)
		bindArgs(r.diags, call, "block "+fn.Name, blockFormals(b))
		return
	}
	if f, ok := r.prog.Funcs[fn.Name]; ok {
		r.refer(fn.Name, call)
		bindArgs(r.diags, call, f.Kind+" "+fn.Name, funcFormals(f))
		return
	}
	if b, ok := builtins[fn.Name]; ok {
		bindArgs(r.diags, call, fn.Name, builtinFormals(b))
		return
	}
	if sc.has(fn.Name) {
		r.diags.errorf(fn, "%s is a value, not a function", fn.Name)
		return
	}
	r.diags.errorf(fn, "unknown function %s%s", fn.Name, didYouMean(fn.Name, r.prog.names()))
}

// refer records that the definition being resolved refers to the block,
// mask or score callee at site.
func (r *resolver) refer(callee string, site Node) {
	if r.from == "" {
		return
	}
	if r.calls == nil {
		r.calls = map[string][]blockCall{}
	}
	r.calls[r.from] = append(r.calls[r.from], blockCall{callee, site})
}

// cycles reports each block, mask or score that can reach itself, at the
// reference that closes the cycle.
func (r *resolver) cycles() {
	names := make([]string, 0, len(r.calls))
	for n := range r.calls {
		names = append(names, n)
	}
	sort.Strings(names)
	reported := map[string]bool{}
	for _, start := range names {
		// Depth-first search for a path from start back to start.
		var path []string
		var site Node
		visited := map[string]bool{}
		var dfs func(n string) bool
		dfs = func(n string) bool {
			for _, c := range r.calls[n] {
				if c.callee == start {
					path = append(path, n)
					site = c.site
					return true
				}
				if !visited[c.callee] {
					visited[c.callee] = true
					if dfs(c.callee) {
						path = append(path, n)
						return true
					}
				}
			}
			return false
		}
		if !dfs(start) {
			continue
		}
		// path is reversed: innermost caller first.
		for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
			path[i], path[j] = path[j], path[i]
		}
		key := strings.Join(sortedCopy(path), ",")
		if reported[key] {
			continue
		}
		reported[key] = true
		chain := strings.Join(path, " → ") + " → " + start
		allBlocks := true
		for _, n := range path {
			if _, ok := r.prog.Blocks[n]; !ok {
				allBlocks = false
			}
		}
		if allBlocks {
			r.diags.errorf(site, "recursive block: %s (blocks are expanded at compile time and cannot recurse)", chain)
			continue
		}
		r.diags.errorf(site, "recursive definition: %s (masks, scores and blocks are expanded at compile time, defaults included, so none may lead back to itself)", chain)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// walkExpr calls fn on e and every expression below it.
func walkExpr(e Expr, fn func(Expr)) {
	if e == nil {
		return
	}
	fn(e)
	switch e := e.(type) {
	case *UnaryExpr:
		walkExpr(e.X, fn)
	case *BinaryExpr:
		walkExpr(e.X, fn)
		walkExpr(e.Y, fn)
	case *CallExpr:
		walkExpr(e.Fn, fn)
		for _, a := range e.Args {
			walkExpr(a.Value, fn)
		}
	case *IndexExpr:
		walkExpr(e.X, fn)
		for _, it := range e.Items {
			walkExpr(it.Lo, fn)
			walkExpr(it.Hi, fn)
		}
	case *IfExpr:
		walkExpr(e.Cond, fn)
		walkExpr(e.Then, fn)
		walkExpr(e.Else, fn)
	case *ParenExpr:
		walkExpr(e.X, fn)
	}
}
