package bridge

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

func TestSubjectMatches(t *testing.T) {
	tests := []struct {
		filter, subject string
		want            bool
	}{
		{"notifizz.track.*", "notifizz.track.k", true},
		{"notifizz.track.*", "notifizz.track.a.b", false},
		{"notifizz.track.*", "notifizz.track", false},
		{"notifizz.track.*", "notifizz.Track.k", false},
		{"notifizz.*.*", "notifizz.tracks.k", true},
		{"notifizz.dlq.>", "notifizz.dlq.a.b.c", true},
		{"notifizz.dlq.>", "notifizz.dlq", false},
		{"notifizz.>", "notifizz.x", true},
		{"notifizz.track.k", "notifizz.track.k", true},
		{"notifizz.track.k", "notifizz.track.k2", false},
		{"a.*", "a.b.c", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, subjectMatches(tt.filter, tt.subject), "%s matches %s", tt.filter, tt.subject)
	}
}

// corePublish publishes with core NATS, as `nats pub` does: no stream answers, nobody is told.
func corePublish(t *testing.T, nc *nats.Conn, subject, body string) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = []byte(body)
	m.Header.Set("X-Trace", "trace-"+subject)
	require.NoError(t, nc.PublishMsg(m))
}

// TestUnroutableSubjectsAreDeadLettered: a mistyped kind, a kind in the wrong case and a key of
// two tokens, published with core NATS, match no stream subject; each leaves one dead letter
// unknown_subject naming its subject. Valid messages published the same way and subjects under
// the dead-letter prefix are not recorded.
func TestUnroutableSubjectsAreDeadLettered(t *testing.T) {
	e := newEnv(t)
	r := e.start(nil)
	const body = `{"eventName":"e","properties":{}}`
	mistyped := map[string]string{
		"notifizz.tracks.k":  `unknown kind "tracks"`,
		"notifizz.Track.k":   `unknown kind "Track"`,
		"notifizz.track.a.b": "key: must be a single subject token",
	}
	for s := range mistyped {
		corePublish(t, e.nc, s, body)
	}
	corePublish(t, e.nc, "notifizz.track.k1", body)
	corePublish(t, e.nc, "notifizz.commit.k1", "")
	corePublish(t, e.nc, "notifizz.dlq.stray", body)
	// The bridge shares the publisher's connection: once the server has answered the flush, it
	// has delivered every message above to the bridge's subscription.
	require.NoError(t, e.nc.Flush())
	e.api.waitCalls(t, 1)
	e.settled(e.cfg)
	e.deadLetters(len(mistyped))
	// Stopping hands over what the watcher buffered: after it, its counts are final.
	r.stop(t)

	dls := e.deadLetters(len(mistyped))
	assert.Equal(t, len(mistyped), len(dls), "one dead letter each, nothing else")
	seen := map[string]bool{}
	for _, dl := range dls {
		orig := dl.Header.Get(deadletter.HeaderOriginalSubject)
		want, ok := mistyped[orig]
		if !assert.True(t, ok, "dead letter of %q", orig) {
			continue
		}
		seen[orig] = true
		assert.True(t, strings.HasPrefix(dl.Subject, "notifizz.dlq.unknown."), dl.Subject)
		assert.Equal(t, string(schema.ReasonUnknownSubject), dl.Header.Get(deadletter.HeaderReason))
		assert.Contains(t, dl.Header.Get(deadletter.HeaderError), want)
		assert.Equal(t, body, string(dl.Data))
		assert.Equal(t, "trace-"+orig, dl.Header.Get("X-Trace"), "the original headers are kept")
		assert.Empty(t, dl.Header.Get(deadletter.HeaderOriginalSequence), "it was never in a stream")
		assert.Equal(t, "1", dl.Header.Get(deadletter.HeaderDeliveries))
		assert.True(t, strings.HasPrefix(dl.Header.Get(jetstream.MsgIDHeader), "dlq-unknown-"))
	}
	assert.Len(t, seen, len(mistyped))
	assert.Equal(t, float64(3), r.counter(t, "notifizz_bridge_unroutable_messages_total", map[string]string{"outcome": "dead_lettered"}))
	assert.Equal(t, float64(3), r.counter(t, "notifizz_bridge_unroutable_messages_total", nil))
	assert.Equal(t, float64(3), r.counter(t, "notifizz_bridge_dead_letters_total", map[string]string{"reason": "unknown_subject"}))
}

// TestUnroutableJetStreamPublishFailsFast: a JetStream publish to a subject no stream captures
// reaches the bridge's subscription, which answers as the server would without it: the
// publisher gets "no responders" rather than a timeout, and nothing is dead-lettered.
func TestUnroutableJetStreamPublishFailsFast(t *testing.T) {
	e := newEnv(t)
	r := e.start(nil)
	_, err := e.js.Publish(ctx, "notifizz.tracks.k", []byte(`{}`))
	require.ErrorIs(t, err, jetstream.ErrNoStreamResponse)
	require.Eventually(t, func() bool {
		return r.counter(t, "notifizz_bridge_unroutable_messages_total", map[string]string{"outcome": "refused"}) >= 1
	}, waitFor, pollEvery)
	r.stop(t)
	assert.Zero(t, e.dlqCount())
	assert.Zero(t, r.counter(t, "notifizz_bridge_unroutable_messages_total", map[string]string{"outcome": "dead_lettered"}))
}

// TestUnroutableRecordedOnceByReplicas: two replicas of one deployment share one queue group,
// so each unroutable message is dead-lettered by exactly one of them, in single-consumer mode
// (two bridges on one durable) and in partitioned mode (where the stream transforms subjects:
// the subscription is on the subjects producers publish to).
func TestUnroutableRecordedOnceByReplicas(t *testing.T) {
	const n = 40
	for _, mode := range []string{"durable", "static group"} {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t)
			var conns []*nats.Conn
			var stops []func(*testing.T)
			var counts []func() float64
			if mode == "durable" {
				for range 2 {
					re := *e
					re.nc, re.js = e.connect()
					r := re.start(nil)
					conns, stops = append(conns, re.nc), append(stops, r.stop)
					counts = append(counts, func() float64 { return r.counter(t, "notifizz_bridge_unroutable_messages_total", nil) })
				}
			} else {
				cfg := e.partitioned(PartitionStatic, 4, "r0", "r1")
				for _, name := range []string{"r0", "r1"} {
					r := e.startReplica(name, cfg)
					conns, stops = append(conns, r.nc), append(stops, r.stop)
					counts = append(counts, func() float64 { return r.gauge("notifizz_bridge_unroutable_messages_total") })
				}
			}
			for i := range n {
				corePublish(t, e.nc, fmt.Sprintf("notifizz.tracks.k%d", i), `{}`)
			}
			_, err := e.prod.Track(ctx, "valid", "ev", nil)
			require.NoError(t, err)
			require.NoError(t, e.nc.Flush())
			e.deadLetters(n)
			// Each replica has read what the server delivered to it before answering its
			// flush; stopping it then records what it buffered.
			for i, nc := range conns {
				require.NoError(t, nc.Flush())
				stops[i](t)
			}

			dls := e.deadLetters(n)
			assert.Equal(t, n, len(dls), "each message once")
			subjects := map[string]bool{}
			for _, dl := range dls {
				subjects[dl.Header.Get(deadletter.HeaderOriginalSubject)] = true
			}
			assert.Len(t, subjects, n)
			assert.Equal(t, float64(n), counts[0]()+counts[1](), "dead-lettered once in all")
			assert.Positive(t, counts[0](), "the group shares the work")
			assert.Positive(t, counts[1](), "the group shares the work")
		})
	}
}

// TestUnroutableFollowsTheStreams: against an operator-managed stream that captures more than
// the bridge's subjects, a message the stream captures is dead-lettered once, by the consumer,
// and only what no stream captures is recorded by the watcher, including when a stream created
// after the bridge started captures it.
func TestUnroutableFollowsTheStreams(t *testing.T) {
	e := newEnv(t)
	_, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: e.cfg.Stream.Name, Subjects: []string{"notifizz.*.*"}, Storage: jetstream.MemoryStorage})
	require.NoError(t, err)
	_, err = e.js.CreateConsumer(ctx, e.cfg.Stream.Name, jetstream.ConsumerConfig{Durable: e.cfg.Consumer.Durable, AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	_, err = e.js.CreateStream(ctx, jetstream.StreamConfig{Name: e.cfg.DeadLetter.Stream, Subjects: []string{"notifizz.dlq.*.*"}, Storage: jetstream.MemoryStorage})
	require.NoError(t, err)
	r := e.start(func(c *Config) { c.Stream.Create = false })
	_, err = e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "AUDIT", Subjects: []string{"notifizz.audit.x.>"}, Storage: jetstream.MemoryStorage})
	require.NoError(t, err)

	corePublish(t, e.nc, "notifizz.bogus.k1", `{}`)  // the operator's stream captures it
	corePublish(t, e.nc, "notifizz.track.a.b", `{}`) // nothing does
	corePublish(t, e.nc, "notifizz.audit.x.y", `{}`) // the stream created after the start does
	corePublish(t, e.nc, "notifizz.audit.x.z", `{}`) // (learnt from the first)
	require.NoError(t, e.nc.Flush())
	e.deadLetters(2)
	e.settled(Config{Stream: e.cfg.Stream, Consumer: e.cfg.Consumer})
	r.stop(t)

	dls := e.deadLetters(2)
	require.Len(t, dls, 2)
	bySubject := map[string]deadLetter{}
	for _, dl := range dls {
		bySubject[dl.Header.Get(deadletter.HeaderOriginalSubject)] = dl
	}
	require.Contains(t, bySubject, "notifizz.bogus.k1")
	require.Contains(t, bySubject, "notifizz.track.a.b")
	assert.Equal(t, "notifizz.dlq.unknown.1", bySubject["notifizz.bogus.k1"].Subject, "the consumer's copy")
	assert.Equal(t, "1", bySubject["notifizz.bogus.k1"].Header.Get(deadletter.HeaderOriginalSequence))
	assert.Empty(t, bySubject["notifizz.track.a.b"].Header.Get(deadletter.HeaderOriginalSequence), "the watcher's copy")
	assert.Equal(t, float64(1), r.counter(t, "notifizz_bridge_unroutable_messages_total", nil))
	audit, err := e.js.Stream(ctx, "AUDIT")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), audit.CachedInfo().State.Msgs)
}
