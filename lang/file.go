package lang

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// MaxSourceSize bounds a .attn file: the largest stdlib file is a few
// KiB, so 16 MiB leaves room for generated sources while a file named by
// mistake (a data set, a device) is refused rather than read until memory
// runs out.
const MaxSourceSize = 16 << 20

// ReadSourceFile reads the .attn file at path, following symlinks. It
// refuses anything that is not a regular file (a device such as /dev/zero
// never ends, and opening a named pipe blocks until someone writes to it)
// and files over MaxSourceSize. Errors name path ("x.attn: not a regular
// file (a named pipe)"); a missing file's satisfies
// errors.Is(err, fs.ErrNotExist). Load reads imports this way unless
// LoadOptions says otherwise.
func ReadSourceFile(path string) ([]byte, error) {
	b, err := readSourceFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// readSourceFile is ReadSourceFile with errors that leave the naming of
// path to the caller. runtime.ReadRegularFile does the same for the
// trainer; lang may not import runtime, so it keeps its own.
func readSourceFile(path string) ([]byte, error) {
	// Stat before opening, so a named pipe is refused instead of blocking
	// the open, and again after, so a file swapped in between is refused.
	before, err := os.Stat(path)
	if err != nil {
		return nil, unwrapPath(err)
	}
	if err := checkRegular(before); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()
	after, err := f.Stat()
	if err != nil {
		return nil, unwrapPath(err)
	}
	if err := checkRegular(after); err != nil {
		return nil, err
	}
	if !os.SameFile(before, after) {
		return nil, errors.New("the file changed while it was being opened")
	}
	if after.Size() > MaxSourceSize {
		return nil, fmt.Errorf("%s (%d bytes) is over the %d MiB limit for a .attn file", mebibytes(after.Size()), after.Size(), MaxSourceSize>>20)
	}
	// Read one byte past the limit to notice a file that grew.
	b, err := io.ReadAll(io.LimitReader(f, MaxSourceSize+1))
	if err != nil {
		return nil, unwrapPath(err)
	}
	if len(b) > MaxSourceSize {
		return nil, fmt.Errorf("over the %d MiB limit for a .attn file", MaxSourceSize>>20)
	}
	return b, nil
}

// unwrapPath drops the operation and path that os puts in its errors,
// for callers that name the file themselves.
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

// mebibytes formats a size over a MiB: "17 MiB", "40 GiB", "3.2 GiB".
func mebibytes(n int64) string {
	v, unit := float64(n)/(1<<20), "MiB"
	if v >= 1024 {
		v, unit = v/1024, "GiB"
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %s", int64(v), unit)
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
