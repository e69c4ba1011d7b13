package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/stdlib"
)

// The generated Go API under misuse: what docs/GO_API.md promises about
// errors, memory and concurrency.

// elaborateSource compiles a model written inline.
func elaborateSource(t *testing.T, name, src string) *lang.Model {
	t.Helper()
	prog, diags := lang.Load(name, src, lang.LoadOptions{Std: stdlib.FS})
	require.Empty(t, diags)
	m, diags := prog.Elaborate("", lang.ElabOptions{})
	require.Empty(t, diags)
	return m
}

// runMain writes main.go into the user module dir, builds it (with the
// race detector when race) and runs it, returning its output and error.
func runMain(t *testing.T, dir, main string, race bool) (string, error) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(main), 0o644))
	args := []string{"build", "-o", "prog"}
	if race {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)
	run := exec.Command(filepath.Join(dir, "prog"))
	run.Dir = dir
	out, err = run.CombinedOutput()
	return string(out), err
}

// TestGoAPIErrorsNotPanics: tensors whose data does not fit their shape,
// negative dims and shapes whose element count overflows are errors,
// from FromF32/FromI32 and from Forward alike.
func TestGoAPIErrorsNotPanics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go package")
	}
	dir := userModule(t)
	lm := elaborate(t, "pointer_sort.attn", seeds[1].config)
	generate(t, lm.IR, configOf(lm), dir, "sorter")
	out, err := runMain(t, dir, `package main

import (
	"fmt"

	sorter "example.com/user/gen/sorter"
)

func main() {
	_, err := sorter.FromF32([]int{2, 3}, make([]float32, 5))
	fmt.Println(err)
	_, err = sorter.FromI32([]int{-1, 2}, nil)
	fmt.Println(err)
	_, err = sorter.FromF32([]int{1 << 32, 1 << 32}, nil)
	fmt.Println(err)
	_, err = sorter.FromBool([]int{2}, []bool{true})
	fmt.Println(err)
	x, err := sorter.FromF32([]int{1, 3}, []float32{1, 2, 3})
	fmt.Println(err)

	m, err := sorter.New(sorter.DefaultConfig(), 1)
	if err != nil {
		panic(err)
	}
	perm, _ := sorter.FromI32([]int{1, 3}, []int32{0, 1, 2})
	huge := &sorter.Tensor{DType: sorter.F32, Shape: []int{1 << 32, 1 << 32}}
	_, err = m.Forward(sorter.Inputs{X: huge, Perm: perm})
	fmt.Println(err)
	short := &sorter.Tensor{DType: sorter.F32, Shape: []int{1, 3}, F: []float32{1}}
	_, err = m.Forward(sorter.Inputs{X: short, Perm: perm})
	fmt.Println(err)
	_, err = m.Forward(sorter.Inputs{X: x, Perm: perm})
	fmt.Println(err)
}
`, false)
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 8, out)
	assert.Contains(t, lines[0], "needs 6 values, got 5")
	assert.Contains(t, lines[1], "negative dim")
	assert.Contains(t, lines[2], "more than")
	assert.Contains(t, lines[3], "needs 2 values, got 1")
	assert.Equal(t, "<nil>", lines[4])
	assert.Contains(t, lines[5], `input "x"`)
	assert.Contains(t, lines[5], "more than")
	assert.Contains(t, lines[6], `input "x"`)
	assert.Contains(t, lines[6], "the data has 1")
	assert.Equal(t, "<nil>", lines[7])
}

// TestGoAPIHugeBatchIsAnError: inputs whose intermediate tensors cannot
// fit in memory are refused before anything is allocated, instead of
// crashing the process; the limit can be set per model.
func TestGoAPIHugeBatchIsAnError(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go package")
	}
	dir := userModule(t)
	lm := elaborateSource(t, "outer.attn", `model outer {
  input x: f32[B, N]
  let w = param(1)
  let y = unsqueeze(x * w, 2) * unsqueeze(x, 1)
  loss mean(y)
}
`)
	generate(t, lm.IR, nil, dir, "outer")
	// Tensors are built by hand so that the program compiles against
	// every version of the API.
	out, err := runMain(t, dir, `package main

import (
	"fmt"

	"example.com/user/gen/outer"
)

func input(n int) outer.Inputs {
	return outer.Inputs{X: &outer.Tensor{DType: outer.F32, Shape: []int{1, n}, F: make([]float32, n)}}
}

func main() {
	m, err := outer.New(outer.DefaultConfig(), 1)
	if err != nil {
		panic(err)
	}
	// y is [1, 2^21, 2^21]: 16 TiB.
	_, err = m.Forward(input(1 << 21))
	fmt.Println(err)
	_, err = m.LossAndGrad(input(1 << 21))
	fmt.Println(err)
	m.SetMemoryLimit(1 << 20)
	_, err = m.Forward(input(1024)) // 4 MiB
	fmt.Println(err)
	m.SetMemoryLimit(0)
	_, err = m.Forward(input(1024))
	fmt.Println(err)
}
`, false)
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, out)
	assert.Contains(t, lines[0], "Forward: these input sizes need about 16.0 TiB")
	assert.Contains(t, lines[0], "memory limit")
	assert.Contains(t, lines[1], "LossAndGrad")
	assert.Contains(t, lines[2], "memory limit of 1.0 MiB")
	assert.Equal(t, "<nil>", lines[3])
}

// TestGoAPIConcurrentCalls runs Forward, LossAndGrad, Grads, Save, Load
// and SetMemoryLimit on one Model from many goroutines under the race
// detector: no race, and every Forward sees the same weights.
func TestGoAPIConcurrentCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go package with -race")
	}
	dir := userModule(t)
	lm := elaborate(t, "pointer_sort.attn", seeds[1].config)
	generate(t, lm.IR, configOf(lm), dir, "sorter")
	out, err := runMain(t, dir, `package main

import (
	"fmt"
	"os"
	"sync"

	sorter "example.com/user/gen/sorter"
)

func main() {
	m, err := sorter.New(sorter.DefaultConfig(), 1)
	if err != nil {
		panic(err)
	}
	if err := m.Save("w.safetensors"); err != nil {
		panic(err)
	}
	const n = 70 // longer than an attention tile
	in := func() sorter.Inputs {
		x := make([]float32, 2*n)
		perm := make([]int32, 2*n)
		for i := range x {
			x[i] = float32(i%n) / n
			perm[i] = int32(i % n)
		}
		return sorter.Inputs{
			X:    &sorter.Tensor{DType: sorter.F32, Shape: []int{2, n}, F: x},
			Perm: &sorter.Tensor{DType: sorter.I32, Shape: []int{2, n}, I: perm},
		}
	}
	want, err := m.Forward(in())
	if err != nil {
		panic(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	for i := 0; i < 4; i++ {
		wg.Add(3)
		go func() {
			defer wg.Done()
			out, err := m.Forward(in())
			if err != nil || out.Loss != want.Loss {
				fail("Forward: %v, loss %v, want %v", err, out, want.Loss)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := m.LossAndGrad(in()); err != nil {
				fail("LossAndGrad: %v", err)
			}
			_ = m.Grads()
		}()
		go func() {
			defer wg.Done()
			m.SetMemoryLimit(1 << 30)
			if err := m.Load("w.safetensors"); err != nil {
				fail("Load: %v", err)
			}
			if err := m.Save(fmt.Sprintf("w%d.safetensors", i)); err != nil {
				fail("Save: %v", err)
			}
		}()
	}
	wg.Wait()
	for _, f := range failures {
		fmt.Println(f)
	}
	if len(failures) > 0 {
		os.Exit(1)
	}
	fmt.Println("ok", len(m.Grads()) == len(m.Params()))
}
`, true)
	require.NoError(t, err, out)
	assert.NotContains(t, out, "DATA RACE")
	assert.Equal(t, "ok true\n", out)
}
