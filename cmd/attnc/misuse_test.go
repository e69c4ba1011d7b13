package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// predict's -n is checked like every flag: a value out of range is a
// usage error (exit 2), before the run directory is read.
func TestPredictCountIsAUsageError(t *testing.T) {
	for _, n := range []string{"-1", "0", "65537"} {
		code, _, errOut := attnc(t, "predict", "-n", n, filepath.Join(t.TempDir(), "run"))
		assert.Equal(t, exitUsage, code, "-n %s: %s", n, errOut)
		assert.Contains(t, errOut, "-n must be between 1 and 65536, got "+n)
		assert.Contains(t, errOut, "attnc help predict")
	}
}

// build -o naming a file (or a path through one) says so, instead of
// failing on the go.mod it looks for inside.
func TestBuildIntoAFile(t *testing.T) {
	mod := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/u\n"), 0o644))
	afile := filepath.Join(mod, "afile")
	require.NoError(t, os.WriteFile(afile, []byte("mine"), 0o644))
	for _, out := range []string{afile, filepath.Join(afile, "sub")} {
		code, _, errOut := attnc(t, "build", "-o", out, "../../stdlib/seq2seq.attn")
		assert.Equal(t, exitError, code)
		assert.Contains(t, errOut, afile+" is a file, not a directory")
		assert.NotContains(t, errOut, "go.mod")
	}
	b, _ := os.ReadFile(afile)
	assert.Equal(t, "mine", string(b))
}

// fmt -w on a symlink rewrites the file it points to, keeping its mode,
// and leaves the link a link.
func TestFmtWritesThroughASymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real", "m.attn")
	require.NoError(t, os.MkdirAll(filepath.Dir(target), 0o755))
	require.NoError(t, os.WriteFile(target, []byte("mask  causal=k<=q\n"), 0o640))
	require.NoError(t, os.Chmod(target, 0o640))
	link := filepath.Join(dir, "link.attn")
	if err := os.Symlink(filepath.Join("real", "m.attn"), link); err != nil {
		t.Skipf("no symlinks here: %v", err)
	}
	code, _, errOut := attnc(t, "fmt", "-w", link)
	require.Equal(t, exitOK, code, errOut)
	fi, err := os.Lstat(link)
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&os.ModeSymlink, "the link is still a link")
	b, _ := os.ReadFile(target)
	assert.Equal(t, "mask causal = k <= q\n", string(b))
	fi, err = os.Stat(target)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	left, _ := filepath.Glob(filepath.Join(dir, "*", ".*tmp"))
	assert.Empty(t, left)
}
