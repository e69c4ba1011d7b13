package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/attnc/attnc/codegen/cuda"
	gogen "github.com/attnc/attnc/codegen/go"
	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/passes"
)

// buildCUDA is attnc build -target cuda: kernels.cu, kernels.json and the
// Go host package (named pkg, or after the directory) in out, with PTX
// for sm_80 and sm_90 compiled by the clang it finds.
func (c *cli) buildCUDA(m *lang.Model, out, pkg string, force bool) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(c.stderr, "attnc build: "+format+"\n", a...)
		return exitError
	}
	dir, err := outputDir(out)
	if err != nil {
		return fail("%v", err)
	}
	if pkg == "" {
		pkg = filepath.Base(dir)
		if gogen.CheckPackageName(pkg) != nil {
			return fail("the output directory's name %q is not a Go package name: give one with -pkg", pkg)
		}
	}
	files, kernels, err := cuda.Render(m.IR)
	if err != nil {
		return fail("-target cuda: %v", err)
	}
	if len(kernels) == 0 {
		return fail("-target cuda: %s has no attention op the CUDA target lowers (one that returns its output, with constant head dims); the other ops stay on the Go target", m.Name)
	}
	// The kernel IR's kernels (what the passes fused), through LLVM's
	// NVPTX backend.
	kp, err := passes.Run(m.IR, passes.Options{})
	if err != nil {
		return fail("%v", err)
	}
	ll, lowered, skipped, err := cuda.LLVM(kp.Kernels, cuda.NVPTX)
	if err != nil {
		return fail("-target cuda: %v", err)
	}
	files["kernels.ll"] = []byte(ll)
	ptx := map[string]string{}
	var notes []string
	for name, why := range skipped {
		notes = append(notes, fmt.Sprintf("kernel %s has no LLVM lowering (%s)", name, why))
	}
	for _, t := range llcTargets {
		llc := findExecutable(t.tools...)
		if llc == "" {
			notes = append(notes, fmt.Sprintf("no PTX of kernels.ll for %s: none of %v is installed", t.arch, t.tools))
			continue
		}
		p, err := compileLL(llc, t.arch, []byte(ll))
		if err != nil {
			return fail("-target cuda: compiling kernels.ll for %s with %s: %v", t.arch, filepath.Base(llc), err)
		}
		ptx["ll_"+t.arch] = p
		files["kernels_ll_"+t.arch+".ptx"] = []byte(p)
	}
	for _, t := range ptxTargets {
		clang := findExecutable(t.clangs...)
		if clang == "" {
			notes = append(notes, fmt.Sprintf("no PTX for %s: none of %v is installed", t.arch, t.clangs))
			continue
		}
		p, err := compilePTX(clang, t.arch, files["kernels.cu"])
		if err != nil {
			return fail("-target cuda: compiling kernels.cu for %s with %s: %v", t.arch, filepath.Base(clang), err)
		}
		ptx[t.arch] = p
		files["kernels_"+t.arch+".ptx"] = []byte(p)
	}
	host, err := cuda.Host(pkg, kernels, lowered, ptx)
	if err != nil {
		return fail("%v", err)
	}
	for name, b := range host {
		files[name] = b
	}
	if err := writePackage(dir, files, force); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(c.stdout, "wrote %s (Go package %s, %d files): CUDA kernels for %d attention ops (kernels.cu) and %d fused kernels (kernels.ll); build with -tags cuda (and gorgonia.org/cu) for the GPU\n", out, pkg, len(files), len(kernels), len(lowered))
	for _, n := range notes {
		fmt.Fprintf(c.stderr, "attnc build: warning: %s (apt-get install clang-14 clang-16)\n", n)
	}
	return exitOK
}

// ptxTargets are the architectures attnc build compiles PTX for, each
// with the clangs that know it (Debian's clang-14 stops at sm_86).
var ptxTargets = []struct {
	arch   string
	clangs []string
}{
	{"sm_80", []string{"clang-14", "clang-16", "clang-19", "clang"}},
	{"sm_90", []string{"clang-19", "clang-18", "clang-17", "clang-16"}},
}

// llcTargets are the architectures kernels.ll is compiled for, each with
// the llc that knows it.
var llcTargets = []struct {
	arch  string
	tools []string
}{
	{"sm_80", []string{"llc-14", "llc-16", "llc"}},
	{"sm_90", []string{"llc-19", "llc-18", "llc-17", "llc-16"}},
}

// compileLL compiles LLVM IR for nvptx64 to PTX for arch with llc.
func compileLL(llc, arch string, src []byte) (string, error) {
	tmp, err := os.MkdirTemp("", "attnc-ll-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	in, out := filepath.Join(tmp, "kernels.ll"), filepath.Join(tmp, "kernels.ptx")
	if err := os.WriteFile(in, src, 0o644); err != nil {
		return "", err
	}
	b, err := exec.Command(llc, "-march=nvptx64", "-mcpu="+arch, "-O3", in, "-o", out).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v\n%s", err, b)
	}
	p, err := os.ReadFile(out)
	return string(p), err
}

func findExecutable(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// compilePTX compiles a CUDA source to PTX for arch with clang alone.
func compilePTX(clang, arch string, src []byte) (string, error) {
	tmp, err := os.MkdirTemp("", "attnc-ptx-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	in, out := filepath.Join(tmp, "kernels.cu"), filepath.Join(tmp, "kernels.ptx")
	if err := os.WriteFile(in, src, 0o644); err != nil {
		return "", err
	}
	b, err := exec.Command(clang, "-x", "cuda", "--cuda-device-only", "-nocudainc", "-nocudalib",
		"--cuda-gpu-arch="+arch, "-O3", "-S", "-o", out, in).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v\n%s", err, b)
	}
	p, err := os.ReadFile(out)
	return string(p), err
}
