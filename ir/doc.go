// Package ir is attnc's graph IR: a module is a list of instructions in SSA
// form, each producing one typed value (dtype + symbolic shape). The op set
// is one table (ops.go), a row per op with its meaning; the verifier, the
// printer and the parser, the reference interpreter (ir/eval) and every
// later pass consult that table.
//
// Dimensions are affine in the module's symbols (B, N, S+T, N-1), so shapes
// stay exact through slicing and concatenation without knowing sizes.
//
// Masks and score modifications of the attention op are not tensors but
// index expressions (Expr) over q, k, h, b and the module's symbols. They
// can be evaluated pointwise and over intervals (Expr.Bounds), which lets
// the sparsity pass prove tiles empty or full.
//
// ir imports nothing of attnc.
package ir
