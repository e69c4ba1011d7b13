package train

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/attnc/attnc/runtime"
)

// LockFile is the file in a run directory that its one writer holds
// locked: attnc train while it sets the run up, then the trainer it
// starts, which inherits the lock.
const LockFile = "train.lock"

// LockEnv names the environment variable through which attnc hands its
// lock to the trainer it runs: the number of the inherited file
// descriptor (flock) or the lock's token (the portable fallback).
const LockEnv = "ATTNC_RUN_LOCK"

// ErrLocked is wrapped by the error LockRun returns when another process
// writes to the run directory.
var ErrLocked = errors.New("run directory in use")

// A RunLock is the exclusive right to write a run directory. Two
// trainers writing one directory would interleave their metrics and
// overwrite each other's checkpoints, so every writer holds it.
type RunLock struct {
	dir  string
	file *os.File // flock: the locked file; nil for the fallback
	// token identifies the fallback's lock file as ours; owned says this
	// process took the lock (and removes the file on Release) rather than
	// inheriting it.
	token string
	owned bool
}

// LockRun takes dir's lock, or returns an error wrapping ErrLocked that
// says which process holds it. A lock handed down by the parent process
// (see RunLock.Env) is taken over. The lock ends with Release or with
// the process: a process that dies holding it, even by kill -9, leaves
// nothing that blocks the next writer (on systems with flock; elsewhere
// a lock file naming a dead process is taken over where that can be
// told, and otherwise the error says which file to delete).
func LockRun(dir string) (*RunLock, error) {
	return lockRun(dir)
}

// Release gives the lock up. It is safe to call more than once.
func (l *RunLock) Release() error {
	if l == nil {
		return nil
	}
	var err error
	if l.owned {
		// Remove before unlocking: a writer that opened the file before
		// then finds it locked, and one that locks it after sees that it
		// is gone from the directory (lockRun checks).
		l.owned = false
		if rmErr := os.Remove(filepath.Join(l.dir, LockFile)); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			err = rmErr
		}
	}
	if l.file != nil {
		err = errors.Join(err, l.file.Close()) // the last descriptor: the flock ends
		l.file = nil
	}
	return err
}

// ExtraFiles returns the files a child process must inherit to share the
// lock (for exec.Cmd.ExtraFiles), and Env the environment entry that
// tells it so. Only one child can be handed the lock at a time.
func (l *RunLock) ExtraFiles() []*os.File {
	if l.file == nil {
		return nil
	}
	return []*os.File{l.file}
}

// Env returns the LockEnv entry for a child given ExtraFiles as its
// first extra files (descriptor 3 on).
func (l *RunLock) Env() string {
	if l.file != nil {
		return LockEnv + "=fd:3"
	}
	return LockEnv + "=token:" + l.token
}

// lockedError says who holds dir's lock, from what the holder wrote in
// the lock file.
func lockedError(dir string, holder []byte, hint string) error {
	who := "another process"
	if pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(holder), " ", 2)[0])); err == nil && pid > 0 {
		who = fmt.Sprintf("process %d", pid)
	}
	return fmt.Errorf("%s is being written by %s (%s holds its lock): %w; wait for that run to end or stop it, then continue with attnc train -resume %s%s",
		dir, who, filepath.Join(dir, LockFile), ErrLocked, dir, hint)
}

// maxLockFile bounds the lock file as it is read for its holder: it holds
// a pid and a token.
const maxLockFile = 4 << 10

// lockExclusive is the portable lock: a lock file created with O_EXCL
// holding "PID TOKEN", removed on Release. A parent hands it down by
// putting the token in the child's environment.
func lockExclusive(dir string) (*RunLock, error) {
	path := filepath.Join(dir, LockFile)
	if v, ok := strings.CutPrefix(os.Getenv(LockEnv), "token:"); ok && v != "" {
		if b, err := runtime.ReadRegularFile(path, maxLockFile, LockFile); err == nil {
			if f := strings.Fields(string(b)); len(f) == 2 && f[1] == v {
				l := &RunLock{dir: dir, token: v} // the parent's lock
				l.RecordHolder()                  // a failure only leaves the parent's pid
				return l, nil
			}
		}
	}
	token := strconv.FormatInt(int64(os.Getpid()), 36) + "-" + randomToken()
	for try := 0; try < 2; try++ {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			_, werr := fmt.Fprintf(f, "%d %s\n", os.Getpid(), token)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				os.Remove(path)
				return nil, fmt.Errorf("locking %s: %w", dir, werr)
			}
			return &RunLock{dir: dir, token: token, owned: true}, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("locking %s: %w", dir, err)
		}
		b, _ := runtime.ReadRegularFile(path, maxLockFile, LockFile)
		if try == 0 && holderGone(b) {
			// The holder died without releasing: the lock is stale.
			os.Remove(path)
			continue
		}
		return nil, lockedError(dir, b, fmt.Sprintf(" (if no such process is running, delete %s)", path))
	}
	return nil, fmt.Errorf("locking %s: %w", dir, ErrLocked)
}

// holderGone reports whether the process named by a fallback lock file is
// known not to run. Where that cannot be told it reports false.
func holderGone(holder []byte) bool {
	f := strings.Fields(string(holder))
	if len(f) == 0 {
		return false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return false
	}
	return processGone(pid)
}

func randomToken() string { return crand.Text() }

// RecordHolder writes this process's pid in the lock file, for the error
// a second writer gets. LockRun calls it for the process that takes the
// lock and for a child that inherits it, so the message names the process
// that writes the run, not an attnc that may be gone; a parent calls it
// again once the child it handed the lock to has exited.
func (l *RunLock) RecordHolder() error {
	if l == nil {
		return nil
	}
	if l.file != nil {
		// In place: the flock belongs to this open file, which a rename
		// would take out of the directory.
		if err := l.file.Truncate(0); err != nil {
			return err
		}
		_, err := l.file.WriteAt([]byte(fmt.Sprintf("%d\n", os.Getpid())), 0)
		return err
	}
	// The portable lock file exists as long as the lock: replace it
	// whole, so that a reader never sees it empty or half written.
	path := filepath.Join(l.dir, LockFile)
	tmp, err := os.CreateTemp(l.dir, "."+LockFile+".*.tmp")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(tmp, "%d %s\n", os.Getpid(), l.token)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
