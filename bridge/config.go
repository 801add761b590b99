package bridge

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Coalescing modes.
const (
	// ModeFixed closes a window a fixed delay after it opened.
	ModeFixed = "fixed"
	// ModeSliding pushes the close back by the delay on every message, never past MaxDelay.
	ModeSliding = "sliding"
)

// Config is everything the bridge needs besides its connections. The daemon fills it from the
// YAML file; DefaultConfig gives the documented defaults.
type Config struct {
	Stream          StreamConfig
	Consumer        ConsumerConfig
	Coalesce        CoalesceConfig
	Retry           RetryConfig
	DeadLetter      DeadLetterConfig
	MaxInFlight     int           // API calls running at once
	RateLimit       float64       // API calls per second; 0 means unlimited
	ShutdownTimeout time.Duration // how long Run waits for calls in flight at shutdown

	// Partitions spreads the stream over several bridge replicas; see partitioned.go.
	Partitions PartitionsConfig
}

// StreamConfig names the stream the bridge consumes and says whether the bridge manages it.
type StreamConfig struct {
	Name            string
	SubjectPrefix   string
	Create          bool   // create or update the streams and the consumer at start
	Storage         string // "file" or "memory"
	Replicas        int
	MaxAge          time.Duration // 0 keeps messages until limits say otherwise
	DuplicateWindow time.Duration
}

// ConsumerConfig configures the durable pull consumer.
type ConsumerConfig struct {
	Durable       string
	AckWait       time.Duration
	MaxDeliver    int
	MaxAckPending int // bounds the messages held in memory; size it from delay × peak rate
}

// CoalesceConfig controls the windows that gather the pieces of one event.
type CoalesceConfig struct {
	Delay         time.Duration
	Mode          string // ModeFixed or ModeSliding
	MaxDelay      time.Duration
	MaxWorkflows  int
	MaxBytes      int // bound on the request body one window builds, in bytes
	OrphanTimeout time.Duration
}

// Bounds of coalesce.maxBytes. Below the lower one the bridge's own allowance for the keys it
// adds (about 1 KiB) and an ordinary track leave little room for workflows; the upper one is the
// largest message a NATS server takes (the hard limit of max_payload), far above the request
// bodies HTTP APIs accept, and a window that size is already a lot of memory to hold per event.
const (
	MinWindowBytes = 64 << 10
	MaxWindowBytes = 64 << 20
)

// RetryConfig is the backoff of failed API calls: the in-process retries (done by the API client)
// start at InitialBackoff and double up to MaxBackoff; after Attempts the bridge naks with a delay
// that grows with the delivery count from NakInitial to NakMax.
type RetryConfig struct {
	Attempts       int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	NakInitial     time.Duration
	NakMax         time.Duration
}

// DeadLetterConfig says where messages that can never succeed are copied.
type DeadLetterConfig struct {
	Stream        string
	SubjectPrefix string
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Stream: StreamConfig{
			Name:            "NOTIFIZZ",
			SubjectPrefix:   "notifizz",
			Create:          true,
			Storage:         "file",
			Replicas:        1,
			MaxAge:          7 * 24 * time.Hour,
			DuplicateWindow: 2 * time.Minute,
		},
		Consumer: ConsumerConfig{
			Durable:       "notifizz-bridge",
			AckWait:       30 * time.Second,
			MaxDeliver:    20,
			MaxAckPending: 100_000,
		},
		Coalesce: CoalesceConfig{
			Delay:         time.Second,
			Mode:          ModeFixed,
			MaxDelay:      10 * time.Second,
			MaxWorkflows:  1000,
			MaxBytes:      4 << 20,
			OrphanTimeout: 30 * time.Second,
		},
		Retry: RetryConfig{
			Attempts:       3,
			InitialBackoff: 100 * time.Millisecond,
			MaxBackoff:     2 * time.Second,
			NakInitial:     time.Second,
			NakMax:         time.Minute,
		},
		DeadLetter: DeadLetterConfig{
			Stream:        "NOTIFIZZ_DLQ",
			SubjectPrefix: "notifizz.dlq",
		},
		Partitions: PartitionsConfig{
			Mode:  PartitionStatic,
			Group: "notifizz-bridge",
		},
		MaxInFlight:     64,
		ShutdownTimeout: 10 * time.Second,
	}
}

// Validate reports every problem at once, each with the config key it concerns.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Stream.Name == "" || strings.ContainsAny(c.Stream.Name, ".*> \t") {
		bad("stream.name", "must be a non-empty name without '.', '*', '>' or spaces")
	}
	if !validSubjectPrefix(c.Stream.SubjectPrefix) {
		bad("stream.subjectPrefix", "must be dot-separated tokens without wildcards or spaces")
	}
	if c.Stream.Storage != "file" && c.Stream.Storage != "memory" {
		bad("stream.storage", "must be \"file\" or \"memory\", not %q", c.Stream.Storage)
	}
	if c.Stream.Replicas < 1 || c.Stream.Replicas > 5 {
		bad("stream.replicas", "must be between 1 and 5, not %d", c.Stream.Replicas)
	}
	if c.Stream.MaxAge < 0 {
		bad("stream.maxAge", "must not be negative")
	}
	if c.Stream.DuplicateWindow < 0 {
		bad("stream.duplicateWindow", "must not be negative")
	}
	if c.Consumer.Durable == "" || strings.ContainsAny(c.Consumer.Durable, ".*> \t") {
		bad("consumer.durable", "must be a non-empty name without '.', '*', '>' or spaces")
	}
	if c.Consumer.AckWait < time.Second {
		bad("consumer.ackWait", "must be at least 1s, not %s", c.Consumer.AckWait)
	}
	if c.Consumer.MaxDeliver < 1 {
		bad("consumer.maxDeliver", "must be at least 1, not %d", c.Consumer.MaxDeliver)
	}
	if c.Consumer.MaxAckPending < 1 {
		bad("consumer.maxAckPending", "must be at least 1, not %d", c.Consumer.MaxAckPending)
	}
	if c.Coalesce.Delay <= 0 {
		bad("coalesce.delay", "must be positive, not %s", c.Coalesce.Delay)
	}
	switch c.Coalesce.Mode {
	case ModeFixed:
	case ModeSliding:
		if c.Coalesce.MaxDelay < c.Coalesce.Delay {
			bad("coalesce.maxDelay", "must be at least coalesce.delay (%s) in sliding mode, not %s", c.Coalesce.Delay, c.Coalesce.MaxDelay)
		}
	default:
		bad("coalesce.mode", "must be %q or %q, not %q", ModeFixed, ModeSliding, c.Coalesce.Mode)
	}
	if c.Coalesce.MaxWorkflows < 1 {
		bad("coalesce.maxWorkflows", "must be at least 1, not %d", c.Coalesce.MaxWorkflows)
	}
	if c.Coalesce.MaxBytes < MinWindowBytes || c.Coalesce.MaxBytes > MaxWindowBytes {
		bad("coalesce.maxBytes", "must be between %d (64 KiB) and %d (64 MiB) bytes, not %d", MinWindowBytes, MaxWindowBytes, c.Coalesce.MaxBytes)
	}
	if c.Coalesce.OrphanTimeout < c.closeBound() {
		bad("coalesce.orphanTimeout", "must be at least the longest window (%s), not %s", c.closeBound(), c.Coalesce.OrphanTimeout)
	}
	if c.Retry.Attempts < 1 {
		bad("retry.attempts", "must be at least 1, not %d", c.Retry.Attempts)
	}
	if c.Retry.InitialBackoff <= 0 {
		bad("retry.initialBackoff", "must be positive, not %s", c.Retry.InitialBackoff)
	}
	if c.Retry.MaxBackoff < c.Retry.InitialBackoff {
		bad("retry.maxBackoff", "must be at least retry.initialBackoff, not %s", c.Retry.MaxBackoff)
	}
	if c.Retry.NakInitial <= 0 {
		bad("retry.nakInitial", "must be positive, not %s", c.Retry.NakInitial)
	}
	if c.Retry.NakMax < c.Retry.NakInitial {
		bad("retry.nakMax", "must be at least retry.nakInitial, not %s", c.Retry.NakMax)
	}
	if c.DeadLetter.Stream == "" || strings.ContainsAny(c.DeadLetter.Stream, ".*> \t") {
		bad("deadLetter.stream", "must be a non-empty name without '.', '*', '>' or spaces")
	} else if c.DeadLetter.Stream == c.Stream.Name {
		bad("deadLetter.stream", "must differ from stream.name")
	}
	if !validSubjectPrefix(c.DeadLetter.SubjectPrefix) {
		bad("deadLetter.subjectPrefix", "must be dot-separated tokens without wildcards or spaces")
	} else if c.DeadLetter.SubjectPrefix == c.Stream.SubjectPrefix {
		bad("deadLetter.subjectPrefix", "must differ from stream.subjectPrefix")
	}
	c.Partitions.validate(bad)
	if c.MaxInFlight < 1 {
		bad("notifizz.maxInFlight", "must be at least 1, not %d", c.MaxInFlight)
	}
	if c.RateLimit < 0 {
		bad("notifizz.rateLimit", "must not be negative")
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdownTimeout", "must be positive, not %s", c.ShutdownTimeout)
	}
	return errors.Join(errs...)
}

// closeBound is the longest a window can stay open before it is due.
func (c Config) closeBound() time.Duration {
	if c.Coalesce.Mode == ModeSliding {
		return c.Coalesce.MaxDelay
	}
	return c.Coalesce.Delay
}

func validSubjectPrefix(p string) bool {
	if p == "" {
		return false
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return false
		}
	}
	return true
}
