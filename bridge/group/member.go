package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/pcgroups"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/layout"
)

// Sink is where a Member delivers its messages: the bridge. Every call but Deliver and Ready is
// carried out in order with the messages delivered before it, and, but HoldUntil, returns once
// it has been.
type Sink interface {
	// Deliver hands over one message; it may block while the bridge is busy.
	Deliver(m jetstream.Msg)
	// Ready reports whether the member is consuming.
	Ready(ok bool)
	// HoldUntil holds every window until t: a consumer changed hands, and pieces its previous
	// holder had may come back on their ack timers until then. It replaces the t of the call
	// before: a sooner t ends the hold early, the zero time at once.
	HoldUntil(t time.Time)
	// HoldRedelivered holds, until t, the windows that hold a redelivered piece: the consumer
	// may have changed hands since this instance started (a static member's first pin, after a
	// cover held it), and the pieces another instance handed back come back in no order with
	// those published since. Windows of first deliveries flow on.
	HoldRedelivered(t time.Time)
	// Rebound says the consumer was created again: it delivers what is left in stream order, so
	// the hold at start ends, and any delivery may be a copy of a message settled lately.
	Rebound()
	// ReleaseKeys naks the open windows whose event key keys accepts (all when nil), and with
	// queued the calls no worker has started, so that their partitions' next consumer builds
	// them again; it returns how many it released.
	ReleaseKeys(keys func(key string) bool, queued bool) int
}

// leaveTimeout bounds what a replica does on its way out (flush, step down or leave the group).
const leaveTimeout = 5 * time.Second

// Member consumes this replica's partitions through a pcgroups consumer group. pcgroups hands
// each message to a callback and never settles it: the bridge acks, naks and terminates, as
// with its own consumer.
type Member struct {
	js    jetstream.JetStream
	log   *slog.Logger
	cfg   Config
	cons  jetstream.ConsumerConfig // the template pcgroups creates the member's consumer from
	beats *heartbeat

	// Exactly one of static and elastic is set: the state of the group's mode.
	static  *staticMode
	elastic *elasticMode

	// bound is the member's consumer as it was before this replica pulled anything, nil when
	// it did not exist yet: what it shows pending, a previous instance of the member held.
	bound *jetstream.ConsumerInfo

	// mu serialises the callback (pcgroups restarts its pull consumer on a membership change,
	// and the new one can deliver before the old one's callback has returned) and guards
	// stopped, pins and the fields of the mode's state marked as guarded by it, which the
	// callback, the tending and membership goroutines and Leave share.
	mu      sync.Mutex
	stopped bool              // Consume is returning: the sink must not be called again
	pins    map[string]string // member → the pin id on its last message: which pin this replica held

	// sink is set by Consume before any goroutine that calls it starts.
	sink     Sink
	watching sync.WaitGroup // the tending goroutine and the membership watch

	// beforeConsume, when set (by tests), runs in Consume after the first beat and before the
	// member starts consuming: a start that takes its time.
	beforeConsume func()
}

// New checks the group against the stream, reads the member's consumer as it stands, opens the
// heartbeat bucket and, when cfg.Manage, creates the group; the streams must exist already.
func New(ctx context.Context, js jetstream.JetStream, cfg Config, log *slog.Logger) (*Member, error) {
	s := &Member{
		js: js, log: log, cfg: cfg, pins: map[string]string{},
		// pcgroups fills in the name, the filters and the pinned priority group, and derives
		// the pin TTL and the pull expiry from AckWait.
		cons: layout.Consumer{AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, MaxAckPending: cfg.MaxAckPending}.MemberConfig(),
	}
	switch cfg.Mode {
	case Static:
		s.static = newStaticMode()
	case Elastic:
		s.elastic = &elasticMode{restart: make(chan struct{}, 1), gens: &consumerGens{pins: map[string]int64{}}}
	default:
		return nil, fmt.Errorf("partitions: unknown mode %q", cfg.Mode)
	}
	if err := s.checkOtherMode(ctx); err != nil {
		return nil, err
	}
	if err := s.readBound(ctx); err != nil {
		return nil, err
	}
	beats, err := openHeartbeat(ctx, js, cfg, log)
	if err != nil {
		return nil, err
	}
	s.beats = beats
	if !cfg.Manage {
		return s, nil // the operator manages the group; Consume reports it if it is missing
	}
	if s.static != nil {
		err = s.createStatic(ctx)
	} else {
		err = s.createElastic(ctx)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// readBound reads the member's consumer before this replica pulls anything. pcgroups binds it
// when it exists: a previous instance of the member that died less than its inactivity threshold
// ago (elastic), or any (static).
func (s *Member) readBound(ctx context.Context) error {
	stream, name := s.cfg.Stream, StaticConsumerName(s.cfg.Group, s.cfg.Member)
	if s.elastic != nil {
		stream, name = ElasticStreamName(s.cfg.Stream, s.cfg.Group), s.cfg.Member
	}
	c, err := s.js.Consumer(ctx, stream, name)
	if err != nil {
		if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("partitions: read member %q's consumer: %w", s.cfg.Member, err)
		}
		return nil
	}
	s.bound = c.CachedInfo()
	switch {
	case s.static != nil && (s.bound.NumWaiting > 0 || slices.ContainsFunc(s.bound.PriorityGroups, func(pg jetstream.PriorityGroupState) bool {
		return pg.PinnedClientID != ""
	})):
		// Another instance pulls from the member's consumer or holds its pin (the server pins
		// only when it has a message to deliver): what that instance holds is settled by it,
		// or comes back after the pin moves here, where the hold starts (see pinned), not at
		// this replica's start.
		s.static.boundPinned, s.bound = true, nil
	case s.elastic != nil:
		// Its sequences are the work-queue stream's, while the bridge sees the stream's: count
		// every redelivery towards what the previous instance held.
		s.bound.Delivered.Stream = math.MaxUint64
	}
	return nil
}

// checkOtherMode refuses to start a group when a group of the other mode with the same name
// exists on the stream. An elastic group's work-queue stream copies the stream from its first
// message, so one started where a static group has been consuming would send every stored
// event again; and the two would split windows between them.
func (s *Member) checkOtherMode(ctx context.Context) error {
	var err error
	if s.static != nil {
		_, err = pcgroups.GetElasticConsumerGroupConfig(ctx, s.js, s.cfg.Stream, s.cfg.Group)
	} else {
		_, err = pcgroups.GetStaticConsumerGroupConfig(ctx, s.js, s.cfg.Stream, s.cfg.Group)
	}
	if err == nil {
		return fmt.Errorf("partitions.mode: stream %s already has a group %q of the other mode; changing modes is not supported (see docs/SCALING.md)",
			s.cfg.Stream, s.cfg.Group)
	}
	return nil
}

// Bound returns the member's consumer as it was before this replica pulled anything, nil when it
// did not exist or another instance held it: what it shows pending, a predecessor held.
func (s *Member) Bound() *jetstream.ConsumerInfo { return s.bound }

// Consume joins the group and delivers each message of this replica's partitions into sink, one
// at a time, until ctx is done or pcgroups stops (the group was deleted or, for a static group,
// changed: every member then stops, and the error says why). Before it returns, it has the sink
// release (nak) the windows still open, so that the partitions' next owner builds them whole
// from the redeliveries rather than receiving the rest of a window this replica has sent in part.
func (s *Member) Consume(ctx context.Context, sink Sink) error {
	p, stream := s.cfg, s.cfg.Stream
	s.sink = sink
	cb := s.callback(p.Member)

	// pcgroups binds its config watcher to the context it is given, and stops when the watcher
	// closes: its context must outlive the Stop below, or stopping turns into an error.
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopWatch := func() {
		cancel()
		s.watching.Wait() // before the sink is let go: the watch may still release windows
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
		js := consumerJS{JetStream: s.js, stream: ElasticStreamName(stream, p.Group), member: p.Member, gens: s.elastic.gens}
		c, err := pcgroups.ElasticConsume(ictx, js, stream, p.Group, p.Member, cb, s.cons)
		if err != nil {
			icancel()
			return nil, err
		}
		stopInstance = icancel
		return c, nil
	}
	// The first beat goes before the member consumes, so that no member takes this one for dead,
	// and the beats go on from it: the others count DeadAfter from the first beat they read, and
	// starting to consume (binding the member's consumer, joining the group) may take longer
	// than that on a slow cluster. They stop in Leave, as after any start.
	if s.beats.kv != nil {
		// A cluster busy electing leaders may time the first put out: that passes.
		if err := retryTransient(pctx, func() error { return s.beats.beat(pctx) }); err != nil {
			return fmt.Errorf("partitions: heartbeat in bucket %s: %w", LivenessBucket, err)
		}
		s.beats.start(pctx)
	}
	if s.beforeConsume != nil {
		s.beforeConsume()
	}
	if s.static != nil {
		if cc, err = pcgroups.StaticConsume(pctx, s.js, stream, p.Group, p.Member, cb, s.cons); err == nil {
			s.tend(pctx)
		}
	} else {
		if err = s.join(pctx); err != nil {
			return err
		}
		if err = s.watchMembership(pctx); err != nil {
			return err
		}
		s.tend(pctx)
		cc, err = startElastic()
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerExists) {
			err = fmt.Errorf("the member's consumer exists with other settings than consumer.*%s (see docs/SCALING.md): %w", s.settingsDiffer(pctx), err)
		}
		return fmt.Errorf("partitions: consume %s group %q on stream %s as member %q: %w", p.Mode, p.Group, stream, p.Member, err)
	}
	s.log.Info("joined the consumer group", "mode", p.Mode, "group", p.Group, "member", p.Member, "partitions", p.Count)
	if s.static != nil {
		s.logShare(len(s.staticFilters(p.Member)))
	}
	sink.Ready(true)

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
	var restarts <-chan struct{} // elastic: the member's consumer is gone (see checkConsumer)
	if s.elastic != nil {
		restarts = s.elastic.restart
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
		case <-restarts:
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
		s.release(nil, true)
		sink.Rebound()
		var rerr error
		if cc, rerr = startElastic(); rerr != nil {
			s.log.Error("consuming again failed; trying again", "error", rerr, "in", BeatEvery(s.cfg.AckWait))
			cc, retry = nil, time.After(BeatEvery(s.cfg.AckWait))
		}
	}
	stopWatch()
	// pcgroups' Stop does not wait for the callback; taking the lock does, and from here on
	// the callback hands messages back instead.
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.release(nil, false)
	return err
}

// callback returns the function pcgroups calls with each message of member's consumer: this
// replica's own member, or a dead member whose partitions it serves (see cover). It delivers the
// message into the sink, unless the member is stopping or no longer serves that member.
func (s *Member) callback(member string) func(jetstream.Msg) {
	own := member == s.cfg.Member
	return func(m jetstream.Msg) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.stopped || !own && !s.static.covering[member] {
			// pcgroups stops its pull consumer without draining it, so a message it had
			// buffered can still arrive; hand it back to the server at once.
			_ = m.Nak()
			return
		}
		if own && s.elastic != nil && s.elastic.refuse(m) {
			_ = m.Nak()
			return
		}
		meta := originMetadata(m) // an elastic group's copy: where it is stored in the stream
		if meta == nil {
			meta, _ = m.Metadata()
		}
		pin := m.Headers().Get(pinHeader)
		if pin != "" && pin != s.pins[member] {
			prev := s.pins[member]
			s.pins[member] = pin
			if s.static != nil {
				s.pinned(member, own && prev == "")
			}
		}
		w := s.wrap(m, meta)
		if own && s.elastic != nil {
			w.gens, w.gen = s.elastic.gens, s.elastic.gens.of(pin)
		}
		s.sink.Deliver(w)
		if !own && s.static != nil && meta != nil {
			s.cameBack(member, meta.Sequence.Stream)
		}
	}
}

// settingsDiffer names, for a static member whose consumer exists with other settings than the
// config's, the settings that differ, as ": its consumer G has ackWait 30s where the config says
// consumer.ackWait: 5s, …"; it returns "" when it cannot tell. A static group created before
// consumer.ackWait defaulted to 5s meets this at its first start with the new default.
func (s *Member) settingsDiffer(ctx context.Context) string {
	if s.static == nil {
		return ""
	}
	name := StaticConsumerName(s.cfg.Group, s.cfg.Member)
	c, err := s.js.Consumer(ctx, s.cfg.Stream, name)
	if err != nil {
		return ""
	}
	have := c.CachedInfo().Config
	var diffs []string
	if have.AckWait != s.cons.AckWait {
		diffs = append(diffs, fmt.Sprintf("ackWait %s where the config says consumer.ackWait: %s", have.AckWait, s.cons.AckWait))
	}
	if have.MaxDeliver != s.cons.MaxDeliver {
		diffs = append(diffs, fmt.Sprintf("maxDeliver %d where the config says consumer.maxDeliver: %d", have.MaxDeliver, s.cons.MaxDeliver))
	}
	if have.MaxAckPending != s.cons.MaxAckPending {
		diffs = append(diffs, fmt.Sprintf("maxAckPending %d where the config says consumer.maxAckPending: %d", have.MaxAckPending, s.cons.MaxAckPending))
	}
	if len(diffs) == 0 {
		return ""
	}
	return fmt.Sprintf(": its consumer %s has %s; set the config to the consumer's values, or edit the consumer (nats consumer edit)",
		name, strings.Join(diffs, ", "))
}

// tend starts the goroutine, counted in s.watching, that looks after this replica's place in
// the group until ctx is done: in an elastic group it checks this member's consumer and drops
// the members found dead, in a static group it serves the partitions of dead members that fall
// to this replica. The beats have a goroutine of their own, started by Consume with the first
// beat (or by find, once the bucket exists), so that a slow drop never delays this replica's own
// beat.
func (s *Member) tend(ctx context.Context) {
	every := BeatEvery(s.cfg.FailoverAfter)
	s.watching.Add(1)
	go func() {
		defer s.watching.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		seen := map[string]beatSeen{}
		var missing time.Time // elastic: since when this member's consumer has been found missing
		for {
			select {
			case <-ctx.Done():
				if s.static != nil {
					s.stopCovers()
				}
				return
			case now := <-tick.C:
				if s.beats.kv == nil {
					s.beats.find(ctx)
				}
				if s.static != nil {
					if s.beats.kv != nil {
						s.cover(ctx, now, seen)
					}
					continue
				}
				missing = s.tendElastic(ctx, now, seen, missing)
			}
		}
	}()
}

// release has the sink nak the open windows whose key keys accepts (all when nil) and, with
// queued, the calls waiting for a worker. The request goes in order with the messages delivered
// so far, so every message the callback accepted is in a window by then.
func (s *Member) release(keys func(key string) bool, queued bool) {
	if n := s.sink.ReleaseKeys(keys, queued); n > 0 {
		s.log.Info("released open windows to the partitions' next consumer", "windows", n)
	}
}

// logShare warns about a share of the partitions that will not serve well: none, or, on file
// storage, more than one. A member's consumer filters on one subject per partition, and the
// file store finds the next message for several filter subjects far more slowly than for one
// when the stream holds many event keys (see docs/SCALING.md for figures).
func (s *Member) logShare(n int) {
	p := s.cfg
	switch {
	case n == 0:
		s.log.Warn("the group has more members than partitions: this replica gets no partition until one leaves",
			"group", p.Group, "member", p.Member, "partitions", p.Count)
	case n > 1 && p.FileStorage:
		s.log.Warn("this replica reads several partitions from file storage, which is much slower than one: "+
			"give each member one partition (partitions.count equal to the number of members)",
			"group", p.Group, "member", p.Member, "partitions", p.Count, "share", n)
	}
}

// Leave runs once the bridge has settled every message this replica held, so that its
// partitions move only when no window of theirs is open here. A static member steps down from
// its pins, so that a standby takes over now rather than after the pin's TTL; an elastic member
// deletes its consumer and leaves the group, so that the others take its partitions now.
func (s *Member) Leave() {
	defer s.beats.end()
	ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
	defer cancel()
	log := s.log.With("mode", s.cfg.Mode, "group", s.cfg.Group, "member", s.cfg.Member)
	// The last acks and naks may still be buffered in the connection. They must reach the
	// server before the partitions move, or the next owner gets copies of settled messages.
	if err := s.js.Conn().FlushWithContext(ctx); err != nil {
		log.Warn("flush before leaving the group failed", "error", err)
	}
	if s.static != nil {
		s.leaveStatic(ctx)
	} else {
		s.leaveElastic(ctx, log)
	}
}
