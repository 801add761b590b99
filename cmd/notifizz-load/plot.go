package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// The pictures --plot writes, each as PNG and SVG.
const (
	plotThroughput = "throughput"
	plotLatencyCDF = "latency-cdf"
)

// plotFormats are the file formats of every picture.
var plotFormats = []string{"png", "svg"}

// Size of every picture: 8 × 4.5 inches, 768 × 432 pixels in PNG at the default 96 dpi.
const (
	plotWidth  = 8 * vg.Inch
	plotHeight = 4.5 * vg.Inch
)

// cdfMaxPoints bounds the points of a CDF line, so that the SVG stays small with many samples.
const cdfMaxPoints = 1000

var (
	colorRaw      = color.RGBA{R: 0x88, G: 0x88, B: 0x88, A: 0xff}
	colorBridge   = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colorBaseline = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
)

// writePlots draws the report's figures into dir: the throughput of each phase against the raw
// drain when throughput phases ran, and the latency CDF when the latency phase kept its samples.
// It returns the files written.
func writePlots(r *Report, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var plots []struct {
		name string
		p    *plot.Plot
	}
	if len(r.Summary) > 0 {
		p, err := throughputPlot(r)
		if err != nil {
			return nil, fmt.Errorf("throughput plot: %w", err)
		}
		plots = append(plots, struct {
			name string
			p    *plot.Plot
		}{plotThroughput, p})
	}
	if l := r.Latency; l != nil && (len(l.CommitToCallMs) > 0 || len(l.DelayLatenessMs) > 0) {
		p, err := latencyPlot(l)
		if err != nil {
			return nil, fmt.Errorf("latency plot: %w", err)
		}
		plots = append(plots, struct {
			name string
			p    *plot.Plot
		}{plotLatencyCDF, p})
	}
	var files []string
	for _, pl := range plots {
		for _, format := range plotFormats {
			file := filepath.Join(dir, pl.name+"."+format)
			if err := pl.p.Save(plotWidth, plotHeight, file); err != nil {
				return files, err
			}
			files = append(files, file)
		}
	}
	return files, nil
}

// throughputPlot is a bar per row of the summary: the median msgs/s, the range over the rounds
// as error bars, under each bar the median ratio to the raw drain (and its range over the
// rounds), and the median raw drain as a dashed reference line.
func throughputPlot(r *Report) (*plot.Plot, error) {
	p := plot.New()
	rounds := len(r.Rounds)
	p.Title.Text = fmt.Sprintf("Throughput: %d keys × (1 track + %d workflows%s)", r.Workload.Keys, r.Workload.Workflows, commitText(r.Workload.Commits))
	if rounds > 1 {
		p.Title.Text += fmt.Sprintf(", median of %d rounds", rounds)
	}
	p.Y.Label.Text = "messages per second"
	p.Y.Min = 0

	ranges := rateRanges(r.Rounds)
	names := make([]string, len(r.Summary))
	var (
		errs   errorPoints
		rawMsg float64
		top    float64
	)
	for i, sm := range r.Summary {
		names[i] = sm.Name
		if sm.Name == "raw drain" {
			rawMsg = sm.Rate
		}
		bar, err := plotter.NewBarChart(plotter.Values{sm.Rate}, vg.Points(40))
		if err != nil {
			return nil, err
		}
		bar.XMin = float64(i)
		bar.Color = phaseColor(sm.Name)
		bar.LineStyle.Width = 0
		p.Add(bar)

		high := sm.Rate
		if rg, ok := ranges[sm.Name]; ok && rounds > 1 {
			errs.XYs = append(errs.XYs, plotter.XY{X: float64(i), Y: sm.Rate})
			errs.YErrors = append(errs.YErrors, struct{ Low, High float64 }{sm.Rate - rg[0], rg[1] - sm.Rate})
			high = max(high, rg[1])
		}
		top = max(top, high)
		names[i] += fmt.Sprintf("\n%.0f msgs/s\n%.2f× raw", sm.Rate, sm.RatioToRaw)
		if rounds > 1 && sm.RatioToRawMin != sm.RatioToRawMax {
			names[i] += fmt.Sprintf("\n(%.2f–%.2f)", sm.RatioToRawMin, sm.RatioToRawMax)
		}
	}
	if len(errs.XYs) > 0 {
		eb, err := plotter.NewYErrorBars(errs)
		if err != nil {
			return nil, err
		}
		p.Add(eb)
	}
	if rawMsg > 0 {
		ref, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: rawMsg}, {X: float64(len(names)) - 0.5, Y: rawMsg}})
		if err != nil {
			return nil, err
		}
		ref.Color = color.Black
		ref.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(ref)
		p.Legend.Add("raw drain (the consume + ack limit)", ref)
		p.Legend.Top = true
	}
	p.NominalX(names...)
	// Room above the tallest bar for the legend.
	p.Y.Max = top * 1.15
	return p, nil
}

// errorPoints are the error bars of the throughput plot.
type errorPoints struct {
	plotter.XYs
	plotter.YErrors
}

// rateRanges is the min and max msgs/s of every summary row over the rounds, named as
// summarize names them.
func rateRanges(rounds []Round) map[string][2]float64 {
	out := map[string][2]float64{}
	add := func(name string, rate float64) {
		rg, ok := out[name]
		if !ok {
			out[name] = [2]float64{rate, rate}
			return
		}
		out[name] = [2]float64{min(rg[0], rate), max(rg[1], rate)}
	}
	for _, rd := range rounds {
		if rd.Raw != nil {
			add("raw drain", rd.Raw.Drain.Rate)
			add("raw end-to-end", rd.Raw.EndToEnd.Rate)
		}
		for _, t := range rd.Throughput {
			add(t.Name, t.Rate)
		}
	}
	return out
}

func phaseColor(name string) color.Color {
	switch {
	case strings.HasPrefix(name, "raw"):
		return colorRaw
	case strings.HasPrefix(name, "baseline"):
		return colorBaseline
	default:
		return colorBridge
	}
}

// latencyPlot is the CDF of commit → call and of delay lateness, one line each, on a log scale
// of milliseconds when every sample is positive.
func latencyPlot(l *LatencyResult) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Latency at %.0f events/s, %d events per measure, delay %s", l.Rate, l.Events, l.Delay)
	p.Y.Label.Text = "fraction of events"
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	series := []struct {
		name    string
		samples []float64
		color   color.Color
	}{
		{"commit → call", l.CommitToCallMs, colorBridge},
		{"delay lateness (flush after the delay)", l.DelayLatenessMs, colorBaseline},
	}
	logScale := true
	for _, s := range series {
		for _, v := range s.samples {
			if v <= 0 {
				logScale = false
			}
		}
	}
	p.X.Label.Text = "milliseconds"
	if logScale {
		p.X.Label.Text += " (log scale)"
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	for _, s := range series {
		if len(s.samples) == 0 {
			continue
		}
		line, err := plotter.NewLine(cdfPoints(s.samples, cdfMaxPoints))
		if err != nil {
			return nil, err
		}
		line.Color = s.color
		line.Width = vg.Points(1.5)
		line.StepStyle = plotter.PostStep
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("%s, n = %d", s.name, len(s.samples)), line)
	}
	// A CDF rises to the right: the top left corner is free.
	p.Legend.Left = true
	p.Legend.Top = true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(10), -vg.Points(6)
	return p, nil
}

// cdfPoints is the empirical CDF of the samples: each sample in ascending order against the
// fraction of samples at or below it, (i+1)/n. Above maxPoints samples it keeps maxPoints of
// them evenly spread over the ranks, always the first and the last. The samples are not
// changed.
func cdfPoints(samples []float64, maxPoints int) plotter.XYs {
	s := slices.Clone(samples)
	slices.Sort(s)
	n := len(s)
	pick := func(i int) plotter.XY { return plotter.XY{X: s[i], Y: float64(i+1) / float64(n)} }
	if n <= maxPoints || maxPoints < 2 {
		out := make(plotter.XYs, n)
		for i := range s {
			out[i] = pick(i)
		}
		return out
	}
	out := make(plotter.XYs, maxPoints)
	for j := range maxPoints {
		out[j] = pick(j * (n - 1) / (maxPoints - 1))
	}
	return out
}

// millis is the samples in milliseconds, for the latency plot.
func millis(s []time.Duration) []float64 {
	out := make([]float64, len(s))
	for i, d := range s {
		out[i] = ms(d)
	}
	return out
}
