package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// noHome clears every variable attnc could place its cache by, and
// points TMPDIR at a fresh directory, which it returns.
func noHome(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	for _, v := range []string{"HOME", "XDG_CACHE_HOME", "ATTNC_CACHE"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	t.Setenv("TMPDIR", tmp)
	return tmp
}

// Without HOME and XDG_CACHE_HOME the cache is a private directory of
// the user's own, not a path anyone can guess and create first.
func TestCacheWithoutHomeIsPrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix permissions")
	}
	tmp := noHome(t)
	dir, err := trainerCache()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(dir, tmp), dir)
	assert.NotEqual(t, filepath.Join(tmp, "attnc"), filepath.Dir(dir), "the fallback is per user")
	for d := dir; d != tmp; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), d)
	}

	// A cache directory others can write to is refused, with a reason.
	require.NoError(t, os.Chmod(dir, 0o777))
	_, err = trainerCache()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "writable")
	assert.Contains(t, err.Error(), dir)
}

// fakeTrainer writes an executable script as the trainer of a cache
// entry and returns its path.
func fakeTrainer(t *testing.T, dir, body string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o700))
	bin := filepath.Join(dir, "trainer")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\n"+body+"\n"), 0o700))
	return bin
}

// A cached trainer is used only when its recorded hash matches.
func TestCachedTrainerIsVerified(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m-key")
	bin := fakeTrainer(t, dir, "exit 0")
	assert.Error(t, verifyTrainer(dir), "no recorded hash")

	b, err := os.ReadFile(bin)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, trainerHashFile), fmt.Appendf(nil, "%x  trainer\n", sha256.Sum256(b)), 0o600))
	assert.NoError(t, verifyTrainer(dir))

	fakeTrainer(t, dir, "echo planted")
	err = verifyTrainer(dir)
	require.Error(t, err, "a changed binary")
	assert.Contains(t, err.Error(), "hash")

	require.NoError(t, os.WriteFile(filepath.Join(dir, trainerHashFile), []byte("zz  trainer\n"), 0o600))
	assert.Error(t, verifyTrainer(dir), "a malformed hash file")
}

// TestPlantedTrainerIsNotRun: with HOME unset, a binary put where the
// cached trainer lives is not executed; attnc rebuilds the trainer.
func TestPlantedTrainerIsNotRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a trainer twice")
	}
	if runtime.GOOS == "windows" {
		t.Skip("a shell script as the planted binary")
	}
	// The go command needs its caches without HOME.
	env, err := exec.Command("go", "env", "GOCACHE", "GOPATH", "GOMODCACHE").Output()
	require.NoError(t, err)
	goEnv := strings.Split(strings.TrimSpace(string(env)), "\n")
	require.Len(t, goEnv, 3)
	tmp := noHome(t)
	t.Setenv("GOCACHE", goEnv[0])
	t.Setenv("GOPATH", goEnv[1])
	t.Setenv("GOMODCACHE", goEnv[2])

	model := writeFile(t, "tiny_lm.attn", `model tiny_lm {
  input src: i32[B, S]
  input tgt: i32[B, T]
  let x = embed(tgt, 64, 8)
  let logits = linear(x, 64)
  loss cross_entropy(logits[:, :-1], tgt[:, 1:])
  output pred = argmax(logits, -1)
  train { task: copy(len: 4), batch: 2, steps: 2, eval_size: 2 }
}
`)
	code, _, errOut := attnc(t, "train", "-out", filepath.Join(t.TempDir(), "a"), model)
	require.Equal(t, exitOK, code, errOut)
	bins, _ := filepath.Glob(filepath.Join(tmp, "attnc*", "trainers", "tiny_lm-*", "trainer"))
	require.Len(t, bins, 1)

	marker := filepath.Join(t.TempDir(), "planted-ran")
	require.NoError(t, os.WriteFile(bins[0], []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755))
	code, _, errOut = attnc(t, "train", "-out", filepath.Join(t.TempDir(), "b"), model)
	require.Equal(t, exitOK, code, errOut)
	assert.NoFileExists(t, marker, "the planted binary ran")
	assert.Contains(t, errOut, "rebuilding")
}
