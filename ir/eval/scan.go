package eval

// scan runs the linear recurrence h_t = a_t·h_{t-1} + x_t along axis from
// h_{-1} = 0, from the last position backwards when reverse.
func scan(a, x *Tensor, axis int, reverse bool) *Tensor {
	out := x.Clone()
	outer, n, inner := split3(x.Shape, axis)
	for o := range outer {
		for in := range inner {
			h := 0.0
			for step := range n {
				t := step
				if reverse {
					t = n - 1 - step
				}
				i := (o*n+t)*inner + in
				h = a.Data[i]*h + x.Data[i]
				out.Data[i] = h
			}
		}
	}
	return out
}
