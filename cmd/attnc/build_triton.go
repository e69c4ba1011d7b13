package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode"

	repo "github.com/attnc/attnc"
	"github.com/attnc/attnc/codegen/triton"
	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/train"
)

// buildTriton is attnc build -target triton: the Python package of the
// model m (from file) in the directory out, written as a Go package is
// (a manifest, atomic replacement, user files kept).
func (c *cli) buildTriton(m *lang.Model, file, out string, force bool) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(c.stderr, "attnc build: "+format+"\n", a...)
		return exitError
	}
	dir, err := outputDir(out)
	if err != nil {
		return fail("%v", err)
	}
	if err := checkPythonPackage(filepath.Base(dir)); err != nil {
		return fail("%v", err)
	}
	var config []string
	for _, v := range configValues(m) {
		config = append(config, fmt.Sprintf("%s = %v", v.Name, v.Value))
	}
	opts := triton.Options{Source: filepath.Base(file), Version: Version, Config: config}
	var data []byte
	if spec, err := specFor(m, file); err == nil {
		opts.Train, data = trainSpec(spec)
	}
	files, err := triton.Torch(m.IR, opts)
	if err != nil {
		return fail("-target triton: %v", err)
	}
	if data != nil {
		files["data.txt"] = data
	}
	if err := writePackage(dir, files, force); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(c.stdout, "wrote %s (Python package %s, %d files): %s.Model is a torch.nn.Module\n", out, filepath.Base(dir), len(files), filepath.Base(dir))
	if opts.Train != nil {
		fmt.Fprintf(c.stdout, "train it with: python3 -m %s.train (or under torchrun, on several processes)\n", filepath.Base(dir))
	}
	return exitOK
}

// trainSpec turns a model's resolved train section into train.py's
// settings; the lm task's embedded text comes back as data, for the
// package's data.txt.
func trainSpec(s *train.Spec) (*triton.TrainSpec, []byte) {
	params := map[string]any{}
	for k, v := range s.TaskParams.Ints {
		params[k] = v
	}
	var data []byte
	for k, v := range s.TaskParams.Strings {
		if v == repo.DocsCorpus {
			data, v = repo.Docs(), "data.txt"
		} else if k == "data" || k == "val" {
			v, _ = filepath.Abs(v)
		}
		params[k] = v
	}
	return &triton.TrainSpec{Model: s.Model, Task: s.Task, TaskParams: params, Steps: s.Steps, Batch: s.Batch, LR: s.LR,
		WeightDecay: s.WeightDecay, Schedule: s.Schedule, Warmup: s.Warmup, Clip: s.Clip, Seed: s.Seed, LogEvery: s.LogEvery}, data
}

// checkPythonPackage returns an error unless name can be imported as a
// Python package: an identifier of ASCII letters, digits and
// underscores, not starting with a digit, not a keyword.
func checkPythonPackage(name string) error {
	ok := name != ""
	for i, r := range name {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || r == '_' || i > 0 && unicode.IsDigit(r)) {
			ok = false
		}
	}
	if !ok || pythonKeywords[name] {
		return fmt.Errorf("the output directory's name %q is the Python package's name, and Python cannot import it: use letters, digits and underscores (%s)", name, strings.ReplaceAll(strings.ToLower(name), "-", "_"))
	}
	return nil
}

var pythonKeywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields("False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield") {
		pythonKeywords[k] = true
	}
}
