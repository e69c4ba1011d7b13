package runtime

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// A Named is a tensor with the name it has in a checkpoint.
type Named struct {
	Name string
	T    *Tensor
}

// maxHeader bounds the JSON header of a safetensors file (as the
// reference implementation does), so a corrupt length cannot make
// LoadSafetensors allocate without limit.
const maxHeader = 100 << 20

// metadataKey is the header entry that holds the string metadata.
const metadataKey = "__metadata__"

// stEntry is one tensor's header entry.
type stEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// stDTypes maps safetensors dtype names to ours.
var stDTypes = map[string]DType{"F32": F32, "I32": I32, "BOOL": Bool}

func stName(dt DType) string {
	switch dt {
	case F32:
		return "F32"
	case I32:
		return "I32"
	case Bool:
		return "BOOL"
	}
	return ""
}

// elemSize returns the bytes per element of dt in a safetensors file.
func elemSize(dt DType) int {
	if dt == Bool {
		return 1
	}
	return 4
}

// SaveSafetensors writes tensors and the string metadata meta (nil or
// empty: none) to path in the safetensors format: an 8-byte
// little-endian header length, the JSON header (padded with spaces to a
// multiple of 8 bytes) giving each tensor's dtype, shape and byte range,
// then the little-endian data in the order given. It writes a temporary
// file in path's directory, syncs it and renames it over path, so path
// never holds a partial checkpoint. Names must be unique and non-empty and
// may not be "__metadata__".
func SaveSafetensors(path string, tensors []Named, meta map[string]string) (err error) {
	header := map[string]any{}
	if len(meta) > 0 {
		header[metadataKey] = meta
	}
	var offset int64
	for _, nt := range tensors {
		t := nt.T
		switch {
		case nt.Name == "" || nt.Name == metadataKey:
			return fmt.Errorf("save %s: invalid tensor name %q", path, nt.Name)
		case header[nt.Name] != nil:
			return fmt.Errorf("save %s: tensor %q appears twice", path, nt.Name)
		case t == nil || stName(t.DType) == "":
			return fmt.Errorf("save %s: tensor %q: no tensor or invalid dtype", path, nt.Name)
		case t.dataLen() != numel(t.Shape):
			return fmt.Errorf("save %s: tensor %q: %s holds %d values", path, nt.Name, typeString(t.DType, t.Shape), t.dataLen())
		}
		size := int64(t.Len() * elemSize(t.DType))
		shape := make([]int64, len(t.Shape))
		for i, d := range t.Shape {
			shape[i] = int64(d)
		}
		header[nt.Name] = stEntry{DType: stName(t.DType), Shape: shape, DataOffsets: []int64{offset, offset + size}}
		offset += size
	}
	js, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if pad := len(js) % 8; pad != 0 {
		js = append(js, bytes.Repeat([]byte{' '}, 8-pad)...)
	}

	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(js)))
	w.Write(n[:])
	w.Write(js)
	for _, nt := range tensors {
		writeData(w, nt.T)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // make the rename durable where the platform allows
		d.Close()
	}
	return nil
}

// writeData writes t's elements little-endian; errors surface at Flush.
func writeData(w *bufio.Writer, t *Tensor) {
	var b [4]byte
	switch t.DType {
	case F32:
		for _, v := range t.F {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			w.Write(b[:])
		}
	case I32:
		for _, v := range t.I {
			binary.LittleEndian.PutUint32(b[:], uint32(v))
			w.Write(b[:])
		}
	case Bool:
		for _, v := range t.B {
			if v {
				w.WriteByte(1)
			} else {
				w.WriteByte(0)
			}
		}
	}
}

// LoadSafetensors reads a safetensors file written by SaveSafetensors or
// any other implementation, returning its tensors by name and its string
// metadata (empty when it has none). It accepts the dtypes F32, I32 and
// BOOL and checks the whole header before reading any data: every entry
// has a known dtype, a shape of non-negative dims, and data offsets inside
// the data section whose length is the dtype's size times the element
// count; no two tensors overlap. A file that fails a check gives an error
// naming the file and, where one is to blame, the tensor; a corrupt file
// never causes a panic.
func LoadSafetensors(path string) (map[string]*Tensor, map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", path, err)
	}
	tensors, meta, err := parseSafetensors(data)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", path, err)
	}
	return tensors, meta, nil
}

// parseSafetensors decodes a whole safetensors file held in data.
func parseSafetensors(data []byte) (map[string]*Tensor, map[string]string, error) {
	if len(data) < 8 {
		return nil, nil, fmt.Errorf("file is %d bytes, too short for a safetensors header", len(data))
	}
	hlen := binary.LittleEndian.Uint64(data[:8])
	if hlen > maxHeader || hlen > uint64(len(data)-8) {
		return nil, nil, fmt.Errorf("header length %d does not fit in the file's %d bytes (or exceeds %d)", hlen, len(data), maxHeader)
	}
	header := data[8 : 8+hlen]
	body := data[8+hlen:]
	entries, order, meta, err := parseHeader(header)
	if err != nil {
		return nil, nil, err
	}

	type span struct {
		name       string
		begin, end int64
	}
	spans := make([]span, 0, len(order))
	for _, name := range order {
		e := entries[name]
		dt, ok := stDTypes[e.DType]
		if !ok {
			return nil, nil, fmt.Errorf("tensor %q: unsupported dtype %q (want F32, I32 or BOOL)", name, e.DType)
		}
		if e.Shape == nil {
			return nil, nil, fmt.Errorf("tensor %q: no shape", name)
		}
		count := int64(1)
		for _, d := range e.Shape {
			if d < 0 || d > math.MaxInt32 {
				return nil, nil, fmt.Errorf("tensor %q: invalid dim %d in shape %v", name, d, e.Shape)
			}
			if d != 0 && count > math.MaxInt64/8/d {
				return nil, nil, fmt.Errorf("tensor %q: shape %v is too large", name, e.Shape)
			}
			count *= d
		}
		if len(e.DataOffsets) != 2 {
			return nil, nil, fmt.Errorf("tensor %q: data_offsets %v, want [begin, end]", name, e.DataOffsets)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < 0 || end < begin || end > int64(len(body)) {
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] outside the %d data bytes", name, begin, end, len(body))
		}
		if want := count * int64(elemSize(dt)); end-begin != want {
			return nil, nil, fmt.Errorf("tensor %q: %s %v needs %d bytes, data_offsets [%d, %d] give %d",
				name, e.DType, e.Shape, want, begin, end, end-begin)
		}
		spans = append(spans, span{name, begin, end})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	for i := 1; i < len(spans); i++ {
		if p, s := spans[i-1], spans[i]; s.begin < p.end {
			return nil, nil, fmt.Errorf("tensors %q [%d, %d] and %q [%d, %d] overlap", p.name, p.begin, p.end, s.name, s.begin, s.end)
		}
	}

	tensors := make(map[string]*Tensor, len(order))
	for _, name := range order {
		e := entries[name]
		dt := stDTypes[e.DType]
		shape := make([]int, len(e.Shape))
		for i, d := range e.Shape {
			shape[i] = int(d)
		}
		raw := body[e.DataOffsets[0]:e.DataOffsets[1]]
		t := New(dt, shape...)
		switch dt {
		case F32:
			for i := range t.F {
				t.F[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		case I32:
			for i := range t.I {
				t.I[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		case Bool:
			for i, b := range raw {
				if b > 1 {
					return nil, nil, fmt.Errorf("tensor %q: byte %d is %d, not a bool", name, i, b)
				}
				t.B[i] = b == 1
			}
		}
		tensors[name] = t
	}
	return tensors, meta, nil
}

// parseHeader decodes the JSON header: an object of tensor entries and an
// optional "__metadata__" object of strings. It returns the entries, their
// names in file order, and the metadata; a repeated name is an error.
func parseHeader(header []byte) (map[string]stEntry, []string, map[string]string, error) {
	src := bytes.NewReader(header)
	dec := json.NewDecoder(src)
	bad := func(err error) error { return fmt.Errorf("header is not valid JSON: %w", err) }
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, nil, bad(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, nil, fmt.Errorf("header is not a JSON object")
	}
	entries := map[string]stEntry{}
	var order []string
	meta := map[string]string{}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, nil, bad(err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, nil, bad(fmt.Errorf("unexpected %v", tok))
		}
		if seen[name] {
			return nil, nil, nil, fmt.Errorf("header names %q twice", name)
		}
		seen[name] = true
		if name == metadataKey {
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, nil, fmt.Errorf("header: __metadata__ is not an object of strings: %w", err)
			}
			if meta == nil {
				meta = map[string]string{}
			}
			continue
		}
		var e stEntry
		if err := dec.Decode(&e); err != nil {
			return nil, nil, nil, fmt.Errorf("tensor %q: bad header entry: %w", name, err)
		}
		entries[name] = e
		order = append(order, name)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, nil, nil, bad(errors.Join(err, fmt.Errorf("unterminated object")))
	}
	// Only padding may follow the object.
	rest, _ := io.ReadAll(io.MultiReader(dec.Buffered(), src))
	if len(bytes.TrimRight(rest, " \t\r\n")) > 0 {
		return nil, nil, nil, fmt.Errorf("header has trailing bytes after its JSON object")
	}
	return entries, order, meta, nil
}
