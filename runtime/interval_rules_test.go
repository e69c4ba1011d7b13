package runtime_test

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

var updateRules = flag.Bool("update", false, "rewrite interval_rules.go from ../ir/interval.go")

// intervalRulesHeader starts the generated file.
const intervalRulesHeader = "// Code generated from ir/interval.go by go test ./runtime -run TestIntervalRulesAreIRs -update. DO NOT EDIT.\n\n"

// TestIntervalRulesAreIRs: the interval rules the tile classifiers call
// (interval_rules.go) are the compiler's (ir/interval.go), the one
// implementation, with ir.Interval renamed Iv: the runtime imports
// nothing of the compiler, so it gets a generated copy, and this test
// fails while the copy is stale (-update rewrites it).
func TestIntervalRulesAreIRs(t *testing.T) {
	src, err := os.ReadFile("../ir/interval.go")
	if err != nil {
		t.Skipf("no compiler source here (a generated package's copy of the runtime): %v", err)
	}
	text := strings.Replace(string(src), "package ir\n", "package runtime\n", 1)
	text = regexp.MustCompile(`\bInterval\b`).ReplaceAllString(text, "Iv")
	want := intervalRulesHeader + text
	if *updateRules {
		if err := os.WriteFile("interval_rules.go", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile("interval_rules.go")
	if err != nil || string(got) != want {
		t.Fatalf("interval_rules.go is not ir/interval.go's copy (%v): run go test ./runtime -run TestIntervalRulesAreIRs -update", err)
	}
}
