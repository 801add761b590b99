package main

import (
	"encoding/xml"
	"fmt"
	"image"
	_ "image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot/plotter"
)

func TestCDFPoints(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []float64
		want    plotter.XYs
	}{
		{"none", nil, plotter.XYs{}},
		{"one", []float64{7}, plotter.XYs{{X: 7, Y: 1}}},
		{"unsorted with a tie", []float64{3, 1, 2, 2}, plotter.XYs{{X: 1, Y: 0.25}, {X: 2, Y: 0.5}, {X: 2, Y: 0.75}, {X: 3, Y: 1}}},
		{"negative", []float64{0.5, -1}, plotter.XYs{{X: -1, Y: 0.5}, {X: 0.5, Y: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.samples)
			assert.Equal(t, tc.want, cdfPoints(in, 10))
			assert.Equal(t, tc.samples, in, "the samples are not reordered")
		})
	}
}

func TestCDFPointsThinned(t *testing.T) {
	samples := make([]float64, 1001)
	for i := range samples {
		samples[len(samples)-1-i] = float64(i) // descending: cdfPoints sorts
	}
	got := cdfPoints(samples, 11)
	require.Len(t, got, 11)
	for j, p := range got {
		assert.InDelta(t, float64(j*100), p.X, 1e-9, "point %d", j)
		assert.InDelta(t, float64(j*100+1)/1001, p.Y, 1e-9, "point %d", j)
	}
	assert.Equal(t, plotter.XY{X: 1000, Y: 1}, got[10], "the last sample is kept")
}

func TestMillis(t *testing.T) {
	assert.Equal(t, []float64{1.5, 1000}, millis([]time.Duration{1500 * time.Microsecond, time.Second}))
}

// plotReport is a report with two rounds of every throughput phase and a latency phase.
func plotReport() *Report {
	r := &Report{Workload: Workload{Keys: 2000, Workflows: 10, Commits: true}}
	for i, raw := range []float64{100_000, 120_000} {
		r.Rounds = append(r.Rounds, Round{
			Raw: &RawResult{Messages: 24_000, Drain: rawFigure{Rate: raw}, EndToEnd: rawFigure{Rate: raw * 0.9}},
			Throughput: []ThroughputResult{
				{Name: "bridge drain", Consumer: "bridge", Mode: "drain", Rate: raw * (0.6 + 0.1*float64(i))},
				{Name: "bridge end-to-end", Consumer: "bridge", Mode: "end-to-end", Rate: raw * 0.5},
				{Name: "baseline drain", Consumer: "baseline", Mode: "drain", Rate: raw * 0.2},
				{Name: "baseline end-to-end", Consumer: "baseline", Mode: "end-to-end", Rate: raw * 0.15},
			},
		})
	}
	for i := range r.Rounds {
		r.Rounds[i].ratios()
	}
	r.Summary = summarize(r.Rounds)
	commit := make([]float64, 3000)
	lateness := make([]float64, 3000)
	for i := range commit {
		commit[i] = 0.5 + float64(i%100)/10
		lateness[i] = 1 + float64(i%50)
	}
	r.Latency = &LatencyResult{Rate: 1000, Events: 3000, Delay: "1s", CommitToCallMs: commit, DelayLatenessMs: lateness}
	return r
}

func TestWritePlots(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "img") // created by writePlots
	files, err := writePlots(plotReport(), dir)
	require.NoError(t, err)

	var want []string
	for _, name := range []string{plotThroughput, plotLatencyCDF} {
		for _, format := range plotFormats {
			want = append(want, filepath.Join(dir, name+"."+format))
		}
	}
	assert.Equal(t, want, files)
	for _, name := range []string{plotThroughput, plotLatencyCDF} {
		t.Run(name, func(t *testing.T) {
			checkPNG(t, filepath.Join(dir, name+".png"))
			checkSVG(t, filepath.Join(dir, name+".svg"))
		})
	}
}

// TestWritePlotsOnlyWhatRan draws only the figures the report has: no latency picture without
// latency samples (as in a report without the latency phase), nothing at all for an empty one.
func TestWritePlotsOnlyWhatRan(t *testing.T) {
	dir := t.TempDir()
	r := plotReport()
	r.Latency = nil
	files, err := writePlots(r, dir)
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(dir, "throughput.png"), filepath.Join(dir, "throughput.svg")}, files)
	assert.NoFileExists(t, filepath.Join(dir, "latency-cdf.png"))

	files, err = writePlots(&Report{}, t.TempDir())
	require.NoError(t, err)
	assert.Empty(t, files)
}

// TestLatencyPlotLinearWithNonPositive falls back to a linear scale when a sample is not
// positive, which a log scale cannot show.
func TestLatencyPlotLinearWithNonPositive(t *testing.T) {
	p, err := latencyPlot(&LatencyResult{CommitToCallMs: []float64{1, 2}, DelayLatenessMs: []float64{-0.5, 3}})
	require.NoError(t, err)
	assert.Equal(t, "milliseconds", p.X.Label.Text)

	p, err = latencyPlot(&LatencyResult{CommitToCallMs: []float64{1, 2}, DelayLatenessMs: []float64{0.5, 3}})
	require.NoError(t, err)
	assert.Equal(t, "milliseconds (log scale)", p.X.Label.Text)
}

// TestPlotFlag checks that --plot reaches writeReport.
func TestPlotFlag(t *testing.T) {
	cfg, err := parseFlags([]string{"--plot", "out/img", "--quiet"}, os.Stderr)
	require.NoError(t, err)
	assert.Equal(t, "out/img", cfg.PlotDir)

	dir := t.TempDir()
	cfg.PlotDir = dir
	require.NoError(t, writeReport(plotReport(), cfg, io.Discard))
	checkPNG(t, filepath.Join(dir, "throughput.png"))
	checkPNG(t, filepath.Join(dir, "latency-cdf.png"))
}

func checkPNG(t *testing.T, file string) {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	require.NoError(t, err)
	assert.Equal(t, "png", format)
	// 8 × 4.5 inches at 96 dpi.
	assert.Equal(t, 768, cfg.Width)
	assert.Equal(t, 432, cfg.Height)
}

func checkSVG(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var svg struct {
		XMLName xml.Name
		Width   string `xml:"width,attr"`
		Height  string `xml:"height,attr"`
	}
	require.NoError(t, xml.Unmarshal(data, &svg))
	assert.Equal(t, "svg", svg.XMLName.Local)
	// 8 × 4.5 inches in points.
	assert.Equal(t, fmt.Sprintf("%gpt", 8*72.0), svg.Width)
	assert.Equal(t, fmt.Sprintf("%gpt", 4.5*72.0), svg.Height)
}

// TestThroughputPlotLabels checks what the throughput picture says under each bar: the median
// msgs/s and ratio to the raw drain, and the ratio's range where the rounds differ.
func TestThroughputPlotLabels(t *testing.T) {
	p, err := throughputPlot(plotReport())
	require.NoError(t, err)
	var labels []string
	for _, tk := range p.X.Tick.Marker.Ticks(p.X.Min, p.X.Max) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	assert.Equal(t, []string{
		"raw drain\n110000 msgs/s\n1.00× raw",
		"raw end-to-end\n99000 msgs/s\n0.90× raw",
		"bridge drain\n72000 msgs/s\n0.65× raw\n(0.60–0.70)",
		"bridge end-to-end\n55000 msgs/s\n0.50× raw",
		"baseline drain\n22000 msgs/s\n0.20× raw",
		"baseline end-to-end\n16500 msgs/s\n0.15× raw",
	}, labels)
	assert.InDelta(t, 120_000*1.15, p.Y.Max, 1e-6, "room above the highest error bar")
}

func TestRateRanges(t *testing.T) {
	got := rateRanges(plotReport().Rounds)
	assert.Equal(t, [2]float64{100_000, 120_000}, got["raw drain"])
	assert.Equal(t, [2]float64{60_000, 84_000}, got["bridge drain"])
	assert.Len(t, got, 6)
}

// TestPlotErrorAfterReport checks that a --plot directory that cannot be made is an error that
// comes after the report, which is still printed.
func TestPlotErrorAfterReport(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	cfg := DefaultConfig()
	cfg.PlotDir = filepath.Join(file, "img") // under a file: MkdirAll fails
	var out strings.Builder
	err := writeReport(plotReport(), cfg, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--plot")
	assert.Contains(t, out.String(), "median over 2 rounds")
}
