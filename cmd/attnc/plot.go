package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/attnc/attnc/runtime"
	"github.com/attnc/attnc/train"
	"github.com/attnc/attnc/train/plot"
)

var plotCmd = &command{
	name:     "plot",
	args:     "RUN_DIR",
	summary:  "draw a run's pictures again, or one attention layer's heads",
	complete: argDirs,
	help: `Plot draws a run's pictures from what the run saved (metrics.jsonl and
the example the trainer probed, example.safetensors): loss.png, with the
task's main metric beside the loss, attention-L.png for the L-th
attention op of the model (every head, with a colour bar) and, for a
pointer network, attention.png. attnc train draws them at the end of a
run; plot draws them again, also for a run that was stopped.

-layer L draws only the L-th attention op (from 1, as in the file
names) and -head H (repeatable, or a list: -head 0,2) only those heads
(from 0), to -o FILE or to attention-L.png (attention-L-hH….png with
-head) in the run directory. -list prints the attention ops and their
heads without drawing.`,
	setup: func(fs *pflag.FlagSet) func(*cli, []string) int {
		layer := fs.Int("layer", 0, "draw only the L-th attention op (from 1; 0: all)")
		heads := fs.IntSlice("head", nil, "draw only these heads (from 0; repeatable, or a list 0,2)")
		out := fs.StringP("out", "o", "", "the picture to write (with -layer; default: in the run directory)")
		list := fs.BoolP("list", "l", false, "list the attention ops and their heads, draw nothing")
		return func(c *cli, args []string) int {
			if len(args) != 1 {
				return c.usageError("plot", "want one run directory, got %d", len(args))
			}
			if *layer < 0 {
				return c.usageError("plot", "-layer must be 1 or more, got %d", *layer)
			}
			for _, h := range *heads {
				if h < 0 {
					return c.usageError("plot", "-head must be 0 or more, got %d", h)
				}
			}
			if *out != "" && *layer == 0 {
				return c.usageError("plot", "-o names one picture: give -layer too")
			}
			if *out != "" && !strings.HasSuffix(strings.ToLower(*out), ".png") {
				return c.usageError("plot", "-o: the picture is a PNG; give a name ending in .png, got %q", *out)
			}
			return c.plot(args[0], *layer, *heads, *out, *list)
		}
	},
}

// plot is attnc plot: the whole set of pictures, or the selected layer
// and heads, or (list) what there is to select.
func (c *cli) plot(dir string, layer int, heads []int, out string, list bool) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(c.stderr, "attnc plot: "+format+"\n", a...)
		return exitError
	}
	spec, err := train.ReadSpec(dir)
	if err != nil {
		return fail("%v", err)
	}
	ex, meta, err := runtime.LoadSafetensors(filepath.Join(dir, train.ExampleFile))
	if errors.Is(err, fs.ErrNotExist) {
		return fail("%s has no %s: the run saves it at its first checkpoint", dir, train.ExampleFile)
	} else if err != nil {
		return fail("%v", err)
	}
	ops := attentionOps(ex)
	if list {
		if len(ops) == 0 {
			fmt.Fprintf(c.stdout, "%s has no attention op\n", spec.Model)
		}
		for i, t := range ops {
			fmt.Fprintf(c.stdout, "-layer %d: %s, %d heads, %d queries × %d keys\n", i+1, meta[attentionName(i)], t.Shape[1], t.Shape[2], t.Shape[3])
		}
		return exitOK
	}
	if layer == 0 && len(heads) == 0 {
		if !c.pictures(dir, spec.Model) {
			return exitError
		}
		fmt.Fprintf(c.stdout, "drew the pictures of %s\n", dir)
		return exitOK
	}
	if len(ops) == 0 {
		return fail("%s has no attention op to draw", spec.Model)
	}
	if layer > len(ops) {
		return fail("no -layer %d: %s has %d attention ops (attnc plot -list %s lists them)", layer, spec.Model, len(ops), dir)
	}
	first, last := 1, len(ops)
	if layer > 0 {
		first, last = layer, layer
	}
	for l := first; l <= last; l++ {
		path := out
		if path == "" {
			name := "attention-" + strconv.Itoa(l)
			for _, h := range heads {
				name += "-h" + strconv.Itoa(h)
			}
			path = filepath.Join(dir, name+".png")
		}
		if err := plot.AttentionMaps(path, spec.Model+", "+meta[attentionName(l-1)], ops[l-1], heads...); err != nil {
			return fail("-layer %d: %v", l, err)
		}
		fmt.Fprintf(c.stdout, "wrote %s\n", path)
	}
	return exitOK
}

// attentionName is the name, in a run's example, of the probabilities of
// its i-th attention op (from 0).
func attentionName(i int) string { return fmt.Sprintf("attention:%d", i) }

// attentionOps returns the attention probabilities of a run's example,
// in the order of the model's attention ops.
func attentionOps(ex map[string]*runtime.Tensor) []*runtime.Tensor {
	var ops []*runtime.Tensor
	for i := 0; ex[attentionName(i)] != nil; i++ {
		ops = append(ops, ex[attentionName(i)])
	}
	return ops
}
