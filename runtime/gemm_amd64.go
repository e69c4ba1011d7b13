//go:build amd64 && !purego

package runtime

// The runtime detects CPU features itself, with two instructions of its
// own assembly (cpuid, xgetbv), rather than with golang.org/x/sys/cpu:
// the runtime is copied into every generated package and trainer, inside
// the user's module, and may import only the standard library.

// detectKernels returns the assembly micro-kernels this CPU and its
// operating system support, fastest first.
func detectKernels() []*gemmKernel {
	f := detectCPU(cpuid, xgetbv)
	var ks []*gemmKernel
	if f.avx512 {
		mc, kc, nc := cacheBlocks(14, 32, f.l1, f.l2, f.l3)
		ks = append(ks, &gemmKernel{name: "avx512", mr: 14, nr: 32, mc: mc, kc: kc, nc: nc, run: runAVX512, runRows: runRowsAVX512, runCols: runColsAVX512,
			runA64: runA64AVX512, runB64: runB64AVX512, rowsA64: runRowsA64AVX512, rowsB64: runRowsB64AVX512,
			half: runHalfAVX512, halfA64: runHalfA64AVX512,
			set: &gemmKernel{name: "avx512-set", mr: 14, nr: 32, mc: mc, kc: kc, nc: nc, run: runSetAVX512, runRows: runRowsSetAVX512, half: runHalfSetAVX512, overwrites: true}})
	}
	if f.avx2 {
		mc, kc, nc := cacheBlocks(6, 16, f.l1, f.l2, f.l3)
		ks = append(ks, &gemmKernel{name: "avx2", mr: 6, nr: 16, mc: mc, kc: kc, nc: nc, run: runAVX2, runRows: runRowsAVX2,
			runA64: runA64AVX2, runB64: runB64AVX2,
			set: &gemmKernel{name: "avx2-set", mr: 6, nr: 16, mc: mc, kc: kc, nc: nc, run: runSetAVX2, overwrites: true}})
	}
	return ks
}

// runAVX512 and runAVX2 check the slices' lengths, which the assembly
// cannot, and call the kernels.
func runAVX512(k int, a, b, c []float32, ldc int) {
	_, _, _ = a[k*14-1], b[k*32-1], c[13*ldc+31]
	gemmKernel14x32AVX512(k, &a[0], &b[0], &c[0], ldc)
}

func runA64AVX512(k int, a, b, c []float32, ldc int) {
	_, _, _ = a[13*64+k-1], b[k*32-1], c[13*ldc+31]
	gemmKernel14x32A64AVX512(k, &a[0], &b[0], &c[0], ldc)
}

func runSetAVX512(k int, a, b, c []float32, ldc int) {
	_, _, _ = a[k*14-1], b[k*32-1], c[13*ldc+31]
	gemmKernel14x32SetAVX512(k, &a[0], &b[0], &c[0], ldc)
}

func runSetAVX2(k int, a, b, c []float32, ldc int) {
	_, _, _ = a[k*6-1], b[k*16-1], c[5*ldc+15]
	gemmKernel6x16SetAVX2(k, &a[0], &b[0], &c[0], ldc)
}

func runB64AVX512(k int, a, b, c []float32, ldc int) {
	_, _, _ = a[k*14-1], b[(k-1)*64+31], c[13*ldc+31]
	gemmKernel14x32B64AVX512(k, &a[0], &b[0], &c[0], ldc)
}

func runB64AVX2(k int, a, b, c []float32, ldc int) {
	_, _, _ = a[k*6-1], b[(k-1)*64+15], c[5*ldc+15]
	gemmKernel6x16B64AVX2(k, &a[0], &b[0], &c[0], ldc)
}

func runA64AVX2(k int, a, b, c []float32, ldc int) {
	_, _, _ = a[5*64+k-1], b[k*16-1], c[5*ldc+15]
	gemmKernel6x16A64AVX2(k, &a[0], &b[0], &c[0], ldc)
}

func runAVX2(k int, a, b, c []float32, ldc int) {
	_, _, _ = a[k*6-1], b[k*16-1], c[5*ldc+15]
	gemmKernel6x16AVX2(k, &a[0], &b[0], &c[0], ldc)
}

// packRows returns the assembly packer of mr-row slivers of A (see
// packA), or nil when there is none for mr or the CPU has no kernel.
// The packers need AVX, which every CPU with a kernel has.
func packRows(mr int) func(k4 int, src *float32, rs int, dst *float32) {
	if len(gemmKernels) == 0 {
		return nil
	}
	switch mr {
	case 14:
		return gemmPackA14
	case 6:
		return gemmPackA6
	}
	return nil
}

// transRows returns the assembly packer of 16 columns of a B stored
// transposed (column j of B a row of the operand) into an nr-wide sliver
// (see packB), or nil when there is none for nr or the CPU has no
// kernel. It needs AVX, which every CPU with a kernel has.
func transRows(nr int) func(k4 int, src *float32, rs int, dst *float32) {
	if len(gemmKernels) == 0 {
		return nil
	}
	switch nr {
	case 32:
		return gemmPackT16x32
	case 16:
		return gemmPackT16x16
	}
	return nil
}

// copyRows returns the assembly copier of rows width elements wide (see
// packA and packB), or nil when there is none for width or the CPU has
// no kernel. The copiers need AVX, which every CPU with a kernel has.
func copyRows(width int) func(k int, src *float32, rs int, dst *float32) {
	if len(gemmKernels) == 0 {
		return nil
	}
	switch width {
	case 32:
		return gemmCopy32
	case 16:
		return gemmCopy16
	case 14:
		return gemmCopy14
	case 6:
		return gemmCopy6
	}
	return nil
}

// The kernels of fewer rows, by their number of rows.
var (
	rowsAVX512 = [...]func(k int, a, b, c *float32, ldc int){nil,
		gemmKernel14x32AVX512h1, gemmKernel14x32AVX512h2, gemmKernel14x32AVX512h3, gemmKernel14x32AVX512h4,
		gemmKernel14x32AVX512h5, gemmKernel14x32AVX512h6, gemmKernel14x32AVX512h7, gemmKernel14x32AVX512h8,
		gemmKernel14x32AVX512h9, gemmKernel14x32AVX512h10, gemmKernel14x32AVX512h11, gemmKernel14x32AVX512h12,
		gemmKernel14x32AVX512h13}
	rowsA64AVX512 = [...]func(k int, a, b, c *float32, ldc int){nil,
		gemmKernel14x32A64AVX512h1, gemmKernel14x32A64AVX512h2, gemmKernel14x32A64AVX512h3, gemmKernel14x32A64AVX512h4, gemmKernel14x32A64AVX512h5, gemmKernel14x32A64AVX512h6, gemmKernel14x32A64AVX512h7, gemmKernel14x32A64AVX512h8, gemmKernel14x32A64AVX512h9, gemmKernel14x32A64AVX512h10, gemmKernel14x32A64AVX512h11, gemmKernel14x32A64AVX512h12, gemmKernel14x32A64AVX512h13}
	rowsB64AVX512 = [...]func(k int, a, b, c *float32, ldc int){nil,
		gemmKernel14x32B64AVX512h1, gemmKernel14x32B64AVX512h2, gemmKernel14x32B64AVX512h3, gemmKernel14x32B64AVX512h4, gemmKernel14x32B64AVX512h5, gemmKernel14x32B64AVX512h6, gemmKernel14x32B64AVX512h7, gemmKernel14x32B64AVX512h8, gemmKernel14x32B64AVX512h9, gemmKernel14x32B64AVX512h10, gemmKernel14x32B64AVX512h11, gemmKernel14x32B64AVX512h12, gemmKernel14x32B64AVX512h13}
	rowsSetAVX512 = [...]func(k int, a, b, c *float32, ldc int){nil,
		gemmKernel14x32SetAVX512h1, gemmKernel14x32SetAVX512h2, gemmKernel14x32SetAVX512h3, gemmKernel14x32SetAVX512h4, gemmKernel14x32SetAVX512h5, gemmKernel14x32SetAVX512h6, gemmKernel14x32SetAVX512h7, gemmKernel14x32SetAVX512h8, gemmKernel14x32SetAVX512h9, gemmKernel14x32SetAVX512h10, gemmKernel14x32SetAVX512h11, gemmKernel14x32SetAVX512h12, gemmKernel14x32SetAVX512h13}
	rowsAVX2 = [...]func(k int, a, b, c *float32, ldc int){nil,
		gemmKernel6x16AVX2h1, gemmKernel6x16AVX2h2, gemmKernel6x16AVX2h3, gemmKernel6x16AVX2h4, gemmKernel6x16AVX2h5}
)

// The kernels of the first 16 columns of a 32-wide sliver of B, by
// their number of rows.
var (
	halfAVX512 = [...]func(k int, a, b, c *float32, ldc int){nil,
		gemmKernel14x16AVX512h1, gemmKernel14x16AVX512h2, gemmKernel14x16AVX512h3, gemmKernel14x16AVX512h4, gemmKernel14x16AVX512h5, gemmKernel14x16AVX512h6, gemmKernel14x16AVX512h7, gemmKernel14x16AVX512h8, gemmKernel14x16AVX512h9, gemmKernel14x16AVX512h10, gemmKernel14x16AVX512h11, gemmKernel14x16AVX512h12, gemmKernel14x16AVX512h13, gemmKernel14x16AVX512h14}
	halfSetAVX512 = [...]func(k int, a, b, c *float32, ldc int){nil,
		gemmKernel14x16SetAVX512h1, gemmKernel14x16SetAVX512h2, gemmKernel14x16SetAVX512h3, gemmKernel14x16SetAVX512h4, gemmKernel14x16SetAVX512h5, gemmKernel14x16SetAVX512h6, gemmKernel14x16SetAVX512h7, gemmKernel14x16SetAVX512h8, gemmKernel14x16SetAVX512h9, gemmKernel14x16SetAVX512h10, gemmKernel14x16SetAVX512h11, gemmKernel14x16SetAVX512h12, gemmKernel14x16SetAVX512h13, gemmKernel14x16SetAVX512h14}
	halfA64AVX512 = [...]func(k int, a, b, c *float32, ldc int){nil,
		gemmKernel14x16A64AVX512h1, gemmKernel14x16A64AVX512h2, gemmKernel14x16A64AVX512h3, gemmKernel14x16A64AVX512h4, gemmKernel14x16A64AVX512h5, gemmKernel14x16A64AVX512h6, gemmKernel14x16A64AVX512h7, gemmKernel14x16A64AVX512h8, gemmKernel14x16A64AVX512h9, gemmKernel14x16A64AVX512h10, gemmKernel14x16A64AVX512h11, gemmKernel14x16A64AVX512h12, gemmKernel14x16A64AVX512h13, gemmKernel14x16A64AVX512h14}
)

func runHalfAVX512(rows, k int, a, b, c []float32, ldc int) {
	_, _, _ = a[k*14-1], b[(k-1)*32+15], c[(rows-1)*ldc+15]
	halfAVX512[rows](k, &a[0], &b[0], &c[0], ldc)
}

func runHalfSetAVX512(rows, k int, a, b, c []float32, ldc int) {
	_, _, _ = a[k*14-1], b[(k-1)*32+15], c[(rows-1)*ldc+15]
	halfSetAVX512[rows](k, &a[0], &b[0], &c[0], ldc)
}

func runHalfA64AVX512(rows, k int, a, b, c []float32, ldc int) {
	_, _, _ = a[(rows-1)*64+k-1], b[(k-1)*32+15], c[(rows-1)*ldc+15]
	halfA64AVX512[rows](k, &a[0], &b[0], &c[0], ldc)
}

func runRowsAVX512(rows, k int, a, b, c []float32, ldc int) {
	_, _, _ = a[k*14-1], b[k*32-1], c[(rows-1)*ldc+31]
	rowsAVX512[rows](k, &a[0], &b[0], &c[0], ldc)
}

func runRowsA64AVX512(rows, k int, a, b, c []float32, ldc int) {
	_, _, _ = a[(rows-1)*64+k-1], b[k*32-1], c[(rows-1)*ldc+31]
	rowsA64AVX512[rows](k, &a[0], &b[0], &c[0], ldc)
}

func runRowsB64AVX512(rows, k int, a, b, c []float32, ldc int) {
	_, _, _ = a[k*14-1], b[(k-1)*64+31], c[(rows-1)*ldc+31]
	rowsB64AVX512[rows](k, &a[0], &b[0], &c[0], ldc)
}

func runRowsSetAVX512(rows, k int, a, b, c []float32, ldc int) {
	_, _, _ = a[k*14-1], b[k*32-1], c[(rows-1)*ldc+31]
	rowsSetAVX512[rows](k, &a[0], &b[0], &c[0], ldc)
}

func runColsAVX512(cols, k int, a, b, c []float32, ldc int) {
	_, _, _ = a[k*14-1], b[k*32-1], c[13*ldc+cols-1]
	gemmKernel14x32AVX512m(k, &a[0], &b[0], &c[0], ldc, 1<<cols-1)
}

func runRowsAVX2(rows, k int, a, b, c []float32, ldc int) {
	_, _, _ = a[k*6-1], b[k*16-1], c[(rows-1)*ldc+15]
	rowsAVX2[rows](k, &a[0], &b[0], &c[0], ldc)
}

// cpuFeatures are what detectCPU learns: which kernels may run, and the
// data cache sizes per core in bytes (0 when unknown).
type cpuFeatures struct {
	avx2, avx512 bool
	l1, l2, l3   int
}

// detectCPU reads the CPU's features with cpuid (CPUID) and xgetbv
// (XGETBV), parameters so that tests can describe other CPUs. A vector
// unit counts only when the OS saves its registers on a context switch
// too (OSXSAVE and the state bits of XCR0): AVX needs the SSE and AVX
// state, AVX-512 also the opmask and both halves of the upper zmm state.
func detectCPU(cpuid func(leaf, sub uint32) (eax, ebx, ecx, edx uint32), xgetbv func() (eax, edx uint32)) cpuFeatures {
	var f cpuFeatures
	maxLeaf, vb, vc, vd := cpuid(0, 0)
	if maxLeaf < 7 {
		return f
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		fmaBit     = 1 << 12
		osxsaveBit = 1 << 27
		avxBit     = 1 << 28
	)
	if ecx1&osxsaveBit == 0 || ecx1&avxBit == 0 {
		return f
	}
	xcr0, _ := xgetbv()
	const avxState, avx512State = 0x6, 0xe0
	_, ebx7, _, _ := cpuid(7, 0)
	const avx2Bit, avx512fBit = 1 << 5, 1 << 16
	osAVX := xcr0&avxState == avxState
	f.avx2 = osAVX && ebx7&avx2Bit != 0 && ecx1&fmaBit != 0
	f.avx512 = f.avx2 && xcr0&avx512State == avx512State && ebx7&avx512fBit != 0
	// Cache sizes: leaf 4 on Intel, 0x8000001d on AMD; both describe one
	// cache per subleaf in the same layout.
	leaf := uint32(0)
	switch {
	case vb == 0x756e6547 && vd == 0x49656e69 && vc == 0x6c65746e: // GenuineIntel
		leaf = 4
	case vb == 0x68747541 && vd == 0x69746e65 && vc == 0x444d4163: // AuthenticAMD
		if maxExt, _, _, _ := cpuid(0x80000000, 0); maxExt >= 0x8000001d {
			leaf = 0x8000001d
		}
	}
	if leaf == 0 {
		return f
	}
	for sub := uint32(0); sub < 16; sub++ {
		eax, ebx, ecx, _ := cpuid(leaf, sub)
		kind := eax & 0x1f
		if kind == 0 {
			break
		}
		if kind != 1 && kind != 3 { // data or unified
			continue
		}
		size := int(ebx>>22+1) * int(ebx>>12&0x3ff+1) * int(ebx&0xfff+1) * int(ecx+1)
		sharing := int(eax>>14&0xfff + 1)
		switch eax >> 5 & 7 {
		case 1:
			f.l1 = size
		case 2:
			f.l2 = size
		case 3:
			f.l3 = size / max(sharing/2, 1) // threads → cores, at two a core
		}
	}
	return f
}
