package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/codegen/cuda"
)

// findTool returns the first of names on the PATH, or "".
func findTool(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// TestCUDAPTX compiles every corpus model's kernels.cu to PTX with clang
// alone (no CUDA toolkit: -nocudainc -nocudalib), for sm_80 with Debian's
// clang-14 and for sm_90 with a clang that knows it (16 or newer; 14 stops
// at sm_86). Without those compilers it skips, unless
// $ATTNC_REQUIRE_CLANG is set (CI installs them), where it fails.
func TestCUDAPTX(t *testing.T) {
	if testing.Short() {
		t.Skip("runs clang")
	}
	targets := []struct{ arch, clang string }{
		{"sm_80", findTool("clang-14", "clang-16", "clang-19", "clang")},
		{"sm_90", findTool("clang-19", "clang-18", "clang-17", "clang-16")},
	}
	for _, tg := range targets {
		if tg.clang == "" {
			msg := "no clang for " + tg.arch + " (apt-get install clang-14 clang-16)"
			if os.Getenv("ATTNC_REQUIRE_CLANG") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	progs := corpus(t)
	dir := t.TempDir()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, p := range progs {
		files, kernels, err := cuda.Render(p.m)
		require.NoError(t, err, p.name)
		src := filepath.Join(dir, "k"+strconv.Itoa(i)+".cu")
		require.NoError(t, os.WriteFile(src, files["kernels.cu"], 0o644))
		for _, tg := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				ptx := strings.TrimSuffix(src, ".cu") + "_" + tg.arch + ".ptx"
				out, err := exec.Command(tg.clang, "-x", "cuda", "--cuda-device-only", "-nocudainc", "-nocudalib",
					"--cuda-gpu-arch="+tg.arch, "-O3", "-Wall", "-Werror", "-S", "-o", ptx, src).CombinedOutput()
				if !assert.NoError(t, err, "%s for %s:\n%s", p.name, tg.arch, out) {
					return
				}
				b, err := os.ReadFile(ptx)
				if !assert.NoError(t, err) {
					return
				}
				text := string(b)
				assert.Contains(t, text, ".target "+tg.arch, p.name)
				for _, k := range kernels {
					for _, fn := range []string{"_fwd", "_delta", "_dkdv", "_dq"} {
						assert.Contains(t, text, ".entry attn"+strconv.Itoa(k.ID)+fn, "%s: %s", p.name, tg.arch)
					}
				}
			}()
		}
	}
	wg.Wait()
}
