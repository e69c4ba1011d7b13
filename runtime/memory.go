package runtime

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
)

// A Peak estimates the most memory a generated function's tensors take
// at once, before the function runs: Alloc for each value it computes,
// Free at each value's last use, in program order. Sizes saturate at
// math.MaxInt64 instead of overflowing, so a shape too large to count is
// simply too large. The zero Peak is ready to use.
type Peak struct {
	live, max int64
	size      map[int]int64
}

// Alloc records that value id, of elemBytes-byte elements and the given
// dims, comes alive. A negative dim counts as 0 (the kernel that would
// compute it reports the error).
func (p *Peak) Alloc(id int, elemBytes int64, dims ...int) {
	n := elemBytes
	for _, d := range dims {
		n = satMul(n, int64(max(d, 0)))
	}
	if p.size == nil {
		p.size = map[int]int64{}
	}
	p.size[id] = n
	p.live = satAdd(p.live, n)
	p.max = max(p.max, p.live)
}

// Free records that the values ids are dead.
func (p *Peak) Free(ids ...int) {
	for _, id := range ids {
		if p.live < math.MaxInt64 {
			p.live -= p.size[id]
		}
		delete(p.size, id)
	}
}

// Max returns the largest total of live bytes seen.
func (p *Peak) Max() int64 { return p.max }

func satMul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// DefaultMemoryLimit is the memory limit a generated Model starts with:
// the Go runtime's soft limit when one is set (GOMEMLIMIT or
// debug.SetMemoryLimit), else half of the memory this process may use
// (the machine's, or its cgroup's when that is smaller, on Linux), else
// 16 GiB. Half, because Go's heap grows to about twice its live data
// before it collects (GOGC=100), and the estimate counts live tensors.
func DefaultMemoryLimit() int64 {
	if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 {
		return l
	}
	if total := systemMemory(); total > 0 {
		return total / 2
	}
	return 16 << 30
}

// systemMemory returns the bytes of memory available to the process, or
// 0 when it cannot tell. It is read once: DefaultMemoryLimit is asked on
// every call of a generated function.
var systemMemory = sync.OnceValue(readSystemMemory)

func readSystemMemory() int64 {
	var total int64
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb > 0 && kb < math.MaxInt64/1024 {
					total = kb * 1024
				}
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			total = n
		}
	}
	return total
}

// CheckMemory returns an error when need bytes exceed limit (limit ≤ 0:
// no limit), for the function fn whose call was estimated.
func CheckMemory(fn string, need, limit int64) error {
	if limit <= 0 || need <= limit {
		return nil
	}
	return fmt.Errorf("%s: these input sizes need about %s for tensors, more than the memory limit of %s; use smaller inputs (a smaller batch), or raise the limit with SetMemoryLimit", fn, FormatBytes(need), FormatBytes(limit))
}

// FormatBytes prints n bytes with a binary unit: "1.5 GiB".
func FormatBytes(n int64) string {
	if n == math.MaxInt64 {
		return "more than 8 EiB"
	}
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}
