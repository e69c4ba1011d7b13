//go:build unix

package runtime_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	goruntime "runtime"
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

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	f()
	goruntime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestLoadSafetensorsCheckedHonestHugeFile: a sparse 40 GiB file whose
// header honestly describes a 40 GiB tensor. A check that refuses its
// shape fails the load before anything is allocated; one that skips it
// reads the metadata without reading the tensor; and a skipped tensor
// that a checksum covers is streamed through it, not allocated.
func TestLoadSafetensorsCheckedHonestHugeFile(t *testing.T) {
	const huge = 40 << 30
	hdr := fmt.Sprintf(`{"big":{"dtype":"F32","shape":[1048576,%d],"data_offsets":[0,%d]},"__metadata__":{"step":"3"}}`, huge/4/1048576, huge)
	head := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	head = append(head, hdr...)
	path := sparseFile(t, head, int64(len(head))+huge)

	var err error
	n := allocated(func() {
		_, _, err = rt.LoadSafetensorsChecked(path, func(name string, dt rt.DType, shape []int) (bool, error) {
			return true, rt.CheckType(dt, shape, rt.F32, []int{4, 4})
		})
	})
	if want := `tensor "big": is f32[1048576 10240], want f32[4 4]`; err == nil || !contains(err.Error(), path) || !contains(err.Error(), want) {
		t.Errorf("a wrong shape: error %v, want one naming the file and %q", err, want)
	}
	if n > 64<<20 {
		t.Errorf("refusing the tensor allocated %d bytes", n)
	}

	var meta map[string]string
	n = allocated(func() {
		_, meta, err = rt.LoadSafetensorsChecked(path, func(string, rt.DType, []int) (bool, error) { return false, nil })
	})
	if err != nil || meta["step"] != "3" || n > 64<<20 {
		t.Errorf("metadata only: %v, error %v, %d bytes allocated", meta, err, n)
	}

	// 32 MiB through the checksum in chunks, allocating far less.
	big := rt.New(rt.F32, 8<<20)
	big.F[len(big.F)-1] = 1
	sum := filepath.Join(t.TempDir(), "sum.safetensors")
	if err := rt.SaveSafetensors(sum, []rt.Named{{Name: "big", T: big}, {Name: "small", T: rt.New(rt.F32, 2)}}, nil); err != nil {
		t.Fatal(err)
	}
	var ts map[string]*rt.Tensor
	n = allocated(func() {
		ts, _, err = rt.LoadSafetensorsChecked(sum, func(name string, _ rt.DType, _ []int) (bool, error) { return name == "small", nil })
	})
	if err != nil || len(ts) != 1 || ts["small"] == nil || n > 8<<20 {
		t.Errorf("skipping a checksummed 32 MiB tensor: %d tensors, error %v, %d bytes allocated", len(ts), err, n)
	}
}
