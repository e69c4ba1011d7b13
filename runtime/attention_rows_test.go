package runtime

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestExpSumRows checks the batched row exponentials against
// expSumSlice a row at a time, bit for bit (the sums too), on awkward
// numbers of rows and every padded width, with masked (-Inf) scores, a
// row of nothing but -Inf less +Inf (tileExp's empty row), and NaN and
// +Inf; the elements past each row's width must stay as they were.
func TestExpSumRows(t *testing.T) {
	v := activeVec
	if v == nil {
		t.Skip("no vector kernels on this CPU or build")
	}
	r := rand.New(rand.NewPCG(11, 12))
	inf := float32(math.Inf(1))
	same := func(x, y float32) bool { return x == y || x != x && y != y }
	for _, rows := range []int{1, 3, 10, 31, 32, 33, 64} {
		for w := v.lanes; w <= attnBK; w += v.lanes {
			const stride = attnBK + 5
			x := randSlice(r, rows*stride)
			subs, sums := make([]float32, rows), make([]float32, rows)
			for i := range rows {
				subs[i] = float32(r.NormFloat64())
				row := x[i*stride : i*stride+w]
				for j := range row {
					row[j] *= 8
					if r.IntN(4) == 0 {
						row[j] = -inf
					}
				}
				switch i % 7 {
				case 3: // nothing admitted
					for j := range row {
						row[j] = -inf
					}
					subs[i] = inf
				case 5:
					row[r.IntN(w)] = float32(math.NaN())
				case 6:
					row[r.IntN(w)] = inf
					subs[i] = inf
				}
			}
			want := slices.Clone(x)
			wantSums := make([]float32, rows)
			for i := range rows {
				row := want[i*stride : i*stride+w]
				wantSums[i] = expSumSlice(row, row, subs[i])
			}
			if !expSumRows(x, stride, rows, w, subs, sums) {
				t.Fatalf("expSumRows declined %d rows of %d", rows, w)
			}
			for i := range x {
				if !same(x[i], want[i]) {
					t.Fatalf("%d rows of %d: x[%d] (row %d) = %v, want %v", rows, w, i, i/stride, x[i], want[i])
				}
			}
			for i := range rows {
				if !same(sums[i], wantSums[i]) {
					t.Fatalf("%d rows of %d: sum of row %d = %v, want %v", rows, w, i, sums[i], wantSums[i])
				}
			}
		}
	}
}
