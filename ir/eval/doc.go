// Package eval is the reference interpreter: it runs any verified ir.Module
// in float64, straight from each op's definition (attention materialises
// its scores). It is slow and simple on purpose — every backend and every
// pass is judged against it.
//
// Run takes the inputs and params by name and binds the module's symbols
// from their shapes (BindSyms); InitParams and RandomInputs make both
// deterministically from a seed. Every dtype is held as float64:
//
//   - f32 arithmetic is float64 arithmetic; NaN and ±Inf propagate as IEEE
//     says (max, min and reductions propagate NaN; argmax picks the first
//     NaN) and are never errors.
//   - i32 arithmetic is exact and wraps at 32 bits as two's complement
//     does, like the generated code; casting to i32 truncates toward zero
//     and is an error for NaN or a value outside the int32 range.
//   - bool is 0 or 1.
//
// Reductions over an empty axis give their identity (0, -Inf, or MinInt32
// for an i32 max); a mean over nothing is NaN. softmax and logsumexp are
// shifted by the maximum, so [1000, 1001] is fine; logsumexp of a row of
// -Inf is -Inf.
//
// Data a user supplies can make Run fail but never panic: a gather or
// scatter_add index, a cross_entropy target, a captured tensor read by an
// attention expression or a slice bound out of range is an error naming
// the instruction ("%12 = gather: index 300 out of range [0, 256)").
package eval
