//go:build unix

package lang_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attnc/attnc/lang"
)

// TestImportIsBounded imports what must be refused quickly, with the
// reason at the import: a device that never ends, a symlink to it, a
// named pipe with no writer (opening it blocks), a directory and a 40 GiB
// sparse file (which costs no disk). The reads go through Load's default,
// which reads the file system.
func TestImportIsBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.attn")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.attn")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	sparse := filepath.Join(dir, "big.attn")
	if err := os.WriteFile(sparse, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sparse, 40<<30); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	for _, c := range []struct{ path, want string }{
		{"/dev/zero", "not a regular file (a device)"},
		{"link.attn", "not a regular file (a device)"},
		{"fifo.attn", "not a regular file (a named pipe)"},
		{"sub", "not a regular file (a directory)"},
		{"big.attn", "40 GiB (42949672960 bytes) is over the 16 MiB limit for a .attn file"},
	} {
		root := filepath.Join(dir, "root.attn")
		src := fmt.Sprintf("import %q\n", c.path)
		done := make(chan string, 1)
		go func() {
			_, diags := lang.Load(root, src, lang.LoadOptions{})
			var msgs []string
			for _, d := range diags {
				msgs = append(msgs, d.Error())
			}
			done <- strings.Join(msgs, "\n")
		}()
		select {
		case got := <-done:
			want := fmt.Sprintf("%s:1:8: cannot import %q: %s", root, c.path, c.want)
			if !strings.Contains(got, want) {
				t.Errorf("import %q: diagnostics %q, want %q", c.path, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("import %q: still reading after 10s", c.path)
		}
	}
}
