// Package passes holds the IR-to-IR transformations, one pass per file,
// each with a doc comment stating what it requires, what it guarantees and
// why it exists. pipeline.go is the one ordered list.
//
// passes imports ir and nothing else of attnc.
package passes
