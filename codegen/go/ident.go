package gogen

import (
	"fmt"
	"go/token"
	"strings"
	"unicode"
)

// Identifiers in generated code come from user names only through these
// functions, which keep letters, digits and underscores and nothing else,
// so no name in a .attn file can break or inject into the Go source.
// Everything else a user wrote (param names, file names) appears only in
// string literals (strconv.Quote) or in comments with newlines removed.

// exported turns a name into an exported Go identifier: "src_len" →
// "SrcLen", "2x" → "X2x".
func exported(name string) string {
	var sb strings.Builder
	upper := true
	for _, r := range name {
		switch {
		case r == '_' || r == '.' || r == '-' || r == ' ':
			upper = true
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			if upper {
				r = unicode.ToUpper(r)
				upper = false
			}
			sb.WriteRune(r)
		}
	}
	s := sb.String()
	if s == "" || !unicode.IsLetter(rune(s[0])) {
		s = "X" + s
	}
	return s
}

// packageName turns a model name into a Go package name: lower case
// letters and digits, starting with a letter, not a keyword.
func packageName(name string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(name) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			sb.WriteRune(r)
		}
	}
	s := sb.String()
	if s == "" || !unicode.IsLetter(rune(s[0])) || CheckPackageName(s) != nil || s == "rt" {
		s = "model" + s
	}
	return s
}

// CheckPackageName returns an error unless name can name a generated
// package that a user imports: a Go identifier of ASCII letters, digits
// and underscores, not a keyword, not the blank identifier, not main (a
// command, which no one can import) and not init (which an importing
// file cannot use as the package's name).
func CheckPackageName(name string) error {
	for i, r := range name {
		if !(r == '_' || r < unicode.MaxASCII && (unicode.IsLetter(r) || i > 0 && unicode.IsDigit(r))) {
			return fmt.Errorf("%q is not a Go package name (letters, digits and underscores, not starting with a digit)", name)
		}
	}
	switch {
	case name == "":
		return fmt.Errorf("the package name is empty")
	case name == "_":
		return fmt.Errorf("the blank identifier _ cannot name a package")
	case token.IsKeyword(name):
		return fmt.Errorf("%q is a Go keyword and cannot name a package", name)
	case name == "main":
		return fmt.Errorf("package main is a command, which cannot be imported; choose another name")
	case name == "init":
		return fmt.Errorf("a package named init cannot be imported (init names only functions); choose another name")
	}
	return nil
}

// uniquer hands out distinct identifiers: a second "Acc" becomes "Acc2".
type uniquer map[string]bool

func (u uniquer) get(want string) string {
	s := want
	for i := 2; u[s]; i++ {
		s = want + itoa(i)
	}
	u[s] = true
	return s
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// comment makes text safe for a // comment: one line, no control
// characters.
func comment(text string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, text)
}
