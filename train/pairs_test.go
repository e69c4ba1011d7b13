package train

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeTemp(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// Pairs from TSV and JSONL: bytes as tokens 3…258, the target between 1
// and 2, padding 0 after each, lengths beside; the last tenth held out.
func TestPairsTask(t *testing.T) {
	var tsv, jsonl strings.Builder
	for i := range 20 {
		src := strings.Repeat("a", 1+i%4)
		tgt := strings.Repeat("b", 1+i%3)
		if i >= 18 {
			src, tgt = "zz", "y" // the held-out tenth
		}
		tsv.WriteString(src + "\t" + tgt + "\n")
		jsonl.WriteString(`{"src": "` + src + `", "tgt": "` + tgt + `"}` + "\n")
	}
	for _, path := range []string{writeTemp(t, "p.tsv", tsv.String()), writeTemp(t, "p.jsonl", jsonl.String())} {
		tk, err := NewTask("pairs", Params{Ints: map[string]int{"len": 8}, Strings: map[string]string{"data": path}})
		require.NoError(t, err, path)
		rng := rand.New(rand.NewPCG(1, 1))
		for range 20 {
			b := tk.Batch(rng, 6)
			src, tgt, sl, tl := b["src"], b["tgt"], b["src_len"], b["tgt_len"]
			s, l := src.Shape[1], tgt.Shape[1]
			for e := range 6 {
				n, m := int(sl.I[e]), int(tl.I[e])
				for j := range s {
					if j < n {
						require.Equal(t, int32('a')+byteOffset, src.I[e*s+j], "a training pair, never a held-out one")
					} else {
						require.Zero(t, src.I[e*s+j], "padding")
					}
				}
				require.EqualValues(t, BOS, tgt.I[e*l])
				require.EqualValues(t, EOS, tgt.I[e*l+m-1])
				for j := m; j < l; j++ {
					require.Zero(t, tgt.I[e*l+j])
				}
			}
		}
		e := heldOut(tk).Batch(rng, 3)
		assert.Equal(t, []int32{'z' + byteOffset, 'z' + byteOffset}, e["src"].I[:2])
		assert.Equal(t, 2, e["src"].Shape[1])
		assert.Equal(t, []int32{BOS, 'y' + byteOffset, EOS}, e["tgt"].I[:3])
	}
}

func TestPairsErrors(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"p.tsv", "a\tb\nno tab here\n", "p.tsv:2: no tab between source and target"},
		{"p.jsonl", `{"src": "a", "tgt": "b"}` + "\n" + `{"src": "a"}` + "\n", `p.jsonl:2: a pair needs both "src" and "tgt"`},
		{"p.jsonl", "{not json}\n", "p.jsonl:1: invalid character"},
		{"p.tsv", "a\t\n", "p.tsv:1: the source and the target must not be empty"},
		{"p.tsv", "a\tb\n", "too few to hold out a tenth"},
		{"p.tsv", "\n\n", "holds no pairs"},
	} {
		_, err := NewTask("pairs", Params{Strings: map[string]string{"data": writeTemp(t, c.name, c.text)}})
		require.Error(t, err, c.text)
		assert.Contains(t, err.Error(), c.want)
	}
	_, err := NewTask("pairs", Params{})
	assert.ErrorContains(t, err, "pass --data FILE")
	long := writeTemp(t, "long.tsv", strings.Repeat(strings.Repeat("x", 20)+"\ty\n", 10))
	tk, err := NewTask("pairs", Params{Ints: map[string]int{"len": 5}, Strings: map[string]string{"data": long}})
	require.NoError(t, err)
	assert.Contains(t, tk.Describe(), "10 cut to that length")
}
