//go:build unix

package runtime_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	rt "github.com/attnc/attnc/runtime"
)

// hostileFiles makes, in a fresh directory, the files a reader must refuse
// quickly: a device that never ends, a symlink to it, a named pipe with no
// writer (opening it blocks), and a directory. It returns them by name
// with the words the error must contain.
func hostileFiles(t *testing.T) map[string]struct{ path, want string } {
	t.Helper()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.safetensors")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	return map[string]struct{ path, want string }{
		"/dev/zero":  {"/dev/zero", "not a regular file (a device)"},
		"symlink":    {link, "not a regular file (a device)"},
		"named pipe": {fifo, "not a regular file (a named pipe)"},
		"directory":  {dir, "not a regular file (a directory)"},
	}
}

// sparseFile makes a file of size bytes that starts with head and costs
// no disk beyond it.
func sparseFile(t *testing.T, head []byte, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sparse")
	if err := os.WriteFile(path, head, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	return path
}

// failsFast runs read and wants an error that mentions want within a few
// seconds: a reader that blocks on a pipe or reads a device until memory
// runs out fails the test instead of hanging it.
func failsFast(t *testing.T, name string, read func() error, want string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- read() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("%s: read without error", name)
		} else if !contains(err.Error(), want) {
			t.Errorf("%s: error %q does not mention %q", name, err, want)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("%s: still reading after 10s", name)
	}
}

func TestReadRegularFileRefusesOthers(t *testing.T) {
	for name, f := range hostileFiles(t) {
		failsFast(t, name, func() error {
			_, err := rt.ReadRegularFile(f.path, 1<<20, "a test")
			return err
		}, f.path+": "+f.want)
	}
	big := sparseFile(t, nil, 40<<30)
	failsFast(t, "sparse", func() error {
		_, err := rt.ReadRegularFile(big, 1<<20, "a test")
		return err
	}, big+": 40 GiB (42949672960 bytes) is over the 1 MiB limit for a test")

	small := filepath.Join(t.TempDir(), "small")
	if err := os.WriteFile(small, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := rt.ReadRegularFile(small, 5, "a test")
	if err != nil || string(b) != "hello" {
		t.Errorf("read %q, %v; want \"hello\"", b, err)
	}
	if _, err := rt.ReadRegularFile(small, 4, "a test"); err == nil || !contains(err.Error(), "5 bytes is over the 4 bytes limit") {
		t.Errorf("a file one byte over the limit: error %v", err)
	}
	if _, err := rt.ReadRegularFile(filepath.Join(t.TempDir(), "missing"), 4, "a test"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: error %v, want one that says it does not exist", err)
	}
}

func TestLoadSafetensorsRefusesUnboundedFiles(t *testing.T) {
	for name, f := range hostileFiles(t) {
		failsFast(t, name, func() error {
			_, _, err := rt.LoadSafetensors(f.path)
			return err
		}, f.want)
	}
	// A 40 GB file whose header describes 8 bytes: the rest is never read.
	hdr := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	head := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	head = append(head, hdr...)
	sparse := sparseFile(t, head, 40<<30)
	failsFast(t, "sparse, small header", func() error {
		_, _, err := rt.LoadSafetensors(sparse)
		return err
	}, fmt.Sprintf("the tensors cover 8 of its %d data bytes", 40<<30-len(head)))
	// A header whose tensor lies past the end of a small file.
	hdr = `{"a":{"dtype":"F32","shape":[100000,100000],"data_offsets":[0,40000000000]}}`
	head = binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	head = append(head, hdr...)
	lying := sparseFile(t, head, int64(len(head))+64)
	failsFast(t, "lying header", func() error {
		_, _, err := rt.LoadSafetensors(lying)
		return err
	}, "outside the 64 data bytes")
}
