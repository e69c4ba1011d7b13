//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package train

import (
	"os"
	"runtime"
)

// lockRun uses the portable lock file where flock is not available.
func lockRun(dir string) (*RunLock, error) { return lockExclusive(dir) }

// processGone reports whether no process pid exists, where the platform
// can tell (Windows: FindProcess opens the process); elsewhere false.
func processGone(pid int) bool {
	if runtime.GOOS != "windows" {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	p.Release()
	return false
}
