package ir

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzIRRoundTrip feeds arbitrary text to Parse. Parse must never panic;
// when the text parses and the module verifies, printing it, parsing the
// print and printing again must give the same text and an identical
// module. The seed corpus is every testdata/*.ir file.
//
//	go test -run XXX -fuzz FuzzIRRoundTrip -fuzztime 60s -fuzzminimizetime 5s ./ir/
//
// The seeds are whole modules of a few kilobytes, and the fuzzer's
// minimization of each new input is quadratic in its length: without
// -fuzzminimizetime the first minute goes to minimizing one input.
func FuzzIRRoundTrip(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.ir"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(src))
	}
	f.Fuzz(func(t *testing.T, src string) {
		m, err := Parse("fuzz.ir", src)
		if err != nil {
			return
		}
		// Printing any parsed module, valid or not, must not panic.
		text := Print(m)
		if Verify(m) != nil {
			return
		}
		back, err := Parse("printed.ir", text)
		if err != nil {
			t.Fatalf("printed module does not parse: %v\n%s", err, text)
		}
		if err := Verify(back); err != nil {
			t.Fatalf("printed module does not verify: %v\n%s", err, text)
		}
		if again := Print(back); again != text {
			t.Fatalf("print is not a fixed point:\n%s", lineDiff(text, again))
		}
		if d := m.Diff(back); d != "" {
			t.Fatalf("reparsed module differs: %s\n%s", d, text)
		}
	})
}

// FuzzParseExpr checks that any expression that parses prints as text that
// parses back to the same tree, and that checking, evaluating and bounding
// it never panic.
func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{
		"k <= q && q - k < 128", "k < S || k <= q", "s + $0[h, clamp(q - k, 0, 255)]",
		"-(3) * -3 - -inf", "where($0[b, k], s / 2, nan) % 4", "!!(1 == 2.5e-3)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := ParseExpr(src)
		if err != nil {
			return
		}
		s := e.String()
		back, err := ParseExpr(s)
		if err != nil {
			t.Fatalf("%q prints as %q, which does not parse: %v", src, s, err)
		}
		if !back.Equal(e) {
			t.Fatalf("%q prints as %q, which parses as %q", src, s, back)
		}
		env := ExprEnv{
			Vars:     map[string]ScalarKind{"q": KInt, "k": KInt, "h": KInt, "b": KInt, "S": KInt, "s": KFloat},
			Captures: []Type{TensorOf(Bool, dB, dN), TensorOf(F32, c(4), c(256))},
		}
		if _, err := e.Check(env); err != nil {
			return
		}
		vars := map[string]float64{"q": 3, "k": 5, "h": 1, "b": 0, "S": 4, "s": 0.5}
		e.Eval(vars, func(int, []int) (float64, error) { return 1, nil })
		e.Bounds(map[string]Interval{"q": {0, 63}, "k": {64, 127}})
		pos := Interval{0, 1<<31 - 1}
		e.Overflow(map[string]Interval{"q": pos, "k": pos, "h": pos, "b": pos, "S": pos})
	})
}
