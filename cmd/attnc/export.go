package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/attnc/attnc/runtime"
	"github.com/attnc/attnc/train"
)

var exportCmd = &command{
	name:     "export",
	args:     "RUN_DIR",
	summary:  "write a run's trained weights for inference",
	complete: argDirs,
	help: `Export writes the weights of a run's checkpoint, without the optimizer
state, to a safetensors file that the generated package's Load reads
(Load reads the checkpoint itself too; the exported file is about a third
of its size). Each weight is checked against the run's model (compiled
from the run's copy of its source) before anything is written; the
file's metadata names the model, the step and attnc's version. The file
is written to a temporary name and renamed; an existing file is replaced
only with -force.`,
	setup: func(fs *pflag.FlagSet) func(*cli, []string) int {
		out := fs.StringP("out", "o", "", "the weights file to write (required)")
		force := fs.Bool("force", false, "replace the file if it exists")
		return func(c *cli, args []string) int {
			if len(args) != 1 {
				return c.usageError("export", "want one run directory, got %d", len(args))
			}
			if *out == "" {
				return c.usageError("export", "-o FILE is required")
			}
			return c.export(args[0], *out, *force)
		}
	},
}

func (c *cli) export(dir, out string, force bool) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(c.stderr, "attnc export: "+format+"\n", a...)
		return exitError
	}
	spec, err := train.ReadSpec(dir)
	if err != nil {
		return fail("%v", err)
	}
	m, ok := c.compileRun("export", dir, spec.Source, spec.Model, spec.Config)
	if !ok {
		return exitError
	}
	shapes := map[string][]int{}
	var order []string
	for _, p := range append(m.IR.Params(), m.IR.Buffers()...) { // what the package's Load reads
		shape := make([]int, len(p.Type.Shape))
		for i, d := range p.Type.Shape {
			n, ok := d.IsConst()
			if !ok {
				return fail("weight %q has the symbolic shape %s", p.Name(), p.Type.Shape)
			}
			shape[i] = int(n)
		}
		shapes[p.Name()] = shape
		order = append(order, p.Name())
	}
	ckpt := filepath.Join(dir, train.CheckpointFile)
	ts, meta, err := runtime.LoadSafetensorsChecked(ckpt, func(name string, dt runtime.DType, shape []int) (bool, error) {
		if strings.HasPrefix(name, "adamw.m/") || strings.HasPrefix(name, "adamw.v/") {
			return false, nil
		}
		want, ok := shapes[name]
		if !ok {
			return false, fmt.Errorf("the model %s has no weight of this name", spec.Model)
		}
		return true, runtime.CheckType(dt, shape, runtime.F32, want)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return fail("%s has no checkpoint yet (%s)", dir, train.CheckpointFile)
	}
	if err != nil {
		return fail("%v", err)
	}
	named := make([]runtime.Named, 0, len(order))
	params := 0
	for _, name := range order {
		t := ts[name]
		if t == nil {
			return fail("%s: weight %q is missing", ckpt, name)
		}
		named = append(named, runtime.Named{Name: name, T: t})
		params += len(t.F)
	}
	if _, err := os.Lstat(out); err == nil && !force {
		return fail("%s exists; pass -force to replace it", out)
	}
	step := meta["step"]
	if err := runtime.SaveSafetensors(out, named, map[string]string{"model": spec.Model, "step": step, "attnc": Version}); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(c.stdout, "wrote the %d weights (%d parameters) of %s at step %s to %s\n", len(named), params, spec.Model, step, out)
	return exitOK
}
