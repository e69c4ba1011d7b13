//go:build unix

package train

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unboundedFiles makes the files a reader must refuse quickly, each with
// the reason its error must give: a device that never ends, a symlink
// to it, a named pipe with no writer (opening it blocks), and a 40 GiB
// sparse file (which costs no disk).
func unboundedFiles(t *testing.T, limit string) map[string][2]string {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink("/dev/zero", link))
	sparse := filepath.Join(dir, "sparse")
	require.NoError(t, os.WriteFile(sparse, nil, 0o644))
	if err := os.Truncate(sparse, 40<<30); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	return map[string][2]string{
		"/dev/zero":  {"/dev/zero", "not a regular file (a device)"},
		"symlink":    {link, "not a regular file (a device)"},
		"named pipe": {fifo, "not a regular file (a named pipe)"},
		"sparse":     {sparse, "40 GiB (42949672960 bytes) is over the " + limit},
	}
}

// failsFast wants read to fail, mentioning want, within seconds: a read
// that blocks or runs out of memory fails the test instead of hanging it.
func failsFast(t *testing.T, name string, read func() error, want string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- read() }()
	select {
	case err := <-done:
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), want, name)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("%s: still reading after 10s", name)
	}
}

func TestLMDataIsBounded(t *testing.T) {
	for name, f := range unboundedFiles(t, "1 GiB limit for the lm task's data (-data)") {
		failsFast(t, name, func() error {
			_, err := NewTask("lm", Params{Strings: map[string]string{"data": f[0]}})
			return err
		}, "task lm: "+f[0]+": "+f[1])
	}
}

func TestReadSpecIsBounded(t *testing.T) {
	for name, f := range unboundedFiles(t, "1 MiB limit for run.json") {
		dir := t.TempDir()
		spec := filepath.Join(dir, SpecFile)
		require.NoError(t, os.Symlink(f[0], spec))
		failsFast(t, name, func() error {
			_, err := ReadSpec(dir)
			return err
		}, spec+": "+f[1])
	}
}
