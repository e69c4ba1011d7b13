// Package gogen renders lowered IR as a Go package. It makes no
// optimisation decisions: tiling and fusion are decided by passes.
package gogen
