package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Phases of a load run, in the order they run.
const (
	phaseRaw      = "raw"      // a bare pull consumer drains and acks the workload: the raw limit
	phaseBridge   = "bridge"   // the bridge drains a backlog, then runs end to end while publishing
	phaseBaseline = "baseline" // one API call per workflow message, no coalescing, both ways
	phaseLatency  = "latency"  // commit→call and delay lateness at a fixed rate
	phaseHeld     = "held"     // bytes per held message with many messages held
	phaseFailover = "failover" // the delivery gap after a bridge is killed, with the default settings
	phaseDaemon   = "daemon"   // the built daemon binary drains a backlog in its own process
)

// maxReplicas bounds --replicas: the replicas share this process and its cores.
const maxReplicas = 64

var allPhases = []string{phaseRaw, phaseBridge, phaseBaseline, phaseLatency, phaseHeld}

// knownPhases are allPhases and those that run only when asked for: the failover phase kills
// bridges and takes about a minute; the daemon phase needs the binary (--daemon).
var knownPhases = append(slices.Clone(allPhases), phaseFailover, phaseDaemon)

// Config is one load run. DefaultConfig gives the flags' defaults.
type Config struct {
	NATSURL   string // external server; empty starts an embedded one
	InProcess bool   // consumers reach the embedded server in-process, as the daemon does
	Storage   string // "file" or "memory", for the stream under test

	Keys       int           // event keys of the throughput workload
	Workflows  int           // workflow messages per key
	Publishers int           // publisher connections
	Commits    bool          // a commit per key once its pieces are stored
	BodySize   int           // pad track and workflow bodies to about this many bytes (0: natural size)
	Delay      time.Duration // coalesce.delay
	Rate       float64       // events per second for the throughput phases; 0 = as fast as possible

	MaxInFlight   int // notifizz.maxInFlight, also the baseline's concurrency
	MaxAckPending int // consumer.maxAckPending; 0 sizes it from delay × rate
	Replicas      int // bridges in the bridge phase; above 1, a static partitioned group of that many

	Daemon string // the notifizz-bridge binaries of the daemon phase, comma-separated

	Phases      []string
	Rounds      int           // passes of the throughput phases (raw, bridge, baseline)
	LatencyRate float64       // events per second of the latency phases
	LatencyKeys int           // events per latency phase
	Held        int           // messages held for the memory figure
	PingWindow  time.Duration // how long the held phase measures the in-progress pings; 0 skips it

	Soak       time.Duration // run a steady workload this long instead of the phases
	SoakRate   float64       // events per second during the soak
	SoakSample time.Duration // sampling interval during the soak

	Timeout    time.Duration // bound on each phase
	JSONFile   string        // also write the report as JSON to this file
	PlotDir    string        // also draw the figures as pictures into this directory
	Format     string        // "table" or "json" on stdout
	CPUProfile string        // CPU profile of the bridge phases
	MemProfile string        // heap profile taken with Held messages held
	Quiet      bool          // no progress lines on stderr
}

// DefaultConfig returns the flags' defaults: 10 000 keys × (1 track + 10 workflows + 1 commit)
// = 120 000 messages per throughput phase.
func DefaultConfig() Config {
	return Config{
		Storage:     "file",
		Keys:        10_000,
		Workflows:   10,
		Publishers:  4,
		Commits:     true,
		Delay:       time.Second,
		MaxInFlight: 64,
		Replicas:    1,
		Phases:      slices.Clone(allPhases),
		Rounds:      1,
		LatencyRate: 1000,
		LatencyKeys: 5000,
		Held:        100_000,
		PingWindow:  10 * time.Second,
		SoakRate:    200,
		SoakSample:  5 * time.Second,
		Timeout:     3 * time.Minute,
		Format:      "table",
	}
}

// errHelp is returned by parseFlags after -h; the usage was printed and the exit is 0.
var errHelp = errors.New("help requested")

// parseFlags reads the command line over DefaultConfig.
func parseFlags(args []string, stderr io.Writer) (Config, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("notifizz-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: notifizz-load [flags]\n\nMeasures the bridge against the raw JetStream limit in one process; see docs/PERFORMANCE.md.\n\nflags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.NATSURL, "nats", "", "use this NATS server instead of an embedded one (streams NOTIFIZZ_LOAD* are deleted and recreated)")
	fs.BoolVar(&cfg.InProcess, "inprocess", cfg.InProcess, "connect the consumers to the embedded server in-process instead of over loopback TCP")
	fs.StringVar(&cfg.Storage, "storage", cfg.Storage, "stream storage: file or memory")
	fs.IntVar(&cfg.Keys, "keys", cfg.Keys, "event keys in the throughput workload")
	fs.IntVar(&cfg.Workflows, "workflows", cfg.Workflows, "workflow messages per event key")
	fs.IntVar(&cfg.Publishers, "publishers", cfg.Publishers, "publisher connections (the pieces of one event come from different ones)")
	fs.BoolVar(&cfg.Commits, "commits", cfg.Commits, "publish a commit per key once its track and workflows are stored")
	fs.IntVar(&cfg.BodySize, "body-size", cfg.BodySize, "pad track and workflow bodies to about this many bytes (0: natural size)")
	fs.DurationVar(&cfg.Delay, "delay", cfg.Delay, "coalesce.delay")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "events per second in the throughput phases (0: as fast as possible)")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", cfg.MaxInFlight, "notifizz.maxInFlight (also the baseline's concurrency)")
	fs.IntVar(&cfg.MaxAckPending, "max-ack-pending", cfg.MaxAckPending, "consumer.maxAckPending (0: sized from delay × rate, at least the bridge default)")
	fs.IntVar(&cfg.Replicas, "replicas", cfg.Replicas, "bridges in the bridge phase, in this process; above 1 they form a static partitioned group with one partition each (see docs/SCALING.md)")
	fs.StringVar(&cfg.Daemon, "daemon", "", "run the daemon phase with this notifizz-bridge binary: it drains the backlog in its own process, over TCP, timed from its start (adds \"daemon\" to --phases); several, comma-separated, run one after the other in each round")
	phases := fs.String("phases", strings.Join(cfg.Phases, ","), "phases to run, from "+strings.Join(knownPhases, ","))
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "passes of the throughput phases; the report adds the median of each figure")
	latencyOnly := fs.Bool("latency", false, "run only the latency phases (same as --phases latency)")
	failoverOnly := fs.Bool("failover", false, "run only the failover phase (same as --phases failover): the delivery gap after a bridge is killed, single and partitioned, with the default settings")
	fs.Float64Var(&cfg.LatencyRate, "latency-rate", cfg.LatencyRate, "events per second in the latency phases")
	fs.IntVar(&cfg.LatencyKeys, "latency-keys", cfg.LatencyKeys, "events per latency phase")
	fs.IntVar(&cfg.Held, "held", cfg.Held, "messages to hold for the bytes-per-held-message figure")
	fs.DurationVar(&cfg.PingWindow, "ping-window", cfg.PingWindow, "how long the held phase measures the cost of the in-progress pings that keep held messages alive (0: not measured)")
	fs.DurationVar(&cfg.Soak, "soak", cfg.Soak, "run a steady workload for this long instead of the phases, and fail on growth")
	fs.Float64Var(&cfg.SoakRate, "soak-rate", cfg.SoakRate, "events per second during --soak")
	fs.DurationVar(&cfg.SoakSample, "soak-sample", cfg.SoakSample, "sampling interval during --soak")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound on each phase")
	fs.StringVar(&cfg.JSONFile, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&cfg.PlotDir, "plot", "", "also draw the figures into this directory: throughput.png/.svg (each phase against the raw drain) and latency-cdf.png/.svg")
	fs.StringVar(&cfg.Format, "format", cfg.Format, "report format on stdout: table or json")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the bridge phases to this file")
	fs.StringVar(&cfg.MemProfile, "memprofile", "", "write a heap profile taken while --held messages are held")
	fs.BoolVar(&cfg.Quiet, "quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, errHelp
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.Phases = nil
	for _, p := range strings.Split(*phases, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.Phases = append(cfg.Phases, p)
		}
	}
	if *latencyOnly {
		cfg.Phases = []string{phaseLatency}
	}
	if *failoverOnly {
		cfg.Phases = []string{phaseFailover}
	}
	if cfg.Daemon != "" && !cfg.has(phaseDaemon) {
		cfg.Phases = append(cfg.Phases, phaseDaemon)
	}
	return cfg, cfg.Validate()
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Storage != "file" && c.Storage != "memory" {
		bad("--storage must be file or memory, not %q", c.Storage)
	}
	if c.Keys < 1 {
		bad("--keys must be at least 1")
	}
	if c.Workflows < 1 {
		bad("--workflows must be at least 1")
	}
	if c.Publishers < 1 {
		bad("--publishers must be at least 1")
	}
	if c.BodySize < 0 {
		bad("--body-size must not be negative")
	}
	if c.Delay <= 0 {
		bad("--delay must be positive")
	}
	if c.Rate < 0 {
		bad("--rate must not be negative")
	}
	if c.MaxInFlight < 1 {
		bad("--max-in-flight must be at least 1")
	}
	if c.MaxAckPending < 0 {
		bad("--max-ack-pending must not be negative")
	}
	if c.Replicas < 1 || c.Replicas > maxReplicas {
		bad("--replicas must be between 1 and %d", maxReplicas)
	}
	for _, p := range c.Phases {
		if !slices.Contains(knownPhases, p) {
			bad("--phases: unknown phase %q (want %s)", p, strings.Join(knownPhases, ","))
		}
	}
	if c.has(phaseDaemon) && len(c.daemonBinaries()) == 0 {
		bad("the daemon phase needs --daemon PATH, the notifizz-bridge binary")
	}
	if c.Rounds < 1 {
		bad("--rounds must be at least 1")
	}
	if c.LatencyRate <= 0 {
		bad("--latency-rate must be positive")
	}
	if c.LatencyKeys < 1 {
		bad("--latency-keys must be at least 1")
	}
	if c.Held < 0 {
		bad("--held must not be negative")
	}
	if c.PingWindow < 0 {
		bad("--ping-window must not be negative")
	}
	if c.Soak < 0 {
		bad("--soak must not be negative")
	}
	if c.Soak > 0 {
		if c.SoakRate <= 0 {
			bad("--soak-rate must be positive")
		}
		if c.SoakSample <= 0 || c.SoakSample > c.Soak {
			bad("--soak-sample must be positive and at most --soak")
		}
	}
	if c.Timeout <= 0 {
		bad("--timeout must be positive")
	}
	if c.Format != "table" && c.Format != "json" {
		bad("--format must be table or json, not %q", c.Format)
	}
	return errors.Join(errs...)
}

func (c Config) has(phase string) bool { return slices.Contains(c.Phases, phase) }

// messagesPerEvent is the track, the workflows and the commit of one event.
func (c Config) messagesPerEvent(commits bool) int {
	n := 1 + c.Workflows
	if commits {
		n++
	}
	return n
}
