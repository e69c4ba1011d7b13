package runtime

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Source holds this package's Go and assembly source files, for the Go
// backend to copy into generated packages. It embeds every .go and .s
// file, including this one and the tests; a copy must leave out
// source.go (the only file that uses //go:embed) and every *_test.go
// file. SourceFiles does the selection and renaming. The generator of
// the .s files (_asm, its own module) is not embedded: copies need only
// its output.
//
//go:embed *.go *.s
var Source embed.FS

// SourceFiles returns the files a generated package needs as its copy of
// the runtime, by file name: every non-test .go file of Source except
// source.go, with the package clause (and the package doc comment's
// "Package runtime") rewritten to pkg, e.g. "rt". The copies import only
// the standard library.
func SourceFiles(pkg string) (map[string][]byte, error) {
	entries, err := fs.ReadDir(Source, ".")
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, e := range entries {
		name := e.Name()
		if !IsRuntimeFile(name) {
			continue
		}
		src, err := fs.ReadFile(Source, name)
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(name, ".s") {
			out[name] = src // assembly names no package
			continue
		}
		renamed, err := renamePackage(src, pkg)
		if err != nil {
			return nil, fmt.Errorf("runtime source %s: %w", name, err)
		}
		out[name] = renamed
	}
	return out, nil
}

// IsRuntimeFile reports whether the file called name belongs in a
// generated package's copy of the runtime: an assembly (.s) file, or a
// .go file that is neither a test nor source.go.
func IsRuntimeFile(name string) bool {
	name = path.Base(name)
	if strings.HasSuffix(name, ".s") {
		return true
	}
	return strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") && name != "source.go"
}

// renamePackage rewrites the package clause "package runtime" of src to
// "package pkg", and the doc comment's opening "Package runtime".
func renamePackage(src []byte, pkg string) ([]byte, error) {
	const clause = "package runtime\n"
	i := bytes.Index(src, []byte("\n"+clause))
	switch {
	case bytes.HasPrefix(src, []byte(clause)):
		i = 0
	case i >= 0:
		i++
	default:
		return nil, fmt.Errorf("no package clause")
	}
	var b bytes.Buffer
	head := bytes.Replace(src[:i], []byte("// Package runtime "), []byte("// Package "+pkg+" "), 1)
	b.Write(head)
	b.WriteString("package " + pkg + "\n")
	b.Write(src[i+len(clause):])
	return b.Bytes(), nil
}
