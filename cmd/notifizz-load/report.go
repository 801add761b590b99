package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Report is everything a run measured. Its JSON form is meant for comparing runs.
type Report struct {
	Time     time.Time       `json:"time"`
	Machine  Machine         `json:"machine"`
	Workload Workload        `json:"workload"`
	Rounds   []Round         `json:"rounds,omitempty"`
	Summary  []Summary       `json:"summary,omitempty"`
	Latency  *LatencyResult  `json:"latency,omitempty"`
	Held     *HeldResult     `json:"held,omitempty"`
	Failover *FailoverResult `json:"failover,omitempty"`
	Soak     *SoakResult     `json:"soak,omitempty"`
	Process  Process         `json:"process"`
	Failures []string        `json:"failures"`
}

// Machine describes where the run happened; figures only compare within one machine.
type Machine struct {
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	NumCPU     int    `json:"numCPU"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpuModel"`
	GoVersion  string `json:"goVersion"`
	NATS       string `json:"nats"`
}

// Workload is the run's configuration as it bears on the figures.
type Workload struct {
	Keys         int     `json:"keys"`
	Workflows    int     `json:"workflows"`
	Publishers   int     `json:"publishers"`
	Commits      bool    `json:"commits"`
	TrackBytes   int     `json:"trackBytes"`
	WorkflowByte int     `json:"workflowBytes"`
	Delay        string  `json:"delay"`
	Rate         float64 `json:"rate"`
	Storage      string  `json:"storage"`
	InProcess    bool    `json:"inProcess"`
	MaxInFlight  int     `json:"maxInFlight"`
	Replicas     int     `json:"replicas"` // bridges in the bridge phase
}

// Round is one pass of the throughput phases: the raw limit and what is compared with it,
// measured one after the other so that the ratios compare like with like even when the load
// of a shared machine changes between rounds.
type Round struct {
	Raw        *RawResult         `json:"raw,omitempty"`
	Throughput []ThroughputResult `json:"throughput,omitempty"`
}

// Summary is one row of the throughput table over every round: medians, and the range of the
// ratio to the raw drain.
type Summary struct {
	Name           string  `json:"name"`
	Rounds         int     `json:"rounds"`
	Rate           float64 `json:"msgsPerSec"`
	RatioToRaw     float64 `json:"ratioToRaw"`
	RatioToRawMin  float64 `json:"ratioToRawMin"`
	RatioToRawMax  float64 `json:"ratioToRawMax"`
	RatioToRawMode float64 `json:"ratioToRawSameMode"`
	CPUPerMsg      float64 `json:"cpuMicrosPerMsg"`
	CPURatioToRaw  float64 `json:"cpuRatioToRaw"`
	CallsPerEvent  float64 `json:"callsPerEvent"`
}

// RawResult is the raw limit: the workload consumed by a bare consumer that only acks, drained
// from the stream and end to end (consumed while published).
type RawResult struct {
	Messages       int       `json:"messages"`
	PublishSeconds float64   `json:"publishSeconds"`
	PublishRate    float64   `json:"publishMsgsPerSec"`
	Drain          rawFigure `json:"drain"`
	EndToEnd       rawFigure `json:"endToEnd"`
}

// rawFigure is one raw measurement.
type rawFigure struct {
	Seconds    float64 `json:"seconds"`
	Rate       float64 `json:"msgsPerSec"`
	CPUSeconds float64 `json:"cpuSeconds"`
	CPUPerMsg  float64 `json:"cpuMicrosPerMsg"`
}

func newRawFigure(msgs int, wall, cpu time.Duration) rawFigure {
	return rawFigure{Seconds: wall.Seconds(), Rate: float64(msgs) / wall.Seconds(),
		CPUSeconds: cpu.Seconds(), CPUPerMsg: float64(cpu.Microseconds()) / float64(msgs)}
}

// ThroughputResult is one consumer (bridge or baseline) on the workload, drained or end to end.
type ThroughputResult struct {
	Name             string  `json:"name"`
	Consumer         string  `json:"consumer"`
	Mode             string  `json:"mode"`
	Messages         int     `json:"messages"`
	Replicas         int     `json:"replicas"` // consumers running it: --replicas for the bridge, 1 for the baseline
	Seconds          float64 `json:"seconds"`
	Rate             float64 `json:"msgsPerSec"`
	EventsPerSec     float64 `json:"eventsPerSec"`
	RatioToRaw       float64 `json:"ratioToRaw"`         // to the raw drain: the consume+ack limit
	RatioToRawMode   float64 `json:"ratioToRawSameMode"` // to the raw consumer run the same way
	CPUSeconds       float64 `json:"cpuSeconds"`
	CPUPerMsg        float64 `json:"cpuMicrosPerMsg"`
	CPURatioToRaw    float64 `json:"cpuRatioToRaw"`
	PublishSeconds   float64 `json:"publishSeconds"`
	StartSeconds     float64 `json:"startSeconds,omitempty"` // the daemon: from its process start to the first call
	CallsPerEvent    float64 `json:"callsPerEvent"`
	API              tally   `json:"api"`
	DeadLetters      uint64  `json:"deadLetters"`
	APICallMs        float64 `json:"apiCallMeanMs"` // the bridge's own histogram; 0 for the baseline
	MaxAckPending    int     `json:"maxAckPending"`
	GoroutinesBefore int     `json:"goroutinesBefore"`
	GoroutinesAfter  int     `json:"goroutinesAfter"`
}

// LatencyResult is the commit→call latency and the delay-flush lateness at a fixed rate.
type LatencyResult struct {
	Rate          float64 `json:"eventsPerSec"`
	Events        int     `json:"events"`
	Delay         string  `json:"delay"`
	CommitToCall  dist    `json:"commitToCall"`
	CommitTally   tally   `json:"commitApi"`
	CommitProbe   dist    `json:"commitSchedulingProbe"` // lateness of a 1 ms sleep meanwhile
	DelayLateness dist    `json:"delayLateness"`
	DelayTally    tally   `json:"delayApi"`
	DelayProbe    dist    `json:"delaySchedulingProbe"`

	// The samples of CommitToCall and DelayLateness in ms, ascending, for --plot.
	CommitToCallMs  []float64 `json:"-"`
	DelayLatenessMs []float64 `json:"-"`
}

// HeldResult is the memory cost of held messages.
type HeldResult struct {
	Held              int     `json:"held"`
	HeapBefore        uint64  `json:"heapBefore"`
	HeapBare          uint64  `json:"heapBareConsumer"`
	HeapBridgeBase    uint64  `json:"heapBridgeBase"`
	HeapBridge        uint64  `json:"heapBridge"`
	BareBytesPerMsg   float64 `json:"bareConsumerBytesPerMsg"`
	BridgeBytesPerMsg float64 `json:"bridgeBytesPerMsg"`
	OwnBytesPerMsg    float64 `json:"bridgeOwnBytesPerMsg"`
	RSS               uint64  `json:"rss"`
	PeakRSS           uint64  `json:"peakRss"`
	// The cost of keeping them alive with the default consumer.ackWait: in-progress pings per
	// second, and the process's CPU seconds per second with them and without (ackWait 1 h).
	PingAckWait   string  `json:"pingAckWait"`
	PingsPerSec   float64 `json:"pingsPerSec"`
	PingCPUPerSec float64 `json:"pingCpuPerSec"`
	IdleCPUPerSec float64 `json:"idleCpuPerSec"`
}

// Process is the whole process: peak memory, and goroutines and descriptors at both ends.
type Process struct {
	PeakRSS         uint64 `json:"peakRss"`
	HeapSys         uint64 `json:"heapSys"`
	GoroutinesStart int    `json:"goroutinesStart"`
	GoroutinesEnd   int    `json:"goroutinesEnd"`
	FDsStart        int    `json:"fdsStart"`
	FDsEnd          int    `json:"fdsEnd"`
}

func newReport(cfg Config) *Report {
	return &Report{
		Time: time.Now().UTC(),
		Machine: Machine{
			GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, NumCPU: runtime.NumCPU(),
			GOMAXPROCS: runtime.GOMAXPROCS(0), CPUModel: cpuModel(), GoVersion: runtime.Version(),
			NATS: natsKind(cfg),
		},
		Workload: Workload{
			Keys: cfg.Keys, Workflows: cfg.Workflows, Publishers: cfg.Publishers, Commits: cfg.Commits,
			TrackBytes: len(trackBody(cfg.Keys-1, cfg.BodySize)), WorkflowByte: len(workflowBody(cfg.Keys-1, cfg.Workflows-1, cfg.BodySize)),
			Delay: cfg.Delay.String(), Rate: cfg.Rate, Storage: cfg.Storage, InProcess: cfg.InProcess && cfg.NATSURL == "",
			MaxInFlight: cfg.MaxInFlight, Replicas: cfg.Replicas,
		},
		Failures: []string{},
	}
}

func natsKind(cfg Config) string {
	if cfg.NATSURL != "" {
		return "external"
	}
	return "embedded"
}

func (r *Report) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// finish fills in the ratios and the process figures.
func (r *Report) finish() {
	for i := range r.Rounds {
		r.Rounds[i].ratios()
	}
	r.Summary = summarize(r.Rounds)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.Process.PeakRSS = procStatus("VmHWM")
	r.Process.HeapSys = ms.HeapSys
	// A figure, not a check (each phase checks its own goroutines): the count once it stops
	// changing. Waiting for it to fall back to the start's would wait settleWait in full, as the
	// load command's admin connection keeps one more goroutine from its first request on.
	r.Process.GoroutinesEnd = stableGoroutines()
	r.Process.FDsEnd = openFDs()
}

// ratios compares each consumer with the raw consumer of the same round.
func (rd *Round) ratios() {
	if rd.Raw == nil || rd.Raw.Drain.Rate <= 0 {
		return
	}
	for i := range rd.Throughput {
		t := &rd.Throughput[i]
		same := rd.Raw.Drain
		if t.Mode == "end-to-end" {
			same = rd.Raw.EndToEnd
		}
		t.RatioToRaw = t.Rate / rd.Raw.Drain.Rate
		if same.Rate > 0 {
			t.RatioToRawMode = t.Rate / same.Rate
		}
		if t.CPUPerMsg > 0 {
			t.CPURatioToRaw = same.CPUPerMsg / t.CPUPerMsg
		}
	}
}

// summarize takes the median of every figure over the rounds, row by row.
func summarize(rounds []Round) []Summary {
	var names []string
	rows := map[string][]ThroughputResult{}
	add := func(t ThroughputResult) {
		if _, ok := rows[t.Name]; !ok {
			names = append(names, t.Name)
		}
		rows[t.Name] = append(rows[t.Name], t)
	}
	for _, rd := range rounds {
		if rd.Raw != nil {
			for _, f := range []struct {
				name string
				f    rawFigure
			}{{"raw drain", rd.Raw.Drain}, {"raw end-to-end", rd.Raw.EndToEnd}} {
				add(ThroughputResult{Name: f.name, Rate: f.f.Rate, CPUPerMsg: f.f.CPUPerMsg,
					RatioToRaw: f.f.Rate / rd.Raw.Drain.Rate, RatioToRawMode: 1, CPURatioToRaw: 1})
			}
		}
		for _, t := range rd.Throughput {
			add(t)
		}
	}
	out := make([]Summary, 0, len(names))
	for _, name := range names {
		ts := rows[name]
		pick := func(f func(ThroughputResult) float64) []float64 {
			v := make([]float64, len(ts))
			for i, t := range ts {
				v[i] = f(t)
			}
			return v
		}
		ratios := pick(func(t ThroughputResult) float64 { return t.RatioToRaw })
		out = append(out, Summary{
			Name:           name,
			Rounds:         len(ts),
			Rate:           median(pick(func(t ThroughputResult) float64 { return t.Rate })),
			RatioToRaw:     median(ratios),
			RatioToRawMin:  slices.Min(ratios),
			RatioToRawMax:  slices.Max(ratios),
			RatioToRawMode: median(pick(func(t ThroughputResult) float64 { return t.RatioToRawMode })),
			CPUPerMsg:      median(pick(func(t ThroughputResult) float64 { return t.CPUPerMsg })),
			CPURatioToRaw:  median(pick(func(t ThroughputResult) float64 { return t.CPURatioToRaw })),
			CallsPerEvent:  slices.Max(pick(func(t ThroughputResult) float64 { return t.CallsPerEvent })),
		})
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// writeReport prints the report on stdout as a table or JSON, and to the --json file.
func writeReport(r *Report, cfg Config, stdout io.Writer) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if cfg.JSONFile != "" {
		if err := os.WriteFile(cfg.JSONFile, data, 0o644); err != nil {
			return err
		}
	}
	if cfg.Format == "json" {
		_, err = stdout.Write(data)
	} else {
		err = writeTable(r, stdout)
	}
	if err == nil && cfg.PlotDir != "" {
		// After the report: a picture that cannot be written does not lose it.
		if _, err = writePlots(r, cfg.PlotDir); err != nil {
			err = fmt.Errorf("--plot: %w", err)
		}
	}
	return err
}

func writeTable(r *Report, out io.Writer) error {
	var b bytes.Buffer
	m, w := r.Machine, r.Workload
	fmt.Fprintf(&b, "machine: %s, %d CPUs (GOMAXPROCS %d), %s %s/%s, NATS %s\n", m.CPUModel, m.NumCPU, m.GOMAXPROCS, m.GoVersion, m.GOOS, m.GOARCH, m.NATS)
	if r.Soak == nil {
		fmt.Fprintf(&b, "workload: %d keys × (1 track + %d workflows%s), %d publishers, bodies %d/%d bytes (track/workflow), delay %s, rate %s, %s storage, max in flight %d, bridge replicas %d\n\n",
			w.Keys, w.Workflows, commitText(w.Commits), w.Publishers,
			w.TrackBytes, w.WorkflowByte, w.Delay, rateText(w.Rate), w.Storage, w.MaxInFlight, w.Replicas)
	}

	for i, rd := range r.Rounds {
		if len(r.Rounds) > 1 {
			fmt.Fprintf(&b, "round %d of %d\n", i+1, len(r.Rounds))
		}
		if err := writeRound(&b, rd); err != nil {
			return err
		}
	}
	if len(r.Rounds) > 1 && len(r.Summary) > 0 {
		fmt.Fprintf(&b, "median over %d rounds\n", len(r.Rounds))
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "throughput\tmsgs/s\t× raw drain\t(min–max)\t× raw same mode\tCPU µs/msg\tCPU × raw\tcalls/event (max)\t")
		for _, sm := range r.Summary {
			calls := ""
			if !strings.HasPrefix(sm.Name, "raw") {
				calls = fmt.Sprintf("%.3f", sm.CallsPerEvent)
			}
			fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f–%.2f\t%.2f\t%.1f\t%.2f\t%s\t\n", sm.Name, sm.Rate, sm.RatioToRaw, sm.RatioToRawMin, sm.RatioToRawMax,
				sm.RatioToRawMode, sm.CPUPerMsg, sm.CPURatioToRaw, calls)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(&b)
	}
	if l := r.Latency; l != nil {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(&b, "latency at %.0f events/s, %d events, delay %s\n", l.Rate, l.Events, l.Delay)
		fmt.Fprintln(tw, "measure\tn\tp50 ms\tp90 ms\tp99 ms\tmax ms\tcalls/event\t")
		row := func(name string, d dist, calls string) {
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n", name, d.N, d.P50, d.P90, d.P99, d.Max, calls)
		}
		row("commit → call", l.CommitToCall, fmt.Sprintf("%.3f", l.CommitTally.callsPerEvent()))
		row("  scheduling probe", l.CommitProbe, "")
		row("delay lateness", l.DelayLateness, fmt.Sprintf("%.3f", l.DelayTally.callsPerEvent()))
		row("  scheduling probe", l.DelayProbe, "")
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(&b)
	}
	if f := r.Failover; f != nil {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(&b, "failover: %d events at %.0f events/s, a bridge killed after %s; consumer.ackWait %s, partitions.failoverAfter %s; %s\n",
			f.Events, f.Rate, f.KillAfter, f.AckWait, f.FailoverAft, f.Closed)
		fmt.Fprintln(tw, "mode\tp50 ms\tp99 ms\tmax ms\tevents > 1 s\tlast of them after the kill s\tmissing\treplays\t")
		for _, m := range f.Modes {
			fmt.Fprintf(tw, "%s\t%.1f\t%.0f\t%.0f\t%d\t%.1f\t%d\t%d\t\n", m.Name, m.CommitToCall.P50, m.CommitToCall.P99, m.CommitToCall.Max,
				m.Late, m.LastLateMs/1000, m.Tally.Missing, m.Tally.Duplicates)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(&b)
	}
	if h := r.Held; h != nil {
		fmt.Fprintf(&b, "held: %d messages held; live heap per held message: bridge %.0f B, bare consumer holding the same %.0f B, bridge's own %.0f B; RSS %s (peak %s)\n",
			h.Held, h.BridgeBytesPerMsg, h.BareBytesPerMsg, h.OwnBytesPerMsg, mib(h.RSS), mib(h.PeakRSS))
		if h.PingAckWait != "" {
			fmt.Fprintf(&b, "held: keeping them alive with consumer.ackWait %s: %.0f in-progress pings/s, CPU %.2f s/s (%.2f s/s without pings)\n",
				h.PingAckWait, h.PingsPerSec, h.PingCPUPerSec, h.IdleCPUPerSec)
		}
		fmt.Fprintln(&b)
	}
	if s := r.Soak; s != nil {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(&b, "soak: %s at %.0f events/s (%d workflows each, every other one committed, the others flushed by the %s delay), %s storage; %d events, %d calls, %d API connections, %d dead letters\n",
			s.Duration, s.Rate, w.Workflows, w.Delay, w.Storage, s.Events, s.API.Calls, s.API.Connections, s.DeadLetters)
		fmt.Fprintln(tw, "t\tgoroutines\t(net of API pool)\theap\tfds\t(net of API pool)\tNATS connections\tAPI connections\theld\t")
		for _, p := range s.Samples {
			fmt.Fprintf(tw, "%.0fs\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%.0f\t\n", p.Seconds, p.Goroutines, p.netGoroutines(), mib(p.Heap),
				p.FDs, p.netFDs(), p.Conns, p.APIConns, p.Held)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(&b, "growth from the second to the last third (means; goroutines and fds net of the API pool): goroutines %+d (bound %d), heap %s (bound %s), fds %+d (bound %d)\n\n",
			s.GoroutineGrowth, s.GoroutineBound, signedMiB(s.HeapGrowth), mib(uint64(s.HeapBound)), s.FDGrowth, s.FDBound)
	}
	p := r.Process
	fmt.Fprintf(&b, "process: peak RSS %s, heap from the OS %s, goroutines %d→%d, fds %d→%d\n", mib(p.PeakRSS), mib(p.HeapSys), p.GoroutinesStart, p.GoroutinesEnd, p.FDsStart, p.FDsEnd)
	if len(r.Failures) == 0 {
		fmt.Fprintln(&b, "checks: all passed")
	} else {
		for _, f := range r.Failures {
			fmt.Fprintln(&b, "FAIL:", f)
		}
	}
	_, err := out.Write(b.Bytes())
	return err
}

// writeRound prints the throughput table of one round.
func writeRound(b *bytes.Buffer, rd Round) error {
	if rd.Raw == nil && len(rd.Throughput) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "throughput\treplicas\tmessages\tseconds\tmsgs/s\t× raw drain\t× raw same mode\tCPU µs/msg\tCPU × raw\tevents/s\tcalls\tcalls/event\tdup\tAPI conns\tAPI ms\tdead letters\tgoroutines\t")
	if rd.Raw != nil {
		fmt.Fprintf(tw, "raw publish only\t\t%d\t%.2f\t%.0f\t\t\t\t\t\t\t\t\t\t\t\t\t\n", rd.Raw.Messages, rd.Raw.PublishSeconds, rd.Raw.PublishRate)
		for _, f := range []struct {
			name string
			f    rawFigure
		}{{"raw drain", rd.Raw.Drain}, {"raw end-to-end", rd.Raw.EndToEnd}} {
			fmt.Fprintf(tw, "%s\t\t%d\t%.2f\t%.0f\t%.2f\t1.00\t%.1f\t1.00\t\t\t\t\t\t\t\t\t\n", f.name, rd.Raw.Messages, f.f.Seconds, f.f.Rate,
				f.f.Rate/rd.Raw.Drain.Rate, f.f.CPUPerMsg)
		}
	}
	for _, t := range rd.Throughput {
		apiMs := ""
		if t.APICallMs > 0 {
			apiMs = fmt.Sprintf("%.2f", t.APICallMs)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.0f\t%s\t%s\t%.1f\t%s\t%.0f\t%d\t%.3f\t%d\t%d\t%s\t%d\t%d→%d\t\n", t.Name, t.Replicas, t.Messages, t.Seconds, t.Rate,
			ratioText(t.RatioToRaw), ratioText(t.RatioToRawMode), t.CPUPerMsg, ratioText(t.CPURatioToRaw),
			t.EventsPerSec, t.API.Calls, t.CallsPerEvent, t.API.Duplicates, t.API.Connections, apiMs, t.DeadLetters, t.GoroutinesBefore, t.GoroutinesAfter)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if s := savings(rd.Throughput); s != "" {
		fmt.Fprintln(b, s)
	}
	fmt.Fprintln(b)
	return nil
}

// savings compares the bridge with the baseline run the same way.
func savings(ts []ThroughputResult) string {
	var lines []string
	for _, mode := range []string{"drain", "end-to-end"} {
		var br, bl *ThroughputResult
		for i := range ts {
			switch {
			case ts[i].Mode == mode && ts[i].Consumer == "bridge":
				br = &ts[i]
			case ts[i].Mode == mode && ts[i].Consumer == "baseline":
				bl = &ts[i]
			}
		}
		if br == nil || bl == nil || bl.API.Calls == 0 || bl.Rate == 0 {
			continue
		}
		lines = append(lines, fmt.Sprintf("coalescing (%s): %d calls instead of %d (%.0f%% saved), %.2f× the per-message baseline's msgs/s",
			mode, br.API.Calls, bl.API.Calls, 100*(1-float64(br.API.Calls)/float64(bl.API.Calls)), br.Rate/bl.Rate))
	}
	return strings.Join(lines, "\n")
}

func commitText(commits bool) string {
	if commits {
		return " + 1 commit"
	}
	return ""
}

func ratioText(r float64) string {
	if r == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", r)
}

func rateText(r float64) string {
	if r == 0 {
		return "unpaced"
	}
	return fmt.Sprintf("%.0f events/s", r)
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func signedMiB(n int64) string { return fmt.Sprintf("%+.1f MiB", float64(n)/(1<<20)) }

// procStatus reads a memory field of /proc/self/status (VmRSS, VmHWM) in bytes; 0 where there
// is no /proc.
func procStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok || name != field {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) == 0 {
			return 0
		}
		kb, err := strconv.ParseUint(fs[0], 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// cpuTime is the CPU time the process has used, user and system, all threads.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// openFDs counts the process's open file descriptors (sockets included); -1 where there is no
// /proc.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if name, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
