package train

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/runtime"
)

// recallStub stands in for a compiled model on the recall task, so the
// trainer's main (run) can be tested end to end in process: its loss
// pulls two weights towards 1 (plus a data-dependent term, so the data
// stream matters), and its metric acc rises as they get there.
type recallStub struct {
	w, g   runtime.Named
	calls  int
	onCall func(n int) // called before each LossAndGradMap, with its 1-based count
}

func newRecallStub(seed uint64) (Model, error) {
	m := &recallStub{w: named("w", []int{2}, 0, 0), g: named("w", []int{2}, 0, 0)}
	m.w.T.F[0] = float32(seed%7) / 10
	return m, nil
}

func (m *recallStub) Params() []runtime.Named { return []runtime.Named{m.w} }
func (m *recallStub) Grads() []runtime.Named  { return []runtime.Named{m.g} }

func (m *recallStub) ForwardMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	tok := in["tokens"]
	s := 0.0
	for _, x := range tok.I {
		s += float64(x)
	}
	d := 0.0
	for i, w := range m.w.T.F {
		e := float64(w) - 1
		d += e * e
		m.g.T.F[i] = float32(2 * e)
	}
	loss := d + 1e-4*s/float64(len(tok.I))
	return map[string]*runtime.Tensor{
		"loss":       runtime.FromF32(nil, []float32{float32(loss)}),
		"metric:acc": runtime.FromF32(nil, []float32{float32(math.Exp(-10 * d))}),
	}, nil
}

func (m *recallStub) LossAndGradMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	m.calls++
	if m.onCall != nil {
		m.onCall(m.calls)
	}
	return m.ForwardMap(in)
}

// stubSpec is a run of recallStub.
func stubSpec(steps int) *Spec {
	return &Spec{Model: "stub", Source: "stub.attn", Task: "recall",
		TaskParams: Params{Ints: map[string]int{"pairs": 2, "len": 8, "vocab": 8}, Strings: map[string]string{}},
		Steps:      steps, Batch: 4, LR: 0.05, WeightDecay: 0.01, Schedule: "cosine", Clip: 1,
		EvalEvery: 5, EvalSize: 8, Seed: 1, LogEvery: 5}
}

func writeSpec(t *testing.T, dir string, s *Spec) {
	t.Helper()
	b, err := json.MarshalIndent(s, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, SpecFile), b, 0o644))
}

// trainer runs the trainer's main on dir with a fresh stub model.
func trainer(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(args, &out, newRecallStub)
	return out.String(), err
}

// snapshot reads every file of dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		files[e.Name()] = string(b)
	}
	return files
}

func steps(t *testing.T, dir string) []int {
	var out []int
	for _, r := range readMetrics(t, dir) {
		out = append(out, r.Step)
	}
	return out
}

func upTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// Issue 7, item 1: resuming a finished run changes nothing and says so;
// before, it rewrote the checkpoint's step to 0 and emptied summary.json.
func TestResumeOfAFinishedRunChangesNothing(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, stubSpec(12))
	_, err := trainer(t, "train", dir)
	require.NoError(t, err)
	before := snapshot(t, dir)
	for i := 0; i < 2; i++ {
		out, err := trainer(t, "train", dir, "-resume")
		require.ErrorIs(t, err, ErrAlreadyDone)
		assert.Contains(t, err.Error(), "finished: all 12 steps are done")
		assert.NotContains(t, out, "training")
		assert.Equal(t, before, snapshot(t, dir), "resume #%d leaves every file as it was", i+1)
	}
	assert.Equal(t, upTo(12), steps(t, dir))
}

// -steps on resume extends a run: the schedule is the new total's and
// run.json records it; the metrics go on from where they were.
func TestResumeWithMoreStepsExtendsTheRun(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, stubSpec(10))
	_, err := trainer(t, "train", dir)
	require.NoError(t, err)
	old, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	require.NoError(t, err)

	_, err = trainer(t, "train", dir, "-resume", "-steps", "10") // the same: nothing to do
	require.ErrorIs(t, err, ErrAlreadyDone)
	_, err = trainer(t, "train", dir, "-resume", "-steps", "8")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "-steps 8: the checkpoint is at step 10")

	out, err := trainer(t, "train", dir, "-resume", "-steps", "16")
	require.NoError(t, err, out)
	spec, err := ReadSpec(dir)
	require.NoError(t, err)
	assert.Equal(t, 16, spec.Steps, "run.json records the new total")
	assert.Equal(t, upTo(16), steps(t, dir))
	now, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(now, old), "metrics.jsonl is only appended to")
	recs := readMetrics(t, dir)
	sched := Schedule{Kind: "cosine", LR: 0.05, Steps: 16}
	assert.InDelta(t, sched.At(10), recs[10].LR, 1e-12, "step 11 follows the 16-step schedule")
	var sum map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &sum))
	assert.Equal(t, 16.0, sum["steps"])
}

// A run that stopped at its target says so on resume; a higher target
// continues it.
func TestResumeOfARunAtItsTarget(t *testing.T) {
	dir := t.TempDir()
	s := stubSpec(200)
	s.Target = 0.5
	s.LR = 0.1
	writeSpec(t, dir, s)
	out, err := trainer(t, "train", dir)
	require.NoError(t, err)
	require.Contains(t, out, "stopped early: acc reached")
	before := snapshot(t, dir)
	last := steps(t, dir)
	require.Less(t, len(last), 200)

	_, err = trainer(t, "train", dir, "-resume")
	require.ErrorIs(t, err, ErrAlreadyDone)
	assert.Contains(t, err.Error(), "already reached its target")
	assert.Equal(t, before, snapshot(t, dir))

	_, err = trainer(t, "train", dir, "-resume", "-target", "0.999")
	require.NoError(t, err)
	spec, err := ReadSpec(dir)
	require.NoError(t, err)
	assert.Equal(t, 0.999, spec.Target)
	got := steps(t, dir)
	assert.Greater(t, len(got), len(last))
	assert.Equal(t, upTo(len(got)), got)
}

// A run killed between checkpoints redoes the steps after its last
// checkpoint; metrics.jsonl is appended to, never rewritten, and keeps
// strictly increasing steps.
func TestResumeAfterAKillAppendsMetrics(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, stubSpec(20))
	_, err := trainer(t, "train", dir, "-stop-after", "12") // checkpoint at 10
	require.ErrorIs(t, err, ErrInterrupted)
	old, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	require.NoError(t, err)
	// A kill -9 can leave a torn last line; it is dropped.
	require.NoError(t, os.WriteFile(filepath.Join(dir, MetricsFile), append(append([]byte(nil), old...), `{"step":13,"lo`...), 0o644))
	_, err = trainer(t, "train", dir, "-resume")
	require.NoError(t, err)
	now, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(now, old))
	assert.Equal(t, upTo(20), steps(t, dir))

	whole := t.TempDir()
	writeSpec(t, whole, stubSpec(20))
	_, err = trainer(t, "train", whole)
	require.NoError(t, err)
	a, b := readMetrics(t, whole), readMetrics(t, dir)
	for i := range a {
		assert.Equal(t, a[i].Loss, b[i].Loss, "step %d", i+1)
	}
}

// Issue 7, item 3: a learning rate that makes the weights overflow stops
// the run at the step (1-based) that did it, naming the weight, with no
// checkpoint of non-finite weights, and without claiming a checkpoint
// is kept when there is none.
func TestDivergenceIsNeverCheckpointed(t *testing.T) {
	dir := t.TempDir()
	s := stubSpec(10)
	s.LR = 1e300
	s.EvalEvery = 1
	writeSpec(t, dir, s)
	_, err := trainer(t, "train", dir)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrNonFinite)
	msg := err.Error()
	assert.Contains(t, msg, "step 1: ")
	assert.Contains(t, msg, "weight w")
	assert.NotContains(t, msg, "json")
	assert.NotContains(t, msg, "last good checkpoint")
	assert.Contains(t, msg, "no checkpoint")
	_, err = os.Stat(filepath.Join(dir, CheckpointFile))
	assert.True(t, os.IsNotExist(err), "nothing is checkpointed")

	// Diverging after a good checkpoint keeps it, and says which.
	dir = t.TempDir()
	s = stubSpec(10)
	writeSpec(t, dir, s)
	_, err = trainer(t, "train", dir, "-stop-after", "7")
	require.ErrorIs(t, err, ErrInterrupted)
	s.LR = 1e300
	writeSpec(t, dir, s)
	_, err = trainer(t, "train", dir, "-resume")
	require.ErrorIs(t, err, ErrNonFinite)
	assert.Contains(t, err.Error(), "step 6: ")
	assert.Contains(t, err.Error(), "the last good checkpoint (step 5) is kept")
	ts, meta, err := runtime.LoadSafetensors(filepath.Join(dir, CheckpointFile))
	require.NoError(t, err)
	assert.Equal(t, "5", meta["step"])
	assert.Equal(t, "", FirstBad([]runtime.Named{{Name: "w", T: ts["w"]}}))
}

// Issue 7, item 10 (eval's part): eval and predict refuse a checkpoint
// with non-finite weights, naming the tensor.
func TestEvalRefusesNonFiniteWeights(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, stubSpec(5))
	_, err := trainer(t, "train", dir)
	require.NoError(t, err)
	out, err := trainer(t, "eval", dir)
	require.NoError(t, err)
	assert.Contains(t, out, "fresh examples")

	w := runtime.FromF32([]int{2}, []float32{1, float32(math.NaN())})
	require.NoError(t, runtime.SaveSafetensors(filepath.Join(dir, CheckpointFile), []runtime.Named{{Name: "w", T: w}}, nil))
	for _, cmd := range []string{"eval", "predict"} {
		_, err = trainer(t, cmd, dir)
		require.Error(t, err, cmd)
		assert.Contains(t, err.Error(), `weight "w" holds NaN or infinite values`, cmd)
	}
}

// Issue 7, item 8: run.json is validated like user input, with errors
// naming the file and the field.
func TestRunJSONIsValidated(t *testing.T) {
	for _, c := range []struct {
		edit func(*Spec)
		raw  string // replaces the whole file when set
		want string
	}{
		{edit: func(s *Spec) { s.Batch = 0 }, want: "batch must be between 1 and 65536, got 0"},
		{edit: func(s *Spec) { s.Batch = -3 }, want: "batch must be between 1 and 65536, got -3"},
		{edit: func(s *Spec) { s.Steps = 0 }, want: "steps must be between 1 and"},
		{edit: func(s *Spec) { s.EvalSize = 1_000_000_000_000 }, want: "eval_size must be between 0 and"},
		{edit: func(s *Spec) { s.TaskParams.Ints["len"] = 1_000_000_000 }, want: "task_params: len must be between 1 and"},
		{edit: func(s *Spec) { s.Schedule = "cosinus" }, want: `schedule must be "cosine" or "constant", got "cosinus"`},
		{edit: func(s *Spec) { s.LR = -1 }, want: "lr must be a positive number"},
		{edit: func(s *Spec) { s.Warmup = -1 }, want: "warmup must be between 0 and"},
		{edit: func(s *Spec) { s.EvalEvery = -1 }, want: "eval_every must be between 0 and"},
		{edit: func(s *Spec) { s.Task = "sortt" }, want: `unknown task "sortt"`},
		{edit: func(s *Spec) { s.Model = "" }, want: "model must name the model"},
		{raw: `{"model": "stub", "bacth": 4}`, want: `unknown field "bacth"`},
		{raw: `{"model": "stub", "batch": 1e12}`, want: "batch"},
		{raw: `[]`, want: "cannot unmarshal"},
	} {
		dir := t.TempDir()
		s := stubSpec(10)
		if c.edit != nil {
			c.edit(s)
			writeSpec(t, dir, s)
		} else {
			require.NoError(t, os.WriteFile(filepath.Join(dir, SpecFile), []byte(c.raw), 0o644))
		}
		for _, cmd := range []string{"train", "eval"} {
			_, err := trainer(t, cmd, dir)
			require.Error(t, err, c.want)
			assert.Contains(t, err.Error(), filepath.Join(dir, SpecFile)+": ", c.want)
			assert.Contains(t, err.Error(), c.want)
		}
	}
	// The examples of one batch are bounded together, not only each
	// setting alone.
	dir := t.TempDir()
	s := stubSpec(10)
	s.Batch = 65536
	s.TaskParams.Ints["len"] = 1 << 20
	writeSpec(t, dir, s)
	_, err := trainer(t, "train", dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "batch of 65536 examples")
}

// Item 8 for the checkpoint: its metadata is checked before a resume
// trusts it.
func TestCheckpointMetadataIsValidated(t *testing.T) {
	for _, c := range []struct {
		edit map[string]string
		want string
	}{
		{map[string]string{"step": "-5", "adamw.t": "-5"}, "step -5 is negative"},
		{map[string]string{"step": "x"}, "step \"x\" is not a number"},
		{map[string]string{"step": "99", "adamw.t": "99"}, "step 99 is beyond the run's 10 steps"},
		{map[string]string{"adamw.t": "3"}, "optimizer step count 3 differs from the step 5"},
		{map[string]string{"rng": "AAAA"}, "RNG state"},
		{map[string]string{"eval": "{"}, "eval"},
	} {
		dir := t.TempDir()
		writeSpec(t, dir, stubSpec(10))
		_, err := trainer(t, "train", dir, "-stop-after", "7")
		require.ErrorIs(t, err, ErrInterrupted)
		path := filepath.Join(dir, CheckpointFile)
		ts, meta, err := runtime.LoadSafetensors(path)
		require.NoError(t, err)
		for k, v := range c.edit {
			meta[k] = v
		}
		var named []runtime.Named
		for _, name := range []string{"w", "adamw.m/w", "adamw.v/w"} {
			named = append(named, runtime.Named{Name: name, T: ts[name]})
		}
		require.NoError(t, runtime.SaveSafetensors(path, named, meta))
		_, err = trainer(t, "train", dir, "-resume")
		require.Error(t, err, c.want)
		assert.Contains(t, err.Error(), path, c.want)
		assert.Contains(t, err.Error(), c.want)
	}
}

// Issue 7, item 4: a second writer is refused while a run directory is
// locked, and the lock goes with its holder.
func TestASecondWriterIsRefused(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, stubSpec(10))
	lock, err := LockRun(dir)
	require.NoError(t, err)
	for _, args := range [][]string{{"train", dir}, {"train", dir, "-resume"}} {
		_, err = trainer(t, args...)
		require.ErrorIs(t, err, ErrLocked)
		assert.Contains(t, err.Error(), "is being written by process "+strconv.Itoa(os.Getpid()))
	}
	_, err = os.Stat(filepath.Join(dir, MetricsFile))
	assert.True(t, os.IsNotExist(err), "the refused writer wrote nothing")
	require.NoError(t, lock.Release())
	require.NoError(t, lock.Release(), "twice is harmless")
	_, err = trainer(t, "train", dir)
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, LockFile))
	assert.True(t, os.IsNotExist(err), "the trainer leaves no lock behind")
}

// The portable lock (for systems without flock) refuses a second writer
// too, and takes over a lock file left by a process that is gone.
func TestPortableLock(t *testing.T) {
	dir := t.TempDir()
	l, err := lockExclusive(dir)
	require.NoError(t, err)
	_, err = lockExclusive(dir)
	require.ErrorIs(t, err, ErrLocked)
	assert.Contains(t, err.Error(), "delete "+filepath.Join(dir, LockFile))
	require.NoError(t, l.Release())
	l, err = lockExclusive(dir)
	require.NoError(t, err)
	// A child given the token shares the lock, and leaves it to its parent.
	t.Setenv(LockEnv, strings.TrimPrefix(l.Env(), LockEnv+"="))
	child, err := lockExclusive(dir)
	require.NoError(t, err, "the parent's token takes the lock over")
	require.NoError(t, child.Release())
	_, err = os.Stat(filepath.Join(dir, LockFile))
	require.NoError(t, err, "the child does not remove its parent's lock")
	t.Setenv(LockEnv, "token:someone-else")
	_, err = lockExclusive(dir)
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, l.Release())

	if processGone(os.Getpid()) {
		t.Fatal("this process is not gone")
	}
	if !processGone(1 << 30) {
		t.Skip("this system cannot tell a dead process")
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, LockFile), []byte(strconv.Itoa(1<<30)+" tok\n"), 0o644))
	l, err = lockExclusive(dir)
	require.NoError(t, err, "a dead holder's lock is stale")
	require.NoError(t, l.Release())
}

// Issue 7, item 4: SIGINT or SIGTERM stops the trainer after the step it
// is in, with a checkpoint, summary.json and the command that resumes.
func TestASignalCheckpointsAndSaysHowToResume(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, stubSpec(1000))
	self, err := os.FindProcess(os.Getpid())
	require.NoError(t, err)
	var out bytes.Buffer
	err = run([]string{"train", dir}, &out, func(seed uint64) (Model, error) {
		m, _ := newRecallStub(seed)
		m.(*recallStub).onCall = func(n int) {
			if n == 7 {
				require.NoError(t, self.Signal(os.Interrupt))
			}
		}
		return m, nil
	})
	var stopped *StoppedError
	require.ErrorAs(t, err, &stopped)
	assert.Contains(t, out.String(), "attnc train -resume "+dir)
	n := len(steps(t, dir))
	assert.GreaterOrEqual(t, n, 7)
	assert.Less(t, n, 1000)
	_, meta, err := runtime.LoadSafetensors(filepath.Join(dir, CheckpointFile))
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(n), meta["step"], "the checkpoint is at the last recorded step")
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	require.NoError(t, err)
	var sum map[string]any
	require.NoError(t, json.Unmarshal(b, &sum))
	assert.Equal(t, float64(n), sum["steps"])
	assert.Contains(t, sum["stopped"], "interrupt")

	_, err = trainer(t, "train", dir, "-resume", "-steps", strconv.Itoa(n+3))
	require.NoError(t, err)
	assert.Equal(t, upTo(n+3), steps(t, dir))
}

// A run killed before its first checkpoint has nothing to lose: -resume
// starts it over with the settings in run.json (taking exactly the steps
// it would have), instead of failing on the missing file. A run whose
// summary.json shows it got further is refused: its checkpoint was
// moved or deleted.
func TestResumeBeforeTheFirstCheckpointStartsOver(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, stubSpec(10)) // checkpoints at 5 and 10
	_, err := trainer(t, "train", dir, "-stop-after", "3")
	require.ErrorIs(t, err, ErrInterrupted)
	_, err = os.Stat(filepath.Join(dir, CheckpointFile))
	require.True(t, os.IsNotExist(err), "no checkpoint before step 5")
	out, err := trainer(t, "train", dir, "-resume")
	require.NoError(t, err)
	assert.Contains(t, out, dir+" has no checkpoint yet")
	assert.Equal(t, upTo(10), steps(t, dir))

	whole := t.TempDir()
	writeSpec(t, whole, stubSpec(10))
	_, err = trainer(t, "train", whole)
	require.NoError(t, err)
	a, b := readMetrics(t, whole), readMetrics(t, dir)
	for i := range a {
		assert.Equal(t, a[i].Loss, b[i].Loss, "step %d", i+1)
	}

	require.NoError(t, os.Remove(filepath.Join(dir, CheckpointFile)))
	_, err = trainer(t, "train", dir, "-resume")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "summary.json")
	assert.Contains(t, err.Error(), "moved or deleted")
	assert.Equal(t, upTo(10), steps(t, dir), "the refused resume changed nothing")
}

// AdamW's second moments are running means of squares: a negative one,
// which only an edited or damaged file holds, is refused when the
// checkpoint is loaded, naming the tensor, rather than surfacing later
// as a non-finite step blamed on the learning rate.
func TestNegativeSecondMomentIsRefused(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, stubSpec(10))
	_, err := trainer(t, "train", dir, "-stop-after", "7")
	require.ErrorIs(t, err, ErrInterrupted)
	path := filepath.Join(dir, CheckpointFile)
	ts, meta, err := runtime.LoadSafetensors(path)
	require.NoError(t, err)
	ts["adamw.v/w"].F[1] = -0.5
	var named []runtime.Named
	for _, name := range []string{"w", "adamw.m/w", "adamw.v/w"} {
		named = append(named, runtime.Named{Name: name, T: ts[name]})
	}
	require.NoError(t, runtime.SaveSafetensors(path, named, meta))
	_, err = trainer(t, "train", dir, "-resume")
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), `"adamw.v/w"`)
	assert.Contains(t, err.Error(), "negative")
	assert.NotContains(t, err.Error(), "learning rate")
}
