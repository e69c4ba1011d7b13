// Package triton renders lowered IR as a Python module of @triton.jit
// kernels with a torch.autograd.Function wrapper. It makes no optimisation
// decisions.
package triton
