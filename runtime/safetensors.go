package runtime

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
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

// checksumKey is the metadata entry in which SaveSafetensors records a
// checksum of the file, and which LoadSafetensors verifies when present:
// the lowercase hex SHA-256 of the header without this entry (as
// canonicalHeader writes it) followed by the data section. Covering the
// header too means a flipped byte in a name, a shape or a metadata value
// (a checkpoint's step or RNG state) is caught, not only one in the
// weights. Files from other writers, without the entry, load unchecked.
const checksumKey = "attnc.sha256"

// canonicalHeader is the header that the checksum covers: the tensor
// entries and the metadata other than the checksum (left out when
// empty), as compact JSON with sorted keys.
func canonicalHeader(entries map[string]stEntry, meta map[string]string) []byte {
	header := make(map[string]any, len(entries)+1)
	for name, e := range entries {
		header[name] = e
	}
	if len(meta) > 0 {
		header[metadataKey] = meta
	}
	b, _ := json.Marshal(header) // strings and integers always marshal
	return b
}

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
	if _, ok := meta[checksumKey]; ok {
		return fmt.Errorf("save %s: metadata key %q is reserved for the checksum", path, checksumKey)
	}
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
	// The checksum covers the header without the checksum, in the
	// canonical form LoadSafetensors rebuilds from what it parses, and
	// then the data. Parsing what json.Marshal wrote, rather than using
	// it, keeps the two equal where Marshal is not its own inverse (it
	// writes invalid UTF-8 in a name as an escaped U+FFFD).
	plain, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	entries, _, parsedMeta, err := parseHeader(plain)
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	sum := sha256.New()
	sum.Write(canonicalHeader(entries, parsedMeta))
	hw := bufio.NewWriterSize(sum, 1<<16)
	for _, nt := range tensors {
		writeData(hw, nt.T)
	}
	hw.Flush()
	withSum := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		withSum[k] = v
	}
	withSum[checksumKey] = hex.EncodeToString(sum.Sum(nil))
	header[metadataKey] = withSum
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
// BOOL and checks the whole header against the file's real size before
// reading any data: every entry has a known dtype, a shape of
// non-negative dims, and data offsets whose length is the dtype's size
// times the element count; the tensors tile the data section exactly (no
// overlaps, gaps or trailing bytes, as the format requires). Only then
// does it read each tensor at its offsets, so memory is bounded by what
// the header describes and the file really holds: a huge or sparse file
// with a header that lies is an error, not an allocation, and anything
// but a regular file (a device, a named pipe) is refused. When the
// metadata holds a checksum (checksumKey, written by SaveSafetensors) it
// is verified, so flipped bytes are an error; the key is not returned.
// A file that fails a check gives an error naming the file and, where one
// is to blame, the tensor; a corrupt file never causes a panic.
//
// LoadSafetensors allocates every tensor the header honestly describes;
// a caller that knows what it expects (a model's weights) should use
// LoadSafetensorsChecked, so a file describing 40 GB of tensors it does
// not want is refused before any is allocated.
func LoadSafetensors(path string) (map[string]*Tensor, map[string]string, error) {
	return LoadSafetensorsChecked(path, nil)
}

// A TensorCheck tells LoadSafetensorsChecked what to do with the tensor
// name of dtype dt and the given shape, as the file's header describes
// it: keep it (read and return it), skip it (keep false), or refuse the
// file (a non-nil error, which LoadSafetensorsChecked returns naming the
// file and the tensor). shape is the check's to keep.
type TensorCheck func(name string, dt DType, shape []int) (keep bool, err error)

// LoadSafetensorsChecked is LoadSafetensors for a caller that knows what
// the file should hold: after the header has passed LoadSafetensors'
// checks and before any tensor is allocated, it calls check once for
// every tensor, in header order, and stops at the first error. It then
// allocates and returns only the tensors check kept, so memory is bounded
// by what the caller expects, not by what the file describes. Tensors it
// skips are never allocated: when there is a checksum they are still
// streamed through it in small chunks, so a flipped byte anywhere is an
// error; without one they are not read at all. A check that keeps
// nothing reads only the metadata (verified like the rest). A nil check
// keeps every tensor. That every expected tensor is present is for the
// caller to check in the map returned.
func LoadSafetensorsChecked(path string, check TensorCheck) (map[string]*Tensor, map[string]string, error) {
	f, size, err := openRegularFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", path, err)
	}
	defer f.Close()
	tensors, meta, err := readSafetensors(f, size, check)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", path, err)
	}
	return tensors, meta, nil
}

// CheckType returns nil when dt and shape are wantDT and want, and
// otherwise an error saying what the tensor is and what was wanted
// ("is f32[3 4], want f32[4 4]"): the usual body of a TensorCheck for a
// tensor the caller knows.
func CheckType(dt DType, shape []int, wantDT DType, want []int) error {
	if dt == wantDT && slices.Equal(shape, want) {
		return nil
	}
	return fmt.Errorf("is %s, want %s", typeString(dt, shape), typeString(wantDT, want))
}

// readChunk is how many bytes of a tensor readSafetensors reads at once.
const readChunk = 1 << 20

// readSafetensors decodes the safetensors file of size bytes that r
// reads, keeping the tensors check keeps (all when check is nil).
func readSafetensors(r io.ReaderAt, size int64, check TensorCheck) (map[string]*Tensor, map[string]string, error) {
	if size < 8 {
		return nil, nil, fmt.Errorf("file is %d bytes, too short for a safetensors header", size)
	}
	var n [8]byte
	if _, err := r.ReadAt(n[:], 0); err != nil {
		return nil, nil, fmt.Errorf("reading the header length: %w", eofIsTruncation(err))
	}
	hlen := binary.LittleEndian.Uint64(n[:])
	if hlen > maxHeader || hlen > uint64(size-8) {
		return nil, nil, fmt.Errorf("header length %d does not fit in the file's %d bytes (or exceeds %d)", hlen, size, maxHeader)
	}
	header := make([]byte, hlen)
	if _, err := r.ReadAt(header, 8); err != nil {
		return nil, nil, fmt.Errorf("reading the header: %w", eofIsTruncation(err))
	}
	base, bodySize := 8+int64(hlen), size-8-int64(hlen)
	entries, order, meta, err := parseHeader(header)
	if err != nil {
		return nil, nil, err
	}

	type span struct {
		name       string
		dt         DType
		shape      []int
		begin, end int64
		keep       bool
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
		if begin < 0 || end < begin || end > bodySize {
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] outside the %d data bytes (the file is truncated or its header is corrupt)", name, begin, end, bodySize)
		}
		if want := count * int64(elemSize(dt)); end-begin != want {
			return nil, nil, fmt.Errorf("tensor %q: %s %v needs %d bytes, data_offsets [%d, %d] give %d",
				name, e.DType, e.Shape, want, begin, end, end-begin)
		}
		shape := make([]int, len(e.Shape))
		for i, d := range e.Shape {
			shape[i] = int(d)
		}
		spans = append(spans, span{name: name, dt: dt, shape: shape, begin: begin, end: end, keep: true})
	}
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	var covered int64
	for i, s := range spans {
		switch {
		case s.begin < covered:
			p := spans[i-1]
			return nil, nil, fmt.Errorf("tensors %q [%d, %d] and %q [%d, %d] overlap", p.name, p.begin, p.end, s.name, s.begin, s.end)
		case s.begin > covered:
			return nil, nil, fmt.Errorf("data bytes [%d, %d] before tensor %q belong to no tensor (the header is corrupt)", covered, s.begin, s.name)
		}
		covered = s.end
	}
	if covered != bodySize {
		return nil, nil, fmt.Errorf("the tensors cover %d of its %d data bytes (the header is corrupt, or bytes were appended)", covered, bodySize)
	}

	// The caller decides, from the header alone, what is read; in header
	// order, so the first tensor it refuses is the one a reader of the
	// header meets first.
	if check != nil {
		index := make(map[string]int, len(spans))
		for i, s := range spans {
			index[s.name] = i
		}
		for _, name := range order {
			s := &spans[index[name]]
			keep, err := check(name, s.dt, slices.Clone(s.shape))
			if err != nil {
				return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
			}
			s.keep = keep
		}
	}

	// The header holds what the data needs; read it tensor by tensor,
	// in file order, hashing as it goes when there is a checksum.
	want, hasSum := meta[checksumKey]
	delete(meta, checksumKey)
	var sum hash.Hash
	if hasSum {
		sum = sha256.New()
		sum.Write(canonicalHeader(entries, meta))
	}
	var badBool error // reported after the checksum, which explains it better
	tensors := make(map[string]*Tensor, len(spans))
	buf := make([]byte, min(readChunk, covered))
	for _, s := range spans {
		if !s.keep && sum == nil {
			continue // nothing to verify: the bytes need not be read
		}
		var t *Tensor
		if s.keep {
			t = New(s.dt, s.shape...)
		}
		size := int64(elemSize(s.dt))
		for off := s.begin; off < s.end; {
			raw := buf[:min(int64(len(buf)), s.end-off)]
			if _, err := r.ReadAt(raw, base+off); err != nil {
				return nil, nil, fmt.Errorf("tensor %q: %w", s.name, eofIsTruncation(err))
			}
			if sum != nil {
				sum.Write(raw)
			}
			if t != nil {
				if err := decode(t, raw, int((off-s.begin)/size)); err != nil && badBool == nil {
					badBool = fmt.Errorf("tensor %q: %w", s.name, err)
				}
			}
			off += int64(len(raw))
		}
		if t != nil {
			tensors[s.name] = t
		}
	}
	if sum != nil && hex.EncodeToString(sum.Sum(nil)) != want {
		return nil, nil, errors.New("data checksum mismatch: the file is corrupt")
	}
	if badBool != nil {
		return nil, nil, badBool
	}
	return tensors, meta, nil
}

// decode stores the little-endian elements in raw into t from element i
// on. A byte of a bool tensor that is neither 0 nor 1 is stored as false
// and reported (the first one) in the error.
func decode(t *Tensor, raw []byte, i int) (err error) {
	switch t.DType {
	case F32:
		for j := range len(raw) / 4 {
			t.F[i+j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
		}
	case I32:
		for j := range len(raw) / 4 {
			t.I[i+j] = int32(binary.LittleEndian.Uint32(raw[4*j:]))
		}
	case Bool:
		for j, b := range raw {
			if b > 1 && err == nil {
				err = fmt.Errorf("byte %d is %d, not a bool", i+j, b)
			}
			t.B[i+j] = b == 1
		}
	}
	return err
}

// eofIsTruncation turns the EOF of a read that the file's size promised
// into an error that says what happened (the file shrank while it was
// read).
func eofIsTruncation(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("the file is truncated")
	}
	return err
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
