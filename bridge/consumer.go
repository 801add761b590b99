package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/group"
	wait "github.com/notifizz-bridge/notifizz-bridge/internal/clock"
)

// rebindMaxBackoff caps the pause between two attempts to bind a consumer that went away.
const rebindMaxBackoff = 5 * time.Second

// rebindLogEvery is how often a rebind that keeps failing is logged again.
const rebindLogEvery = time.Minute

// bindConsumer returns the durable consumer. When the operator manages it, it binds it as it is;
// otherwise it creates it, delivering from stream sequence start, or updates the one that exists,
// keeping where that one started (the server refuses to change it).
func (b *Bridge) bindConsumer(ctx context.Context, start uint64) (jetstream.Consumer, error) {
	stream, durable := b.cfg.Stream.Name, b.cfg.Consumer.Durable
	have, err := b.js.Consumer(ctx, stream, durable)
	if !b.cfg.Stream.Create {
		if err != nil {
			return nil, fmt.Errorf("bind consumer %s on stream %s: %w", durable, stream, err)
		}
		return have, nil
	}
	want := b.cfg.ConsumerLayout().DurableConfig(start)
	switch {
	case err == nil:
		c := have.CachedInfo().Config
		want.DeliverPolicy, want.OptStartSeq, want.OptStartTime = c.DeliverPolicy, c.OptStartSeq, c.OptStartTime
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("read consumer %s on stream %s: %w", durable, stream, err)
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, stream, want)
	if err != nil {
		return nil, fmt.Errorf("create or update consumer %s on stream %s: %w", durable, stream, err)
	}
	return cons, nil
}

// consumerSource reads the one durable pull consumer with Consume, and binds it again when it
// goes away (see docs/RELIABILITY.md, "A deleted consumer or stream"): an operator deleted it,
// or its stream, or a server lost it. The bridge then reports itself not ready, settles what it
// held from the old consumer, and binds a consumer again, with backoff, until it succeeds: one
// it creates (stream.create) delivering from just after the ack floor last read, or, when the
// operator manages the consumer, the one the operator creates again.
type consumerSource struct {
	b     *Bridge
	cons  jetstream.Consumer
	pull  []jetstream.PullConsumeOpt // how the consumer is pulled (see layout.Consumer.Pull)
	bound *jetstream.ConsumerInfo    // the consumer as first bound, before anything was pulled

	// The fields below belong to Consume's goroutine.
	sink       Sink
	floor      uint64 // the consumer's ack floor (a stream sequence) as last read: all up to it is settled
	streamGone bool   // the stream was found missing since the consumer went: the next one is new
}

// newConsumerSource returns the source for cons, a consumer the bridge has just bound.
func (b *Bridge) newConsumerSource(cons jetstream.Consumer) *consumerSource {
	return &consumerSource{
		b: b, cons: cons, pull: b.cfg.ConsumerLayout().Pull(b.js.Conn().MaxPayload()),
		bound: cons.CachedInfo(),
		floor: cons.CachedInfo().AckFloor.Stream,
	}
}

// Bound returns the consumer as it was when the bridge bound it at start: what it shows pending,
// a predecessor held.
func (s *consumerSource) Bound() *jetstream.ConsumerInfo { return s.bound }

// Leave does nothing: the durable consumer stays for the next start.
func (s *consumerSource) Leave() {}

// Consume reads the consumer until ctx is done, binding it again whenever it goes away.
func (s *consumerSource) Consume(ctx context.Context, sink Sink) error {
	s.sink = sink
	for {
		gone, err := s.consume(ctx)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		s.sink.Ready(false)
		s.b.log.Warn("the consumer is gone: not ready until it is bound again",
			"stream", s.b.cfg.Stream.Name, "consumer", s.b.cfg.Consumer.Durable, "ack_floor", s.floor, "error", gone)
		if s.rebind(ctx) != nil {
			return nil // ctx is done
		}
	}
}

// consume reads the bound consumer until ctx is done (gone is nil) or the consumer is found gone
// (gone says how). It returns when the sink will not be called again from the pull.
func (s *consumerSource) consume(ctx context.Context) (gone, err error) {
	check := make(chan error, 1)
	cc, err := s.cons.Consume(s.sink.Deliver, append(slices.Clip(s.pull),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			s.b.log.Warn("consume error", "error", err)
			select {
			case check <- err:
			default: // a check is pending already
			}
		}))...,
	)
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	s.sink.Ready(true)
	gone = s.watch(ctx, cc.Closed(), check)
	if gone == nil {
		// Stop is asynchronous; Drain hands over what is buffered and Closed tells when the
		// callback will not run again.
		cc.Drain()
	} else {
		// What is buffered came from a consumer that is gone: its acks count for nothing, and
		// the next consumer delivers it again.
		cc.Stop()
	}
	<-cc.Closed()
	return gone, nil
}

// watch waits until ctx is done (nil) or the consumer is found gone. The client reports a
// deleted consumer to a pull it has pending, and missed heartbeats when it has none to report to;
// the consumer's info is also read every beat, which keeps the ack floor known.
func (s *consumerSource) watch(ctx context.Context, closed <-chan struct{}, check <-chan error) error {
	tick := time.NewTicker(group.BeatEvery(s.b.cfg.Consumer.AckWait))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-closed:
			return errors.New("the client stopped consuming")
		case err := <-check:
			if errors.Is(err, jetstream.ErrConsumerDeleted) {
				return err // the client has stopped consuming
			}
		case <-tick.C:
		}
		if gone := s.readInfo(ctx); gone != nil {
			return gone
		}
	}
}

// readInfo reads the consumer's info, keeps its ack floor, and returns an error when it is gone.
// Its creation time is not compared: a server restarting restores its consumers a moment after
// it answers, and an info read in between shows another creation time for the same consumer.
func (s *consumerSource) readInfo(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, group.BeatEvery(s.b.cfg.Consumer.AckWait))
	defer cancel()
	info, err := s.cons.Info(ctx)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		return err
	case err != nil:
		return nil // unreachable now: the client reconnects and pulls again by itself
	}
	s.floor = max(s.floor, info.AckFloor.Stream)
	return nil
}

// rebind binds a consumer again, after settling what the bridge held from the old one, trying
// with backoff until it succeeds or ctx is done.
func (s *consumerSource) rebind(ctx context.Context) error {
	delay := 100 * time.Millisecond
	settled := false // what the bridge held from the old consumer has been let go or finished
	var logged time.Time
	for {
		err := s.tryRebind(ctx, &settled)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if now := time.Now(); now.Sub(logged) >= rebindLogEvery {
			logged = now
			s.b.log.Warn("could not bind the consumer again; retrying", "error", err, "in", delay)
		}
		if err := wait.Sleep(ctx, delay); err != nil {
			return err
		}
		delay = min(2*delay, rebindMaxBackoff)
	}
}

// tryRebind makes one attempt at binding the consumer again. The first time it finds the stream,
// or finds it gone, it settles what the bridge held from the old consumer (see release and
// finish), and sets *settled.
func (s *consumerSource) tryRebind(ctx context.Context, settled *bool) error {
	cfg := s.b.cfg
	rctx, cancel := context.WithTimeout(ctx, deadLetterTimeout)
	defer cancel()
	st, err := s.b.js.Stream(rctx, cfg.Stream.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s.streamGone = true
		if cfg.Stream.Create {
			// The dead-letter stream too, if it went with it: finish may dead-letter.
			if err := s.b.provisionStreams(rctx); err != nil {
				return err
			}
			st, err = s.b.js.Stream(rctx, cfg.Stream.Name)
		} else if !*settled {
			s.finish(ctx)
			*settled = true
		}
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", cfg.Stream.Name, err)
	}
	// A new stream: this one went missing meanwhile, or its sequences are behind what was
	// acked (an operator deleted and created it between two reads).
	if s.streamGone || st.CachedInfo().State.LastSeq < s.floor {
		s.finish(ctx)
		// A new stream numbers its messages from 1 again: what the bridge remembers of the
		// old one's sequences would take new messages for copies of settled ones.
		s.b.settled.reset()
		s.floor, s.streamGone, *settled = 0, false, true
		s.b.log.Warn("the stream was deleted and created again: reading the new one from its first message",
			"stream", cfg.Stream.Name)
	} else if !*settled {
		s.release()
		*settled = true
	}
	cons, err := s.b.bindConsumer(rctx, s.floor+1)
	if err != nil {
		return err
	}
	info := cons.CachedInfo()
	s.cons = cons
	s.floor = info.AckFloor.Stream
	// Every delivery of the new consumer may be a copy of a message settled through the old
	// one beyond its ack floor, and it delivers what is left in stream order: no hold is needed
	// for what the old one held.
	s.sink.Rebound()
	s.b.log.Info("bound the consumer again", "stream", cfg.Stream.Name, "consumer", cfg.Consumer.Durable,
		"deliver_policy", info.Config.DeliverPolicy.String(), "start_seq", info.Config.OptStartSeq)
	return nil
}

// release lets go of what the bridge holds from a consumer that is gone while its stream stays:
// the windows and the queued calls, which the next consumer delivers again, as it starts just
// after the last ack floor read (everything the bridge holds lies above it). Calls in flight run
// to their end; their acks reach the next consumer by its name, and a copy of theirs that it
// delivers meanwhile is known as held, then as settled.
func (s *consumerSource) release() {
	if n := s.sink.ReleaseKeys(nil, true); n > 0 {
		s.b.log.Info("released open windows to the next consumer", "windows", n)
	}
}

// finish settles what the bridge holds from a stream that is gone: those messages exist nowhere
// else now, so a window with a track is sent at once and one without is dead-lettered
// (missing_track), and it waits until the workers are done with them, so that no sequence of
// the old stream is held when the new one delivers its own.
func (s *consumerSource) finish(ctx context.Context) { s.sink.Finish(ctx) }
