// Package kir is attnc's kernel IR, the level below the graph IR (ir):
// what the machine runs, as kernels that the Go, CUDA and Triton renderers
// print. The graph IR says what a model computes, one tensor op at a time;
// kir says how, one kernel at a time, after the passes have decided the
// tiling, the fusion and which tiles to skip.
//
// # The model: a grid of programs over tiles
//
// A kernel is launched over a grid of up to three axes of independent
// programs (Triton's program instances, CUDA's thread blocks, a task of
// the Go runtime's parallel loop). Its body says what one program
// computes, in SSA form over three kinds of value:
//
//   - index: a scalar integer (a program id, a tile's first row, a loop
//     counter, a bound). Index arithmetic is the graph IR's add, sub, mul,
//     min and max, and floor division and remainder (idiv, irem, cdiv).
//   - tiles: values of a static shape (f32[64, 32], i32[64], bool[64, 64],
//     f32[] for a scalar) that live in registers or on-chip memory. They
//     come from loads of buffers, arange, constants and splats, and are
//     combined by the graph IR's elementwise functions (every row of its op
//     table of class unary or binary, and select: a function is added once,
//     there), dot (a tile product accumulated into a tile), reduce (sum,
//     max, min along an axis), expand, broadcast and cast.
//   - buffers: the kernel's parameters, tensors in memory with the graph
//     IR's symbolic shapes (f32[B, H, N, 32]). They are read by load (a
//     tile whose axes run along chosen axes of the buffer from given
//     offsets, so a transposed tile is a load, and whose elements past the
//     buffer's end read a pad value) and gather (one element per tile
//     element, at index tiles), and written by store (elements past the
//     end are skipped).
//
// Control flow is structured: for loops over an index range carry values
// from one iteration to the next (the online softmax's running max, sum
// and output; a dot's accumulator), and if selects between two regions
// (a full tile skips its mask, a partial one evaluates it). Both end their
// regions with yield. call runs a hand-written runtime micro-kernel where
// one stays hand-written.
//
// The grid's extents are index expressions (ir.Expr) over the module's
// symbols, as (N + 63) / 64; a buffer's dims are ir.Dims.
//
// # Targets
//
// A Target record (target.go) parametrises the passes that produce kir:
// vector width, registers, cache sizes, cores, shared memory, warp size.
// The tile pass reads it to size tiles, the fuse pass to decide what fits
// in one program; renderers decide nothing.
//
// # How the targets map onto it
//
//   - Go: a kernel is a function; the grid is a ParallelFor over the
//     programs; a tile is a slice in a pooled scratch buffer; dot calls
//     the SIMD micro-kernels (packing its operands), elementwise runs of
//     tiles call the vector row kernels, loops are Go loops.
//   - Triton: nearly one to one: program_id, tl.arange, tl.load and
//     tl.store with masks from the bounds, tl.dot, tl.where, tl.max and
//     tl.sum, Python loops with carried values. Tile shapes must be powers
//     of two there; the tile pass guarantees it for that target.
//   - CUDA: a program is a thread block; a tile is spread over its warps'
//     registers (or shared memory for dot's operands), elementwise ops are
//     per-thread loops over a thread's elements, reduce a warp shuffle
//     tree, dot an mma loop. The Target's warp size and shared memory bound
//     the tile shapes the tile pass picks.
//
// # The text form
//
//	kernel scale(x: f32[M, 128], out: f32[M, 128]) grid [(M + 63) / 64] {
//	  %0 = program_id {axis = 0} : index
//	  %1 = const {value = 64.0} : index
//	  %2 = mul %0, %1 : index
//	  %3 = const {value = 0.0} : index
//	  %4 = load %x, %2, %3 {dims = [0, 1], pad = 0.0} : f32[64, 128]
//	  %5 = const {value = 0.5} : f32[]
//	  %6 = mul %4, %5 : f32[64, 128]
//	  store %out, %6, %2, %3 {dims = [0, 1]}
//	}
//
// Print and Parse are exact inverses; the verifier checks types against
// the op table, SSA dominance through regions and the shapes of loads,
// stores and loops.
//
// kir imports ir and nothing else of attnc.
package kir
