package runtime_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	rt "github.com/attnc/attnc/runtime"
)

func TestSafetensorsRoundTrip(t *testing.T) {
	r := newRand(50)
	tensors := []rt.Named{
		{Name: "embed.weight", T: randF32(r, 10, 4)},
		{Name: "steps", T: rt.Scalar(rt.I32, -3)},
		{Name: "mask", T: randBool(r, 3, 3)},
		{Name: "ids", T: randI32(r, -1000, 1000, 5)},
		{Name: "empty", T: rt.New(rt.F32, 0, 4)},
	}
	meta := map[string]string{"model": "mixed_span_lm", "step": "1200"}
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	if err := rt.SaveSafetensors(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
	got, gotMeta, err := rt.LoadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(tensors) {
		t.Fatalf("loaded %d tensors, want %d", len(got), len(tensors))
	}
	for _, nt := range tensors {
		checkSame(t, nt.Name, got[nt.Name], nt.T)
	}
	if len(gotMeta) != 2 || gotMeta["model"] != "mixed_span_lm" || gotMeta["step"] != "1200" {
		t.Errorf("metadata %v, want %v", gotMeta, meta)
	}
	// The header is padded to 8 bytes and the temp file is gone.
	data, _ := os.ReadFile(path)
	if n := binary.LittleEndian.Uint64(data); n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d files after saving, want 1", len(entries))
	}
	// Overwriting works, and a save without metadata loads with none.
	if err := rt.SaveSafetensors(path, tensors[:1], nil); err != nil {
		t.Fatal(err)
	}
	got, gotMeta, err = rt.LoadSafetensors(path)
	if err != nil || len(got) != 1 || len(gotMeta) != 0 {
		t.Errorf("reloaded %d tensors, metadata %v, error %v", len(got), gotMeta, err)
	}
}

func TestSafetensorsSaveErrors(t *testing.T) {
	dir := t.TempDir()
	x := rt.New(rt.F32, 2)
	for name, ts := range map[string][]rt.Named{
		"duplicate":     {{"a", x}, {"a", x}},
		"reserved name": {{"__metadata__", x}},
		"nil tensor":    {{"a", nil}},
		"bad data":      {{"a", &rt.Tensor{DType: rt.F32, Shape: []int{3}, F: make([]float32, 2)}}},
	} {
		if err := rt.SaveSafetensors(filepath.Join(dir, "x"), ts, nil); err == nil {
			t.Errorf("%s: saved without error", name)
		}
	}
	if err := rt.SaveSafetensors(filepath.Join(dir, "missing", "x"), []rt.Named{{"a", x}}, nil); err == nil {
		t.Error("saved into a missing directory")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed saves left %d files behind", len(entries))
	}
}

// file builds a safetensors file from a header string and data bytes.
func file(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

func TestSafetensorsCorrupt(t *testing.T) {
	good := file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8))
	cases := map[string]struct {
		data []byte
		want string
	}{
		"empty":           {nil, "too short"},
		"truncated len":   {good[:5], "too short"},
		"truncated hdr":   {good[:20], "does not fit"},
		"truncated data":  {good[:len(good)-3], `tensor "a": data_offsets [0, 8] outside`},
		"huge header":     {binary.LittleEndian.AppendUint64(nil, 1<<62), "does not fit"},
		"bad json":        {file(`{"a":{"dtype":"F32",`, nil), "bad header entry: unexpected EOF"},
		"bad json key":    {file(`{"a" 1}`, nil), "bad header entry"},
		"bad json start":  {file(`{,}`, nil), "not valid JSON"},
		"not an object":   {file(`[1, 2]`, nil), "not a JSON object"},
		"trailing bytes":  {file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} x`, make([]byte, 8)), "trailing"},
		"bad entry":       {file(`{"a":{"dtype":3}}`, nil), `tensor "a": bad header entry`},
		"unknown dtype":   {file(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": unsupported dtype "F16"`},
		"no shape":        {file(`{"a":{"dtype":"F32","data_offsets":[0,0]}}`, nil), `tensor "a": no shape`},
		"negative dim":    {file(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, nil), `tensor "a": invalid dim`},
		"huge shape":      {file(`{"a":{"dtype":"F32","shape":[2000000000,2000000000,2000000000],"data_offsets":[0,0]}}`, nil), "too large"},
		"out of range":    {file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 8)), `tensor "a": data_offsets [4, 12] outside the 8 data bytes`},
		"reversed":        {file(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}`, make([]byte, 8)), "outside"},
		"one offset":      {file(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0]}}`, nil), "want [begin, end]"},
		"wrong size":      {file(`{"a":{"dtype":"I32","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 8)), `tensor "a": I32 [3] needs 12 bytes`},
		"overlap":         {file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), "overlap"},
		"gap":             {file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12)), `data bytes [4, 8] before tensor "b" belong to no tensor`},
		"leading gap":     {file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), `data bytes [0, 4] before tensor "a"`},
		"trailing data":   {file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 12)), "the tensors cover 4 of its 12 data bytes"},
		"no tensors":      {file(`{}`, make([]byte, 4)), "the tensors cover 0 of its 4 data bytes"},
		"duplicate name":  {file(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`, nil), `names "a" twice`},
		"bad metadata":    {file(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
		"bad bool":        {file(`{"a":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}}`, []byte{1, 7}), `tensor "a": byte 1 is 7`},
		"unterminated":    {file(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`, nil), "not valid JSON"},
		"numeric key":     {file(`{1:2}`, nil), "not valid JSON"},
		"null entry":      {file(`{"a":null}`, nil), "unsupported dtype"},
		"non-int offsets": {file(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0.5,1]}}`, nil), "bad header entry"},
	}
	dir := t.TempDir()
	for name, c := range cases {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := rt.LoadSafetensors(path)
		if err == nil {
			t.Errorf("%s: loaded without error", name)
			continue
		}
		if !contains(err.Error(), c.want) || !contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file and mention %q", name, err, c.want)
		}
	}
	if _, _, err := rt.LoadSafetensors(filepath.Join(dir, "missing")); err == nil {
		t.Error("loaded a missing file")
	}
}

// FuzzLoadSafetensors checks that no file makes the loader panic, whether
// it keeps every tensor or skips some.
func FuzzLoadSafetensors(f *testing.F) {
	f.Add(file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}`, make([]byte, 8)))
	f.Add(file(`{"a":{"dtype":"BOOL","shape":[1,2],"data_offsets":[0,2]}}`, []byte{0, 1}))
	dir := f.TempDir()
	summed := filepath.Join(dir, "summed")
	r := newRand(53)
	if err := rt.SaveSafetensors(summed, []rt.Named{{Name: "w", T: randF32(r, 3)}, {Name: "b", T: randBool(r, 2)}}, nil); err != nil {
		f.Fatal(err)
	}
	if b, err := os.ReadFile(summed); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "f")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		rt.LoadSafetensors(path)
		n := 0
		rt.LoadSafetensorsChecked(path, func(string, rt.DType, []int) (bool, error) {
			n++
			return n%2 == 0, nil
		})
	})
}

// TestSafetensorsChecksum flips one byte at a time in a saved file: in
// the data of each tensor, in a metadata value, a name and a shape in the
// header. Every flip must make Load fail, never load changed weights.
func TestSafetensorsChecksum(t *testing.T) {
	r := newRand(51)
	tensors := []rt.Named{
		{Name: "w", T: randF32(r, 8, 4)},
		{Name: "ids", T: randI32(r, -1000, 1000, 5)},
		{Name: "mask", T: randBool(r, 3)},
	}
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	if err := rt.SaveSafetensors(path, tensors, map[string]string{"step": "1200"}); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, meta, err := rt.LoadSafetensors(path)
	if err != nil || len(meta) != 1 || meta["step"] != "1200" {
		t.Fatalf("metadata %v, error %v; want only step (the checksum is not returned)", meta, err)
	}
	data := 8 + int(binary.LittleEndian.Uint64(good))
	in := func(s string) int { return bytes.Index(good, []byte(s)) + len(s) - 1 }
	// A flip that leaves the header well-formed must be caught by the
	// checksum; one in a shape may be caught earlier, by the size check.
	const mismatch = "data checksum mismatch: the file is corrupt"
	positions := map[string]struct {
		at   int
		want string
	}{
		"first data byte":    {data, mismatch},
		"a middle byte of w": {data + 50, mismatch},
		"last byte of w":     {data + 8*4*4 - 1, mismatch},
		"a byte of ids":      {data + 8*4*4 + 7, mismatch},
		"a byte of mask":     {data + 8*4*4 + 5*4 + 1, mismatch},
		"last byte":          {len(good) - 1, mismatch},
		"the step's value":   {in(`"step":"12`), mismatch},
		"a tensor's name":    {in(`"id`), mismatch},
		"the checksum":       {in(`"attnc.sha256":"`) + 3, mismatch},
		"a dim of a shape":   {in(`"shape":[8`), path},
	}
	for name, p := range positions {
		for _, mask := range []byte{0x01, 0x80} {
			bad := bytes.Clone(good)
			bad[p.at] ^= mask
			if err := os.WriteFile(path, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, _, err := rt.LoadSafetensors(path); err == nil || !contains(err.Error(), p.want) {
				t.Errorf("%s (byte %d ^ %#x): error %v, want one mentioning %q", name, p.at, mask, err, p.want)
			}
		}
	}
	// A file without the checksum (another writer's) still loads.
	plain := file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}`, make([]byte, 8))
	if err := os.WriteFile(path, plain, 0o644); err != nil {
		t.Fatal(err)
	}
	if ts, meta, err := rt.LoadSafetensors(path); err != nil || len(ts) != 1 || meta["k"] != "v" {
		t.Errorf("a file without a checksum: %d tensors, metadata %v, error %v", len(ts), meta, err)
	}
	// Names and values that json.Marshal escapes, or changes, round-trip
	// with a checksum that still matches.
	odd := []rt.Named{{Name: "a<b>&\u2028\xff", T: randF32(r, 2)}}
	if err := rt.SaveSafetensors(path, odd, map[string]string{"k\xfe": "<\ufffd>"}); err != nil {
		t.Fatal(err)
	}
	if ts, _, err := rt.LoadSafetensors(path); err != nil || len(ts) != 1 {
		t.Errorf("odd names: %d tensors, error %v", len(ts), err)
	}
	if err := rt.SaveSafetensors(path, tensors, map[string]string{"attnc.sha256": "x"}); err == nil {
		t.Error("saved metadata that claims the checksum key")
	}
}

// TestLoadSafetensorsChecked: the check sees every tensor's name, dtype
// and shape; only what it keeps is returned; what it skips still goes
// through the checksum; its error, naming file and tensor, stops the load.
func TestLoadSafetensorsChecked(t *testing.T) {
	r := newRand(52)
	w, ids, mask := randF32(r, 8, 4), randI32(r, -1000, 1000, 5), randBool(r, 3)
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	if err := rt.SaveSafetensors(path, []rt.Named{{Name: "w", T: w}, {Name: "ids", T: ids}, {Name: "mask", T: mask}},
		map[string]string{"step": "7"}); err != nil {
		t.Fatal(err)
	}
	var seen []string
	keepW := func(name string, dt rt.DType, shape []int) (bool, error) {
		seen = append(seen, fmt.Sprintf("%s %v%v", name, dt, shape))
		return name == "w", nil
	}
	ts, meta, err := rt.LoadSafetensorsChecked(path, keepW)
	if err != nil {
		t.Fatal(err)
	}
	// SaveSafetensors writes the header's names sorted.
	if want := []string{"ids i32[5]", "mask bool[3]", "w f32[8 4]"}; !slices.Equal(seen, want) {
		t.Errorf("the check saw %q, want %q", seen, want)
	}
	if len(ts) != 1 || ts["w"] == nil || !slices.Equal(ts["w"].F, w.F) {
		t.Errorf("kept %v, want only w with its values", ts)
	}
	if len(meta) != 1 || meta["step"] != "7" {
		t.Errorf("metadata %v, want step 7", meta)
	}
	none := func(string, rt.DType, []int) (bool, error) { return false, nil }
	if ts, meta, err := rt.LoadSafetensorsChecked(path, none); err != nil || len(ts) != 0 || meta["step"] != "7" {
		t.Errorf("keeping nothing: %d tensors, metadata %v, error %v; want the metadata only", len(ts), meta, err)
	}

	// A flipped byte in a tensor that is skipped is still caught.
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(good)
	bad[8+int(binary.LittleEndian.Uint64(good))+8*4*4+2] ^= 0x10 // in ids
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, check := range map[string]rt.TensorCheck{"keeping w": keepW, "keeping nothing": none} {
		if _, _, err := rt.LoadSafetensorsChecked(path, check); err == nil || !contains(err.Error(), "checksum mismatch") {
			t.Errorf("%s, a flipped byte in ids: error %v, want a checksum mismatch", name, err)
		}
	}

	// The check's error stops the load, naming the file and the tensor.
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	wantShape := func(name string, dt rt.DType, shape []int) (bool, error) {
		if name != "w" {
			return false, nil
		}
		return true, rt.CheckType(dt, shape, rt.F32, []int{4, 8})
	}
	_, _, err = rt.LoadSafetensorsChecked(path, wantShape)
	if want := fmt.Sprintf(`load %s: tensor "w": is f32[8 4], want f32[4 8]`, path); err == nil || err.Error() != want {
		t.Errorf("a wrong shape: error %v, want %q", err, want)
	}
	if err := rt.CheckType(rt.I32, []int{5}, rt.F32, []int{5}); err == nil || err.Error() != "is i32[5], want f32[5]" {
		t.Errorf("CheckType of a wrong dtype: %v", err)
	}
}
