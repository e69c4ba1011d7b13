// Package plot draws a training run's pictures: the loss curve from
// metrics.jsonl, and a heat map of an attention distribution. It uses
// gonum.org/v1/plot, and runs in attnc itself, so the trainer attnc
// builds needs nothing beyond the standard library.
package plot

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/attnc/attnc/runtime"
	"github.com/attnc/attnc/train"
)

// ReadMetrics reads a run's metrics.jsonl.
func ReadMetrics(path string) ([]train.Record, error) {
	b, err := runtime.ReadRegularFile(path, 1<<30, "a metrics file")
	if err != nil {
		return nil, err
	}
	var out []train.Record
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for line := 1; sc.Scan(); line++ {
		var r train.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// Loss draws the training loss (and the held-out loss where it was
// evaluated) against the step to path (PNG); with metric set (the task's
// main metric, as "exact") and evaluated, a second panel beside it draws
// that metric's held-out values.
func Loss(path, title string, recs []train.Record, metric string) error {
	if len(recs) == 0 {
		return fmt.Errorf("no metrics to plot")
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss"
	var trainPts, evalPts, metricPts plotter.XYs
	for _, r := range recs {
		if r.Loss > 0 && !math.IsInf(r.Loss, 0) {
			trainPts = append(trainPts, plotter.XY{X: float64(r.Step), Y: r.Loss})
		}
		if l, ok := r.Eval["loss"]; ok && l > 0 {
			evalPts = append(evalPts, plotter.XY{X: float64(r.Step), Y: l})
		}
		if v, ok := r.Eval[metric]; ok && metric != "" && !math.IsNaN(v) && !math.IsInf(v, 0) {
			metricPts = append(metricPts, plotter.XY{X: float64(r.Step), Y: v})
		}
	}
	if len(trainPts) == 0 {
		return fmt.Errorf("no positive losses to plot")
	}
	line, err := plotter.NewLine(trainPts)
	if err != nil {
		return err
	}
	line.Color = blue
	p.Add(line, plotter.NewGrid())
	p.Legend.Add("train", line)
	if len(evalPts) > 0 {
		sc, err := plotter.NewScatter(evalPts)
		if err != nil {
			return err
		}
		sc.Color = red
		p.Add(sc)
		p.Legend.Add("held-out", sc)
	}
	p.Legend.Top = true
	if len(metricPts) == 0 {
		return save(path, 7*vg.Inch, 4*vg.Inch, panel{p, 1})
	}
	m := plot.New()
	m.Title.Text = "held-out " + metric
	m.X.Label.Text = "step"
	m.Y.Label.Text = metric
	ml, sc, err := plotter.NewLinePoints(metricPts)
	if err != nil {
		return err
	}
	ml.Color, sc.Color = red, red
	m.Add(ml, sc, plotter.NewGrid())
	fraction := true
	for _, pt := range metricPts {
		fraction = fraction && pt.Y >= 0 && pt.Y <= 1
	}
	if fraction { // an accuracy: its whole scale
		m.Y.Min, m.Y.Max = 0, 1
	}
	return save(path, 12*vg.Inch, 4*vg.Inch, panel{p, 7}, panel{m, 5})
}

var (
	blue = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	red  = color.RGBA{R: 214, G: 39, B: 40, A: 255}
)

// grid is a matrix as plotter.GridXYZ: row r is drawn at y = r.
type grid struct {
	rows, cols int
	v          []float64
}

func (g grid) Dims() (c, r int)   { return g.cols, g.rows }
func (g grid) Z(c, r int) float64 { return g.v[r*g.cols+c] }
func (g grid) X(c int) float64    { return float64(c) }
func (g grid) Y(r int) float64    { return float64(r) }

// HeatMap draws the probabilities exp(logp) of one example's [N, K]
// log-probabilities (a pointer network's output: row t is the
// distribution over input positions at step t) to path, with a colour
// bar for the probability scale.
func HeatMap(path, title string, logp *runtime.Tensor) error {
	if logp.DType != runtime.F32 || len(logp.Shape) != 3 {
		return fmt.Errorf("heat map: want f32[1, N, K], got %v", logp.Shape)
	}
	n, k := logp.Shape[1], logp.Shape[2]
	g := grid{rows: n, cols: k, v: make([]float64, n*k)}
	for i := range g.v {
		g.v[i] = math.Exp(float64(logp.F[i]))
	}
	cmap := moreland.SmoothBlueRed()
	h := plotter.NewHeatMap(g, cmap.Palette(64))
	h.Min, h.Max = 0, 1
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "input position"
	p.Y.Label.Text = "output step"
	p.Add(h)
	return save(path, 6*vg.Inch, 5*vg.Inch, panel{p, 5}, probabilityBar(cmap))
}

// AttentionMaps draws one attention op's probabilities on an example,
// probs f32[1, H, Nq, Nk] (the trainer's probe), to path: a heat map per
// head, side by side (queries up, keys across), and a colour bar. heads,
// when given, selects the heads to draw (from 0).
func AttentionMaps(path, title string, probs *runtime.Tensor, heads ...int) error {
	if probs.DType != runtime.F32 || len(probs.Shape) != 4 || probs.Shape[0] != 1 {
		return fmt.Errorf("attention maps: want f32[1, H, Nq, Nk], got %v", probs.Shape)
	}
	nh, nq, nk := probs.Shape[1], probs.Shape[2], probs.Shape[3]
	if len(heads) == 0 {
		for h := range nh {
			heads = append(heads, h)
		}
	}
	for _, h := range heads {
		if h < 0 || h >= nh {
			return fmt.Errorf("attention maps: no head %d (the layer has %d: 0 to %d)", h, nh, nh-1)
		}
	}
	cmap := moreland.SmoothBlueRed()
	var panels []panel
	for i, h := range heads {
		g := grid{rows: nq, cols: nk, v: make([]float64, nq*nk)}
		for i := range g.v {
			g.v[i] = float64(probs.F[h*nq*nk+i])
		}
		hm := plotter.NewHeatMap(g, cmap.Palette(64))
		hm.Min, hm.Max = 0, 1
		p := plot.New()
		p.Title.Text = fmt.Sprintf("head %d", h)
		if i == 0 {
			p.Title.Text = fmt.Sprintf("%s: head %d", title, h)
			p.Y.Label.Text = "query position"
		}
		p.X.Label.Text = "key position"
		p.Add(hm)
		panels = append(panels, panel{p, 4})
	}
	panels = append(panels, probabilityBar(cmap))
	return save(path, vg.Length(4*len(heads)+1)*vg.Inch, 4*vg.Inch, panels...)
}

// probabilityBar is the colour bar beside a heat map of probabilities:
// cmap from 0 to 1, a panel of width share 1.
func probabilityBar(cmap palette.ColorMap) panel {
	bar := plot.New()
	bar.Title.Text = "probability"
	bar.HideX()
	bar.Y.Padding = 0
	cb := &plotter.ColorBar{ColorMap: cmap, Vertical: true}
	cb.ColorMap.SetMin(0)
	cb.ColorMap.SetMax(1)
	bar.Add(cb)
	return panel{bar, 1}
}

// A panel is one plot of a picture and its share of the width.
type panel struct {
	p     *plot.Plot
	width float64
}

// save draws the panels side by side, each its share of the width w, and
// writes them as a PNG to path atomically.
func save(path string, w, h vg.Length, panels ...panel) error {
	img := vgimg.New(w, h)
	dc := draw.New(img)
	total := 0.0
	for _, pn := range panels {
		total += pn.width
	}
	x := vg.Length(0)
	for _, pn := range panels {
		pw := w * vg.Length(pn.width/total)
		pn.p.Draw(draw.Crop(dc, x, x+pw-w, 0, 0))
		x += pw
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp.png")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// AttentionOutput picks the output to draw as a heat map from an
// example's outputs: an f32 [1, N, K] of log-probabilities (names sorted,
// the first that fits), or "".
func AttentionOutput(outputs map[string]*runtime.Tensor) string {
	var names []string
	for name, t := range outputs {
		if t.DType == runtime.F32 && len(t.Shape) == 3 && t.Shape[0] == 1 {
			max := float32(math.Inf(-1))
			for _, v := range t.F {
				if v > max {
					max = v
				}
			}
			if max <= 0 { // log-probabilities are never positive
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}
