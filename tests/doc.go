// Package tests holds attnc's end-to-end tests: every stdlib model through
// every stage (check, elaborate, verify, print, parse) and the reference
// interpreter; every op of the op table generated, compiled and run by the
// Go backend against the reference (everyop_test.go); and a corpus of
// whole programs, testdata/programs plus the stdlib, that must build,
// match the reference and train (programs_test.go). Those two build all
// their generated packages into one program with one go build
// (gobuild_test.go), which keeps them to seconds.
package tests
