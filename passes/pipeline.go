package passes

import (
	"fmt"
	"io"
	"time"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/kir"
)

// A Pass transforms a module in place.
type Pass struct {
	Name string
	Doc  string
	Run  func(m *ir.Module) error
}

// Pipeline is the one ordered list of passes between elaboration and
// lowering. Later passes (simplify, fuse, sparsity, tile, plan) slot in
// here; each must keep the module verified, and passOrder says which
// must come before which.
var Pipeline = []Pass{
	{Name: "verify", Doc: "check the elaborated module", Run: ir.Verify},
	{Name: "autodiff", Doc: "append the gradient of the loss with respect to every param", Run: Autodiff},
	{Name: "nograd", Doc: "remove stop_gradient, the identity once the gradients exist", Run: NoGrad},
	{Name: "contract", Doc: "run matmuls through transposes, batches by weights and weight-gradient sums as single einsums", Run: Contract},
	{Name: "epilogue", Doc: "fold a bias add after a product into the product", Run: Epilogue},
	{Name: "normscale", Doc: "fold the product by a norm's weight into the norm's gradient", Run: NormScale},
	{Name: "normparams", Doc: "fold a norm's affine part into the norm, and its weights' gradient sums into the norm's gradient", Run: NormParams},
	{Name: "layout", Doc: "run attention on its [B, N, H, D] operands in place, not between transposes", Run: Layout},
	{Name: "sparsity", Doc: "mark attention masks that kernels may classify per tile", Run: Sparsity},
}

// passOrder lists the constraints on Pipeline's order, as Go's SSA
// back end keeps them (cmd/compile/internal/ssa/compile.go): pass a must
// run before pass b, for the reason given. init checks them, so a
// reordering that breaks one fails at start-up, and in every test.
var passOrder = []struct{ a, b, why string }{
	{"verify", "autodiff", "autodiff differentiates a module whose types are checked"},
	{"autodiff", "contract", "contract rewrites the products the gradients add (xᵀ·dy summed over a batch)"},
	{"autodiff", "sparsity", "the attention_grad ops autodiff adds need their tiles marked too"},
	{"autodiff", "epilogue", "an einsum with a bias has no gradient rule"},
	{"contract", "epilogue", "contract makes the einsums whose bias adds epilogue folds"},
	{"autodiff", "normscale", "autodiff writes the norm gradients whose scale normscale folds"},
	{"autodiff", "normparams", "a norm with an affine part has no gradient rule"},
	{"normscale", "normparams", "normparams adds the weights' gradients to the scaled norm gradients normscale makes"},
	{"autodiff", "layout", "layout rewrites the attention_grad ops and the row sums autodiff writes"},
	{"contract", "layout", "contract runs products through the transposes it can; layout takes those around attention"},
}

func init() {
	if err := checkOrder(Pipeline, passOrder); err != nil {
		panic(err)
	}
}

// checkOrder reports the first constraint of order that pipeline breaks,
// or one that names a pass pipeline lacks; pass names must be unique.
func checkOrder(pipeline []Pass, order []struct{ a, b, why string }) error {
	at := map[string]int{}
	for i, p := range pipeline {
		if _, dup := at[p.Name]; dup {
			return fmt.Errorf("passes: pass %s is in the pipeline twice", p.Name)
		}
		at[p.Name] = i
	}
	for _, c := range order {
		i, ok1 := at[c.a]
		j, ok2 := at[c.b]
		switch {
		case !ok1 || !ok2:
			return fmt.Errorf("passes: order constraint %s before %s names a pass the pipeline lacks", c.a, c.b)
		case i >= j:
			return fmt.Errorf("passes: %s must run before %s (%s)", c.a, c.b, c.why)
		}
	}
	return nil
}

// Options controls a pipeline run.
type Options struct {
	// VerifyEach runs the verifier after every pass (tests turn it on).
	VerifyEach bool
	// Dump, when set, names a pass after which the module is printed to
	// DumpTo ("elaborated" prints it before any pass).
	Dump   string
	DumpTo io.Writer
	// Time, when set, receives how long each pass took.
	Time func(pass string, d time.Duration)
	// Target names the kir target the kernel passes tile for (default
	// kir.DefaultGoTarget).
	Target string
}

// Names returns the pass names, in order, with "elaborated" first and
// the kernel stages ("fuse", "tile", "plan") last: the stages -dump
// accepts.
func Names() []string {
	out := []string{"elaborated"}
	for _, p := range Pipeline {
		out = append(out, p.Name)
	}
	return append(out, "fuse", "tile", "plan", "shard")
}

// Run runs the pipeline on m, lowers the result and runs the kernel
// passes on it (fuse, tile, plan, shard) for opts.Target. A panic inside a pass is turned
// into an error that names the pass.
func Run(m *ir.Module, opts Options) (*kir.Program, error) {
	if opts.Dump == "elaborated" && opts.DumpTo != nil {
		fmt.Fprint(opts.DumpTo, ir.Print(m))
	}
	var graph map[string]int
	for _, p := range Pipeline {
		start := time.Now()
		if err := runPass(p, m); err != nil {
			return nil, err
		}
		if p.Name == "autodiff" {
			graph = graphSizes(m)
		}
		if opts.Time != nil {
			opts.Time(p.Name, time.Since(start))
		}
		if opts.VerifyEach {
			if err := ir.Verify(m); err != nil {
				return nil, fmt.Errorf("after pass %s: %w", p.Name, err)
			}
		}
		if opts.Dump == p.Name && opts.DumpTo != nil {
			fmt.Fprint(opts.DumpTo, ir.Print(m))
		}
	}
	start := time.Now()
	prog, err := Lower(m)
	if opts.Time != nil {
		opts.Time("lower", time.Since(start))
	}
	if err != nil {
		return nil, err
	}
	name := opts.Target
	if name == "" {
		name = kir.DefaultGoTarget
	}
	t, err := kir.TargetByName(name)
	if err != nil {
		return nil, err
	}
	start = time.Now()
	kp, err := Fuse(prog, t)
	if err != nil {
		return nil, err
	}
	kp.GraphInstrs = graph
	done := func(stage string) {
		if opts.Time != nil {
			opts.Time(stage, time.Since(start))
		}
		if opts.Dump == stage && opts.DumpTo != nil {
			fmt.Fprint(opts.DumpTo, kp.Print())
		}
	}
	done("fuse")
	// The kernel passes after fuse, in order.
	for _, kpass := range []struct {
		name string
		run  func(*kir.Program) error
	}{{"tile", Tile}, {"plan", Plan}, {"shard", Shard}} {
		start = time.Now()
		if err := kpass.run(kp); err != nil {
			return nil, err
		}
		done(kpass.name)
	}
	return kp, nil
}

// graphSizes returns the number of instructions of each function Lower
// would make of m now: after autodiff, the size of the training step's
// graph before any pass rewrote it for speed, which kir.Program's
// summary sets the step's kernels against.
func graphSizes(m *ir.Module) map[string]int {
	p, err := Lower(m)
	if err != nil {
		return nil // the pipeline's own Lower reports it
	}
	out := map[string]int{}
	for _, f := range p.Funcs {
		out[f.Name] = len(f.Body)
	}
	return out
}

func runPass(p Pass, m *ir.Module) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error in pass %s: %v", p.Name, r)
		}
	}()
	if err := p.Run(m); err != nil {
		return fmt.Errorf("pass %s: %w", p.Name, err)
	}
	return nil
}
