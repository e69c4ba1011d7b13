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
	participle.UseLookahead(2),
)

type gPos struct {
	Pos    lexer.Position
	EndPos lexer.Position
}

type gFile struct {
	gPos
	Decls []gDecl `parser:"@@*"`
}

type gDecl interface{ gdecl() }
type gStmt interface{ gstmt() }

type gImport struct {
	gPos
	Path gString `parser:"\"import\" @@"`
}

type gFuncDef struct {
	gPos
	Kind   string    `parser:"@(\"mask\" | \"score\")"`
	Name   gName     `parser:"@@"`
	Params []*gParam `parser:"( \"(\" ( @@ ( \",\" @@ )* )? \")\" )?"`
	Body   *gExpr    `parser:"\"=\" @@"`
}

type gBlockDef struct {
	gPos
	Name   gName     `parser:"\"block\" @@"`
	Params []*gParam `parser:"\"(\" ( @@ ( \",\" @@ )* )? \")\""`
	Result *gType    `parser:"( \"->\" @@ )?"`
	Body   []gStmt   `parser:"\"{\" @@* \"}\""`
}

type gModelDef struct {
	gPos
	Name gName   `parser:"\"model\" @@"`
	Body []gStmt `parser:"\"{\" @@* \"}\""`
}

type gParam struct {
	gPos
	Name    gName  `parser:"@@"`
	Type    *gType `parser:"( \":\" @@ )?"`
	Default *gExpr `parser:"( \"=\" @@ )?"`
}

type gType struct {
	gPos
	Name   *gName   `parser:"( @@ )?"`
	Shaped bool     `parser:"( @\"[\""`
	Dims   []*gExpr `parser:"  ( @@ ( \",\" @@ )* )? \"]\" )?"`
}

type gName struct {
	gPos
	Name string `parser:"@Ident"`
}

type gString struct {
	gPos
	Value string `parser:"@String"`
}

type gLet struct {
	gPos
	Name  gName   `parser:"\"let\" @@"`
	More  []gName `parser:"( \",\" @@ )*"`
	Value *gExpr  `parser:"\"=\" @@"`
}

type gAssign struct {
	gPos
	Name  gName  `parser:"@@"`
	Value *gExpr `parser:"\"=\" @@"`
}

type gRepeat struct {
	gPos
	Var  gName   `parser:"\"repeat\" @@ \"in\""`
	From *gExpr  `parser:"@@ \"..\""`
	To   *gExpr  `parser:"@@"`
	Body []gStmt `parser:"\"{\" @@* \"}\""`
}

type gReturn struct {
	gPos
	Value *gExpr   `parser:"\"return\" @@"`
	More  []*gExpr `parser:"( \",\" @@ )*"`
}

type gLoss struct {
	gPos
	Value *gExpr `parser:"\"loss\" @@"`
}

type gMetric struct {
	gPos
	Kind  string `parser:"@(\"metric\" | \"output\")"`
	Name  gName  `parser:"@@"`
	Value *gExpr `parser:"\"=\" @@"`
}

type gConfig struct {
	gPos
	Items []*gKeyValue `parser:"\"config\" \"{\" ( @@ \",\"? )* \"}\""`
}

type gKeyValue struct {
	gPos
	Key   gName  `parser:"@@ ( \"=\" | \":\" )"`
	Value *gExpr `parser:"@@"`
}

type gInput struct {
	gPos
	Name gName `parser:"\"input\" @@ \":\""`
	Type gType `parser:"@@"`
}

type gTrain struct {
	gPos
	Items []*gKeyValue `parser:"\"train\" \"{\" ( @@ \",\"? )* \"}\""`
}

// Expressions, one struct per precedence level, loosest first.

type gExpr struct {
	gPos
	If *gIf `parser:"  @@"`
	Or *gOr `parser:"| @@"`
}

type gIf struct {
	gPos
	Cond *gExpr `parser:"\"if\" @@"`
	Then *gExpr `parser:"\"then\" @@"`
	Else *gExpr `parser:"\"else\" @@"`
}

type gOr struct {
	gPos
	X    *gAnd      `parser:"@@"`
	Rest []*gOrTail `parser:"@@*"`
}

type gOrTail struct {
	gPos
	Op string `parser:"@\"||\""`
	Y  *gAnd  `parser:"@@"`
}

type gAnd struct {
	gPos
	X    *gCmp       `parser:"@@"`
	Rest []*gAndTail `parser:"@@*"`
}

type gAndTail struct {
	gPos
	Op string `parser:"@\"&&\""`
	Y  *gCmp  `parser:"@@"`
}

// Comparisons do not chain: a < b < c is a syntax error.
type gCmp struct {
	gPos
	X  *gAdd  `parser:"@@"`
	Op string `parser:"( @(\"==\" | \"!=\" | \"<=\" | \">=\" | \"<\" | \">\")"`
	Y  *gAdd  `parser:"  @@ )?"`
}

type gAdd struct {
	gPos
	X    *gMul       `parser:"@@"`
	Rest []*gAddTail `parser:"@@*"`
}

type gAddTail struct {
	gPos
	Op string `parser:"@(\"+\" | \"-\")"`
	Y  *gMul  `parser:"@@"`
}

type gMul struct {
	gPos
	X    *gUnary     `parser:"@@"`
	Rest []*gMulTail `parser:"@@*"`
}

type gMulTail struct {
	gPos
	Op string  `parser:"@(\"*\" | \"/\" | \"%\")"`
	Y  *gUnary `parser:"@@"`
}

type gUnary struct {
	gPos
	Op      string    `parser:"( @(\"-\" | \"!\")"`
	Operand *gUnary   `parser:"  @@ )"`
	Postfix *gPostfix `parser:"| @@"`
}

type gPostfix struct {
	gPos
	X        *gPrimary  `parser:"@@"`
	Suffixes []*gSuffix `parser:"@@*"`
}

type gSuffix struct {
	gPos
	Call  bool          `parser:"(  @\"(\""`
	Args  []*gArg       `parser:"   ( @@ ( \",\" @@ )* )? \")\""`
	Index bool          `parser:"| @\"[\""`
	Items []*gIndexItem `parser:"   @@ ( \",\" @@ )* \"]\" )"`
}

type gArg struct {
	gPos
	Name  *gName `parser:"( @@ \":\" )?"`
	Value *gExpr `parser:"@@"`
}

type gIndexItem struct {
	gPos
	Lo    *gExpr `parser:"@@?"`
	Slice bool   `parser:"( @\":\""`
	Hi    *gExpr `parser:"  @@? )?"`
}

type gPrimary struct {
	gPos
	Float  *string  `parser:"  @Float"`
	Int    *string  `parser:"| @Int"`
	String *gString `parser:"| @@"`
	Bool   *string  `parser:"| @(\"true\" | \"false\")"`
	Name   *gName   `parser:"| @@"`
	Paren  *gExpr   `parser:"| \"(\" @@ \")\""`
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
