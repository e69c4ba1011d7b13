// Package eval is the reference interpreter: it runs any verified ir.Module
// in float64, straight from each op's definition (attention materialises
// its scores). It is slow and simple on purpose — every backend and every
// pass is judged against it.
package eval
