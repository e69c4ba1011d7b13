package lang

import (
	"sort"
	"strings"
)

// resolve checks, without elaborating, that every name in every
// definition refers to something, and that blocks do not call each other
// recursively. It catches mistakes in blocks no model instantiates, and
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
	// calls records, per block, the blocks its body calls (with the call
	// site), for cycle detection.
	calls map[string][]blockCall
	cur   string // block being resolved
	// inTrain is set inside a train section, whose calls are records.
	inTrain bool
}

type blockCall struct {
	callee string
	site   Node
}

// scope is a chain of name sets.
type scope struct {
	names  map[string]bool
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
		if p.Default != nil {
			r.expr(p.Default, newScope(nil), false)
		}
	}
	for _, p := range d.Params {
		sc.names[p.Name.Name] = true
	}
	r.expr(d.Body, sc, true)
}

func (r *resolver) params(ps []*Param, sc *scope) {
	seen := map[string]bool{}
	for _, p := range ps {
		if seen[p.Name.Name] {
			r.diags.errorf(p.Name, "duplicate parameter %s", p.Name.Name)
		}
		seen[p.Name.Name] = true
		if p.Default != nil {
			r.expr(p.Default, sc, false)
		}
		if p.Type != nil {
			r.typeDims(p.Type, sc)
		}
	}
	for _, p := range ps {
		sc.names[p.Name.Name] = true
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
	r.cur = d.Name.Name
	defer func() { r.cur = "" }()
	sc := newScope(nil)
	r.params(d.Params, sc)
	if d.Result != nil {
		for _, e := range d.Result.Dims {
			r.expr(e, sc, false)
		}
	}
	r.stmts(d.Body, newScope(sc))
}

func (r *resolver) modelDef(d *ModelDef) {
	r.stmts(d.Body, newScope(nil))
}

func (r *resolver) stmts(list []Stmt, sc *scope) {
	for _, s := range list {
		switch s := s.(type) {
		case *LetStmt:
			r.expr(s.Value, sc, false)
			sc.names[s.Name.Name] = true
		case *AssignStmt:
			r.expr(s.Value, sc, false)
			if !sc.has(s.Name.Name) {
				r.diags.errorf(s.Name, "assignment to undeclared %s (declare it with let)%s", s.Name.Name, didYouMean(s.Name.Name, sc.all()))
			}
		case *RepeatStmt:
			r.expr(s.From, sc, false)
			r.expr(s.To, sc, false)
			inner := newScope(sc)
			inner.names[s.Var.Name] = true
			r.stmts(s.Body, inner)
		case *ReturnStmt:
			r.expr(s.Value, sc, false)
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
				return
			}
			if _, ok := r.prog.Blocks[e.Name]; ok {
				return
			}
			if _, ok := builtins[e.Name]; ok {
				return
			}
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
			if a.Name != nil {
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
		if _, ok := indexFuncs[fn.Name]; !ok {
			r.diags.errorf(fn, "unknown function %s in an index expression%s (index expressions may call %s)",
				fn.Name, didYouMean(fn.Name, sortedIndexFuncs()), strings.Join(sortedIndexFuncs(), ", "))
		}
		return
	}
	if _, ok := r.prog.Blocks[fn.Name]; ok {
		if r.cur != "" {
			if r.calls == nil {
				r.calls = map[string][]blockCall{}
			}
			r.calls[r.cur] = append(r.calls[r.cur], blockCall{fn.Name, call})
		}
		return
	}
	if _, ok := r.prog.Funcs[fn.Name]; ok {
		return
	}
	if _, ok := builtins[fn.Name]; ok {
		return
	}
	if sc.has(fn.Name) {
		r.diags.errorf(fn, "%s is a value, not a function", fn.Name)
		return
	}
	r.diags.errorf(fn, "unknown function %s%s", fn.Name, didYouMean(fn.Name, r.prog.names()))
}

// cycles reports each block that can reach itself through calls, at the
// call that closes the cycle.
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
		r.diags.errorf(site, "recursive block: %s → %s (blocks are expanded at compile time and cannot recurse)", strings.Join(path, " → "), start)
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
