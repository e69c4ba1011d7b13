// Package tests holds attnc's end-to-end tests: every stdlib model through
// every stage (check, elaborate, verify, print, parse) and the reference
// interpreter.
package tests
