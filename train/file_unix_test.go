//go:build unix

package train

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	goruntime "runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/runtime"
)

// unboundedFiles makes the files a reader must refuse quickly, each with
// the reason its error must give: a device that never ends, a symlink
// to it, a named pipe with no writer (opening it blocks), and a 40 GiB
// sparse file (which costs no disk).
func unboundedFiles(t *testing.T, limit string) map[string][2]string {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink("/dev/zero", link))
	sparse := filepath.Join(dir, "sparse")
	require.NoError(t, os.WriteFile(sparse, nil, 0o644))
	if err := os.Truncate(sparse, 40<<30); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	return map[string][2]string{
		"/dev/zero":  {"/dev/zero", "not a regular file (a device)"},
		"symlink":    {link, "not a regular file (a device)"},
		"named pipe": {fifo, "not a regular file (a named pipe)"},
		"sparse":     {sparse, "40 GiB (42949672960 bytes) is over the " + limit},
	}
}

// failsFast wants read to fail, mentioning want, within seconds: a read
// that blocks or runs out of memory fails the test instead of hanging it.
func failsFast(t *testing.T, name string, read func() error, want string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- read() }()
	select {
	case err := <-done:
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), want, name)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("%s: still reading after 10s", name)
	}
}

func TestLMDataIsBounded(t *testing.T) {
	for name, f := range unboundedFiles(t, "1 GiB limit for the lm task's data (-data)") {
		failsFast(t, name, func() error {
			_, err := NewTask("lm", Params{Strings: map[string]string{"data": f[0]}})
			return err
		}, "task lm: "+f[0]+": "+f[1])
	}
}

func TestReadSpecIsBounded(t *testing.T) {
	for name, f := range unboundedFiles(t, "1 MiB limit for run.json") {
		dir := t.TempDir()
		spec := filepath.Join(dir, SpecFile)
		require.NoError(t, os.Symlink(f[0], spec))
		failsFast(t, name, func() error {
			_, err := ReadSpec(dir)
			return err
		}, spec+": "+f[1])
	}
}

// hugeCheckpoint writes a sparse checkpoint-shaped file whose header
// honestly describes a tensor w of 16 floats, then big of 40 GiB (both
// f32), with a training checkpoint's metadata at step 3 and no checksum.
func hugeCheckpoint(t *testing.T, w, big string) string {
	t.Helper()
	const huge = 40 << 30
	state, err := rand.NewPCG(1, 2).MarshalBinary()
	require.NoError(t, err)
	hdr := fmt.Sprintf(`{%q:{"dtype":"F32","shape":[4,4],"data_offsets":[0,64]},`+
		`%q:{"dtype":"F32","shape":[1048576,%d],"data_offsets":[64,%d]},`+
		`"__metadata__":{"step":"3","adamw.t":"3","rng":%q}}`,
		w, big, huge/4/1048576, 64+huge, base64.StdEncoding.EncodeToString(state))
	head := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	head = append(head, hdr...)
	path := filepath.Join(t.TempDir(), CheckpointFile)
	require.NoError(t, os.WriteFile(path, head, 0o644))
	if err := os.Truncate(path, int64(len(head))+64+huge); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	return path
}

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	f()
	goruntime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestCheckpointLoadsAllocateOnlyTheModel: a checkpoint whose header
// honestly describes a 40 GiB tensor is refused by LoadParams and the
// resume load before anything is allocated, whether the tensor claims to
// be a weight, an optimizer moment or something else; reading the
// metadata allocates no tensor at all.
func TestCheckpointLoadsAllocateOnlyTheModel(t *testing.T) {
	params := func() []runtime.Named { return []runtime.Named{{Name: "w", T: runtime.New(runtime.F32, 4, 4)}} }
	const limit = 64 << 20
	cases := []struct{ w, big, want string }{
		{"adamw.m/w", "w", `tensor "w": is f32[1048576 10240], want f32[4 4]`},
		{"w", "adamw.m/w", `tensor "adamw.m/w": is f32[1048576 10240], want f32[4 4]`},
		{"w", "adamw.v/x", `tensor "adamw.v/x": an optimizer moment of "x", which the model does not have`},
		{"w", "junk", `tensor "junk": the model has no weight of this name`},
	}
	for _, c := range cases {
		path := hugeCheckpoint(t, c.w, c.big)
		loads := map[string]func() error{
			"LoadParams": func() error { _, err := LoadParams(path, params()); return err },
			"loadCheckpoint": func() error {
				ps := params()
				_, err := loadCheckpoint(path, ps, nil, NewAdamW(ps, 0.1), rand.NewPCG(0, 0))
				return err
			},
		}
		for name, load := range loads {
			var err error
			n := allocated(func() { err = load() })
			if assert.Error(t, err, "%s of %s", name, c.big) {
				assert.Contains(t, err.Error(), path, name)
				assert.Contains(t, err.Error(), c.want, name)
			}
			assert.Less(t, n, uint64(limit), "%s of %s allocated %d bytes", name, c.big, n)
		}
	}

	path := hugeCheckpoint(t, "w", "adamw.m/w")
	var info checkpointInfo
	var err error
	n := allocated(func() { info, err = readCheckpointInfo(path) })
	require.NoError(t, err)
	assert.Equal(t, 3, info.Step)
	assert.Less(t, n, uint64(limit), "readCheckpointInfo allocated %d bytes", n)
}

// TestLoadParamsSkipsMoments: a training checkpoint loads for evaluation
// (its moments skipped) and for a resume (its moments restored).
func TestLoadParamsSkipsMoments(t *testing.T) {
	w := named("w", []int{2}, 1, -2)
	opt := NewAdamW([]runtime.Named{w}, 0.1)
	opt.M["w"].F[0], opt.V["w"].F[1], opt.T = 0.5, 0.25, 4
	path := filepath.Join(t.TempDir(), CheckpointFile)
	require.NoError(t, saveCheckpoint(path, []runtime.Named{w}, nil, opt, rand.NewPCG(1, 2), 4, nil))

	got := named("w", []int{2}, 0, 0)
	meta, err := LoadParams(path, []runtime.Named{got})
	require.NoError(t, err)
	assert.Equal(t, []float32{1, -2}, got.T.F)
	assert.Equal(t, "4", meta["step"])

	got = named("w", []int{2}, 0, 0)
	opt2 := NewAdamW([]runtime.Named{got}, 0.1)
	info, err := loadCheckpoint(path, []runtime.Named{got}, nil, opt2, rand.NewPCG(0, 0))
	require.NoError(t, err)
	assert.Equal(t, 4, info.Step)
	assert.Equal(t, []float32{1, -2}, got.T.F)
	assert.Equal(t, []float32{0.5, 0}, opt2.M["w"].F)
	assert.Equal(t, []float32{0, 0.25}, opt2.V["w"].F)
}

// A checkpoint keeps the buffers beside the weights (no moments: they are
// not trained); a resume and an evaluation restore them.
func TestCheckpointKeepsBuffers(t *testing.T) {
	w, b := named("w", []int{2}, 1, -2), named("ema", []int{3}, 0.5, 1.5, -4)
	opt := NewAdamW([]runtime.Named{w}, 0.1)
	opt.T = 3
	path := filepath.Join(t.TempDir(), CheckpointFile)
	require.NoError(t, saveCheckpoint(path, []runtime.Named{w}, []runtime.Named{b}, opt, rand.NewPCG(1, 2), 3, nil))

	gw, gb := named("w", []int{2}, 0, 0), named("ema", []int{3}, 0, 0, 0)
	_, err := loadCheckpoint(path, []runtime.Named{gw}, []runtime.Named{gb}, NewAdamW([]runtime.Named{gw}, 0.1), rand.NewPCG(0, 0))
	require.NoError(t, err)
	assert.Equal(t, []float32{0.5, 1.5, -4}, gb.T.F)

	gb = named("ema", []int{3}, 0, 0, 0)
	_, err = LoadParams(path, []runtime.Named{named("w", []int{2}, 0, 0), gb})
	require.NoError(t, err)
	assert.Equal(t, []float32{0.5, 1.5, -4}, gb.T.F)

	// A resume of a model whose buffer the file lacks is an error.
	_, err = loadCheckpoint(path, []runtime.Named{gw}, []runtime.Named{named("centroids", []int{3}, 0, 0, 0)}, NewAdamW([]runtime.Named{gw}, 0.1), rand.NewPCG(0, 0))
	assert.Error(t, err)
}
