// Package attnc holds what attnc embeds from its own repository: its
// documentation, the text the standard library's char_lm learns to
// continue (the lm task's data "std/docs.txt"). The text is attnc's own
// writing, so the command can train a language model with no download
// and no third-party text.
package attnc

import (
	"embed"
	"io/fs"
	"sort"
)

//go:embed README.md docs/*.md
var docs embed.FS

// DocsCorpus is the name the lm task's data gives the embedded text.
const DocsCorpus = "std/docs.txt"

// Docs returns README.md and then every docs/*.md file in name order,
// joined by blank lines: about 250 KB of English and code.
func Docs() []byte {
	names, _ := fs.Glob(docs, "docs/*.md")
	sort.Strings(names)
	names = append([]string{"README.md"}, names...)
	var out []byte
	for _, n := range names {
		b, err := docs.ReadFile(n)
		if err != nil {
			continue // embedded: cannot happen
		}
		if len(out) > 0 {
			out = append(out, '\n', '\n')
		}
		out = append(out, b...)
	}
	return out
}
