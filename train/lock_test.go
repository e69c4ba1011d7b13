package train

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLockHelper is the child process of the lock tests: it takes the
// lock of $LOCK_HELPER_DIR, says how that went, and then waits to be
// killed when $LOCK_HELPER_HOLD is set.
func TestLockHelper(t *testing.T) {
	dir := os.Getenv("LOCK_HELPER_DIR")
	if dir == "" {
		t.Skip("a helper process for the lock tests")
	}
	l, err := LockRun(dir)
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	fmt.Println("locked")
	if os.Getenv("LOCK_HELPER_HOLD") != "" {
		time.Sleep(time.Minute)
	}
	l.Release()
}

func lockHelper(dir string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelper$", "-test.v")
	cmd.Env = append(os.Environ(), append([]string{"LOCK_HELPER_DIR=" + dir}, env...)...)
	return cmd
}

// attnc train holds the lock while it writes run.json and hands it to
// the trainer; any other process is refused.
func TestLockIsHandedDownToOneChild(t *testing.T) {
	dir := t.TempDir()
	l, err := LockRun(dir)
	require.NoError(t, err)
	defer l.Release()

	other, err := lockHelper(dir).CombinedOutput()
	require.NoError(t, err, "%s", other)
	assert.Contains(t, string(other), "refused: ")
	assert.Contains(t, string(other), "run directory in use")

	child := lockHelper(dir, l.Env())
	child.ExtraFiles = l.ExtraFiles()
	out, err := child.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "locked", "the child shares the parent's lock")

	// A descriptor that is not the lock file is not taken for it.
	f, err := os.Create(filepath.Join(t.TempDir(), "x"))
	require.NoError(t, err)
	defer f.Close()
	impostor := lockHelper(dir, LockEnv+"=fd:3")
	impostor.ExtraFiles = []*os.File{f}
	out, err = impostor.CombinedOutput()
	require.NoError(t, err, "%s", out)
	if l.file != nil { // flock: the descriptor is checked
		assert.Contains(t, string(out), "refused: ")
	}
}

// A holder killed with kill -9 leaves no lock behind.
func TestLockDiesWithItsHolder(t *testing.T) {
	dir := t.TempDir()
	holder := lockHelper(dir, "LOCK_HELPER_HOLD=1")
	stdout, err := holder.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, holder.Start())
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), "locked") {
		n, err := stdout.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("the helper did not lock: %s (%v)", got.String(), err)
		}
	}
	_, err = LockRun(dir)
	require.True(t, errors.Is(err, ErrLocked), "%v", err)
	assert.Contains(t, err.Error(), fmt.Sprintf("process %d", holder.Process.Pid))
	require.NoError(t, holder.Process.Kill())
	holder.Wait()
	if _, err := os.Stat(filepath.Join(dir, LockFile)); err != nil {
		t.Skip("this system's lock leaves no file to test with")
	}
	l, err := LockRun(dir)
	require.NoError(t, err, "the lock of a killed holder is gone")
	require.NoError(t, l.Release())
	_, err = os.Stat(filepath.Join(dir, LockFile))
	assert.True(t, os.IsNotExist(err), "Release removes the lock file")
}

// The trainer that inherits the lock writes its own pid in the lock file,
// so a second writer's error names the process that writes the run, not
// the attnc that started it (which may be gone).
func TestLockNamesTheLiveWriter(t *testing.T) {
	dir := t.TempDir()
	l, err := LockRun(dir)
	require.NoError(t, err)
	defer l.Release()
	if l.file == nil {
		t.Skip("no flock on this system")
	}
	child := lockHelper(dir, l.Env(), "LOCK_HELPER_HOLD=1")
	child.ExtraFiles = l.ExtraFiles()
	stdout, err := child.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, child.Start())
	defer func() { child.Process.Kill(); child.Wait() }()
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), "locked") {
		n, err := stdout.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("the helper did not lock: %s (%v)", got.String(), err)
		}
	}
	_, err = lockRun(dir)
	require.ErrorIs(t, err, ErrLocked)
	assert.Contains(t, err.Error(), fmt.Sprintf("is being written by process %d ", child.Process.Pid))

	// Once the child is done, the parent says it holds the lock again.
	child.Process.Kill()
	child.Wait()
	require.NoError(t, l.RecordHolder())
	_, err = lockRun(dir)
	require.ErrorIs(t, err, ErrLocked)
	assert.Contains(t, err.Error(), fmt.Sprintf("is being written by process %d ", os.Getpid()))
}
