//go:build unix

package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// attncFast runs attnc and wants it to fail, mentioning want, within
// seconds: reading a device until memory runs out, or blocking on a named
// pipe, fails the test instead of hanging it.
func attncFast(t *testing.T, want string, args ...string) {
	t.Helper()
	type result struct {
		code   int
		stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, _, stderr := attnc(t, args...)
		done <- result{code, stderr}
	}()
	select {
	case r := <-done:
		assert.Equal(t, exitError, r.code, "%v", args)
		assert.Contains(t, r.stderr, want, "%v", args)
	case <-time.After(10 * time.Second):
		t.Errorf("%v: still running after 10s", args)
	}
}

// TestUnboundedFilesAreRefused names, where attnc reads a file, a device
// that never ends, a symlink to it, a named pipe with no writer and a
// 40 GiB sparse file.
func TestUnboundedFilesAreRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.attn")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	link := filepath.Join(dir, "link.attn")
	require.NoError(t, os.Symlink("/dev/zero", link))
	sparse := filepath.Join(dir, "big.attn")
	require.NoError(t, os.WriteFile(sparse, nil, 0o644))
	if err := os.Truncate(sparse, 40<<30); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}

	attncFast(t, "attnc: /dev/zero: not a regular file (a device)", "check", "/dev/zero")
	attncFast(t, "attnc: "+link+": not a regular file (a device)", "check", link)
	attncFast(t, "attnc: "+fifo+": not a regular file (a named pipe)", "check", fifo)
	attncFast(t, "attnc: "+sparse+": 40 GiB (42949672960 bytes) is over the 16 MiB limit for a .attn file", "check", sparse)
	attncFast(t, "attnc: "+fifo+": not a regular file (a named pipe)", "fmt", fifo)

	// The lm task's -data, checked before the trainer is built.
	lm := writeFile(t, "lm.attn", `import "std/layers.attn"
model lm {
  input tokens: i32[B, N]
  loss cross_entropy(linear(embed(tokens, 256, 8), 256)[:, :-1], tokens[:, 1:])
  train { task: lm(len: 8), steps: 1 }
}
`)
	attncFast(t, "/dev/zero: not a regular file (a device)", "train", "-data", "/dev/zero", "-out", filepath.Join(dir, "run1"), lm)
	attncFast(t, fifo+": not a regular file (a named pipe)", "train", "-data", fifo, "-out", filepath.Join(dir, "run2"), lm)

	// A run directory whose run.json names a device as its source, or is
	// a named pipe itself.
	run := filepath.Join(dir, "run")
	require.NoError(t, os.Mkdir(run, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(run, "run.json"), []byte(`{"model": "m", "source": "/dev/zero", "task": "copy", "task_params": {"ints": {"len": 4}},
  "steps": 1, "batch": 1, "lr": 0.001, "schedule": "cosine", "clip": 1, "eval_every": 1, "eval_size": 1, "seed": 1, "log_every": 1}`), 0o644))
	attncFast(t, "/dev/zero: not a regular file (a device)", "eval", run)
	piped := filepath.Join(dir, "piped")
	require.NoError(t, os.Mkdir(piped, 0o755))
	require.NoError(t, syscall.Mkfifo(filepath.Join(piped, "run.json"), 0o644))
	attncFast(t, "run.json: not a regular file (a named pipe)", "eval", piped)
}
