package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/attnc/attnc/runtime"
)

// Tokens of the pairs task: the sequence tasks' 0 (pad) and 1 (start of
// the target), 2 for the end of the target, and byte b as b + 3.
const (
	EOS        = 2
	byteOffset = 3
	// PairsVocab is the pairs task's vocabulary: the three above and
	// the 256 bytes.
	PairsVocab = 256 + byteOffset
)

// pairsTask trains on source/target pairs of text read from a file: TSV
// (a line is source, a tab, target) or JSONL (a line is {"src": …,
// "tgt": …}), by the file's extension (.jsonl, .json: JSONL). Its
// batches are padded to their longest pair: src i32[B, S] (the bytes, 0
// after the end), tgt i32[B, T] (1, the bytes, 2, then 0), and their
// lengths, src_len and tgt_len i32[B] (tgt_len counts the 1 and the 2),
// which a model reads for its padding masks. Pairs longer than len bytes
// on either side are cut to len. val, when set, is the held-out set: the
// file given with -val, or the file's last tenth of pairs.
type pairsTask struct {
	pairs  [][2][]byte
	length int
	path   string
	cut    int // pairs cut to len
	val    *pairsTask
}

func newPairsTask(p Params) (Task, error) {
	path := p.Strings["data"]
	if path == "" {
		return nil, fmt.Errorf("task pairs needs a file of source/target pairs: pass --data FILE (TSV: source<TAB>target a line; JSONL: {\"src\": …, \"tgt\": …} a line)")
	}
	length := p.int("len", 64)
	t, err := readPairs(path, length)
	if err != nil {
		return nil, err
	}
	if vpath := p.Strings["val"]; vpath != "" {
		if t.val, err = readPairs(vpath, length); err != nil {
			return nil, err
		}
		return t, nil
	}
	held := len(t.pairs) / 10
	if held < 1 {
		return nil, fmt.Errorf("task pairs: %s has %d pairs, too few to hold out a tenth for evaluation (it needs at least 10); pass a held-out file with -val FILE", path, len(t.pairs))
	}
	cut := len(t.pairs) - held
	t.val = &pairsTask{pairs: t.pairs[cut:], length: length, path: fmt.Sprintf("the last %d pairs of %s", held, path)}
	t.pairs = t.pairs[:cut]
	return t, nil
}

// readPairs reads a file of pairs, each side cut to length bytes.
func readPairs(path string, length int) (*pairsTask, error) {
	b, err := runtime.ReadRegularFile(path, maxLMData, "the pairs task's data")
	if err != nil {
		return nil, fmt.Errorf("task pairs: %w", err)
	}
	ext := strings.ToLower(filepath.Ext(path))
	jsonl := ext == ".jsonl" || ext == ".json"
	t := &pairsTask{length: length, path: path}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<16), 1<<26)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		var src, tgt []byte
		if jsonl {
			var rec struct {
				Src *string `json:"src"`
				Tgt *string `json:"tgt"`
			}
			if err := json.Unmarshal(text, &rec); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", path, line, err)
			}
			if rec.Src == nil || rec.Tgt == nil {
				return nil, fmt.Errorf("%s:%d: a pair needs both \"src\" and \"tgt\"", path, line)
			}
			src, tgt = []byte(*rec.Src), []byte(*rec.Tgt)
		} else {
			var ok bool
			src, tgt, ok = bytes.Cut(text, []byte("\t"))
			if !ok {
				return nil, fmt.Errorf("%s:%d: no tab between source and target (a line of a TSV file is source<TAB>target; name a JSONL file .jsonl)", path, line)
			}
		}
		if len(src) == 0 || len(tgt) == 0 {
			return nil, fmt.Errorf("%s:%d: the source and the target must not be empty", path, line)
		}
		if len(src) > length || len(tgt) > length {
			t.cut++
			src, tgt = src[:min(len(src), length)], tgt[:min(len(tgt), length)]
		}
		t.pairs = append(t.pairs, [2][]byte{append([]byte(nil), src...), append([]byte(nil), tgt...)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(t.pairs) == 0 {
		return nil, fmt.Errorf("task pairs: %s holds no pairs", path)
	}
	return t, nil
}

func (t *pairsTask) Name() string { return "pairs" }
func (t *pairsTask) Describe() string {
	s := fmt.Sprintf("%d source/target pairs of %s (bytes as tokens 3…258, each side at most %d)", len(t.pairs), t.path, t.length)
	if t.cut > 0 {
		s += fmt.Sprintf(", %d cut to that length", t.cut)
	}
	return s
}
func (t *pairsTask) Inputs() []InputSpec {
	return []InputSpec{{"src", runtime.I32}, {"tgt", runtime.I32}, {"src_len", runtime.I32}, {"tgt_len", runtime.I32}}
}

// HeldOutTask returns the task over the held-out pairs.
func (t *pairsTask) HeldOutTask() Task {
	if t.val == nil {
		return t
	}
	return t.val
}

// Batch draws n pairs and pads them to the batch's longest.
func (t *pairsTask) Batch(rng *rand.Rand, n int) Batch {
	picked := make([][2][]byte, n)
	s, l := 1, 1
	for i := range picked {
		picked[i] = t.pairs[rng.IntN(len(t.pairs))]
		s, l = max(s, len(picked[i][0])), max(l, len(picked[i][1])+2)
	}
	src, tgt := runtime.New(runtime.I32, n, s), runtime.New(runtime.I32, n, l)
	srcLen, tgtLen := runtime.New(runtime.I32, n), runtime.New(runtime.I32, n)
	for i, p := range picked {
		for j, b := range p[0] {
			src.I[i*s+j] = int32(b) + byteOffset
		}
		row := tgt.I[i*l : (i+1)*l]
		row[0] = BOS
		for j, b := range p[1] {
			row[1+j] = int32(b) + byteOffset
		}
		row[1+len(p[1])] = EOS
		srcLen.I[i], tgtLen.I[i] = int32(len(p[0])), int32(len(p[1])+2)
	}
	return Batch{"src": src, "tgt": tgt, "src_len": srcLen, "tgt_len": tgtLen}
}
