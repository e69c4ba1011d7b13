package train

import (
	"fmt"
	"math"

	"github.com/attnc/attnc/runtime"
)

// MainMetric names the evaluation metric a task is judged by (and that
// target stops on): exact for sort, token_acc for copy and reverse, acc
// for recall, none for lm.
func MainMetric(t Task) string {
	switch t.(type) {
	case *sortTask:
		return "exact"
	case *seqTask:
		return "token_acc"
	case *recallTask:
		return "acc"
	}
	return ""
}

// PlotMetric names the held-out metric a run's loss.png draws beside the
// loss, for the task named task: its main metric, or bits per byte for
// lm (which has no main metric to stop on).
func PlotMetric(task string) string {
	switch task {
	case "sort":
		return "exact"
	case "copy", "reverse":
		return "token_acc"
	case "recall":
		return "acc"
	case "lm":
		return "bits_per_byte"
	}
	return ""
}

// Evaluate measures m on held-out batches. Every task reports the
// teacher-forced loss and the model's own metrics, averaged over
// examples. Sort and copy/reverse also decode greedily, one step at a
// time feeding the model its own predictions, and report exact (whole
// permutation) and step_acc, or token_acc and seq_acc; lm reports
// perplexity and bits per byte.
func Evaluate(m Model, task Task, batches []Batch) (map[string]float64, error) {
	return evaluate(m, task, batches, nil)
}

// evaluate is Evaluate, calling progress (when set) with the examples
// done and in all before each batch and after the last.
func evaluate(m Model, task Task, batches []Batch, progress func(done, total int)) (map[string]float64, error) {
	sums := map[string]float64{}
	n, total := 0, 0
	for _, b := range batches {
		total += b.Size()
	}
	for _, b := range batches {
		if progress != nil {
			progress(n, total)
		}
		size := b.Size()
		out, err := m.ForwardMap(b)
		if err != nil {
			return nil, err
		}
		sums["loss"] += float64(scalar(out["loss"])) * float64(size)
		for k, v := range metricsOf(out) {
			sums[k] += v * float64(size)
		}
		var dec map[string]float64
		switch t := task.(type) {
		case *sortTask:
			dec, _, err = decodeSort(m, t, b, out)
		case *seqTask:
			dec, _, err = decodeSeq(m, t, b, out)
		}
		if err != nil {
			return nil, err
		}
		for k, v := range dec {
			sums[k] += v * float64(size)
		}
		n += size
	}
	if progress != nil {
		progress(n, total)
	}
	res := map[string]float64{}
	for k, v := range sums {
		res[k] = v / float64(n)
	}
	if _, ok := task.(*lmTask); ok {
		res["perplexity"] = math.Exp(res["loss"])
		res["bits_per_byte"] = res["loss"] / math.Ln2
	}
	return res, nil
}

func output(out map[string]*runtime.Tensor, name, task, how string) (*runtime.Tensor, error) {
	t, ok := out["output:"+name]
	if !ok || t.DType != runtime.I32 {
		return nil, fmt.Errorf("the %s task decodes greedily and needs an i32 output %s: add `output %s = %s` to the model", task, name, name, how)
	}
	return t, nil
}

// decodeSort points greedily: at step t the decoder reads the elements it
// chose at steps < t, and the perm input lists them first (then the
// others in order), so the model's mask of visited positions is right for
// every step up to t. tf, when set, is the model's outputs on b itself
// (teacher-forced: perm the true permutation). The decoder is causal over
// its steps, so up to an example's first wrong pointer greedy decoding
// reads what teacher forcing read and points where it pointed: those
// pointers come from tf, and only the examples with a wrong one are run
// on, from the step after it (as decodeSeq does).
func decodeSort(m Model, t *sortTask, b Batch, tf map[string]*runtime.Tensor) (map[string]float64, [][]int32, error) {
	truth := b["perm"]
	size, n := truth.Shape[0], truth.Shape[1]
	chosen := make([][]int32, size)
	if tf != nil {
		known, err := output(tf, "pointers", "sort", "argmax(logp, -1)")
		if err != nil {
			return nil, nil, err
		}
		for e := 0; e < size; e++ {
			for step := 0; step < n; step++ {
				c, err := pointer(known.I[e*n+step], chosen[e], n)
				if err != nil {
					return nil, nil, err
				}
				chosen[e] = append(chosen[e], c)
				if c != truth.I[e*n+step] {
					break
				}
			}
		}
	}
	for step := 0; step < n; step++ {
		var active []int
		for e := 0; e < size; e++ {
			if len(chosen[e]) == step {
				active = append(active, e)
			}
		}
		if len(active) == 0 {
			continue
		}
		perm := runtime.New(runtime.I32, len(active), n)
		for i, e := range active {
			row := perm.I[i*n:][:n]
			used := make([]bool, n)
			for j, c := range chosen[e] {
				row[j] = c
				used[c] = true
			}
			j := len(chosen[e])
			for k := 0; k < n; k++ {
				if !used[k] {
					row[j] = int32(k)
					j++
				}
			}
		}
		x := b["x"]
		if len(active) < size {
			x = rowsOf(x, active)
		}
		out, err := m.ForwardMap(Batch{"x": x, "perm": perm})
		if err != nil {
			return nil, nil, err
		}
		ptr, err := output(out, "pointers", "sort", "argmax(logp, -1)")
		if err != nil {
			return nil, nil, err
		}
		for i, e := range active {
			c, err := pointer(ptr.I[i*n+step], chosen[e], n)
			if err != nil {
				return nil, nil, err
			}
			chosen[e] = append(chosen[e], c)
		}
	}
	exact, steps := 0.0, 0.0
	for e := 0; e < size; e++ {
		all := true
		for i := 0; i < n; i++ {
			if chosen[e][i] == truth.I[e*n+i] {
				steps++
			} else {
				all = false
			}
		}
		if all {
			exact++
		}
	}
	return map[string]float64{"exact": exact / float64(size), "step_acc": steps / float64(size*n)}, chosen, nil
}

// pointer checks the position c a model pointed to next, after chosen:
// one already chosen (which a mask should prevent; a model without one
// may repeat) counts as wrong and is replaced by the first unchosen.
func pointer(c int32, chosen []int32, n int) (int32, error) {
	if c < 0 || int(c) >= n {
		return 0, fmt.Errorf("output pointers holds %d, outside [0, %d)", c, n)
	}
	for _, prev := range chosen {
		if prev == c {
			return firstUnused(chosen, n), nil
		}
	}
	return c, nil
}

func firstUnused(chosen []int32, n int) int32 {
	used := make([]bool, n)
	for _, c := range chosen {
		used[c] = true
	}
	for j := range used {
		if !used[j] {
			return int32(j)
		}
	}
	return 0
}

// decodeSeq generates the target greedily: position t of tgt is the
// model's prediction at position t-1. tf, when set, is the model's
// outputs on b itself (teacher-forced: the true target as input): a
// decoder is causal (teacher forcing trains it so), so greedy decoding
// feeds an example the same prefix as teacher forcing up to its first
// wrong token and predicts the same tokens there. Those are taken from
// tf, and only the examples with a wrong token are run on, from the
// position after it: once a model is mostly right, decoding costs little
// more than the one forward pass tf came from. The tokens are those of
// decoding every position of every example.
func decodeSeq(m Model, t *seqTask, b Batch, tf map[string]*runtime.Tensor) (map[string]float64, [][]int32, error) {
	truth := b["tgt"]
	size, l := truth.Shape[0], truth.Shape[1]
	tgt := runtime.New(runtime.I32, size, l)
	// next[e] is the first position of example e whose token is not known.
	next := make([]int, size)
	var known *runtime.Tensor
	if tf != nil {
		var err error
		if known, err = output(tf, "pred", t.Name(), "argmax(logits, -1)"); err != nil {
			return nil, nil, err
		}
	}
	for e := 0; e < size; e++ {
		tgt.I[e*l] = BOS
		next[e] = 1
		if known == nil {
			continue
		}
		for next[e] < l {
			p := next[e]
			tgt.I[e*l+p] = known.I[e*l+p-1]
			next[e]++
			if tgt.I[e*l+p] != truth.I[e*l+p] {
				break // the prefix differs from here: greedy decoding takes over
			}
		}
	}
	for pos := 1; pos < l; pos++ {
		var active []int
		for e := 0; e < size; e++ {
			if next[e] <= pos {
				active = append(active, e)
			}
		}
		if len(active) == 0 {
			continue
		}
		in := Batch{"src": b["src"], "tgt": tgt}
		if len(active) < size {
			in = Batch{"src": rowsOf(b["src"], active), "tgt": rowsOf(tgt, active)}
		}
		out, err := m.ForwardMap(in)
		if err != nil {
			return nil, nil, err
		}
		pred, err := output(out, "pred", t.Name(), "argmax(logits, -1)")
		if err != nil {
			return nil, nil, err
		}
		for i, e := range active {
			tgt.I[e*l+pos] = pred.I[i*l+pos-1]
			next[e] = pos + 1
		}
	}
	tokens, seqs := 0.0, 0.0
	for e := 0; e < size; e++ {
		all := true
		for pos := 1; pos < l; pos++ {
			if tgt.I[e*l+pos] == truth.I[e*l+pos] {
				tokens++
			} else {
				all = false
			}
		}
		if all {
			seqs++
		}
	}
	rows := make([][]int32, size)
	for e := range rows {
		rows[e] = append([]int32(nil), tgt.I[e*l+1:(e+1)*l]...)
	}
	return map[string]float64{"token_acc": tokens / float64(size*(l-1)), "seq_acc": seqs / float64(size)}, rows, nil
}

// rowsOf returns a tensor of the rows of x (along its first axis) listed
// in rows, in that order.
func rowsOf(x *runtime.Tensor, rows []int) *runtime.Tensor {
	shape := append([]int{len(rows)}, x.Shape[1:]...)
	out := runtime.New(x.DType, shape...)
	w := 1
	for _, d := range x.Shape[1:] {
		w *= d
	}
	for i, r := range rows {
		switch x.DType {
		case runtime.I32:
			copy(out.I[i*w:(i+1)*w], x.I[r*w:(r+1)*w])
		case runtime.F32:
			copy(out.F[i*w:(i+1)*w], x.F[r*w:(r+1)*w])
		case runtime.Bool:
			copy(out.B[i*w:(i+1)*w], x.B[r*w:(r+1)*w])
		}
	}
	return out
}
