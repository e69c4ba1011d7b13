package train

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/attnc/attnc/runtime"
)

// A Batch is a set of named input tensors, named as the model's inputs.
type Batch map[string]*runtime.Tensor

// Size returns the batch size (the first dim of any tensor).
func (b Batch) Size() int {
	for _, t := range b {
		if len(t.Shape) > 0 {
			return t.Shape[0]
		}
	}
	return 0
}

// A Task generates examples in process, seeded: the same seed gives the
// same batches. Each task names the inputs its batches fill; a model
// trained on it must declare inputs of those names.
type Task interface {
	// Name is the task's name in a train section (reverse, sort, …).
	Name() string
	// Inputs lists the input names (and dtypes) of the batches.
	Inputs() []InputSpec
	// Batch returns n fresh examples.
	Batch(rng *rand.Rand, n int) Batch
	// Describe says what the task is, with its parameters.
	Describe() string
}

// InputSpec names one input a task fills.
type InputSpec struct {
	Name  string
	DType runtime.DType
}

// Params are a task's parameters: recall(pairs: 16, len: 512) gives
// {"pairs": 16, "len": 512}. String values are kept in Strings.
type Params struct {
	Ints    map[string]int
	Strings map[string]string
}

func (p Params) int(name string, def int) int {
	if v, ok := p.Ints[name]; ok {
		return v
	}
	return def
}

// Tokens reserved by the sequence tasks: 0 pads, 1 starts a target.
const (
	Pad = 0
	BOS = 1
)

// NewTask makes the task called name with params. Unknown names and
// parameters are errors that list what exists.
func NewTask(name string, p Params) (Task, error) {
	known := map[string][]string{
		"copy":    {"len", "vocab"},
		"reverse": {"len", "vocab"},
		"sort":    {"n", "order"},
		"recall":  {"pairs", "len", "vocab"},
		"lm":      {"len", "data", "val"},
		"pairs":   {"len", "data", "val"},
	}
	allowed, ok := known[name]
	if !ok {
		var names []string
		for n := range known {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown task %q (tasks: %s)", name, strings.Join(names, ", "))
	}
	for k := range p.Ints {
		if !contains(allowed, k) {
			return nil, fmt.Errorf("task %s has no parameter %q (parameters: %s)", name, k, strings.Join(allowed, ", "))
		}
	}
	for k, v := range p.Strings {
		if !contains(allowed, k) {
			return nil, fmt.Errorf("task %s has no parameter %q (parameters: %s)", name, k, strings.Join(allowed, ", "))
		}
		if words, ok := wordParams[k]; ok {
			if !contains(words, v) {
				return nil, fmt.Errorf("task %s: %s must be one of %s, got %q", name, k, strings.Join(words, ", "), v)
			}
			continue
		}
		if !fileParams[k] { // the others count
			return nil, fmt.Errorf("task %s: %s must be a whole number, got %q", name, k, v)
		}
	}
	for k := range p.Ints {
		if words, ok := wordParams[k]; ok {
			return nil, fmt.Errorf("task %s: %s must be one of %s, got the number %d", name, k, strings.Join(words, ", "), p.Ints[k])
		}
		if fileParams[k] {
			return nil, fmt.Errorf("task %s: %s must be a file name, got the number %d", name, k, p.Ints[k])
		}
	}
	positive := func(names ...string) error {
		for _, n := range names {
			if v, ok := p.Ints[n]; ok && v <= 0 {
				return fmt.Errorf("task %s: %s must be positive, got %d", name, n, v)
			}
		}
		return nil
	}
	if err := positive(allowed...); err != nil {
		return nil, err
	}
	switch name {
	case "copy", "reverse":
		t := &seqTask{reverse: name == "reverse", length: p.int("len", 8), vocab: p.int("vocab", 16)}
		if t.vocab < 3 {
			return nil, fmt.Errorf("task %s: vocab must be at least 3 (0 pads, 1 starts the target), got %d", name, t.vocab)
		}
		return t, nil
	case "sort":
		order := p.Strings["order"]
		if order == "" {
			order = "random"
		}
		return &sortTask{n: p.int("n", 10), order: order}, nil
	case "recall":
		t := &recallTask{pairs: p.int("pairs", 8), length: p.int("len", 64), vocab: p.int("vocab", 64)}
		if t.length < 3*t.pairs {
			return nil, fmt.Errorf("task recall: len %d is too short for %d pairs and their queries (need at least %d)", t.length, t.pairs, 3*t.pairs)
		}
		if t.vocab/2 < t.pairs {
			return nil, fmt.Errorf("task recall: vocab %d has too few keys for %d distinct pairs (need at least %d)", t.vocab, t.pairs, 2*t.pairs)
		}
		return t, nil
	case "pairs":
		return newPairsTask(p)
	case "lm":
		path := p.Strings["data"]
		if path == "" {
			return nil, errors.New("task lm needs a text file: pass --data FILE")
		}
		b, err := runtime.ReadRegularFile(path, maxLMData, "the lm task's data (-data)")
		if err != nil {
			return nil, fmt.Errorf("task lm: %w", err)
		}
		length := p.int("len", 128)
		if len(b) < length+1 {
			return nil, fmt.Errorf("task lm: %s has %d bytes; it needs more than len = %d", path, len(b), length)
		}
		t := &lmTask{data: b, length: length, path: path}
		if vpath := p.Strings["val"]; vpath != "" {
			v, err := runtime.ReadRegularFile(vpath, maxLMData, "the lm task's held-out data (-val)")
			if err != nil {
				return nil, fmt.Errorf("task lm: %w", err)
			}
			if len(v) < length+1 {
				return nil, fmt.Errorf("task lm: %s (-val) has %d bytes; it needs more than len = %d", vpath, len(v), length)
			}
			t.val = &lmTask{data: v, length: length, path: vpath}
			return t, nil
		}
		// Without -val the last tenth of the file is held out, cut at a
		// byte boundary: training never reads it.
		cut := len(b) - len(b)/10
		if len(b)/10 < length+1 || cut < length+1 {
			return nil, fmt.Errorf("task lm: %s has %d bytes, too few to hold out its last tenth in windows of len+1 = %d (it needs at least %d); pass a held-out file with -val FILE, or a smaller -task len", path, len(b), length+1, 10*(length+1))
		}
		t.data = b[:cut]
		t.val = &lmTask{data: b[cut:], length: length, path: fmt.Sprintf("the last %d bytes of %s", len(b)-cut, path)}
		t.describe = fmt.Sprintf("%s (%d bytes; the last %d held out)", path, len(b), len(b)-cut)
		return t, nil
	}
	panic("unreachable")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// seqTask is copy or reverse: src is len tokens from [2, vocab); tgt is
// BOS followed by src (copy) or src reversed.
type seqTask struct {
	reverse       bool
	length, vocab int
}

func (t *seqTask) Name() string {
	if t.reverse {
		return "reverse"
	}
	return "copy"
}

func (t *seqTask) Describe() string {
	return fmt.Sprintf("%s %d tokens from a vocabulary of %d", t.Name(), t.length, t.vocab)
}

func (t *seqTask) Inputs() []InputSpec {
	return []InputSpec{{"src", runtime.I32}, {"tgt", runtime.I32}}
}

func (t *seqTask) Batch(rng *rand.Rand, n int) Batch {
	src := runtime.New(runtime.I32, n, t.length)
	tgt := runtime.New(runtime.I32, n, t.length+1)
	for b := 0; b < n; b++ {
		row := src.I[b*t.length:][:t.length]
		for i := range row {
			row[i] = int32(2 + rng.IntN(t.vocab-2))
		}
		out := tgt.I[b*(t.length+1):][:t.length+1]
		out[0] = BOS
		for i := range row {
			if t.reverse {
				out[1+i] = row[t.length-1-i]
			} else {
				out[1+i] = row[i]
			}
		}
	}
	return Batch{"src": src, "tgt": tgt}
}

// sortTask: x holds n reals from U[0, 1); perm is the permutation that
// sorts them, x[perm[0]] ≤ x[perm[1]] ≤ …. order says how x is laid out:
// as drawn (random), already increasing (sorted: perm is the identity) or
// decreasing (reversed), for the order-matters comparison of
// docs/REPRODUCE.md.
type sortTask struct {
	n     int
	order string
}

func (t *sortTask) Name() string { return "sort" }
func (t *sortTask) Describe() string {
	if t.order != "random" {
		return fmt.Sprintf("sort %d reals from U[0, 1), given in %s order", t.n, t.order)
	}
	return fmt.Sprintf("sort %d reals from U[0, 1)", t.n)
}
func (t *sortTask) Inputs() []InputSpec {
	return []InputSpec{{"x", runtime.F32}, {"perm", runtime.I32}}
}

func (t *sortTask) Batch(rng *rand.Rand, n int) Batch {
	x := runtime.New(runtime.F32, n, t.n)
	perm := runtime.New(runtime.I32, n, t.n)
	idx := make([]int, t.n)
	for b := 0; b < n; b++ {
		row := x.F[b*t.n:][:t.n]
		for i := range row {
			row[i] = rng.Float32()
			idx[i] = i
		}
		switch t.order {
		case "sorted":
			slices.Sort(row)
		case "reversed":
			slices.Sort(row)
			slices.Reverse(row)
		}
		sort.SliceStable(idx, func(i, j int) bool { return row[idx[i]] < row[idx[j]] })
		for i, v := range idx {
			perm.I[b*t.n+i] = int32(v)
		}
	}
	return Batch{"x": x, "perm": perm}
}

// recallTask is multi-query associative recall: pairs key-value pairs
// (keys distinct, from the upper half of the vocabulary, values from the
// lower half above BOS), then, at random later positions, a key again;
// the target at a query is its value, and -1 (ignored) elsewhere.
// Positions that are neither pairs nor queries hold noise tokens from the
// value range, which never look like keys.
type recallTask struct{ pairs, length, vocab int }

func (t *recallTask) Name() string { return "recall" }
func (t *recallTask) Describe() string {
	return fmt.Sprintf("associative recall of %d key-value pairs in sequences of %d tokens (vocabulary %d)", t.pairs, t.length, t.vocab)
}
func (t *recallTask) Inputs() []InputSpec {
	return []InputSpec{{"tokens", runtime.I32}, {"targets", runtime.I32}}
}

// Ignore marks a target position that is not scored.
const Ignore = -1

func (t *recallTask) Batch(rng *rand.Rand, n int) Batch {
	tokens := runtime.New(runtime.I32, n, t.length)
	targets := runtime.New(runtime.I32, n, t.length)
	half := t.vocab / 2
	for b := 0; b < n; b++ {
		tok := tokens.I[b*t.length:][:t.length]
		tgt := targets.I[b*t.length:][:t.length]
		for i := range tgt {
			tgt[i] = Ignore
			tok[i] = int32(2 + rng.IntN(half-2))
		}
		keys := rng.Perm(t.vocab - half)[:t.pairs]
		vals := make([]int32, t.pairs)
		for i, k := range keys {
			vals[i] = int32(2 + rng.IntN(half-2))
			tok[2*i] = int32(half + k)
			tok[2*i+1] = vals[i]
		}
		// Each key is queried once, at a distinct position after the pairs.
		slots := rng.Perm(t.length - 2*t.pairs)[:t.pairs]
		for i, s := range slots {
			pos := 2*t.pairs + s
			tok[pos] = int32(half + keys[i])
			tgt[pos] = vals[i]
		}
	}
	return Batch{"tokens": tokens, "targets": targets}
}

// maxLMData bounds the lm task's text file, which the trainer holds in
// memory whole: a corpus over 1 GiB (or a device, or a named pipe named
// by mistake) is refused with an error rather than read until memory runs
// out.
const maxLMData = 1 << 30

// wordParams are the task parameters that take one of a few words.
var wordParams = map[string][]string{"order": {"random", "sorted", "reversed"}}

// fileParams are the task parameters that name files; the others count.
var fileParams = map[string]bool{"data": true, "val": true}

// A HeldOut task has data set aside for evaluation, which its Batch never
// draws from: HeldOutTask returns a task over that data. Tasks that
// generate their examples have none: their held-out set is a stream of
// its own.
type HeldOut interface {
	HeldOutTask() Task
}

// heldOut returns the task evaluation draws from: t's held-out part, or t.
func heldOut(t Task) Task {
	if h, ok := t.(HeldOut); ok {
		return h.HeldOutTask()
	}
	return t
}

// lmTask reads windows of len+1 bytes of a text file: tokens are the
// bytes (a vocabulary of 256). val, when set, is the held-out text: the
// file given with -val, or the last tenth of the data file, which data
// then excludes.
type lmTask struct {
	data     []byte
	length   int
	path     string
	describe string // the data's description, when not path
	val      *lmTask
}

func (t *lmTask) Name() string { return "lm" }
func (t *lmTask) Describe() string {
	what := t.describe
	if what == "" {
		what = fmt.Sprintf("%s (%d bytes)", t.path, len(t.data))
	}
	return fmt.Sprintf("byte-level language modelling of %s, windows of %d", what, t.length)
}

// HeldOutTask returns the task over the held-out text.
func (t *lmTask) HeldOutTask() Task {
	if t.val == nil {
		return t
	}
	return t.val
}
func (t *lmTask) Inputs() []InputSpec { return []InputSpec{{"tokens", runtime.I32}} }

func (t *lmTask) Batch(rng *rand.Rand, n int) Batch {
	tokens := runtime.New(runtime.I32, n, t.length+1)
	for b := 0; b < n; b++ {
		start := rng.IntN(len(t.data) - t.length)
		for i := 0; i <= t.length; i++ {
			tokens.I[b*(t.length+1)+i] = int32(t.data[start+i])
		}
	}
	return Batch{"tokens": tokens}
}

// A TokenRange is what values an i32 input of a task holds: tokens of a
// vocabulary, 0 ≤ token < Bound. What says where they come from, for
// an error in the user's terms ("the bytes of text.txt").
type TokenRange struct {
	Bound int
	What  string
}

// TokenRanges returns, for the inputs of t that hold tokens, the range
// of their values: a model must have room for every one (an embedding
// table with as many rows, logits with as many classes). Inputs that
// hold positions or ignored targets (-1) are not tokens of a vocabulary
// and are left out, as are tasks without such inputs.
func TokenRanges(t Task) map[string]TokenRange {
	switch t := t.(type) {
	case *seqTask:
		r := TokenRange{t.vocab, fmt.Sprintf("%s's tokens (vocab %d)", t.Name(), t.vocab)}
		return map[string]TokenRange{"src": r, "tgt": r}
	case *pairsTask:
		r := TokenRange{PairsVocab, fmt.Sprintf("the pairs' tokens (bytes as 3…258: vocab %d)", PairsVocab)}
		return map[string]TokenRange{"src": r, "tgt": r}
	case *recallTask:
		return map[string]TokenRange{
			"tokens":  {t.vocab, fmt.Sprintf("recall's tokens (vocab %d)", t.vocab)},
			"targets": {t.vocab, fmt.Sprintf("recall's targets (vocab %d)", t.vocab)},
		}
	case *lmTask:
		hi, at := -1, ""
		for _, part := range []*lmTask{t, t.val} {
			if part == nil {
				continue
			}
			for _, b := range part.data {
				if int(b) > hi {
					hi, at = int(b), part.path
				}
			}
		}
		char := ""
		if hi >= ' ' && hi < 127 {
			char = fmt.Sprintf(", %q", rune(hi))
		}
		return map[string]TokenRange{"tokens": {hi + 1, fmt.Sprintf("the bytes of %s (values up to %d%s)", at, hi, char)}}
	}
	return nil
}
