package lang

import (
	"fmt"

	"github.com/alecthomas/participle/v2/lexer"
)

// Limits bound the work the front end does for one file, whatever the
// file says. Elaboration runs the program: it unrolls repeats, expands
// blocks and inlines masks at compile time, and much of that emits no
// instruction, so a short file could otherwise ask for hours of work or
// gigabytes of memory (repeat i in 0..100000000 { }, blocks that each
// call the next twice). The parser recurses once per level of nesting, so
// deep nesting could overflow its stack. Each limit is far above what a
// real model needs; crossing one is a positioned error that names it.
// docs/LANGUAGE.md §10.1 lists them.
type Limits struct {
	// Nesting bounds how deeply an expression nests: brackets, and the
	// operators, calls, subscripts and ifs of one expression, which nest
	// in its tree. Parse checks it before parsing.
	Nesting int
	// Iterations bounds the repeat iterations unrolled in one model, in
	// all loops together.
	Iterations int64
	// Instructions bounds the IR instructions of one model.
	Instructions int
	// BlockCalls bounds the block, mask and score instances expanded in
	// one model.
	BlockCalls int
	// BlockDepth bounds how deeply block, mask and score instances nest.
	BlockDepth int
	// ExprNodes bounds the size of one mask or score once the masks it
	// uses are inlined.
	ExprNodes int
	// MaskNodes bounds the nodes of all the masks and scores one model
	// makes: each use of a mask by name is a fresh copy.
	MaskNodes int
	// WeightElements bounds the elements of one weight tensor.
	WeightElements int64
	// ImportDepth bounds how deeply imports nest: the root file is at
	// depth 1, a file it imports at depth 2. Load follows imports
	// recursively, one level of Go stack each.
	ImportDepth int
	// Files bounds the files of one program, the root included.
	Files int
}

// DefaultLimits returns the limits Elaborate uses when ElabOptions.Limits
// is nil (Load likewise with LoadOptions.Limits), and that Parse always
// uses.
func DefaultLimits() Limits {
	return Limits{
		Nesting:        1000,
		Iterations:     10000,
		Instructions:   200000,
		BlockCalls:     10000,
		BlockDepth:     64,
		ExprNodes:      10000,
		MaskNodes:      1000000,
		WeightElements: 1 << 32,
		ImportDepth:    256,
		Files:          10000,
	}
}

// orDefaults fills the zero fields of l from DefaultLimits.
func (l Limits) orDefaults() Limits {
	d := DefaultLimits()
	if l.Nesting <= 0 {
		l.Nesting = d.Nesting
	}
	if l.Iterations <= 0 {
		l.Iterations = d.Iterations
	}
	if l.Instructions <= 0 {
		l.Instructions = d.Instructions
	}
	if l.BlockCalls <= 0 {
		l.BlockCalls = d.BlockCalls
	}
	if l.BlockDepth <= 0 {
		l.BlockDepth = d.BlockDepth
	}
	if l.ExprNodes <= 0 {
		l.ExprNodes = d.ExprNodes
	}
	if l.MaskNodes <= 0 {
		l.MaskNodes = d.MaskNodes
	}
	if l.WeightElements <= 0 {
		l.WeightElements = d.WeightElements
	}
	if l.ImportDepth <= 0 {
		l.ImportDepth = d.ImportDepth
	}
	if l.Files <= 0 {
		l.Files = d.Files
	}
	return l
}

// The tokens that make an expression nest in the parse tree.
var (
	// nestingOps are operators: a chain of n of them is n levels deep in
	// the tree (the parser folds a + b + c into ((a + b) + c)), and a
	// prefix - or ! is a level of its own.
	nestingOps = map[string]bool{
		"+": true, "-": true, "*": true, "/": true, "%": true,
		"<": true, ">": true, "<=": true, ">=": true, "==": true, "!=": true,
		"&&": true, "||": true, "!": true, "if": true,
	}
	// nestingResets start a new expression at the same bracket level.
	nestingResets = map[string]bool{
		",": true, "=": true, ":": true, "..": true, "->": true,
		"import": true, "mask": true, "score": true, "block": true, "model": true,
		"config": true, "input": true, "let": true, "repeat": true, "in": true,
		"return": true, "loss": true, "metric": true, "output": true, "train": true,
	}
)

// checkNesting scans src's tokens and reports the first place where it
// nests more than limit levels deep, before the parser, which recurses
// once per level, meets it. The measure is the number of open brackets
// plus, at each open bracket, the operators, ifs, calls and subscripts of
// the expression being written there: what bounds the depth of the parse
// tree and of every walk over it. A file the lexer rejects is left to the
// parser to report.
func checkNesting(filename, src string, limit int) *Diagnostic {
	lx, err := attnLexer.LexString(filename, src)
	if err != nil {
		return nil
	}
	syms := attnLexer.Symbols()
	comment, space := syms["Comment"], syms["Whitespace"]
	// level[i] counts the operators of the expression open at bracket
	// depth i; total is len(level)-1 plus their sum.
	level := []int{0}
	total := 0
	prevValue := false // the previous token ends a value: x, 1, ), ]
	for {
		tok, err := lx.Next()
		if err != nil || tok.EOF() {
			return nil
		}
		if tok.Type == comment || tok.Type == space {
			continue
		}
		v := tok.Value
		top := len(level) - 1
		switch {
		case v == "(" || v == "[" || v == "{":
			if prevValue && v != "{" {
				// A call or subscript: one more level of the tree
				// around what it applies to.
				level[top]++
				total++
			}
			level = append(level, 0)
			total++
			if total > limit {
				return nestingError(tok.Pos, total == len(level)-1, limit)
			}
			prevValue = false
			continue
		case v == ")" || v == "]" || v == "}":
			if top > 0 {
				total -= level[top] + 1
				level = level[:top]
			}
			prevValue = true
			continue
		case nestingResets[v]:
			total -= level[top]
			level[top] = 0
		case nestingOps[v]:
			level[top]++
			total++
			if total > limit {
				return nestingError(tok.Pos, false, limit)
			}
		}
		prevValue = !nestingOps[v] && !nestingResets[v] && v != "then" && v != "else" && v != "."
	}
}

// nestingError reports the limit crossed at pos; onlyBrackets says the
// depth there is all brackets.
func nestingError(pos lexer.Position, onlyBrackets bool, limit int) *Diagnostic {
	msg := "expression nested more than %d deep (brackets, operators, calls and ifs all count); split it with let"
	if onlyBrackets {
		msg = "brackets nested more than %d deep"
	}
	return &Diagnostic{Pos: pos, Msg: fmt.Sprintf(msg, limit)}
}
