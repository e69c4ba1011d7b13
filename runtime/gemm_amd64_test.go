//go:build amd64 && !purego

package runtime

import "testing"

// fakeCPU answers CPUID and XGETBV for detectCPU from tables.
type fakeCPU struct {
	leaves map[[2]uint32][4]uint32
	xcr0   uint32
}

func (c fakeCPU) cpuid(leaf, sub uint32) (a, b, cx, d uint32) {
	r := c.leaves[[2]uint32{leaf, sub}]
	return r[0], r[1], r[2], r[3]
}

func (c fakeCPU) xgetbv() (uint32, uint32) { return c.xcr0, 0 }

// intelCPU describes an AVX-512 Intel CPU with 48 KiB L1d, 2 MiB L2 and
// a 60 MiB L3 shared by 64 threads, through leaves 0, 1, 7 and 4.
func intelCPU() fakeCPU {
	cache := func(kind, level, ways, parts, line, sets, sharing uint32) [4]uint32 {
		return [4]uint32{kind | level<<5 | (sharing-1)<<14, (ways-1)<<22 | (parts-1)<<12 | (line - 1), sets - 1, 0}
	}
	return fakeCPU{
		leaves: map[[2]uint32][4]uint32{
			{0, 0}: {0x1f, 0x756e6547, 0x6c65746e, 0x49656e69}, // GenuineIntel
			{1, 0}: {0, 0, 1<<12 | 1<<27 | 1<<28, 0},
			{7, 0}: {0, 1<<5 | 1<<16, 0, 0},
			{4, 0}: cache(1, 1, 12, 1, 64, 64, 2),     // L1d 48 KiB
			{4, 1}: cache(2, 1, 8, 1, 64, 64, 2),      // L1i
			{4, 2}: cache(3, 2, 16, 1, 64, 2048, 2),   // L2 2 MiB
			{4, 3}: cache(3, 3, 15, 1, 64, 65536, 64), // L3 60 MiB
		},
		xcr0: 0xe7,
	}
}

func TestDetectCPU(t *testing.T) {
	c := intelCPU()
	f := detectCPU(c.cpuid, c.xgetbv)
	want := cpuFeatures{avx2: true, avx512: true, l1: 48 << 10, l2: 2 << 20, l3: 60 << 20 / 32}
	if f != want {
		t.Errorf("AVX-512 Intel CPU: %+v, want %+v", f, want)
	}
	// The OS does not save the zmm state: AVX2 only.
	c.xcr0 = 0x7
	if f := detectCPU(c.cpuid, c.xgetbv); !f.avx2 || f.avx512 {
		t.Errorf("XCR0 without AVX-512 state: %+v", f)
	}
	// No OSXSAVE: nothing, and XGETBV must not run.
	c = intelCPU()
	c.leaves[[2]uint32{1, 0}] = [4]uint32{0, 0, 1<<12 | 1<<28, 0}
	if f := detectCPU(c.cpuid, func() (uint32, uint32) { panic("xgetbv without OSXSAVE") }); f.avx2 || f.avx512 {
		t.Errorf("no OSXSAVE: %+v", f)
	}
	// AVX2 without FMA: no kernel.
	c = intelCPU()
	c.leaves[[2]uint32{1, 0}] = [4]uint32{0, 0, 1<<27 | 1<<28, 0}
	if f := detectCPU(c.cpuid, c.xgetbv); f.avx2 || f.avx512 {
		t.Errorf("no FMA: %+v", f)
	}
	// An unknown vendor: features, but no cache sizes.
	c = intelCPU()
	c.leaves[[2]uint32{0, 0}] = [4]uint32{0x1f, 1, 2, 3}
	if f := detectCPU(c.cpuid, c.xgetbv); !f.avx512 || f.l1 != 0 || f.l2 != 0 || f.l3 != 0 {
		t.Errorf("unknown vendor: %+v", f)
	}
	// This machine: whatever it has, the kernels agree with it.
	f = detectCPU(cpuid, xgetbv)
	if f.avx512 && (len(gemmKernels) == 0 || gemmKernels[0].name != "avx512") || !f.avx2 && len(gemmKernels) > 0 {
		t.Errorf("this CPU: %+v, kernels %d", f, len(gemmKernels))
	}
	t.Logf("this CPU: %+v", f)
}

func TestCacheBlocks(t *testing.T) {
	for _, c := range [][5]int{{14, 32, 32 << 10, 1 << 20, 32 << 20}, {6, 16, 48 << 10, 2 << 20, 0}, {14, 32, 0, 0, 0}, {6, 16, 1 << 30, 1 << 30, 1 << 40}} {
		mc, kc, nc := cacheBlocks(c[0], c[1], c[2], c[3], c[4])
		if mc%c[0] != 0 || nc%c[1] != 0 || mc < c[0] || nc < c[1] || kc < 128 || kc > 1024 || mc > 960 || nc > 8192 {
			t.Errorf("cacheBlocks%v = %d, %d, %d", c, mc, kc, nc)
		}
	}
}
