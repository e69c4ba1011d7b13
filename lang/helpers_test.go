package lang

import (
	"io/fs"

	"github.com/alecthomas/participle/v2/lexer"
)

func pos(file string, line, col int) lexer.Position {
	return lexer.Position{Filename: file, Line: line, Column: col}
}

// noFiles is a ReadFile that finds nothing: tests and fuzzers must not
// read the disk through imports.
func noFiles(name string) ([]byte, error) { return nil, fs.ErrNotExist }
