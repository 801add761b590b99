package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/pcgroups"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/layout"
	"github.com/notifizz-bridge/notifizz-bridge/internal/clock"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// Partitioning modes: how the replicas of a partitioned bridge share the partitions.
const (
	// PartitionStatic is a fixed list of members, each reading its share of the partitions
	// straight from the stream. A second instance started under a member's name is its hot
	// standby: the server pins the member's consumer to one instance at a time.
	PartitionStatic = "static"
	// PartitionElastic is a group that replicas join when they start and leave when they stop,
	// its partitions rebalanced over the current members. The group reads a work-queue copy of
	// the stream that pcgroups maintains.
	PartitionElastic = "elastic"
)

// maxPartitions bounds partitions.count: each partition is one filter subject on a member's
// consumer, and far more partitions than replicas buys nothing.
const maxPartitions = 1024

// leaveTimeout bounds what a replica does on its way out (flush, step down or leave the group).
const leaveTimeout = 5 * time.Second

// joinAttempts bounds the retries of a membership change that lost a race with another
// replica's (the group's config is updated with compare-and-set).
const joinAttempts = 5

// elasticBucket is the key-value bucket where pcgroups keeps the elastic groups' configs.
const elasticBucket = layout.ElasticBucket

// pinHeader is the header the server puts on messages of a consumer with a pinned priority
// group: the id of the pinned client.
const pinHeader = "Nats-Pin-Id"

// sourceHeader is the header a sourced stream puts on each message it copies:
// "<origin stream> <origin sequence> ...".
const sourceHeader = "Nats-Stream-Source"

// PartitionsConfig spreads the stream over several bridge replicas. The stream's subject
// transform stores each message under <partition>.<prefix>.<kind>.<key>, the partition a hash
// of the event key, so that every piece of one event lands in one partition; a
// github.com/synadia-io/orbit.go/pcgroups consumer group gives each partition to one replica
// at a time, so a window is never split over two replicas.
type PartitionsConfig struct {
	// Count is the number of partitions; 0 keeps the single-replica mode (one durable
	// consumer, no subject transform). It is fixed when the stream is created: the bridge
	// refuses to run against a stream partitioned differently.
	Count int
	// Mode is PartitionStatic or PartitionElastic.
	Mode string
	// Group names the consumer group.
	Group string
	// Member is this replica's name in the group.
	Member string
	// Members is the static group's membership, fixed when the group is created; elastic
	// groups ignore it (their members join by themselves).
	Members []string
}

// validate adds the problems of the partitions section to a Config.Validate run.
func (p PartitionsConfig) validate(bad func(key, format string, args ...any)) {
	if p.Count == 0 {
		return // single-replica mode: the other keys are not used
	}
	if p.Count < 0 || p.Count > maxPartitions {
		bad("partitions.count", "must be between 0 (a single replica) and %d, not %d", maxPartitions, p.Count)
	}
	if !validMemberName(p.Group) {
		bad("partitions.group", "must be a name of at most 64 letters, digits, '-' or '_', not %q", p.Group)
	}
	switch {
	case p.Member == "":
		bad("partitions.member", "must be set when partitions.count is not 0 (the daemon defaults it to the host name)")
	case !validMemberName(p.Member):
		bad("partitions.member", "must be a name of at most 64 letters, digits, '-' or '_', not %q", p.Member)
	}
	switch p.Mode {
	case PartitionStatic:
		if len(p.Members) == 0 {
			bad("partitions.members", "must list every member of the static group (this replica's partitions.member among them)")
			return
		}
		seen := make(map[string]bool, len(p.Members))
		for _, m := range p.Members {
			if !validMemberName(m) {
				bad("partitions.members", "must be names of at most 64 letters, digits, '-' or '_', not %q", m)
			}
			if seen[m] {
				bad("partitions.members", "names %q twice", m)
			}
			seen[m] = true
		}
		if len(p.Members) > p.Count {
			bad("partitions.members", "has %d members for %d partitions: a member without a partition would never receive a message", len(p.Members), p.Count)
		}
		if p.Member != "" && !seen[p.Member] {
			bad("partitions.member", "%q is not in partitions.members", p.Member)
		}
	case PartitionElastic:
		if len(p.Members) > 0 {
			bad("partitions.members", "is only used in static mode: elastic members join the group by themselves")
		}
	default:
		bad("partitions.mode", "must be %q or %q, not %q", PartitionStatic, PartitionElastic, p.Mode)
	}
}

// validMemberName accepts the names pcgroups turns into consumer and stream names
// (<group>-<member>, <stream>-<group>), which allow no '.', wildcards or spaces.
func validMemberName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// partitionDest matches a transform destination that puts a partition number first, as
// layout.PartitionTransform and the pcgroups documentation write it.
var partitionDest = regexp.MustCompile(`^\{\{\s*[Pp]artition\(\s*(\d+)\s*[,)]`)

// streamPartitions returns the number of partitions a stream's subject transform makes, 0 when
// it has none.
func streamPartitions(t *jetstream.SubjectTransformConfig) int {
	if t == nil {
		return 0
	}
	m := partitionDest.FindStringSubmatch(t.Destination)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0
	}
	return n
}

// checkStreamPartitions refuses to run against an existing stream partitioned differently from
// partitions.count. Messages already stored keep the subjects they were stored under, so a new
// count would put one event key in two partitions (a split window), and a count of 0 would
// read every partitioned subject as unknown. A stream that does not exist yet passes: it is
// created with the configured transform.
func (b *Bridge) checkStreamPartitions(ctx context.Context) error {
	name, want := b.cfg.Stream.Name, b.cfg.Partitions.Count
	s, err := b.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	have := streamPartitions(s.CachedInfo().Config.SubjectTransform)
	switch {
	case have == want:
		return nil
	case want == 0:
		return fmt.Errorf("partitions.count: stream %s is partitioned into %d partitions, so partitions.count must be %d to read it, not 0", name, have, have)
	case have == 0:
		return fmt.Errorf("partitions.count: stream %s exists without partitions; partitioning an existing stream is not supported "+
			"(see docs/SCALING.md): drain it and delete it, or use a new stream.name", name)
	default:
		return fmt.Errorf("partitions.count: stream %s has %d partitions, not %d; repartitioning an existing stream is not supported (see docs/SCALING.md)",
			name, have, want)
	}
}

// parseSubject splits a message's subject into its kind and key. A partitioned stream stores
// <partition>.<prefix>.<kind>.<key>; the partition token goes first, so that schema sees the
// subject the producer published.
func (b *Bridge) parseSubject(subject string) (schema.Kind, string, error) {
	if b.cfg.Partitions.Count > 0 {
		_, subject, _ = schema.SplitPartition(subject)
	}
	return schema.ParseSubject(b.cfg.Stream.SubjectPrefix, subject)
}

// partitionOf is the partition the server's {{partition(n,...)}} transform gives a key: FNV-1a
// over the key's bytes, modulo n.
func partitionOf(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// staticConsumerName and elasticStreamName are the names pcgroups gives a static member's
// consumer and an elastic group's work-queue stream.
var staticConsumerName, elasticStreamName = layout.StaticConsumerName, layout.ElasticStreamName

// partitionedSource consumes this replica's partitions through a pcgroups consumer group.
// pcgroups hands each message to a callback and never settles it: the bridge acks, naks and
// terminates, as with its own consumer.
type partitionedSource struct {
	js    jetstream.JetStream
	log   *slog.Logger
	cfg   Config
	cons  jetstream.ConsumerConfig // the template pcgroups creates the member's consumer from
	count int

	// mu serialises handle (pcgroups restarts its pull consumer on a membership change, and the
	// new one can deliver before the old one's callback has returned) and guards the fields
	// below it, which the callback, the membership watch and leave share.
	mu       sync.Mutex
	stopped  bool                                 // Consume is returning: handle must not be called again
	pins     map[string]string                    // member → the pin id on its last message: which pin this replica held
	covering map[string]bool                      // static: the dead members whose instance this replica runs
	joined   bool                                 // this replica added itself to the elastic group, so it must leave it
	members  *pcgroups.ElasticConsumerGroupConfig // elastic: the membership last seen
	stalePin string                               // elastic: the pin of a consumer pcgroups is replacing
	staleEnd time.Time                            // elastic: when to stop waiting for its replacement

	// liveness is the bucket of the group's heartbeats (see liveness.go), nil while the
	// operator has not created it; since is what this replica beats.
	liveness jetstream.KeyValue
	since    string
	beating  atomic.Int64  // since when (Unix ns) this replica's beats go through; 0 while they fail
	restart  chan struct{} // elastic: the member's consumer is gone, pcgroups must start again
	handle   func(jetstream.Msg)

	// stopBeats ends the beats, which go on until leave; beats counts their goroutine.
	stopBeats context.CancelFunc
	beats     sync.WaitGroup
	covers    map[string]cover // static: covering's instances, owned by tendGroup

	// bound is the member's consumer as it was before this replica pulled anything, nil when
	// it did not exist yet: what it shows pending, a previous instance of the member held (see
	// recovery).
	bound       *jetstream.ConsumerInfo
	boundPinned bool // static: another instance pulled or held the member's pin when this one started

	// control runs a function on the coordinator's goroutine, in order with the messages
	// handed over; Run sets it.
	control  func(func(*coordinator))
	watching sync.WaitGroup // the membership watch
}

// newPartitionedSource provisions the streams (with the partition transform) and, when the
// bridge manages them, the consumer group, and returns the source that consumes it.
func (b *Bridge) newPartitionedSource(ctx context.Context) (*partitionedSource, error) {
	if err := b.provisionStreams(ctx); err != nil {
		return nil, err
	}
	cfg := b.cfg
	p := cfg.Partitions
	s := &partitionedSource{
		js: b.js, log: b.log, cfg: cfg, count: p.Count, restart: make(chan struct{}, 1),
		pins: map[string]string{}, covering: map[string]bool{}, covers: map[string]cover{},
		cons: cfg.ConsumerLayout().MemberConfig(),
	}
	if err := s.checkOtherMode(ctx); err != nil {
		return nil, err
	}
	// pcgroups binds the member's consumer when it exists: a previous instance of the member
	// that died less than its inactivity threshold ago (elastic), or any (static). Read it
	// first, as the single consumer is read, for the start hold.
	stream, cons := cfg.Stream.Name, staticConsumerName(p.Group, p.Member)
	if p.Mode == PartitionElastic {
		stream, cons = elasticStreamName(cfg.Stream.Name, p.Group), p.Member
	}
	if c, err := b.js.Consumer(ctx, stream, cons); err == nil {
		s.bound = c.CachedInfo()
		if p.Mode == PartitionStatic && (s.bound.NumWaiting > 0 || slices.ContainsFunc(s.bound.PriorityGroups, func(pg jetstream.PriorityGroupState) bool {
			return pg.PinnedClientID != ""
		})) {
			// Another instance pulls from the member's consumer or holds its pin (the server
			// pins only when it has a message to deliver): what that instance holds is
			// settled by it, or comes back after the pin moves here, where the hold starts
			// (see pinned), not at this replica's start.
			s.boundPinned, s.bound = true, nil
		} else if p.Mode == PartitionElastic {
			// Its sequences are the work-queue stream's, while the bridge sees the stream's:
			// count every redelivery towards what the previous instance held.
			s.bound.Delivered.Stream = math.MaxUint64
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("partitions: read member %q's consumer: %w", p.Member, err)
	}
	kv, err := b.openLiveness(ctx)
	if err != nil {
		return nil, err
	}
	s.liveness, s.since = kv, time.Now().UTC().Format(time.RFC3339)
	if !cfg.Stream.Create {
		return s, nil // the operator manages the group; Consume reports it if it is missing
	}
	stream, group := cfg.Stream.Name, p.Group
	switch p.Mode {
	case PartitionStatic:
		// pcgroups compares member lists in order; sorted, every replica writes the same one.
		members := slices.Sorted(slices.Values(p.Members))
		err := retryTransient(ctx, func() error {
			return layout.CreateStaticGroup(ctx, b.js, stream, group, p.Count, members)
		})
		if err != nil {
			if have, gerr := pcgroups.GetStaticConsumerGroupConfig(ctx, b.js, stream, group); gerr == nil {
				return nil, fmt.Errorf("partitions: static group %q on stream %s has %d partitions and members %v, but the config says %d and %v; "+
					"a static group's members are fixed (see docs/SCALING.md): %w", group, stream, have.MaxMembers, have.Members, p.Count, members, err)
			}
			return nil, fmt.Errorf("partitions: create static group %q on stream %s: %w", group, stream, err)
		}
	case PartitionElastic:
		err := retryTransient(ctx, func() error {
			return layout.CreateElasticGroup(ctx, b.js, stream, cfg.Stream.SubjectPrefix, group, p.Count)
		})
		if err != nil {
			return nil, fmt.Errorf("partitions: create elastic group %q on stream %s: %w", group, stream, err)
		}
	}
	return s, nil
}

// checkOtherMode refuses to start a group when a group of the other mode with the same name
// exists on the stream. An elastic group's work-queue stream copies the stream from its first
// message, so one started where a static group has been consuming would send every stored
// event again; and the two would split windows between them.
func (s *partitionedSource) checkOtherMode(ctx context.Context) error {
	stream, p := s.cfg.Stream.Name, s.cfg.Partitions
	var exists bool
	switch p.Mode {
	case PartitionStatic:
		_, err := pcgroups.GetElasticConsumerGroupConfig(ctx, s.js, stream, p.Group)
		exists = err == nil
	case PartitionElastic:
		_, err := pcgroups.GetStaticConsumerGroupConfig(ctx, s.js, stream, p.Group)
		exists = err == nil
	}
	if exists {
		return fmt.Errorf("partitions.mode: stream %s already has a group %q of the other mode; changing modes is not supported (see docs/SCALING.md)",
			stream, p.Group)
	}
	return nil
}

// Consume joins the group and hands each message of this replica's partitions to handle, one
// at a time, until ctx is done or pcgroups stops (the group was deleted or, for a static
// group, changed: every member then stops, and the error says why). Before it returns, it has
// the coordinator release (nak) the windows still open, so that the partitions' next owner
// builds them whole from the redeliveries rather than receiving the rest of a window this
// replica has sent in part.
func (s *partitionedSource) Consume(ctx context.Context, handle func(jetstream.Msg), ready func()) error {
	p, stream := s.cfg.Partitions, s.cfg.Stream.Name
	s.handle = handle
	cb := s.callback(p.Member)

	// pcgroups binds its config watcher to the context it is given, and stops when the watcher
	// closes: its context must outlive the Stop below, or stopping turns into an error.
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopWatch := func() {
		cancel()
		s.watching.Wait() // before Run closes the channel the watch may still send releases on
	}
	defer stopWatch()
	var (
		cc  pcgroups.ConsumerGroupConsumeContext
		err error
	)
	// Each elastic pcgroups instance gets a context of its own: pcgroups binds its config
	// watcher to it and does not stop it in Stop, so an instance replaced by a restart must
	// have its context cancelled, or its watcher stays until Consume returns.
	stopInstance := func() {}
	startElastic := func() (pcgroups.ConsumerGroupConsumeContext, error) {
		ictx, icancel := context.WithCancel(pctx)
		c, err := pcgroups.ElasticConsume(ictx, s.js, stream, p.Group, p.Member, cb, s.cons)
		if err != nil {
			icancel()
			return nil, err
		}
		stopInstance = icancel
		return c, nil
	}
	// The first beat goes before the member consumes, so that no member takes this one for dead.
	if s.liveness != nil {
		if err := s.beat(pctx); err != nil {
			return fmt.Errorf("partitions: heartbeat in bucket %s: %w", livenessBucket, err)
		}
	}
	switch p.Mode {
	case PartitionStatic:
		if cc, err = pcgroups.StaticConsume(pctx, s.js, stream, p.Group, p.Member, cb, s.cons); err == nil {
			s.tendGroup(pctx)
		}
	case PartitionElastic:
		if err = s.join(pctx); err != nil {
			return err
		}
		if err = s.watchMembership(pctx); err != nil {
			return err
		}
		s.tendGroup(pctx)
		cc, err = startElastic()
	default:
		err = fmt.Errorf("unknown mode %q", p.Mode)
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerExists) {
			err = fmt.Errorf("the member's consumer exists with other settings than consumer.* (see docs/SCALING.md): %w", err)
		}
		return fmt.Errorf("partitions: consume %s group %q on stream %s as member %q: %w", p.Mode, p.Group, stream, p.Member, err)
	}
	s.log.Info("joined the consumer group", "mode", p.Mode, "group", p.Group, "member", p.Member, "partitions", p.Count)
	if p.Mode == PartitionStatic {
		s.logShare(len(s.staticFilters(p.Member)))
	}
	ready()

	// stop stops the pcgroups instance and reports how it ended: nil after Stop, an error when it
	// had ended by itself (the group deleted or changed).
	stop := func() error {
		if cc == nil {
			return nil
		}
		cc.Stop()
		derr := <-cc.Done()
		stopInstance()
		cc = nil
		return derr
	}
	var retry <-chan time.Time // a restart to try again, after one failed
wait:
	for {
		var done <-chan error // nil while a restart is failing
		if cc != nil {
			done = cc.Done()
		}
		restart := false
		select {
		case <-ctx.Done():
			if derr := stop(); derr != nil {
				s.log.Warn("consumer group stopped with an error", "error", derr)
			}
			break wait
		case err = <-done:
			stopInstance()
			if err == nil {
				err = errors.New("the group was deleted")
			}
			err = fmt.Errorf("partitions: %s group %q on stream %s stopped consuming: %w", p.Mode, p.Group, stream, err)
			break wait
		case <-s.restart:
			// The member's consumer is gone and pcgroups will not create it again (see
			// checkConsumer).
			s.log.Warn("this member's consumer is gone (the server removes an idle one after consumer.ackWait, as during an outage): consuming again",
				"group", p.Group, "member", p.Member)
			retry, restart = nil, true
		case <-retry:
			retry, restart = nil, true
		}
		if !restart {
			continue
		}
		// Start a new pcgroups instance, which creates the consumer. What this replica holds
		// came from the old consumer, whose acks no longer count: let it go, and the new
		// consumer delivers it again, in stream order, so no hold is needed for it.
		if derr := stop(); derr != nil {
			err = fmt.Errorf("partitions: %s group %q on stream %s stopped consuming: %w", p.Mode, p.Group, stream, derr)
			break wait
		}
		s.release(true)
		s.endHold()
		var rerr error
		if cc, rerr = startElastic(); rerr != nil {
			s.log.Error("consuming again failed; trying again", "error", rerr, "in", beatEvery(s.cfg.Consumer.AckWait))
			cc, retry = nil, time.After(beatEvery(s.cfg.Consumer.AckWait))
		}
	}
	stopWatch()
	// pcgroups' Stop does not wait for the callback; taking the lock does, and from here on
	// the callback hands messages back instead.
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.release(false)
	return err
}

// callback returns the function pcgroups calls with each message of member's consumer: this
// replica's own member, or a dead member whose partitions it serves (see cover). It hands the
// message to the bridge, unless the bridge is stopping or no longer serves that member.
func (s *partitionedSource) callback(member string) func(jetstream.Msg) {
	own := member == s.cfg.Partitions.Member
	return func(m jetstream.Msg) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.stopped || !own && !s.covering[member] {
			// pcgroups stops its pull consumer without draining it, so a message it had
			// buffered can still arrive; hand it back to the server at once.
			_ = m.Nak()
			return
		}
		if own && s.stalePin != "" {
			if m.Headers().Get(pinHeader) == s.stalePin && time.Now().Before(s.staleEnd) {
				// pcgroups is replacing this consumer after a membership change: what the old
				// one still delivers comes again from the new one, or, for a partition that
				// moved, goes to its new owner. Holding it here would open a window that the
				// pause between the two consumers could close before its last pieces come.
				_ = m.Nak()
				return
			}
			s.stalePin = "" // the new consumer delivers
		}
		meta := originMetadata(m) // an elastic group's copy: where it is stored in the stream
		if meta == nil {
			meta, _ = m.Metadata()
		}
		if pin := m.Headers().Get(pinHeader); pin != "" && pin != s.pins[member] {
			prev := s.pins[member]
			s.pins[member] = pin
			s.pinned(member, own && prev == "")
		}
		s.handle(s.wrap(m, meta))
	}
}

// pinned holds the windows when this replica has just been pinned to a static member's consumer
// that another instance held: a standby taking over, the member covering for a dead one, or the
// member itself getting its partitions back. The previous holder may have died holding pieces of
// events, which come back on their ack timers (which its in-progress pings pushed back), after
// the pieces published since; so windows are held for AckWait and a quarter, as at a start after
// a crash. A member's first pin needs none when nobody held the pin at its start: the hold at
// start covers what its consumer showed pending then. An elastic member's consumer is new at each
// membership change and delivers what is left in stream order.
func (s *partitionedSource) pinned(member string, first bool) {
	ackWait := s.cfg.Consumer.AckWait
	if s.cfg.Partitions.Mode != PartitionStatic || s.control == nil || first && !s.boundPinned {
		return
	}
	until := time.Now().Add(ackWait + ackWait/4)
	s.log.Info("pinned to a member's consumer that another instance held", "member", member)
	s.control(func(c *coordinator) { c.holdUntil(until) })
}

// endHold ends the hold at start, when the consumer that delivers this replica's partitions was
// replaced: the new one delivers what is left in stream order.
func (s *partitionedSource) endHold() {
	if s.control == nil {
		return
	}
	done := make(chan struct{})
	s.control(func(c *coordinator) {
		c.endStartHold(time.Now())
		close(done)
	})
	<-done
}

// watchMembership follows the elastic group's membership, as pcgroups does: on a change,
// pcgroups deletes and re-creates every member's consumer with its new share of the partitions,
// and this replica must let go of what it holds (see rebalanced).
func (s *partitionedSource) watchMembership(ctx context.Context) error {
	p := s.cfg.Partitions
	kv, err := s.js.KeyValue(ctx, elasticBucket)
	if err != nil {
		return fmt.Errorf("partitions: elastic groups bucket: %w", err)
	}
	// The watch ends when ctx is cancelled: the client closes its updates channel.
	w, err := kv.Watch(ctx, s.cfg.Stream.Name+"."+p.Group)
	if err != nil {
		return fmt.Errorf("partitions: watch elastic group %q: %w", p.Group, err)
	}
	s.watching.Add(1)
	go func() {
		defer s.watching.Done()
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue // the end of the initial values, or a deletion, which stops pcgroups
			}
			var gc pcgroups.ElasticConsumerGroupConfig
			if err := json.Unmarshal(e.Value(), &gc); err != nil {
				continue // pcgroups stops on it and Consume reports the error
			}
			s.rebalanced(ctx, &gc, e.Created()) // dropped, it joins again from tendGroup (see rejoin)
		}
	}()
	return nil
}

// rebalanced lets go of what this replica holds when the group's membership changes. pcgroups
// replaces this replica's consumer at once, and the new one (here or at a partition's new
// owner) delivers everything unacked again. Windows open here would otherwise be sent in part:
// a partition that moved gets its later pieces elsewhere, and even a partition that stayed can
// pause for up to AckWait when the new consumer cannot be created until another member has let
// go of its old share. So every open window is released (naked), and what the old consumer
// still delivers is refused until the new one delivers.
func (s *partitionedSource) rebalanced(ctx context.Context, gc *pcgroups.ElasticConsumerGroupConfig, changed time.Time) {
	p := s.cfg.Partitions
	s.mu.Lock()
	prev := s.members
	s.members = gc
	// pcgroups compares the member lists the same way to decide whether to rebalance.
	if prev == nil || reflect.DeepEqual(prev.Members, gc.Members) && reflect.DeepEqual(prev.MemberMappings, gc.MemberMappings) {
		s.mu.Unlock()
		return
	}
	s.stalePin = s.pins[p.Member]
	s.staleEnd = time.Now().Add(2*s.cfg.Consumer.AckWait + time.Second)
	s.mu.Unlock()
	share := len(pcgroups.ElasticGetPartitionFilters(*gc, p.Member))
	s.log.Info("the group's membership changed: partitions move", "members", gc.Members, "share", share)
	if gc.IsInMembership(p.Member) {
		s.logShare(share)
	}
	s.release(true)
	s.endHold() // the new consumers deliver what is left in stream order

	// If pcgroups was quicker than this watch and the new consumer already delivers, its pin
	// is the one just taken as stale: undo that.
	rctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	defer cancel()
	cons, err := s.js.Consumer(rctx, elasticStreamName(s.cfg.Stream.Name, p.Group), p.Member)
	if err != nil || !cons.CachedInfo().Created.After(changed) {
		return
	}
	for _, pg := range cons.CachedInfo().PriorityGroups {
		s.mu.Lock()
		if pg.PinnedClientID != "" && pg.PinnedClientID == s.stalePin {
			s.stalePin = ""
		}
		s.mu.Unlock()
	}
}

// release has the coordinator nak every open window (and, with queued, the calls waiting for
// a worker) and waits until it has. The request goes in order with the messages handed over so
// far, so every message the callback accepted is in a window by then.
func (s *partitionedSource) release(queued bool) { s.releaseKeys(queued, nil) }

// releaseKeys is release for the windows and calls whose event key mine accepts (all when nil).
func (s *partitionedSource) releaseKeys(queued bool, mine func(key string) bool) {
	if s.control == nil {
		return
	}
	done := make(chan int, 1)
	s.control(func(c *coordinator) { done <- c.releaseWindows(queued, mine) })
	if n := <-done; n > 0 {
		s.log.Info("released open windows to the partitions' next consumer", "windows", n)
	}
}

// releaseWindows naks the messages of every open window whose key mine accepts (every window
// when mine is nil), and, with queued, of the flush and send calls still waiting for a worker,
// and forgets them: the next consumer of their partitions builds the windows again from the
// redeliveries. It returns how many windows and calls it released. Calls a worker has started
// run to their end. A nak would lose a message on its last delivery, which the server does not
// deliver again: a window holding one is flushed instead, and a call holding one stays queued,
// so that it is sent from here.
func (c *coordinator) releaseWindows(queued bool, mine func(key string) bool) int {
	n := 0
	now := time.Now()
	for _, w := range c.windows {
		if mine != nil && !mine(w.key) {
			continue
		}
		members := append(slices.Clone(w.workflows), w.commits...)
		if w.track != nil {
			members = append(members, w.track)
		}
		if slices.ContainsFunc(members, c.b.lastDelivery) {
			if w.track != nil {
				c.flush(w, now)
			}
			continue // without a track, it ends as missing_track at its orphan timeout
		}
		c.closeWindow(w)
		c.b.nakAll(members, 0)
		c.release(members)
		n++
	}
	if !queued {
		return n
	}
	kept := c.queue[:0]
	for _, j := range c.queue {
		// A dead letter does not depend on what the next consumer holds: it goes ahead.
		if j.kind == jobDeadLetter || slices.ContainsFunc(j.members, c.b.lastDelivery) ||
			mine != nil && len(j.members) > 0 && !mine(j.members[0].key) {
			kept = append(kept, j)
			continue
		}
		c.b.nakAll(j.members, 0)
		c.release(j.members)
		n++
	}
	clear(c.queue[len(kept):])
	c.queue = kept
	return n
}

// logShare warns about a share of the partitions that will not serve well: none, or, on file
// storage, more than one. A member's consumer filters on one subject per partition, and the
// file store finds the next message for several filter subjects far more slowly than for one
// when the stream holds many event keys (see docs/SCALING.md for figures).
func (s *partitionedSource) logShare(n int) {
	p := s.cfg.Partitions
	switch {
	case n == 0:
		s.log.Warn("the group has more members than partitions: this replica gets no partition until one leaves",
			"group", p.Group, "member", p.Member, "partitions", p.Count)
	case n > 1 && s.cfg.Stream.Storage == "file":
		s.log.Warn("this replica reads several partitions from file storage, which is much slower than one: "+
			"give each member one partition (partitions.count equal to the number of members)",
			"group", p.Group, "member", p.Member, "partitions", p.Count, "share", n)
	}
}

// join adds this replica to the elastic group's members, unless it is one already. The group's
// other members rebalance at once; pcgroups gives this replica its partitions as soon as their
// previous owners have let them go.
func (s *partitionedSource) join(ctx context.Context) error {
	p, stream := s.cfg.Partitions, s.cfg.Stream.Name
	for attempt := 1; ; attempt++ {
		gc, err := pcgroups.GetElasticConsumerGroupConfig(ctx, s.js, stream, p.Group)
		if err != nil {
			return fmt.Errorf("partitions: elastic group %q on stream %s: %w", p.Group, stream, err)
		}
		if gc.IsInMembership(p.Member) {
			// Already a member (restarted before the others dropped it): it leaves the group
			// when it stops, as if it had just joined.
			if len(gc.MemberMappings) == 0 {
				s.mu.Lock()
				s.joined = true
				s.mu.Unlock()
			}
			break
		}
		if len(gc.MemberMappings) > 0 {
			return fmt.Errorf("partitions.member: %q is not in the member mappings of elastic group %q, which an operator manages", p.Member, p.Group)
		}
		_, err = pcgroups.AddMembers(ctx, s.js, stream, p.Group, []string{p.Member})
		if err == nil {
			s.mu.Lock()
			s.joined = true
			s.mu.Unlock()
			break
		}
		if attempt == joinAttempts {
			return fmt.Errorf("partitions: join elastic group %q on stream %s as %q: %w", p.Group, stream, p.Member, err)
		}
		// Another replica changed the membership at the same moment; read it again.
		if err := casPause(ctx); err != nil {
			return err
		}
	}
	if gc, err := pcgroups.GetElasticConsumerGroupConfig(ctx, s.js, stream, p.Group); err == nil {
		s.logShare(len(pcgroups.ElasticGetPartitionFilters(*gc, p.Member)))
	}
	return nil
}

// leave runs once Run has settled every message this replica held, so that its partitions
// move only when no window of theirs is open here. A static member steps down from its pin, so
// that a standby takes over now rather than after the pin's TTL; an elastic member deletes its
// consumer and leaves the group, so that the others take its partitions now.
func (s *partitionedSource) leave() {
	defer s.endBeats()
	ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
	defer cancel()
	p, stream := s.cfg.Partitions, s.cfg.Stream.Name
	log := s.log.With("mode", p.Mode, "group", p.Group, "member", p.Member)
	// The last acks and naks may still be buffered in the connection. They must reach the
	// server before the partitions move, or the next owner gets copies of settled messages.
	if err := s.js.Conn().FlushWithContext(ctx); err != nil {
		log.Warn("flush before leaving the group failed", "error", err)
	}
	s.mu.Lock()
	joined := s.joined
	members := slices.Collect(maps.Keys(s.pins))
	s.mu.Unlock()
	switch p.Mode {
	case PartitionStatic:
		// This member's pin, and those of dead members it served until it stopped.
		for _, m := range members {
			s.stepDown(ctx, m)
		}
	case PartitionElastic:
		if !joined {
			return
		}
		// The consumer goes first: the others cannot create consumers over its partitions
		// while it exists, and this replica's stopped instance would not delete it.
		err := s.js.DeleteConsumer(ctx, elasticStreamName(stream, p.Group), p.Member)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			log.Warn("delete of the member's consumer failed; the server removes it after consumer.ackWait", "error", err)
		}
		if err := s.deleteMembers(ctx, p.Member); err != nil {
			log.Error("leaving the group failed: this member keeps its partitions until it is back or dropped", "error", err)
			return
		}
		log.Info("left the consumer group: its partitions move to the other members")
		if err := s.forget(ctx); err != nil {
			log.Warn("could not delete this member's heartbeat", "error", err)
		}
	}
}

// stepDown unpins this replica from static member m's consumer, if it holds its pin, so that
// another instance of m (a standby, m itself back, or the member covering for it) is pinned now
// rather than when the pin's TTL expires.
func (s *partitionedSource) stepDown(ctx context.Context, m string) {
	p, stream := s.cfg.Partitions, s.cfg.Stream.Name
	s.mu.Lock()
	pin := s.pins[m]
	s.mu.Unlock()
	if pin == "" {
		return // never received a message: not the pinned instance
	}
	defer func() { // once done, or found not pinned; kept for leave if the step-down failed
		s.mu.Lock()
		if s.pins[m] == pin {
			delete(s.pins, m)
		}
		s.mu.Unlock()
	}()
	log := s.log.With("group", p.Group, "member", m)
	cons, err := s.js.Consumer(ctx, stream, staticConsumerName(p.Group, m))
	if err != nil {
		log.Warn("could not read the member's consumer to step down", "error", err)
		pin = "" // keep it for leave
		return
	}
	for _, pg := range cons.CachedInfo().PriorityGroups {
		if pg.PinnedClientID != pin {
			continue
		}
		if err := pcgroups.StaticMemberStepDown(ctx, s.js, stream, p.Group, m); err != nil {
			log.Warn("step down failed; another instance takes over when the pin expires", "error", err)
			pin = "" // keep it for leave
			return
		}
		log.Info("stepped down: another instance of this member may take over")
	}
}

// wrap presents a message of the group as the bridge expects it, meta being its metadata as
// the bridge should see it. pcgroups strips the first token of the subject it reads. A static
// member reads the stream itself, so the stripped token is the partition, which wrap puts back:
// the subject as stored, for dead-letter headers. An elastic member reads the group's
// work-queue copy, where the stripped token is the copy's own partition and the rest is already
// the stream's subject; its metadata is the stream's (see originMetadata), so that idempotency
// keys and dead-letter headers name the stream and sequence where the message is stored, as in
// the other modes, and survive the work-queue stream being recreated.
func (s *partitionedSource) wrap(m jetstream.Msg, meta *jetstream.MsgMetadata) jetstream.Msg {
	// The delivery headers describe this delivery, not the message: the dead-letter copy
	// keeps the original's headers, and the server refuses a publish that carries
	// Nats-Stream-Source (it is for sourcing alone).
	h := m.Headers()
	h.Del(pinHeader)
	h.Del(sourceHeader)
	pm := &partitionedMsg{Msg: m, subject: m.Subject(), meta: meta}
	if s.cfg.Partitions.Mode == PartitionStatic {
		key := pm.subject[strings.LastIndexByte(pm.subject, '.')+1:]
		pm.subject = strconv.Itoa(partitionOf(key, s.count)) + "." + pm.subject
	}
	return pm
}

// originMetadata returns a sourced message's metadata with the stream and sequence it was
// copied from, or nil when the message carries no usable Nats-Stream-Source header.
func originMetadata(m jetstream.Msg) *jetstream.MsgMetadata {
	name, rest, ok := strings.Cut(m.Headers().Get(sourceHeader), " ")
	if !ok || name == "" {
		return nil
	}
	seqText, _, _ := strings.Cut(rest, " ")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil || seq == 0 {
		return nil
	}
	meta, err := m.Metadata()
	if err != nil {
		return nil
	}
	origin := *meta
	origin.Stream = name
	origin.Sequence.Stream = seq
	return &origin
}

// partitionedMsg is a message of a consumer group with the subject and metadata the bridge
// should see. Acks and the rest go to the message as delivered.
type partitionedMsg struct {
	jetstream.Msg
	subject string
	meta    *jetstream.MsgMetadata // nil when the delivered message had none
}

func (m *partitionedMsg) Subject() string { return m.subject }

func (m *partitionedMsg) Metadata() (*jetstream.MsgMetadata, error) {
	if m.meta != nil {
		return m.meta, nil
	}
	return m.Msg.Metadata()
}

// deleteMembers removes members from the elastic group, trying again when another replica
// changed the membership at the same moment (pcgroups updates it with compare-and-set).
func (s *partitionedSource) deleteMembers(ctx context.Context, members ...string) error {
	for attempt := 1; ; attempt++ {
		_, err := pcgroups.DeleteMembers(ctx, s.js, s.cfg.Stream.Name, s.cfg.Partitions.Group, members)
		if err == nil || attempt == joinAttempts || casPause(ctx) != nil {
			return err
		}
	}
}

// casPause waits a short random while before a membership change is tried again, so that
// replicas that collided do not collide again.
func casPause(ctx context.Context) error {
	return clock.Sleep(ctx, time.Duration(50+rand.IntN(100))*time.Millisecond)
}

// staticFilters is a static member's share of the partitions, as filter subjects "<p>.>".
func (s *partitionedSource) staticFilters(member string) []string {
	return pcgroups.GeneratePartitionFilters(slices.Sorted(slices.Values(s.cfg.Partitions.Members)), uint(s.count), nil, member, ">")
}

// provisionRetry bounds how long creating a group at start retries an answer that may pass: no
// responders, or a timeout, while a cluster elects its leaders.
const provisionRetry = 30 * time.Second

// retryTransient calls f until it succeeds, fails otherwise than transiently, provisionRetry has
// passed, or ctx is done, waiting a little longer each time.
func retryTransient(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(provisionRetry)
	wait := 100 * time.Millisecond
	for {
		err := f()
		transient := errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded)
		if err == nil || !transient || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		if err := clock.Sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, 2*time.Second)
	}
}
