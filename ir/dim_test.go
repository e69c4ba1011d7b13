package ir

import (
	"errors"
	"math"
	"testing"
)

func TestDimArithmeticOverflowIsAnError(t *testing.T) {
	big := ConstDim(1 << 62)
	n := SymDim("N")
	cases := []struct {
		name string
		f    func() (Dim, error)
	}{
		{"const add", func() (Dim, error) { return big.AddChecked(big) }},
		{"const sub", func() (Dim, error) { return ConstDim(math.MinInt64).SubChecked(ConstDim(1)) }},
		{"scale", func() (Dim, error) { return big.ScaleChecked(4) }},
		{"scale min by -1", func() (Dim, error) { return ConstDim(math.MinInt64).ScaleChecked(-1) }},
		{"coefficient add", func() (Dim, error) { return n.Scale(math.MaxInt64).AddChecked(n) }},
		{"coefficient sub", func() (Dim, error) { return n.Scale(math.MinInt64).SubChecked(n) }},
		{"coefficient scale", func() (Dim, error) { return n.Scale(1 << 40).ScaleChecked(1 << 30) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := c.f()
			if !errors.Is(err, ErrOverflow) {
				t.Errorf("got %s, %v; want an overflow error", d, err)
			}
		})
	}
	// In range, the checked forms agree with the plain ones.
	if d, err := big.ScaleChecked(-1); err != nil || !d.Equal(big.Scale(-1)) {
		t.Errorf("-(2^62) = %s, %v", d, err)
	}
	if d, err := n.AddChecked(big); err != nil || d.String() != "N+4611686018427387904" {
		t.Errorf("N + 2^62 = %s, %v", d, err)
	}
	if d, err := n.SubChecked(n); err != nil || !d.Equal(ConstDim(0)) {
		t.Errorf("N - N = %s, %v", d, err)
	}
}

func TestElementCountOverflowIsAnError(t *testing.T) {
	s := Shape{ConstDim(3037000500), ConstDim(3037000500)}
	if p, err := s.NumElementsChecked(); !errors.Is(err, ErrOverflow) {
		t.Errorf("3037000500² elements = %v, %v; want an overflow error", p, err)
	}
	s = Shape{SymDim("B"), ConstDim(1 << 40), ConstDim(1 << 30)}
	if p, err := s.NumElementsChecked(); !errors.Is(err, ErrOverflow) {
		t.Errorf("B·2^70 elements = %v, %v; want an overflow error", p, err)
	}
	p, err := Shape{SymDim("B"), ConstDim(1 << 31), ConstDim(1 << 31)}.NumElementsChecked()
	if err != nil || p["B"] != 1<<62 {
		t.Errorf("B·2^62 elements = %v, %v", p, err)
	}
	if _, err := (Shape{SymDim("N")}).Eval(map[string]int64{"N": math.MaxInt64}); err != nil {
		t.Errorf("N = maxint: %v", err)
	}
	if _, err := (Shape{SymDim("N").Scale(2)}).Eval(map[string]int64{"N": math.MaxInt64}); !errors.Is(err, ErrOverflow) {
		t.Errorf("2·N with N = maxint: got %v, want an overflow error", err)
	}
}
