//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/attnc/attnc/runtime"
	"syscall"
)

// lockRun locks dir with flock(2) on DIR/train.lock. The kernel drops
// the lock when the last descriptor of the open file closes, so the lock
// cannot outlive its holder: a file left behind by a killed holder is no
// lock at all. Release removes the file.
func lockRun(dir string) (*RunLock, error) {
	path := filepath.Join(dir, LockFile)
	if f := inheritedLock(path); f != nil {
		l := &RunLock{dir: dir, file: f}
		l.RecordHolder() // a failure only leaves the parent's pid
		return l, nil
	}
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("locking %s: %w", dir, err)
		}
		for {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		if err != nil {
			holder, _ := runtime.ReadRegularFile(path, maxLockFile, LockFile)
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, lockedError(dir, holder, "")
			}
			return nil, fmt.Errorf("locking %s: %w", dir, err)
		}
		// The holder before us removes the file as it lets go: if it did
		// between our open and our flock, we hold a lock on a file no one
		// else can find, and must lock the one at path instead.
		got, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 != nil || err2 != nil || !os.SameFile(got, now) {
			f.Close()
			continue
		}
		l := &RunLock{dir: dir, file: f, owned: true}
		l.RecordHolder() // say who holds it, for the error a second writer gets
		return l, nil
	}
}

// inheritedLock returns the lock file the parent handed down (LockEnv =
// "fd:N"), when N is open on this very path; flock on a descriptor of the
// open file that holds the lock succeeds at once, which confirms it.
func inheritedLock(path string) *os.File {
	v, ok := strings.CutPrefix(os.Getenv(LockEnv), "fd:")
	if !ok {
		return nil
	}
	var fd int
	if _, err := fmt.Sscanf(v, "%d", &fd); err != nil || fd < 3 {
		return nil
	}
	// Check the descriptor before wrapping it: an *os.File closes its
	// descriptor when collected, and one that is not our lock file is not
	// ours to close.
	var got, want syscall.Stat_t
	if syscall.Fstat(fd, &got) != nil || syscall.Stat(path, &want) != nil ||
		uint64(got.Dev) != uint64(want.Dev) || uint64(got.Ino) != uint64(want.Ino) ||
		syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), path)
	if f == nil {
		return nil
	}
	// Only the first LockRun of this process takes the inherited lock.
	os.Unsetenv(LockEnv)
	return f
}

// processGone reports whether no process pid exists.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
