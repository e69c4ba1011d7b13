package lang

import (
	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// The grammar, as participle structs. These are the parse tree; parse.go
// converts them to the AST of ast.go, which is what the rest of the
// compiler reads. Keeping the two apart lets the grammar be shaped for the
// parser (one struct per precedence level) and the AST for its users.
// lang/grammar.ebnf is parser.String(), pinned by TestGrammarEBNF.

var attnLexer = lexer.MustSimple([]lexer.SimpleRule{
	{Name: "Comment", Pattern: `//[^\n]*`},
	{Name: "String", Pattern: `"(\\.|[^"\\\n])*"`},
	{Name: "Float", Pattern: `[0-9]+\.[0-9]+([eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+`},
	{Name: "Int", Pattern: `[0-9]+`},
	{Name: "Ident", Pattern: `[a-zA-Z_][a-zA-Z0-9_]*`},
	{Name: "Op", Pattern: `\.\.|->|&&|\|\||==|!=|<=|>=|[-+*/%<>=!:,.()\[\]{}]`},
	{Name: "Whitespace", Pattern: `[ \t\r\n]+`},
})

var parser = participle.MustBuild[gFile](
	participle.Lexer(attnLexer),
	participle.Elide("Comment", "Whitespace"),
	participle.Union[gDecl](&gImport{}, &gFuncDef{}, &gBlockDef{}, &gModelDef{}),
	participle.Union[gStmt](&gLet{}, &gRepeat{}, &gReturn{}, &gLoss{}, &gMetric{}, &gConfig{}, &gInput{}, &gTrain{}, &gAssign{}),
	participle.UseLookahead(4),
)

type gPos struct {
	Pos    lexer.Position
	EndPos lexer.Position
}

type gFile struct {
	gPos
	Decls []gDecl `@@*`
}

type gDecl interface{ gdecl() }
type gStmt interface{ gstmt() }

type gImport struct {
	gPos
	Path gString `"import" @@`
}

type gFuncDef struct {
	gPos
	Kind   string    `@("mask" | "score")`
	Name   gName     `@@`
	Params []*gParam `( "(" ( @@ ( "," @@ )* )? ")" )?`
	Body   *gExpr    `"=" @@`
}

type gBlockDef struct {
	gPos
	Name   gName     `"block" @@`
	Params []*gParam `"(" ( @@ ( "," @@ )* )? ")"`
	Result *gType    `( "->" @@ )?`
	Body   []gStmt   `"{" @@* "}"`
}

type gModelDef struct {
	gPos
	Name gName   `"model" @@`
	Body []gStmt `"{" @@* "}"`
}

type gParam struct {
	gPos
	Name    gName  `@@`
	Type    *gType `( ":" @@ )?`
	Default *gExpr `( "=" @@ )?`
}

type gType struct {
	gPos
	Name   *gName   `( @@ )?`
	Shaped bool     `( @"["`
	Dims   []*gExpr `  ( @@ ( "," @@ )* )? "]" )?`
}

type gName struct {
	gPos
	Name string `@Ident`
}

type gString struct {
	gPos
	Value string `@String`
}

type gLet struct {
	gPos
	Name  gName  `"let" @@`
	Value *gExpr `"=" @@`
}

type gAssign struct {
	gPos
	Name  gName  `@@`
	Value *gExpr `"=" @@`
}

type gRepeat struct {
	gPos
	Var  gName   `"repeat" @@ "in"`
	From *gExpr  `@@ ".."`
	To   *gExpr  `@@`
	Body []gStmt `"{" @@* "}"`
}

type gReturn struct {
	gPos
	Value *gExpr `"return" @@`
}

type gLoss struct {
	gPos
	Value *gExpr `"loss" @@`
}

type gMetric struct {
	gPos
	Kind  string `@("metric" | "output")`
	Name  gName  `@@`
	Value *gExpr `"=" @@`
}

type gConfig struct {
	gPos
	Items []*gKeyValue `"config" "{" ( @@ ","? )* "}"`
}

type gKeyValue struct {
	gPos
	Key   gName  `@@ ( "=" | ":" )`
	Value *gExpr `@@`
}

type gInput struct {
	gPos
	Name gName `"input" @@ ":"`
	Type gType `@@`
}

type gTrain struct {
	gPos
	Items []*gKeyValue `"train" "{" ( @@ ","? )* "}"`
}

// Expressions, one struct per precedence level, loosest first.

type gExpr struct {
	gPos
	If *gIf `  @@`
	Or *gOr `| @@`
}

type gIf struct {
	gPos
	Cond *gExpr `"if" @@`
	Then *gExpr `"then" @@`
	Else *gExpr `"else" @@`
}

type gOr struct {
	gPos
	X    *gAnd      `@@`
	Rest []*gOrTail `@@*`
}

type gOrTail struct {
	gPos
	Op string `@"||"`
	Y  *gAnd  `@@`
}

type gAnd struct {
	gPos
	X    *gCmp       `@@`
	Rest []*gAndTail `@@*`
}

type gAndTail struct {
	gPos
	Op string `@"&&"`
	Y  *gCmp  `@@`
}

// Comparisons do not chain: a < b < c is a syntax error.
type gCmp struct {
	gPos
	X  *gAdd  `@@`
	Op string `( @("==" | "!=" | "<=" | ">=" | "<" | ">")`
	Y  *gAdd  `  @@ )?`
}

type gAdd struct {
	gPos
	X    *gMul       `@@`
	Rest []*gAddTail `@@*`
}

type gAddTail struct {
	gPos
	Op string `@("+" | "-")`
	Y  *gMul  `@@`
}

type gMul struct {
	gPos
	X    *gUnary     `@@`
	Rest []*gMulTail `@@*`
}

type gMulTail struct {
	gPos
	Op string  `@("*" | "/" | "%")`
	Y  *gUnary `@@`
}

type gUnary struct {
	gPos
	Op      string    `( @("-" | "!")`
	Operand *gUnary   `  @@ )`
	Postfix *gPostfix `| @@`
}

type gPostfix struct {
	gPos
	X        *gPrimary  `@@`
	Suffixes []*gSuffix `@@*`
}

type gSuffix struct {
	gPos
	Call  bool          `(  @"("`
	Args  []*gArg       `   ( @@ ( "," @@ )* )? ")"`
	Index bool          `| @"["`
	Items []*gIndexItem `   @@ ( "," @@ )* "]" )`
}

type gArg struct {
	gPos
	Name  *gName `( @@ ":" )?`
	Value *gExpr `@@`
}

type gIndexItem struct {
	gPos
	Lo    *gExpr `@@?`
	Slice bool   `( @":"`
	Hi    *gExpr `  @@? )?`
}

type gPrimary struct {
	gPos
	Float  *string  `  @Float`
	Int    *string  `| @Int`
	String *gString `| @@`
	Bool   *string  `| @("true" | "false")`
	Name   *gName   `| @@`
	Paren  *gExpr   `| "(" @@ ")"`
}

func (*gImport) gdecl()   {}
func (*gFuncDef) gdecl()  {}
func (*gBlockDef) gdecl() {}
func (*gModelDef) gdecl() {}

func (*gLet) gstmt()    {}
func (*gAssign) gstmt() {}
func (*gRepeat) gstmt() {}
func (*gReturn) gstmt() {}
func (*gLoss) gstmt()   {}
func (*gMetric) gstmt() {}
func (*gConfig) gstmt() {}
func (*gInput) gstmt()  {}
func (*gTrain) gstmt()  {}
