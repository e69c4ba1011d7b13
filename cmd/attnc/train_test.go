package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/train"
)

// handRun writes a run directory with run.json only, as attnc train
// would for std/seq2seq.attn, edited by edit.
func handRun(t *testing.T, edit func(*train.Spec)) string {
	t.Helper()
	dir := t.TempDir()
	s := &train.Spec{Model: "seq2seq", Source: "std/seq2seq.attn", Task: "reverse",
		TaskParams: train.Params{Ints: map[string]int{"len": 8}, Strings: map[string]string{}},
		Steps:      40, Batch: 32, LR: 1e-3, WeightDecay: 0.01, Schedule: "cosine", Clip: 1,
		EvalEvery: 10, EvalSize: 64, Seed: 1, LogEvery: 50}
	if edit != nil {
		edit(s)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, train.SpecFile), b, 0o644))
	return dir
}

// Issue 7, item 1: flags given with -resume are never silently ignored:
// those that would change which steps the run takes are refused, naming
// the flag and the run's value, and nothing is written.
func TestResumeRefusesFlagsThatChangeTheRun(t *testing.T) {
	dir := handRun(t, nil)
	before, err := os.ReadFile(filepath.Join(dir, train.SpecFile))
	require.NoError(t, err)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-lr", "0.5"}, "-lr 0.5 (the run has lr 0.001)"},
		{[]string{"-batch", "8"}, "-batch 8 (the run has batch 32)"},
		{[]string{"-seed", "7"}, "-seed 7 (the run has seed 1)"},
		{[]string{"-task", "len=12"}, "-task len=12 (the run has task reverse with len 8)"},
		{[]string{"-config", "d=64"}, "-config d=64 (the run has config d the source's value)"},
		{[]string{"-data", "x.txt"}, "-data x.txt (the run has data none)"},
		{[]string{"-model", "other"}, "-model other (the run has seq2seq)"},
		{[]string{"-out", t.TempDir()}, "(the run has its directory " + dir + ")"},
		{[]string{"../../stdlib/partial_lm.attn"}, "partial_lm.attn (the run has std/seq2seq.attn)"},
	} {
		args := append([]string{"train", "-resume", dir}, c.args...)
		code, _, errOut := attnc(t, args...)
		assert.Equal(t, exitUsage, code, "%v: %s", c.args, errOut)
		assert.Contains(t, errOut, c.want, c.args)
		assert.Contains(t, errOut, "start a new run with -out NEW_DIR", c.args)
	}
	after, err := os.ReadFile(filepath.Join(dir, train.SpecFile))
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after))
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "nothing but run.json")
}

// Issue 7, item 8: a flag given as 0 or less is checked, not taken for
// "not given"; a hand-edited run.json is checked by eval and -resume.
func TestTrainSettingsAreValidated(t *testing.T) {
	t.Setenv("ATTNC_CACHE", t.TempDir())
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-steps", "0"}, "steps must be between 1 and"},
		{[]string{"-batch", "-3"}, "batch must be between 1 and 65536, got -3"},
		{[]string{"-batch", "0"}, "batch must be between 1 and 65536, got 0"},
		{[]string{"-lr", "-1"}, "lr must be a positive number"},
		{[]string{"-task", "len=1000000000"}, "task_params: len must be between 1 and"},
		{[]string{"-batch", "60000", "-task", "len=100000"}, "a batch of 60000 examples"},
	} {
		out := filepath.Join(t.TempDir(), "run")
		args := append(append([]string{"train", "-out", out}, c.args...), "../../stdlib/seq2seq.attn")
		code, _, errOut := attnc(t, args...)
		assert.Equal(t, exitError, code, "%v: %s", c.args, errOut)
		assert.Contains(t, errOut, c.want, c.args)
		_, err := os.Stat(out)
		assert.True(t, os.IsNotExist(err), "%v: no run directory is made", c.args)
	}
	for _, edit := range []func(*train.Spec){
		func(s *train.Spec) { s.Batch = 0 },
		func(s *train.Spec) { s.Schedule = "linear" },
	} {
		dir := handRun(t, edit)
		for _, args := range [][]string{{"eval", dir}, {"predict", dir}, {"train", "-resume", dir}} {
			code, _, errOut := attnc(t, args...)
			assert.Equal(t, exitError, code, "%v: %s", args, errOut)
			assert.Contains(t, errOut, filepath.Join(dir, train.SpecFile)+": ", args)
		}
	}
}

// Issue 7, items 1 and 4, through the real trainer: SIGTERM sent to attnc
// reaches the trainer, which checkpoints, writes summary.json and says
// how to resume; meanwhile a second writer is refused; -steps extends the
// stopped run; and a -resume of the finished run changes no file.
func TestTrainSignalsLockAndResumeThroughTheTrainer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a trainer and trains")
	}
	t.Setenv("ATTNC_CACHE", t.TempDir())
	dir := filepath.Join(t.TempDir(), "run")
	type result struct {
		code        int
		out, errOut string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := attnc(t, "train", "-steps", "100000", "-eval-every", "4", "-out", dir, "../../stdlib/partial_lm.attn")
		done <- result{code, out, errOut}
	}()
	// Wait for a few steps.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, train.MetricsFile))
		if strings.Count(string(b), "\n") >= 5 {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("the run ended early: %d\n%s\n%s", r.code, r.out, r.errOut)
		case <-time.After(100 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "no steps in 5 minutes")
	}

	code, _, errOut := attnc(t, "train", "-resume", dir)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "is being written by process")
	code, _, errOut = attnc(t, "train", "-out", dir, "../../stdlib/partial_lm.attn")
	assert.Equal(t, exitError, code)
	assert.True(t, strings.Contains(errOut, "is being written by process") || strings.Contains(errOut, "already holds a run"), errOut)

	self, err := os.FindProcess(os.Getpid())
	require.NoError(t, err)
	require.NoError(t, self.Signal(syscall.SIGTERM))
	var r result
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("attnc did not stop on SIGTERM")
	}
	assert.Equal(t, exitInterrupted, r.code, r.errOut)
	assert.Contains(t, r.out, "attnc train -resume "+dir)
	// The trainer is gone: its lock is free.
	l, err := train.LockRun(dir)
	require.NoError(t, err, "the trainer stopped with attnc")
	require.NoError(t, l.Release())

	n := len(readLosses(t, dir))
	var sum map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &sum))
	assert.Equal(t, float64(n), sum["steps"])
	assert.Contains(t, sum["stopped"], "interrupted by terminated")

	code, out, errOut := attnc(t, "train", "-resume", dir, "-steps", strconv.Itoa(n+2))
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "resuming "+dir+" at step "+strconv.Itoa(n))
	assert.Len(t, readLosses(t, dir), n+2)

	before := snapshotDir(t, dir)
	for _, args := range [][]string{{"train", "-resume", dir}, {"train", "-resume", dir, "-target", "0.1"}} {
		code, out, errOut = attnc(t, args...)
		require.Equal(t, exitOK, code, errOut)
		assert.Contains(t, out, "is finished: all "+strconv.Itoa(n+2)+" steps are done; nothing changed")
		assert.Equal(t, before, snapshotDir(t, dir), "%v changes no file", args)
	}
}

func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() { // source/: its files, by path
			for name, text := range snapshotDir(t, filepath.Join(dir, e.Name())) {
				files[e.Name()+"/"+name] = text
			}
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		files[e.Name()] = string(b)
	}
	return files
}
