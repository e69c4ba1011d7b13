package lang

import (
	"fmt"

	"github.com/alecthomas/participle/v2/lexer"
)

// Span is the source range of a node: Pos is its first character, EndPos
// just past its last.
type Span struct {
	Pos    lexer.Position
	EndPos lexer.Position
}

// Start returns the position of the node's first character.
func (s Span) Start() lexer.Position { return s.Pos }

// End returns the position just past the node's last character.
func (s Span) End() lexer.Position { return s.EndPos }

// A Node is any AST node; embedding Span gives it Pos, EndPos and the
// methods.
type Node interface {
	Start() lexer.Position
	End() lexer.Position
}

// File is one parsed .attn file.
type File struct {
	Span
	Name  string // the file name positions refer to
	Decls []Decl
}

// A Decl is a top-level declaration: *Import, *FuncDef, *BlockDef or
// *ModelDef.
type Decl interface {
	Node
	declNode()
}

// Import brings another file's declarations into scope.
//
//	import "std/layers.attn"
type Import struct {
	Span
	Path *StringLit
}

// FuncDef defines a mask or a score modification: a pure index expression
// over q, k, h, b (and s, the raw score, for scores) with parameters.
//
//	mask sliding(w) = k <= q && q - k < w
//	score softcap(c) = c * tanh(s / c)
type FuncDef struct {
	Span
	Kind   string // "mask" or "score"
	Name   *Ident
	Params []*Param
	Body   Expr
}

// BlockDef defines a reusable function of tensors.
//
//	block ffn(x: [B, N, D], mult: int = 4) -> [B, N, D] { ... }
type BlockDef struct {
	Span
	Name   *Ident
	Params []*Param
	Result *TypeExpr // nil when not declared
	Body   []Stmt
}

// ModelDef defines a model: config, inputs, computation, loss, metrics and
// a default train section.
type ModelDef struct {
	Span
	Name *Ident
	Body []Stmt
}

// Param is one parameter of a block, mask or score.
type Param struct {
	Span
	Name    *Ident
	Type    *TypeExpr // nil when untyped (mask and score parameters)
	Default Expr      // nil when required
}

// TypeExpr is a parameter or input type: a tensor type with a shape
// ([B, N, D], i32[B, N]) or a scalar kind (int, float, bool, mask, score).
type TypeExpr struct {
	Span
	Name   *Ident // dtype or kind; nil for a bare shape (f32)
	Shaped bool   // a [...] shape follows
	Dims   []Expr
}

// A Stmt is a statement of a block or model body.
type Stmt interface {
	Node
	stmtNode()
}

// LetStmt binds a new name: let x = expr.
type LetStmt struct {
	Span
	Name  *Ident
	More  []*Ident // let a, b = f(x): the names after the first, bound to a block's further results
	Value Expr
}

// Names returns every name the let binds.
func (s *LetStmt) Names() []*Ident { return append([]*Ident{s.Name}, s.More...) }

// AssignStmt rebinds an existing name: x = expr.
type AssignStmt struct {
	Span
	Name  *Ident
	Value Expr
}

// RepeatStmt unrolls its body for i in [From, To).
type RepeatStmt struct {
	Span
	Var      *Ident
	From, To Expr
	Body     []Stmt
}

// ReturnStmt ends a block with its result.
type ReturnStmt struct {
	Span
	Value Expr
	More  []Expr // return a, b: the results after the first
}

// Values returns every result the return gives.
func (s *ReturnStmt) Values() []Expr { return append([]Expr{s.Value}, s.More...) }

// LossStmt declares the model's training objective.
type LossStmt struct {
	Span
	Value Expr
}

// MetricStmt declares a named scalar reported in evaluation; OutputStmt a
// named result (a prediction).
type MetricStmt struct {
	Span
	Kind  string // "metric" or "output"
	Name  *Ident
	Value Expr
}

// ConfigStmt declares the model's configuration values.
type ConfigStmt struct {
	Span
	Items []*KeyValue
}

// InputStmt declares a model input.
type InputStmt struct {
	Span
	Name *Ident
	Type *TypeExpr
}

// TrainStmt is the model's default training setup.
type TrainStmt struct {
	Span
	Items []*KeyValue
}

// KeyValue is one entry of a config or train section.
type KeyValue struct {
	Span
	Key   *Ident
	Value Expr
}

// An Expr is an expression.
type Expr interface {
	Node
	exprNode()
}

// Ident is a name.
type Ident struct {
	Span
	Name string
}

// IntLit, FloatLit, StringLit and BoolLit are literals.
type (
	IntLit struct {
		Span
		Value int64
	}
	FloatLit struct {
		Span
		Value float64
		Text  string // as written, so fmt keeps 3e-4 as 3e-4
	}
	StringLit struct {
		Span
		Value string
	}
	BoolLit struct {
		Span
		Value bool
	}
)

// UnaryExpr is -x or !x.
type UnaryExpr struct {
	Span
	Op string
	X  Expr
}

// BinaryExpr is x op y.
type BinaryExpr struct {
	Span
	Op   string
	X, Y Expr
}

// CallExpr is fn(args), with positional arguments first.
type CallExpr struct {
	Span
	Fn   Expr
	Args []*Arg
}

// Arg is one argument of a call; Name is nil for a positional one.
type Arg struct {
	Span
	Name  *Ident
	Value Expr
}

// IndexExpr is x[items]: indexing, slicing or both.
type IndexExpr struct {
	Span
	X     Expr
	Items []*IndexItem
}

// IndexItem is one subscript: an index (Lo), or a slice Lo:Hi where either
// bound may be nil.
type IndexItem struct {
	Span
	Lo, Hi Expr
	Slice  bool
}

// IfExpr is if cond then a else b, on compile-time values.
type IfExpr struct {
	Span
	Cond, Then, Else Expr
}

// ParenExpr is (x); kept so fmt can keep the user's grouping.
type ParenExpr struct {
	Span
	X Expr
}

func (*Import) declNode()   {}
func (*FuncDef) declNode()  {}
func (*BlockDef) declNode() {}
func (*ModelDef) declNode() {}

func (*LetStmt) stmtNode()    {}
func (*AssignStmt) stmtNode() {}
func (*RepeatStmt) stmtNode() {}
func (*ReturnStmt) stmtNode() {}
func (*LossStmt) stmtNode()   {}
func (*MetricStmt) stmtNode() {}
func (*ConfigStmt) stmtNode() {}
func (*InputStmt) stmtNode()  {}
func (*TrainStmt) stmtNode()  {}

func (*Ident) exprNode()      {}
func (*IntLit) exprNode()     {}
func (*FloatLit) exprNode()   {}
func (*StringLit) exprNode()  {}
func (*BoolLit) exprNode()    {}
func (*UnaryExpr) exprNode()  {}
func (*BinaryExpr) exprNode() {}
func (*CallExpr) exprNode()   {}
func (*IndexExpr) exprNode()  {}
func (*IfExpr) exprNode()     {}
func (*ParenExpr) exprNode()  {}

// Pos formats a position as file:line:col.
func posString(p lexer.Position) string {
	return fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
}
