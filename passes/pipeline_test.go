package passes

import (
	"slices"
	"testing"
)

// TestPassOrder checks Pipeline against passOrder (init does too) and
// that checkOrder catches a swap, an unknown name and a duplicate.
func TestPassOrder(t *testing.T) {
	if err := checkOrder(Pipeline, passOrder); err != nil {
		t.Fatal(err)
	}
	for _, c := range passOrder {
		bad := slices.Clone(Pipeline)
		i := slices.IndexFunc(bad, func(p Pass) bool { return p.Name == c.a })
		j := slices.IndexFunc(bad, func(p Pass) bool { return p.Name == c.b })
		bad[i], bad[j] = bad[j], bad[i]
		if err := checkOrder(bad, passOrder); err == nil {
			t.Errorf("swapping %s and %s went unnoticed", c.a, c.b)
		}
	}
	if err := checkOrder(Pipeline[1:], passOrder); err == nil {
		t.Error("a pipeline without verify went unnoticed")
	}
	if err := checkOrder(append(slices.Clone(Pipeline), Pipeline[0]), nil); err == nil {
		t.Error("a pass twice went unnoticed")
	}
}
