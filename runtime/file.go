package runtime

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
)

// ReadRegularFile reads the file at path, following symlinks, and refuses
// anything that is not a regular file (a device such as /dev/zero never
// ends, and opening a named pipe blocks until someone writes to it) or
// that holds more than limit bytes, so no path a user or a run directory
// names can make the caller run out of memory or hang. The errors name
// path; a missing file's error satisfies errors.Is(err, fs.ErrNotExist).
// role says what the file is for, in the size error: "data.txt: 3.2 GiB
// is over the 1 GiB limit for -data".
func ReadRegularFile(path string, limit int64, role string) ([]byte, error) {
	f, size, err := openRegularFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	if size > limit {
		return nil, fmt.Errorf("%s: %s is over the %s limit for %s", path, exactSize(size), byteSize(limit), role)
	}
	// The file may grow after the size check; reading one byte past the
	// limit notices without reading the rest.
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: over the %s limit for %s", path, byteSize(limit), role)
	}
	return b, nil
}

// openRegularFile opens the regular file at path for reading, following
// symlinks, and returns it with its size. It checks the kind of file
// before opening it, so a named pipe is refused instead of blocking the
// open, and again on the open file, so a file swapped in between is
// refused too. Errors do not repeat path; the caller names it.
func openRegularFile(path string) (*os.File, int64, error) {
	before, err := os.Stat(path)
	if err != nil {
		return nil, 0, unwrapPath(err)
	}
	if err := checkRegular(before); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, unwrapPath(err)
	}
	after, err := f.Stat()
	if err == nil {
		err = checkRegular(after)
	}
	if err == nil && !os.SameFile(before, after) {
		err = errors.New("the file changed while it was being opened")
	}
	if err != nil {
		f.Close()
		return nil, 0, unwrapPath(err)
	}
	return f, after.Size(), nil
}

// unwrapPath drops the operation and path that os adds to its errors
// ("stat x.attn: no such file or directory"), for callers that name the
// file themselves; errors.Is still sees the cause.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkRegular says why info is not a regular file, or returns nil.
func checkRegular(info fs.FileInfo) error {
	m := info.Mode()
	if m.IsRegular() {
		return nil
	}
	kind := "a special file"
	switch {
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeDevice != 0:
		kind = "a device"
	}
	return fmt.Errorf("not a regular file (%s)", kind)
}

// byteSize formats a count of bytes for a person: "512 bytes", "1 MiB",
// "3.2 GiB" (binary units, one decimal unless whole).
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	if v == math.Trunc(v) {
		return fmt.Sprintf("%d %s", int64(v), byteUnits[i])
	}
	return fmt.Sprintf("%.1f %s", v, byteUnits[i])
}

// exactSize is byteSize with the exact count too, when byteSize rounds
// it: "40 GiB (42949672960 bytes)".
func exactSize(n int64) string {
	if n < 1024 {
		return byteSize(n)
	}
	return fmt.Sprintf("%s (%d bytes)", byteSize(n), n)
}

var byteUnits = [...]string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
