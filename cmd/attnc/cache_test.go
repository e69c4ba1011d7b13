package main

import (
	"crypto/sha256"
	"errors"
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

// Without HOME (nor GOCACHE, GOPATH, XDG_CACHE_HOME), go has no build
// cache and refuses to build; attnc gives it directories inside its own
// private cache, and leaves a variable the user set alone.
func TestGoBuildEnvWithoutHome(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go on PATH")
	}
	noHome(t)
	for _, v := range []string{"GOCACHE", "GOPATH", "GOMODCACHE", "GOENV"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	private := t.TempDir()
	goEnv := func() []string {
		cmd := exec.Command(goBin, "env", "GOCACHE", "GOPATH", "GOMODCACHE")
		cmd.Env = goBuildEnv(private)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	got := goEnv()
	require.Len(t, got, 3)
	for i, name := range []string{"GOCACHE", "GOPATH", "GOMODCACHE"} {
		assert.True(t, strings.HasPrefix(got[i], private+string(filepath.Separator)), "%s=%q is in attnc's cache", name, got[i])
	}

	mine := filepath.Join(t.TempDir(), "mine")
	t.Setenv("GOCACHE", mine)
	assert.Equal(t, mine, goEnv()[0], "the user's GOCACHE is kept")
}

// A go build that fails for a reason outside the generated code (here
// GOCACHE=off) says what failed and shows go's output, without blaming
// attnc; a compile error in the generated code is attnc's bug.
func TestGoBuildFailureIsNotBlamedOnAttnc(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go on PATH")
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n\ngo 1.26\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o600))
	t.Setenv("GOCACHE", "off")
	err = goBuild(goBin, dir, t.TempDir())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "bug in attnc")
	assert.Contains(t, err.Error(), "GOCACHE=off", "go's own words")
	assert.Contains(t, err.Error(), "go build")

	compile := buildFailure(errors.New("exit status 1"), []byte("# attnctrain/model\nmodel/model.go:12:3: declared and not used: sz\n"))
	assert.Contains(t, compile.Error(), "bug in attnc")
	assert.Contains(t, compile.Error(), "model/model.go:12:3: declared and not used: sz")
	for _, out := range []string{
		"go: GOCACHE is not defined and neither $XDG_CACHE_HOME nor $HOME are defined\n",
		"go: errors parsing go.mod:\n/tmp/x/go.mod:3: unknown directive: foo\n",
		"# runtime\n/usr/lib/go/src/runtime/proc.go:10:2: something broken in GOROOT\n",
	} {
		env := buildFailure(errors.New("exit status 1"), []byte(out))
		assert.NotContains(t, env.Error(), "bug in attnc", out)
		assert.Contains(t, env.Error(), strings.TrimSpace(out))
	}
}

// TestTrainerKeyCoversGeneratedCode: the cache key changes with any file
// the trainer is built from, so a trainer rendered by an older attnc
// (same IR and runtime, another renderer) is never reused.
func TestTrainerKeyCoversGeneratedCode(t *testing.T) {
	files := map[string][]byte{"main.go": []byte("package main"), "model/model.go": []byte("package model // v1")}
	k1 := trainerKey(files, nil)
	files["model/model.go"] = []byte("package model // v2")
	if k2 := trainerKey(files, nil); k1 == k2 {
		t.Fatalf("changing the generated model kept the key %s", k1)
	}
	files["model/model.go"] = []byte("package model // v1")
	if k3 := trainerKey(files, nil); k3 != k1 {
		t.Fatalf("the same files gave keys %s and %s", k1, k3)
	}
}
