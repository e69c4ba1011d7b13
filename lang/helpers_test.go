package lang

import "github.com/alecthomas/participle/v2/lexer"

func pos(file string, line, col int) lexer.Position {
	return lexer.Position{Filename: file, Line: line, Column: col}
}
