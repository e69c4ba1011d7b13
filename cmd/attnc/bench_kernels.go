package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	rt "github.com/attnc/attnc/runtime"
)

// The attention shapes of attnc bench -kernels, those of the peers'
// benchmark (bench/peers/bench.py): batch 1, 8 heads of 64.
const (
	benchHeads = 8
	benchDHead = 64
)

// A kernelCase is one workload of attnc bench -kernels.
type kernelCase struct {
	name     string
	op       string // "matmul" or "attention"
	n        int    // matrix size, or sequence length
	mask     string // attention: "full", "causal" or "window"
	window   int    // the sliding window's width
	backward bool   // attention forward and backward
}

// kernelCases lists the cases of -kernels; quick scales the sizes down
// for a smoke test.
func kernelCases(quick bool) []kernelCase {
	mm, full1, full2, causal, long, w := []int{1024, 2048}, 1024, 4096, 4096, 8192, 256
	if quick {
		mm, full1, full2, causal, long, w = []int{128, 256}, 128, 256, 256, 512, 32
	}
	var cs []kernelCase
	for _, n := range mm {
		cs = append(cs, kernelCase{name: fmt.Sprintf("matmul-%d", n), op: "matmul", n: n})
	}
	for _, a := range []kernelCase{
		{mask: "full", n: full1}, {mask: "full", n: full2}, {mask: "causal", n: causal}, {mask: "window", n: long, window: w},
	} {
		for _, bwd := range []bool{false, true} {
			a.op, a.backward = "attention", bwd
			pass, mask := "fwd", a.mask
			if bwd {
				pass = "fwdbwd"
			}
			if a.mask == "window" {
				mask = fmt.Sprintf("window%d", a.window)
			}
			a.name = fmt.Sprintf("attn-%s-%s-%d", pass, mask, a.n)
			cs = append(cs, a)
		}
	}
	return cs
}

// pairs counts the (query, key) pairs the case's mask admits, per head.
func (kc kernelCase) pairs() float64 {
	n := float64(kc.n)
	switch kc.mask {
	case "causal":
		return n * (n + 1) / 2
	case "window":
		w := float64(min(kc.window, kc.n))
		return w*(w+1)/2 + (n-w)*w
	}
	return n * n
}

// flops is the useful work of one call: 2n³ for a matmul; for attention,
// two products of d multiply-adds per admitted pair and head forward, and
// three times that forward and backward (the backward's four products),
// as the peers count it. Recomputation is not counted.
func (kc kernelCase) flops() float64 {
	if kc.op == "matmul" {
		n := float64(kc.n)
		return 2 * n * n * n
	}
	f := 4 * kc.pairs() * benchDHead * benchHeads
	if kc.backward {
		f *= 3
	}
	return f
}

// attnSpec is the AttnSpec the compiler writes for the case's mask, with
// the tile classification its interval analysis proves and the key spans
// per query it derives (see the Go renderer's attention).
func (kc kernelCase) attnSpec() *rt.AttnSpec {
	s := &rt.AttnSpec{Scale: float32(1 / 8.0), Returns: "out"} // 1/√64
	w := kc.window
	switch kc.mask {
	case "causal":
		s.Mask = func(b, h, q, k int) bool { return k <= q }
		s.Rows = func(b, h, q int) rt.KeySpans { return rt.SpanBelow(q + 1) }
		s.Tile = func(b, h, q0, q1, k0, k1 int) rt.TileKind {
			qIv, kIv := rt.IvRange(q0, q1), rt.IvRange(k0, k1)
			return rt.IvTile(rt.IvLe(kIv, qIv))
		}
	case "window":
		s.Mask = func(b, h, q, k int) bool { return k <= q && q-k < w }
		s.Rows = func(b, h, q int) rt.KeySpans { return rt.SpansAnd(rt.SpanBelow(q+1), rt.SpanFrom(q-w+1)) }
		s.Tile = func(b, h, q0, q1, k0, k1 int) rt.TileKind {
			qIv, kIv := rt.IvRange(q0, q1), rt.IvRange(k0, k1)
			return rt.IvTile(rt.IvAnd(rt.IvLe(kIv, qIv), rt.IvLt(rt.IvSub(qIv, kIv), rt.IvPoint(float64(w)))))
		}
	}
	return s
}

func randTensor(r *rt.RNG, shape ...int) *rt.Tensor {
	t := rt.New(rt.F32, shape...)
	for i := range t.F {
		t.F[i] = r.Normal()
	}
	return t
}

// prepare makes the case's inputs and returns the call to time.
func (kc kernelCase) prepare() func() {
	r := rt.NewRNG(1)
	if kc.op == "matmul" {
		a, b := randTensor(r, kc.n, kc.n), randTensor(r, kc.n, kc.n)
		return func() { rt.MatMul(a, b) }
	}
	shape := []int{1, benchHeads, kc.n, benchDHead}
	q, k, v, dy := randTensor(r, shape...), randTensor(r, shape...), randTensor(r, shape...), randTensor(r, shape...)
	spec := kc.attnSpec()
	if !kc.backward {
		return func() { rt.Attention(q, k, v, spec) }
	}
	return func() { attentionForwardBackward(q, k, v, dy, spec) }
}

// attentionForwardBackward is what the code generated for a training
// step runs for one attention op: the forward, which also returns the
// row log-sum-exp, the row sums D = rowsum(dy ∘ out), and one
// AttentionGrad for q, k and v together (two passes over the score
// tiles). It follows the renderer, so the benchmark measures what a model
// pays.
func attentionForwardBackward(q, k, v, dy *rt.Tensor, spec *rt.AttnSpec) {
	out, lse := rt.AttentionWithLSE(q, k, v, spec)
	rows := rt.New(rt.F32, lse.Shape...)
	d := out.Shape[len(out.Shape)-1]
	for i := range rows.F {
		var s float32
		for j, o := range out.F[i*d : (i+1)*d] {
			s += o * dy.F[i*d+j]
		}
		rows.F[i] = s
	}
	rt.AttentionGrad(q, k, v, lse, rows, dy, spec, rt.AttnGradWant{Q: true, K: true, V: true})
}

// kernelResult is one case measured.
type kernelResult struct {
	ms, gflops, peakMiB, allocMiB float64
	reps                          int
}

// measure warms the case up with one call, whose memory it measures, and
// times reps calls (or at least 3 and minTime).
func (kc kernelCase) measure(reps int, minTime time.Duration) kernelResult {
	call := kc.prepare()
	mem := rt.MeasureMemory(call)
	var times []float64
	start := time.Now()
	for {
		if reps > 0 && len(times) >= reps {
			break
		}
		if reps <= 0 && len(times) >= 3 && (time.Since(start) >= minTime || len(times) >= 101) {
			break
		}
		t0 := time.Now()
		call()
		times = append(times, time.Since(t0).Seconds())
	}
	sort.Float64s(times)
	med := times[len(times)/2]
	return kernelResult{ms: med * 1e3, gflops: kc.flops() / med / 1e9, reps: len(times),
		peakMiB: float64(mem.Peak) / (1 << 20), allocMiB: float64(mem.Allocated) / (1 << 20)}
}

// peerResult is a case measured by the peers' script.
type peerResult struct {
	ms, gflops, peakMiB float64
	hasPeak             bool
	err                 string
}

// kernelRecord is one line of -kernels -json.
type kernelRecord struct {
	Case     string   `json:"case"`
	MS       float64  `json:"ms"`
	GFLOPS   float64  `json:"gflops"`
	PeakMiB  float64  `json:"peak_mib"`
	AllocMiB float64  `json:"alloc_mib"`
	Reps     int      `json:"reps"`
	Flops    float64  `json:"flops"`
	Threads  int      `json:"threads"`
	TorchMS  *float64 `json:"torch_ms,omitempty"`
	TorchGF  *float64 `json:"torch_gflops,omitempty"`
	TorchMiB *float64 `json:"torch_peak_mib,omitempty"`
	Speedup  *float64 `json:"speedup_vs_torch,omitempty"`
	TorchErr string   `json:"torch_error,omitempty"`
}

// benchKernels runs -kernels (and -peers).
func (c *cli) benchKernels(f *benchFlags) int {
	cases := kernelCases(*f.quick)
	if *f.run != "" {
		re := regexp.MustCompile(*f.run) // check() refused one that does not compile
		var keep []kernelCase
		for _, kc := range cases {
			if re.MatchString(kc.name) {
				keep = append(keep, kc)
			}
		}
		if len(keep) == 0 {
			var names []string
			for _, kc := range cases {
				names = append(names, kc.name)
			}
			return c.usageError("bench", "-run %q matches no case (cases: %s)", *f.run, strings.Join(names, ", "))
		}
		cases = keep
	}
	minTime := time.Second
	if f.given["min-time"] {
		minTime = *f.minTime
	}
	var peer *peerRunner
	if *f.peers {
		var err error
		if peer, err = newPeerRunner(*f.shared, *f.python, f.given["python"]); err != nil {
			fmt.Fprintf(c.stderr, "attnc bench -peers: %v\n", err)
			return exitError
		}
	}
	threads := goruntime.GOMAXPROCS(0)
	if !*f.json {
		fmt.Fprintf(c.stdout, "attnc bench -kernels: B=1, H=%d, d=%d, f32; %s; GOMAXPROCS %d; medians of the timed calls\n", benchHeads, benchDHead, cpuName(), threads)
		if peer != nil {
			fmt.Fprintf(c.stdout, "peers: PyTorch CPU, tuned (%s), each case right after attnc's\n", peer.script)
			fmt.Fprintf(c.stdout, "%-28s %10s %10s %8s %10s %10s\n", "case", "attnc ms", "torch ms", "speed", "attnc MiB", "torch MiB")
		} else {
			fmt.Fprintf(c.stdout, "%-28s %10s %9s %9s %10s %5s\n", "case", "ms", "GFLOP/s", "peak MiB", "alloc MiB", "reps")
		}
	}
	enc := json.NewEncoder(c.stdout)
	for _, kc := range cases {
		res := kc.measure(*f.reps, minTime)
		rec := kernelRecord{Case: kc.name, MS: round6(res.ms), GFLOPS: round3(res.gflops), PeakMiB: round3(res.peakMiB),
			AllocMiB: round3(res.allocMiB), Reps: res.reps, Flops: kc.flops(), Threads: threads}
		var pr *peerResult
		if peer != nil {
			p := peer.run(kc, *f.reps)
			pr = &p
			if p.err != "" {
				rec.TorchErr = p.err
			} else {
				speed := round3(p.ms / res.ms)
				rec.TorchMS, rec.TorchGF, rec.Speedup = &p.ms, &p.gflops, &speed
				if p.hasPeak {
					rec.TorchMiB = &p.peakMiB
				}
			}
		}
		if *f.json {
			if err := enc.Encode(rec); err != nil {
				fmt.Fprintf(c.stderr, "attnc bench: %v\n", err)
				return exitError
			}
			continue
		}
		if pr == nil {
			fmt.Fprintf(c.stdout, "%-28s %10.2f %9.2f %9.1f %10.1f %5d\n", kc.name, res.ms, res.gflops, res.peakMiB, res.allocMiB, res.reps)
			continue
		}
		torchMS, speed, torchMiB := "—", "—", "—"
		if pr.err == "" {
			torchMS, speed = fmt.Sprintf("%.2f", pr.ms), fmt.Sprintf("%.2f×", pr.ms/res.ms)
			if pr.hasPeak {
				torchMiB = fmt.Sprintf("%.1f", pr.peakMiB)
			}
		}
		fmt.Fprintf(c.stdout, "%-28s %10.2f %10s %8s %10.1f %10s", kc.name, res.ms, torchMS, speed, res.peakMiB, torchMiB)
		if pr.err != "" {
			fmt.Fprintf(c.stdout, "  (torch: %s)", pr.err)
		}
		fmt.Fprintln(c.stdout)
	}
	if !*f.json {
		fmt.Fprintln(c.stdout, "GFLOP/s: 2n³ a matmul; attention 4·pairs·d·H forward (pairs the mask admits), 3× that forward+backward.")
		fmt.Fprintln(c.stdout, "peak MiB: sampled peak growth of the Go heap in one call; alloc MiB: all bytes it allocated.")
		if peer != nil {
			fmt.Fprintln(c.stdout, "speed: torch ms / attnc ms (above 1: attnc is faster); torch MiB: growth of its peak RSS.")
		}
	}
	return exitOK
}

func round3(x float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', 3, 64), 64)
	return v
}

// round6 rounds milliseconds to the nanosecond: the quick cases take tens
// of µs, where three decimals would lose a few per cent (and the speed
// ratio, computed unrounded, would disagree with torch_ms / ms).
func round6(x float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', 6, 64), 64)
	return v
}

// cpuName is the processor's model name where the system says (Linux),
// else the architecture.
func cpuName() string {
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return goruntime.GOOS + "/" + goruntime.GOARCH
}

// peersInstall is what -peers needs on a Debian-like system.
const peersInstall = "apt-get install -y python3-torch python3-numpy libopenblas0-pthread libjemalloc2"

// peerRunner runs cases in the peers' script, in its tuned configuration.
type peerRunner struct {
	python, script string
	env            []string
}

// newPeerRunner finds the peers' script and checks that the interpreter
// has torch and numpy and that jemalloc is there, before any case runs.
// Unless the interpreter was chosen (-python), Debian's /usr/bin/python3,
// where python3-torch installs, is tried after the python3 on PATH (which
// may be another one, as with pyenv).
func newPeerRunner(shared, python string, chosen bool) (*peerRunner, error) {
	script, err := findPeerScript(shared)
	if err != nil {
		return nil, err
	}
	candidates := []string{python}
	if !chosen {
		candidates = append(candidates, "/usr/bin/python3")
	}
	var py string
	var why []string
	for _, cand := range candidates {
		p, err := exec.LookPath(cand)
		if err != nil {
			why = append(why, fmt.Sprintf("no %s", cand))
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, p, "-c", "import torch, numpy").CombinedOutput()
		cancel()
		if err == nil {
			py = p
			break
		}
		why = append(why, fmt.Sprintf("%s cannot import torch and numpy (%s)", p, lastLine(out, err)))
	}
	if py == "" {
		return nil, fmt.Errorf("%s: the peers run PyTorch CPU; install it with\n  %s\n(or name an interpreter that has torch and numpy with -python)",
			strings.Join(why, "; "), peersInstall)
	}
	jemalloc := findJemalloc()
	if jemalloc == "" {
		return nil, fmt.Errorf("no libjemalloc.so.2 found: the peers' tuned configuration preloads it; install it with\n  %s", peersInstall)
	}
	// The tuned configuration of bench/peers (see its README): OpenBLAS
	// picks its kernels itself, jemalloc keeps freed pages, OpenMP
	// threads sleep when idle.
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "OPENBLAS_CORETYPE" && k != "OPENBLAS_L2_SIZE" && k != "LD_PRELOAD" && k != "MALLOC_CONF" && k != "OMP_WAIT_POLICY" {
			env = append(env, kv)
		}
	}
	env = append(env, "LD_PRELOAD="+jemalloc, "MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1", "OMP_WAIT_POLICY=PASSIVE")
	return &peerRunner{python: py, script: script, env: env}, nil
}

// findPeerScript returns shared/bench/peers/bench.py, looking in the
// shared folder given, else in a folder named shared beside the current
// directory or any directory above it (../shared from the project).
func findPeerScript(shared string) (string, error) {
	rel := filepath.Join("bench", "peers", "bench.py")
	if shared != "" {
		p := filepath.Join(shared, rel)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("-shared %s: no %s there", shared, rel)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "shared", rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no shared/%s beside this directory or any above it: give the shared folder with -shared DIR", filepath.ToSlash(rel))
		}
		dir = parent
	}
}

// jemallocPaths are the patterns findJemalloc tries.
var jemallocPaths = []string{"/usr/lib/*/libjemalloc.so.2", "/usr/lib/libjemalloc.so.2", "/usr/lib64/libjemalloc.so.2", "/usr/local/lib/libjemalloc.so.2"}

// findJemalloc returns the path of libjemalloc.so.2 in the usual library
// directories, or "".
func findJemalloc() string {
	for _, pattern := range jemallocPaths {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return m[0]
		}
	}
	return ""
}

// run measures kc in the peers' script: bench.py matmul, or attn-one
// (which times the forward, then forward+backward up to --bwd-max-n).
// Dense attention's backward beyond N=4096 needs more memory than the
// peers' machine has, so those cases are not run (bench.py's default).
func (p *peerRunner) run(kc kernelCase, reps int) peerResult {
	args := []string{p.script}
	pass := "fwd"
	switch {
	case kc.op == "matmul":
		args = append(args, "matmul", "--sizes", strconv.Itoa(kc.n))
		if reps > 0 {
			args = append(args, "--reps", strconv.Itoa(reps))
		}
	case kc.backward && kc.n > 4096:
		return peerResult{err: "not run: dense attention's backward at this N needs tens of GiB"}
	default:
		bwdMax := 0
		if kc.backward {
			bwdMax, pass = kc.n, "fwd+bwd"
		}
		args = append(args, "attn-one", "--kind", kc.mask, "--n", strconv.Itoa(kc.n), "--d", strconv.Itoa(benchDHead),
			"--heads", strconv.Itoa(benchHeads), "--window", strconv.Itoa(max(kc.window, 1)), "--bwd-max-n", strconv.Itoa(bwdMax),
			"--reps", strconv.Itoa(max(reps, 0)))
	}
	args = append(args, "--mode", "tuned")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.python, args...)
	cmd.Env = p.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return peerResult{err: lastLine(stderr.Bytes(), err)}
	}
	return parsePeer(out, kc.op, pass)
}

// parsePeer picks the record of the pass wanted from bench.py's JSON
// lines.
func parsePeer(out []byte, op, pass string) peerResult {
	for _, line := range bytes.Split(out, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("{")) {
			continue
		}
		var r struct {
			Pass    string   `json:"pass"`
			MS      float64  `json:"median_ms"`
			GFLOPS  float64  `json:"gflops"`
			PeakMiB *float64 `json:"peak_rss_delta_mib"`
			Error   string   `json:"error"`
		}
		if json.Unmarshal(line, &r) != nil {
			continue
		}
		if op == "attention" && r.Pass != pass {
			continue
		}
		if r.Error != "" {
			return peerResult{err: r.Error}
		}
		if r.MS <= 0 {
			continue
		}
		res := peerResult{ms: r.MS, gflops: r.GFLOPS}
		if r.PeakMiB != nil {
			res.peakMiB, res.hasPeak = *r.PeakMiB, true
		}
		return res
	}
	return peerResult{err: "no " + pass + " result in the script's output"}
}

// lastLine is the last non-empty line of a command's output, else its
// error.
func lastLine(out []byte, err error) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.String()
	}
	return err.Error()
}
