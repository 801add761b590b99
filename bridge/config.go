package bridge

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/notifizz-bridge/notifizz-bridge/catalog"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// CoalesceMode says when a window closes; it is spelled in config files as its value.
type CoalesceMode string

// Coalescing modes.
const (
	// ModeFixed closes a window a fixed delay after it opened.
	ModeFixed CoalesceMode = "fixed"
	// ModeSliding pushes the close back by the delay on every message, never past MaxDelay.
	ModeSliding CoalesceMode = "sliding"
)

// APIProfile is the surface of the Notifizz API the bridge speaks; it is spelled in config files
// as its value.
type APIProfile string

// API profiles.
const (
	// APIv1 is the surface of the SDK docs the bridge started from: a track coalesced with its
	// workflows into one call, and send to the Notification Center.
	APIv1 APIProfile = "v1"
	// APIv2 is the surface of the SDKs 2.x (2026): a flat track sent as soon as it arrives, with
	// occurredAt, and the identity and subscription calls; no workflows, no send.
	APIv2 APIProfile = "v2"
)

// OccurredAtSource says what a v2 track without its own occurredAt is sent with; it is spelled
// in config files as its value.
type OccurredAtSource string

// Sources of occurredAt.
const (
	// OccurredAtPublish sends the time the track message was published to the stream, so that
	// an event that waited in the stream reaches Notifizz with the time it happened.
	OccurredAtPublish OccurredAtSource = "publish"
	// OccurredAtNone sends no occurredAt: the API takes the time of the call.
	OccurredAtNone OccurredAtSource = "none"
)

// Storage is where the streams keep their messages; it is spelled in config files as its value.
type Storage string

// Storage types.
const (
	StorageFile   Storage = "file"   // on disk: survives a server's restart
	StorageMemory Storage = "memory" // in memory: lost when the server stops
)

// Config is everything the bridge needs besides its connections. DefaultConfig gives the
// documented defaults; Validate names the fields it finds wrong by their Go paths, which the
// daemon's config package maps to its file's keys.
type Config struct {
	Stream          StreamConfig
	Consumer        ConsumerConfig
	Coalesce        CoalesceConfig
	Retry           RetryConfig
	DeadLetter      DeadLetterConfig
	MaxInFlight     int           // API calls running at once
	RateLimit       float64       // API calls per second; 0 means unlimited
	ShutdownTimeout time.Duration // how long Run waits for calls in flight at shutdown
	// StartTimeout bounds how long start-up retries what may pass by itself (NATS not up yet,
	// a JetStream cluster electing its leaders): the daemon's first connection, and Run's
	// creating or binding the streams, the consumer, the group and its buckets. 0: no bound.
	StartTimeout time.Duration

	// Partitions spreads the stream over several bridge replicas; see partitioned.go.
	Partitions PartitionsConfig

	// Health configures the stall watchdog; see health.go.
	Health HealthConfig

	// API is the Notifizz API profile: APIv1 (the default) or APIv2.
	API APIProfile
	// OccurredAt is what a v2 track without its own occurredAt is sent with.
	OccurredAt OccurredAtSource

	// Catalog declares events, with a JSON Schema for their properties and the fields their
	// idempotency keys are derived from, in both API profiles; mode off by default. Its schema
	// files are compiled by catalog.Load, not by Validate.
	Catalog catalog.Config
}

// StreamConfig names the stream the bridge consumes and says whether the bridge manages it.
type StreamConfig struct {
	Name            string
	SubjectPrefix   string
	Create          bool    // create or update the streams and the consumer at start
	Storage         Storage // StorageFile or StorageMemory
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
	Mode          CoalesceMode
	MaxDelay      time.Duration
	MaxWorkflows  int
	MaxBytes      int // bound on the request body one window builds, in bytes
	OrphanTimeout time.Duration
}

// Bounds of Coalesce.MaxBytes. Below the lower one the bridge's own allowance for the keys it
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
			Storage:         StorageFile,
			Replicas:        1,
			MaxAge:          7 * 24 * time.Hour,
			DuplicateWindow: 2 * time.Minute,
		},
		Consumer: ConsumerConfig{
			Durable:       "notifizz-bridge",
			AckWait:       5 * time.Second,
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
			Mode:          PartitionStatic,
			Group:         "notifizz-bridge",
			FailoverAfter: 5 * time.Second,
		},
		Health:          HealthConfig{StallAfter: 2 * time.Minute},
		MaxInFlight:     64,
		ShutdownTimeout: 10 * time.Second,
		StartTimeout:    2 * time.Minute,
		API:             APIv1,
		OccurredAt:      OccurredAtPublish,
		Catalog:         catalog.Config{Mode: catalog.ModeOff},
	}
}

// Validate reports every problem at once, each a *FieldError naming the field it concerns.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, format: format, args: args})
	}
	if c.Stream.Name == "" || strings.ContainsAny(c.Stream.Name, ".*> \t") {
		bad("Stream.Name", "must be a non-empty name without '.', '*', '>' or spaces")
	}
	if !validSubjectPrefix(c.Stream.SubjectPrefix) {
		bad("Stream.SubjectPrefix", "must be dot-separated tokens without wildcards or spaces")
	}
	if c.Stream.Storage != StorageFile && c.Stream.Storage != StorageMemory {
		bad("Stream.Storage", "must be %q or %q, not %q", StorageFile, StorageMemory, c.Stream.Storage)
	}
	if c.Stream.Replicas < 1 || c.Stream.Replicas > 5 {
		bad("Stream.Replicas", "must be between 1 and 5, not %d", c.Stream.Replicas)
	}
	if c.Stream.MaxAge < 0 {
		bad("Stream.MaxAge", "must not be negative")
	}
	if c.Stream.DuplicateWindow < 0 {
		bad("Stream.DuplicateWindow", "must not be negative")
	}
	if c.Consumer.Durable == "" || strings.ContainsAny(c.Consumer.Durable, ".*> \t") {
		bad("Consumer.Durable", "must be a non-empty name without '.', '*', '>' or spaces")
	}
	if c.Consumer.AckWait < time.Second {
		bad("Consumer.AckWait", "must be at least 1s, not %s", c.Consumer.AckWait)
	}
	if c.Consumer.MaxDeliver < 1 {
		bad("Consumer.MaxDeliver", "must be at least 1, not %d", c.Consumer.MaxDeliver)
	}
	if c.Consumer.MaxAckPending < 1 {
		bad("Consumer.MaxAckPending", "must be at least 1, not %d", c.Consumer.MaxAckPending)
	}
	if c.Coalesce.Delay <= 0 {
		bad("Coalesce.Delay", "must be positive, not %s", c.Coalesce.Delay)
	}
	switch c.Coalesce.Mode {
	case ModeFixed:
	case ModeSliding:
		if c.Coalesce.MaxDelay < c.Coalesce.Delay {
			bad("Coalesce.MaxDelay", "must be at least %s (%s) in sliding mode, not %s", FieldRef("Coalesce.Delay"), c.Coalesce.Delay, c.Coalesce.MaxDelay)
		}
	default:
		bad("Coalesce.Mode", "must be %q or %q, not %q", ModeFixed, ModeSliding, c.Coalesce.Mode)
	}
	if c.Coalesce.MaxWorkflows < 1 {
		bad("Coalesce.MaxWorkflows", "must be at least 1, not %d", c.Coalesce.MaxWorkflows)
	}
	if c.Coalesce.MaxBytes < MinWindowBytes || c.Coalesce.MaxBytes > MaxWindowBytes {
		bad("Coalesce.MaxBytes", "must be between %d (64 KiB) and %d (64 MiB) bytes, not %d", MinWindowBytes, MaxWindowBytes, c.Coalesce.MaxBytes)
	}
	if c.Coalesce.OrphanTimeout < c.closeBound() {
		bad("Coalesce.OrphanTimeout", "must be at least the longest window (%s), not %s", c.closeBound(), c.Coalesce.OrphanTimeout)
	}
	if c.Retry.Attempts < 1 {
		bad("Retry.Attempts", "must be at least 1, not %d", c.Retry.Attempts)
	}
	if c.Retry.InitialBackoff <= 0 {
		bad("Retry.InitialBackoff", "must be positive, not %s", c.Retry.InitialBackoff)
	}
	if c.Retry.MaxBackoff < c.Retry.InitialBackoff {
		bad("Retry.MaxBackoff", "must be at least %s, not %s", FieldRef("Retry.InitialBackoff"), c.Retry.MaxBackoff)
	}
	if c.Retry.NakInitial <= 0 {
		bad("Retry.NakInitial", "must be positive, not %s", c.Retry.NakInitial)
	}
	if c.Retry.NakMax < c.Retry.NakInitial {
		bad("Retry.NakMax", "must be at least %s, not %s", FieldRef("Retry.NakInitial"), c.Retry.NakMax)
	}
	if c.DeadLetter.Stream == "" || strings.ContainsAny(c.DeadLetter.Stream, ".*> \t") {
		bad("DeadLetter.Stream", "must be a non-empty name without '.', '*', '>' or spaces")
	} else if c.DeadLetter.Stream == c.Stream.Name {
		bad("DeadLetter.Stream", "must differ from %s", FieldRef("Stream.Name"))
	}
	if !validSubjectPrefix(c.DeadLetter.SubjectPrefix) {
		bad("DeadLetter.SubjectPrefix", "must be dot-separated tokens without wildcards or spaces")
	} else if c.DeadLetter.SubjectPrefix == c.Stream.SubjectPrefix {
		bad("DeadLetter.SubjectPrefix", "must differ from %s", FieldRef("Stream.SubjectPrefix"))
	}
	c.Partitions.validate(bad)
	if c.MaxInFlight < 1 {
		bad("MaxInFlight", "must be at least 1, not %d", c.MaxInFlight)
	}
	if c.RateLimit < 0 {
		bad("RateLimit", "must not be negative")
	}
	if c.ShutdownTimeout <= 0 {
		bad("ShutdownTimeout", "must be positive, not %s", c.ShutdownTimeout)
	}
	if c.StartTimeout < 0 {
		bad("StartTimeout", "must not be negative (0 retries without a bound), not %s", c.StartTimeout)
	}
	if c.Health.StallAfter < 0 {
		bad("Health.StallAfter", "must not be negative (0 turns the watchdog off), not %s", c.Health.StallAfter)
	}
	if c.API != APIv1 && c.API != APIv2 {
		bad("API", "must be %q or %q, not %q", APIv1, APIv2, c.API)
	}
	if c.OccurredAt != OccurredAtPublish && c.OccurredAt != OccurredAtNone {
		bad("OccurredAt", "must be %q or %q, not %q", OccurredAtPublish, OccurredAtNone, c.OccurredAt)
	}
	validateCatalog(c.Catalog, bad)
	return errors.Join(errs...)
}

// validateCatalog adds the problems of the catalog's mode and declarations to a Config.Validate
// run. An event may declare neither a schema nor fields: it is then only declared.
func validateCatalog(c catalog.Config, bad func(field, format string, args ...any)) {
	switch c.Mode {
	case catalog.ModeOff, catalog.ModeSoft, catalog.ModeStrict:
	default:
		bad("Catalog.Mode", "must be %q, %q or %q, not %q", catalog.ModeOff, catalog.ModeSoft, catalog.ModeStrict, c.Mode)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Events)) {
		// A name the API would refuse, or one with spaces around it, can never match a track:
		// the bridge dead-letters such tracks, and matches the others by their trimmed name.
		switch trimmed, problem := notifizz.CheckEventName(name); {
		case problem != "":
			bad("Catalog.Events", "%q is not an event name the API accepts (%s): a name is 1 to %d characters of printable ASCII",
				name, strings.ReplaceAll(problem, "_", " "), notifizz.MaxEventNameLen)
		case trimmed != name:
			bad("Catalog.Events", "%q has spaces around it: tracks are matched by their trimmed name, %q", name, trimmed)
		}
		if slices.Contains(c.Events[name].IdempotencyFields, "") {
			bad("Catalog.Events", "%q lists an empty name in its idempotency fields", name)
		}
	}
}

// validate adds the problems of the partitions section to a Config.Validate run.
func (p PartitionsConfig) validate(bad func(field, format string, args ...any)) {
	if p.Count == 0 {
		return // single-replica mode: the other fields are not used
	}
	if p.Count < 0 || p.Count > maxPartitions {
		bad("Partitions.Count", "must be between 0 (a single replica) and %d, not %d", maxPartitions, p.Count)
	}
	if !validMemberName(p.Group) {
		bad("Partitions.Group", "must be a name of at most 64 letters, digits, '-' or '_', not %q", p.Group)
	}
	switch {
	case p.Member == "":
		bad("Partitions.Member", "must be set when %s is not 0 (the daemon defaults it to the host name)", FieldRef("Partitions.Count"))
	case !validMemberName(p.Member):
		bad("Partitions.Member", "must be a name of at most 64 letters, digits, '-' or '_', not %q", p.Member)
	}
	if p.FailoverAfter < MinFailoverAfter || p.FailoverAfter > MaxFailoverAfter {
		bad("Partitions.FailoverAfter", "must be between %s and %s, not %s: replicas beat every quarter of it, "+
			"and a shorter one would take a replica that paused for a second for dead and move its partitions back and forth",
			MinFailoverAfter, MaxFailoverAfter, p.FailoverAfter)
	}
	switch p.Mode {
	case PartitionStatic:
		if len(p.Members) == 0 {
			bad("Partitions.Members", "must list every member of the static group (this replica's %s among them)", FieldRef("Partitions.Member"))
			return
		}
		seen := make(map[string]bool, len(p.Members))
		for _, m := range p.Members {
			if !validMemberName(m) {
				bad("Partitions.Members", "must be names of at most 64 letters, digits, '-' or '_', not %q", m)
			}
			if seen[m] {
				bad("Partitions.Members", "names %q twice", m)
			}
			seen[m] = true
		}
		if len(p.Members) > p.Count {
			bad("Partitions.Members", "has %d members for %d partitions: a member without a partition would never receive a message", len(p.Members), p.Count)
		}
		if p.Member != "" && !seen[p.Member] {
			bad("Partitions.Member", "%q is not in %s", p.Member, FieldRef("Partitions.Members"))
		}
	case PartitionElastic:
		if len(p.Members) > 0 {
			bad("Partitions.Members", "is only used in static mode: elastic members join the group by themselves")
		}
	default:
		bad("Partitions.Mode", "must be %q or %q, not %q", PartitionStatic, PartitionElastic, p.Mode)
	}
}

// FieldError is one problem Config.Validate found, naming the field it concerns by its Go path
// from Config (e.g. "Coalesce.MaxBytes"), never by a config file's key: whoever fills a Config
// from a file maps the path to its own key, and names the fields a message mentions with Message.
type FieldError struct {
	Field  string // Go path from Config, e.g. "Coalesce.MaxBytes"
	format string // the message, with a %s verb for each FieldRef in args
	args   []any
}

// FieldRef is an argument of a FieldError's message that names another field of Config by its
// Go path, so that Message can name it as its reader knows it.
type FieldRef string

// Message returns what is wrong, without the field, naming the other fields it mentions with
// name (their Go paths when name is nil).
func (e *FieldError) Message(name func(field string) string) string {
	args := e.args
	if name != nil {
		args = slices.Clone(e.args)
		for i, a := range args {
			if ref, ok := a.(FieldRef); ok {
				args[i] = name(string(ref))
			}
		}
	}
	return fmt.Sprintf(e.format, args...)
}

// Error returns "<Go path>: <message>".
func (e *FieldError) Error() string { return e.Field + ": " + e.Message(nil) }

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
