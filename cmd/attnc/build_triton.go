package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/attnc/attnc/codegen/triton"
	"github.com/attnc/attnc/lang"
)

// buildTriton is attnc build -target triton: the Python package of the
// model m (from file) in the directory out, written as a Go package is
// (a manifest, atomic replacement, user files kept).
func (c *cli) buildTriton(m *lang.Model, file, out string, force bool) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(c.stderr, "attnc build: "+format+"\n", a...)
		return exitError
	}
	dir, err := filepath.Abs(out)
	if err == nil {
		err = checkOutDir(dir)
	}
	if err != nil {
		return fail("%v", err)
	}
	if err := checkPythonPackage(filepath.Base(dir)); err != nil {
		return fail("%v", err)
	}
	var config []string
	for _, v := range configValues(m) {
		config = append(config, fmt.Sprintf("%s = %v", v.Name, v.Value))
	}
	files, err := triton.Torch(m.IR, triton.Options{Source: filepath.Base(file), Version: Version, Config: config})
	if err != nil {
		return fail("-target triton: %v", err)
	}
	if err := writePackage(dir, files, force); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(c.stdout, "wrote %s (Python package %s, %d files): %s.Model is a torch.nn.Module\n", out, filepath.Base(dir), len(files), filepath.Base(dir))
	return exitOK
}

// checkPythonPackage returns an error unless name can be imported as a
// Python package: an identifier of ASCII letters, digits and
// underscores, not starting with a digit, not a keyword.
func checkPythonPackage(name string) error {
	ok := name != ""
	for i, r := range name {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || r == '_' || i > 0 && unicode.IsDigit(r)) {
			ok = false
		}
	}
	if !ok || pythonKeywords[name] {
		return fmt.Errorf("the output directory's name %q is the Python package's name, and Python cannot import it: use letters, digits and underscores (%s)", name, strings.ReplaceAll(strings.ToLower(name), "-", "_"))
	}
	return nil
}

var pythonKeywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields("False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield") {
		pythonKeywords[k] = true
	}
}
