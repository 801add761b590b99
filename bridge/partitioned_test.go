package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/synadia-io/orbit.go/pcgroups"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/group"
	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// TestPartitionTransform checks the stream's transform against the server: the stored subject
// carries the partition partitionOf computes, parseSubject reads the published subject back, and
// streamPartitions reads the count from the stream.
func TestPartitionTransform(t *testing.T) {
	e := newEnv(t)
	cfg := e.partitioned(PartitionStatic, 7, "m")
	cfg.Partitions.Member = "m"
	cfg.Stream.SubjectPrefix = "acme.notifizz"
	cfg.DeadLetter.SubjectPrefix = "acme.dlq"
	b, err := New(cfg, e.js, e.client())
	require.NoError(t, err)
	require.NoError(t, b.provisionStreams(ctx))

	s, err := e.js.Stream(ctx, cfg.Stream.Name)
	require.NoError(t, err)
	assert.Equal(t, 7, streamPartitions(s.CachedInfo().Config.SubjectTransform))
	assert.Equal(t, 12, streamPartitions(&jetstream.SubjectTransformConfig{Destination: "{{ Partition(12,1) }}.foo.{{wildcard(1)}}"}))
	assert.Zero(t, streamPartitions(&jetstream.SubjectTransformConfig{Destination: "bar.{{wildcard(1)}}"}))
	assert.Zero(t, streamPartitions(nil))

	prod := schema.NewProducer(e.js, schema.WithPrefix(cfg.Stream.SubjectPrefix))
	seen := map[int]bool{}
	for _, key := range []string{"order-1", "order-2", "k", "ключ-7", strings.Repeat("x", 255), "a_b-c"} {
		ack, err := prod.Commit(ctx, key)
		require.NoError(t, err)
		m, err := s.GetMsg(ctx, ack.Sequence)
		require.NoError(t, err)
		p := group.PartitionOf(key, 7)
		seen[p] = true
		assert.Equal(t, strconv.Itoa(p)+".acme.notifizz.commit."+key, m.Subject, "key %s", key)
		kind, k, err := b.parseSubject(m.Subject)
		require.NoError(t, err)
		assert.Equal(t, schema.KindCommit, kind)
		assert.Equal(t, key, k)
	}
	assert.Greater(t, len(seen), 1, "keys spread over partitions")
}

// TestPartitionCountIsFixed: a stream keeps the partitions it was created with; a bridge
// configured otherwise refuses to start, naming the key to fix.
func TestPartitionCountIsFixed(t *testing.T) {
	e := newEnv(t)
	run := func(cfg Config) error {
		cfg.Partitions.Member = "m"
		b, err := New(cfg, e.js, e.client())
		require.NoError(t, err)
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return b.Run(c)
	}
	single := e.cfg
	b, err := New(single, e.js, e.client())
	require.NoError(t, err)
	require.NoError(t, b.provisionStreams(ctx))

	err = run(e.partitioned(PartitionElastic, 4))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "partitions.count: stream NOTIFIZZ exists without partitions; partitioning an existing stream is not supported")

	require.NoError(t, e.js.DeleteStream(ctx, single.Stream.Name))
	elastic := e.partitioned(PartitionElastic, 4)
	elastic.Partitions.Member = "m"
	b, err = New(elastic, e.js, e.client())
	require.NoError(t, err)
	require.NoError(t, b.provisionStreams(ctx))

	err = run(e.partitioned(PartitionElastic, 6))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "partitions.count: stream NOTIFIZZ has 4 partitions, not 6; repartitioning an existing stream is not supported")
	err = run(single)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "partitions.count: stream NOTIFIZZ is partitioned into 4 partitions, so partitions.count must be 4 to read it, not 0")

	s, err := e.js.Stream(ctx, single.Stream.Name)
	require.NoError(t, err)
	assert.Equal(t, 4, streamPartitions(s.CachedInfo().Config.SubjectTransform), "the stream is unchanged")
}

// TestPartitionModeIsFixed: a group keeps its mode; a bridge configured with the other one
// refuses to start rather than read the stream again through a second group.
func TestPartitionModeIsFixed(t *testing.T) {
	e := newEnv(t)
	elastic := e.partitioned(PartitionElastic, 2)
	e.startReplica("m0", elastic).stop(t)

	static := e.partitioned(PartitionStatic, 2, "m0", "m1")
	static.Partitions.Member = "m0"
	b, err := New(static, e.js, e.client())
	require.NoError(t, err)
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = b.Run(c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `partitions.mode: stream NOTIFIZZ already has a group "bridges" of the other mode`)
}

// TestStaticGroupThreeReplicas: three replicas share 5,000 events, each event sent once, by one
// replica, whole.
func TestStaticGroupThreeReplicas(t *testing.T) {
	e := newEnv(t)
	members := []string{"r0", "r1", "r2"}
	cfg := e.partitioned(PartitionStatic, 12, members...)
	// No replica fails here. With the 2 s of e.partitioned, a machine busy with other tests can
	// hold a replica's heartbeat back long enough for another to take it for dead and cover it,
	// and a pin can lapse between two pulls: work moves between replicas for nothing, and the
	// test, which counts on none of that, waited minutes for the group to settle.
	cfg.Consumer.AckWait = 10 * time.Second
	cfg.Partitions.FailoverAfter = 10 * time.Second
	replicas := make([]*replica, len(members))
	for i, m := range members {
		replicas[i] = e.startReplica(m, cfg)
	}

	events, err := publishEvents(publishers(t, 4, e.srv.ClientURL()), eventKeys("s", 5000), nil)
	require.NoError(t, err)
	calls := waitDelivered(t, events, replicas...)
	staticSettled(t, e.js, cfg)

	// A call the client gave up on (its timeout ran out on a starved machine) and made again
	// under the same key is one call of the bridge: calls leaves it out (see abandons).
	if replays := checkEvents(t, cfg.Stream.Name, events, calls); !assert.Zero(t, replays, "no event sent twice") {
		for key, cs := range calls {
			for _, c := range cs[min(len(cs), 1):] {
				t.Logf("event %s: call again by %s at %s (attempt %s; first by %s at %s, attempt %s)", key, c.replica,
					c.At.Format(time.StampMilli), c.Header.Get(attemptHeader), cs[0].replica, cs[0].At.Format(time.StampMilli), cs[0].Header.Get(attemptHeader))
			}
		}
	}
	owner := map[string]string{}
	for _, r := range replicas {
		got := r.calls()
		t.Logf("replica %s: %d calls answered; %d attempts given up on by its client and tried again, %d of which reached the API",
			r.name, len(got), r.client.given(), len(r.api.snapshot())-len(got))
		assert.NotEmpty(t, got, "replica %s got a share", r.name)
		for _, c := range got {
			key := c.Body["properties"].(map[string]any)["k"].(string)
			if prev, ok := owner[key]; ok {
				assert.Fail(t, "event sent by two replicas", "%s by %s and %s", key, prev, r.name)
			}
			owner[key] = r.name
		}
	}
	assert.Len(t, owner, len(events))
	assert.Zero(t, e.dlqCount(), "no dead letters")
}

// TestPartitionedDeadLetterSubjects: in partitioned mode a dead letter goes to
// <deadLetter.subjectPrefix>.<kind>.<key> and names the subject as the stream stores it.
func TestPartitionedDeadLetterSubjects(t *testing.T) {
	for _, mode := range []group.Mode{PartitionStatic, PartitionElastic} {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t)
			cfg := e.partitioned(mode, 5, "r0")
			if mode == PartitionElastic {
				cfg.Partitions.Members = nil
			}
			e.startReplica("r0", cfg)
			seq := e.publishRaw("notifizz.workflow.bad-7", []byte(`{"campaignId":"c"}`), nil)
			s, err := e.js.Stream(ctx, cfg.Stream.Name)
			require.NoError(t, err)
			stored, err := s.GetMsg(ctx, seq)
			require.NoError(t, err)
			require.Equal(t, strconv.Itoa(group.PartitionOf("bad-7", 5))+".notifizz.workflow.bad-7", stored.Subject)

			dl := e.deadLetters(1)[0]
			assert.Equal(t, "notifizz.dlq.workflow.bad-7", dl.Subject)
			assert.Equal(t, stored.Subject, dl.Header.Get(deadletter.HeaderOriginalSubject))
			assert.Equal(t, seqStr(seq), dl.Header.Get(deadletter.HeaderOriginalSequence), "the stream's sequence, in both modes")
			assert.Equal(t, "invalid_message", dl.Header.Get(deadletter.HeaderReason))
		})
	}
}

// TestElasticReplicaLeavesAndJoins: 5,000 events while one of three replicas stops and later a
// fourth joins. Every event is sent whole; a window open on a replica whose partition moves is
// replayed by the next owner only under the same idempotency key; nothing is left pending.
func TestElasticReplicaLeavesAndJoins(t *testing.T) {
	e := newEnv(t)
	cfg := e.partitioned(PartitionElastic, 12)
	r0, r1, r2 := e.startReplica("r0", cfg), e.startReplica("r1", cfg), e.startReplica("r2", cfg)
	elasticStable(t, e.js, cfg, "r0", "r1", "r2")
	prods := publishers(t, 4, e.srv.ClientURL())

	// r1 stops while the first half is being published, as a scale-in would stop it.
	first := publishInBackground(prods, eventKeys("a", 2500), nil)
	require.Eventually(t, func() bool { return len(r1.api.snapshot()) >= 100 }, scaleWait, pollEvery)
	t.Logf("r1 stops at %s", time.Now().Format(time.StampMilli))
	r1.stop(t)
	t.Logf("r1 stopped at %s", time.Now().Format(time.StampMilli))
	pub := <-first
	require.NoError(t, pub.err)
	events := pub.events

	// r3 joins while the second half is being published: partitions move from r0 and r2 to
	// it with windows open.
	second := publishInBackground(prods, eventKeys("b", 2500), nil)
	require.Eventually(t, func() bool { return len(r0.api.snapshot())+len(r2.api.snapshot()) >= 2000 }, scaleWait, pollEvery)
	t.Logf("r3 joins at %s", time.Now().Format(time.StampMilli))
	r3 := e.startReplica("r3", cfg)
	t.Logf("r3 joined at %s", time.Now().Format(time.StampMilli))
	pub = <-second
	require.NoError(t, pub.err)
	events = append(events, pub.events...)

	waitDelivered(t, events, r0, r1, r2, r3)
	elasticStable(t, e.js, cfg, "r0", "r2", "r3")
	elasticSettled(t, e.js, cfg)
	calls := callsByKey(r0, r1, r2, r3) // with any replay made while settling
	replays := checkEvents(t, cfg.Stream.Name, events, calls)
	assert.NotEmpty(t, r3.api.snapshot(), "the replica that joined got a share")
	t.Logf("%d events, %d replayed under their key after a partition moved; calls by replica: r0 %d, r1 %d, r2 %d, r3 %d",
		len(events), replays, len(r0.api.snapshot()), len(r1.api.snapshot()), len(r2.api.snapshot()), len(r3.api.snapshot()))
	assert.Zero(t, e.dlqCount(), "no dead letters")
}

// TestElasticDeadMemberIsDropped: a replica of an elastic group dies (its connection goes, as
// with a killed process) while events are published. The others miss its heartbeats, drop it
// from the group and take its partitions, including what it held, so every event is sent whole
// under its one key. Started again under its name, it joins and gets a share again.
func TestElasticDeadMemberIsDropped(t *testing.T) {
	e := newEnv(t)
	cfg := e.partitioned(PartitionElastic, 12)
	r0, r1, r2 := e.startReplica("r0", cfg), e.startReplica("r1", cfg), e.startReplica("r2", cfg)
	elasticStable(t, e.js, cfg, "r0", "r1", "r2")
	gc, err := pcgroups.GetElasticConsumerGroupConfig(ctx, e.js, cfg.Stream.Name, cfg.Partitions.Group)
	require.NoError(t, err)
	r1Parts := map[string]bool{} // the partitions r1 served: its filters are "<p>.<the group's filter>"
	for _, f := range pcgroups.ElasticGetPartitionFilters(*gc, "r1") {
		p, _, _ := strings.Cut(f, ".")
		r1Parts[p] = true
	}
	require.NotEmpty(t, r1Parts)
	prods := publishers(t, 4, e.srv.ClientURL())

	first := publishInBackground(prods, eventKeys("a", 2000), nil)
	require.Eventually(t, func() bool { return len(r1.api.snapshot()) >= 100 }, scaleWait, pollEvery)
	crashed := time.Now()
	r1.crash(t)
	pub := <-first
	require.NoError(t, pub.err)
	events := pub.events

	elasticStable(t, e.js, cfg, "r0", "r2")
	t.Logf("r1 dropped and its partitions re-assigned %s after the crash (AckWait %s)",
		time.Since(crashed).Round(time.Millisecond), cfg.Consumer.AckWait)
	waitDelivered(t, events, r0, r1, r2)
	elasticSettled(t, e.js, cfg)
	calls := callsByKey(r0, r1, r2) // with any replay made while settling
	checkEvents(t, cfg.Stream.Name, events, calls)
	taken := 0 // events of r1's partitions that r0 or r2 sent
	for _, ev := range events {
		if !r1Parts[strconv.Itoa(group.PartitionOf(ev.key, cfg.Partitions.Count))] {
			continue
		}
		for _, c := range calls[ev.key] {
			if c.replica != "r1" {
				taken++
				break
			}
		}
	}
	assert.NotZero(t, taken, "r0 and r2 sent events of the partitions r1 served")
	assert.Zero(t, e.dlqCount(), "no dead letters")

	// r1 comes back: it joins again and takes a share of what is published next.
	r1b := e.startReplica("r1", cfg)
	elasticStable(t, e.js, cfg, "r0", "r1", "r2")
	pub = <-publishInBackground(prods, eventKeys("b", 500), nil)
	require.NoError(t, pub.err)
	waitDelivered(t, pub.events, r0, r1b, r2)
	elasticSettled(t, e.js, cfg)
	checkEvents(t, cfg.Stream.Name, pub.events, callsByKey(r0, r1b, r2))
	assert.NotEmpty(t, r1b.api.snapshot(), "r1 back in the group got a share")
	t.Logf("%d events before the restart, %d of them in r1's partitions sent by r0 or r2; %d after it", len(events), taken, len(pub.events))
}

// TestElasticLiveMemberDroppedJoinsAgain: a replica dropped from the group while it runs (the
// others took it for dead, say while it was cut off from NATS) joins again by itself, and the
// group serves every event.
func TestElasticLiveMemberDroppedJoinsAgain(t *testing.T) {
	e := newEnv(t)
	cfg := e.partitioned(PartitionElastic, 4)
	r0, r1 := e.startReplica("r0", cfg), e.startReplica("r1", cfg)
	elasticStable(t, e.js, cfg, "r0", "r1")

	members, err := pcgroups.DeleteMembers(ctx, e.js, cfg.Stream.Name, cfg.Partitions.Group, []string{"r1"})
	require.NoError(t, err)
	require.Equal(t, []string{"r0"}, members, "r1 dropped")
	// Nothing but r1 itself adds r1 back.
	elasticStable(t, e.js, cfg, "r0", "r1")

	pub := <-publishInBackground(publishers(t, 2, e.srv.ClientURL()), eventKeys("k", 300), nil)
	require.NoError(t, pub.err)
	waitDelivered(t, pub.events, r0, r1)
	elasticSettled(t, e.js, cfg)
	checkEvents(t, cfg.Stream.Name, pub.events, callsByKey(r0, r1))
	assert.NotEmpty(t, r1.api.snapshot(), "r1 serves its share again")
	assert.Zero(t, e.dlqCount(), "no dead letters")
}

// TestElasticGroupCutOffFromNATS: every replica of an elastic group loses NATS for longer than
// it takes to call a member dead (a server restart, a network partition). When they are back,
// none takes the others for dead on the strength of beats it could not see meanwhile: the
// membership never changes. The server has deleted the members' consumers, idle for longer
// than AckWait, and pcgroups would not create them again: the replicas start it again, and the
// group serves every event published afterwards.
func TestElasticGroupCutOffFromNATS(t *testing.T) {
	e := newEnv(t)
	cfg := e.partitioned(PartitionElastic, 6)
	px := newCutProxy(t, e.srv.ClientURL())
	r0, r1, r2 := e.startReplica("r0", cfg, px.url), e.startReplica("r1", cfg, px.url), e.startReplica("r2", cfg, px.url)
	elasticStable(t, e.js, cfg, "r0", "r1", "r2")

	var (
		mu      sync.Mutex
		changes [][]string // the memberships written since the group was stable
	)
	kv, err := e.js.KeyValue(ctx, group.ElasticBucket)
	require.NoError(t, err)
	wctx, stopWatch := context.WithCancel(ctx)
	w, err := kv.Watch(wctx, cfg.Stream.Name+"."+cfg.Partitions.Group, jetstream.UpdatesOnly())
	require.NoError(t, err)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for u := range w.Updates() {
			var gc pcgroups.ElasticConsumerGroupConfig
			if u != nil && json.Unmarshal(u.Value(), &gc) == nil {
				mu.Lock()
				changes = append(changes, gc.Members)
				mu.Unlock()
			}
		}
	}()

	px.cut()
	// The outage lasts three times what makes a member dead: the length of the scenario, not a
	// wait for a state.
	<-time.After(3 * group.DeadAfter(cfg.Partitions.FailoverAfter))
	px.restore()

	pub := <-publishInBackground(publishers(t, 2, e.srv.ClientURL()), eventKeys("k", 300), nil)
	require.NoError(t, pub.err)
	waitDelivered(t, pub.events, r0, r1, r2)
	elasticSettled(t, e.js, cfg)
	checkEvents(t, cfg.Stream.Name, pub.events, callsByKey(r0, r1, r2))
	assert.Zero(t, e.dlqCount(), "no dead letters")

	stopWatch()
	<-watched
	mu.Lock()
	defer mu.Unlock()
	for _, m := range changes {
		assert.ElementsMatch(t, []string{"r0", "r1", "r2"}, m, "the membership changed")
	}
}

// TestStaticStandbyTakesOver: a member run twice has a hot standby; when the pinned instance
// dies, the standby takes its partitions within the pin TTL and is redelivered what the dead
// one held, so every event is sent, under its one key.
func TestStaticStandbyTakesOver(t *testing.T) {
	e := newEnv(t)
	cfg := e.partitioned(PartitionStatic, 4, "m0", "m1")
	// A commit that reaches the standby before the redelivered pieces of its event finds no
	// window, and the event then goes at its delay: keep that short, yet longer than a busy
	// machine takes to publish the rounds of 1,000 events (all tracks, then each workflow).
	cfg.Coalesce.Delay = 10 * time.Second
	m0 := e.startReplica("m0", cfg)
	m1 := e.startReplica("m1", cfg)
	prods := publishers(t, 4, e.srv.ClientURL())
	events, err := publishEvents(prods, eventKeys("p", 200), nil)
	require.NoError(t, err)
	waitDelivered(t, events, m0, m1)
	require.NotEmpty(t, m1.api.snapshot(), "m1 is pinned")

	standbyCfg := cfg
	standbyCfg.Partitions.Member = "m1"
	standby := e.startReplica("m1-standby", standbyCfg)

	more := publishInBackground(prods, eventKeys("q", 1000), nil)
	require.Eventually(t, func() bool { return len(m1.api.snapshot()) >= 250 }, scaleWait, pollEvery)
	crashed := time.Now()
	m1.crash(t)
	pub := <-more
	require.NoError(t, pub.err)
	events = append(events, pub.events...)

	calls := waitDelivered(t, events, m0, m1, standby)
	staticSettled(t, e.js, cfg)
	checkEvents(t, cfg.Stream.Name, events, calls)
	taken := standby.api.snapshot()
	require.NotEmpty(t, taken, "the standby took over")
	t.Logf("standby's first call %s after the crash (pin TTL and AckWait %s)", taken[0].At.Sub(crashed).Round(time.Millisecond), cfg.Consumer.AckWait)
	assert.Zero(t, e.dlqCount(), "no dead letters")
}

// TestMemberCrashKeepsWorkflowsTogether is TestCrashMidEventKeepsWorkflowsTogether for a member
// of a group, in both modes: the instance that dies holds the track and a workflow of an event,
// and the rest of it is published after the crash. The member's next instance, started at once,
// gets those at once and the dead one's pieces only when their AckWait runs out: it holds its
// windows until they are back, so the event goes out whole.
func TestMemberCrashKeepsWorkflowsTogether(t *testing.T) {
	for _, mode := range []group.Mode{PartitionStatic, PartitionElastic} {
		t.Run(string(mode), func(t *testing.T) {
			e := newEnv(t)
			var cfg Config
			if mode == PartitionStatic {
				cfg = e.partitioned(mode, 1, "m0")
			} else {
				cfg = e.partitioned(mode, 1)
			}
			cfg.Coalesce.Delay = 300 * time.Millisecond
			// The group and the member's consumer, as the dead instance had them.
			r := e.startReplica("m0", cfg)
			stream, consumer := cfg.Stream.Name, group.StaticConsumerName(cfg.Partitions.Group, "m0")
			if mode == PartitionElastic {
				elasticStable(t, e.js, cfg, "m0")
				stream, consumer = group.ElasticStreamName(cfg.Stream.Name, cfg.Partitions.Group), "m0"
			}
			// The dead instance: it holds the pin and pulls the first two pieces.
			nc, js := connectURLs(t, []string{e.srv.ClientURL()})
			cons, err := js.Consumer(ctx, stream, consumer)
			require.NoError(t, err)
			r.crash(t)

			_, err = e.prod.Track(ctx, "k1", "ev", nil)
			require.NoError(t, err)
			_, err = e.prod.Workflow(ctx, "k1", "c1", recipients("u1")...)
			require.NoError(t, err)
			got := 0
			require.Eventually(t, func() bool {
				batch, err := cons.Fetch(2-got, jetstream.FetchMaxWait(time.Second), jetstream.FetchPriorityGroup("PCG"))
				if err != nil {
					return false
				}
				for range batch.Messages() {
					got++
				}
				return got == 2
			}, scaleWait, pollEvery, "the dead instance never got the first two pieces")
			nc.Close()

			_, err = e.prod.Workflow(ctx, "k1", "c2", recipients("u2")...)
			require.NoError(t, err)
			_, err = e.prod.Commit(ctx, "k1")
			require.NoError(t, err)

			r = e.startReplica("m0", cfg)
			calls := r.api.waitCalls(t, 1)
			if mode == PartitionStatic {
				staticSettled(t, e.js, cfg)
			} else {
				elasticSettled(t, e.js, cfg)
			}
			assert.Len(t, r.api.snapshot(), 1, "one call for the event")
			assert.Equal(t, []string{"c1", "c2"}, workflowIDs(calls[0]), "both workflows in the one call")
			assert.Zero(t, e.dlqCount(), "no workflow left behind as missing_track")
		})
	}
}

// TestStaticDeadMemberIsCovered: a member of a static group dies while events are published,
// with no standby of its own. The member after it in the sorted list misses its heartbeats and
// runs an instance of it, which the server pins once the dead one's pin expires: every event of
// its partition is sent whole, under its one key. When the member comes back, its partition is
// given back: it sends the events published next.
func TestStaticDeadMemberIsCovered(t *testing.T) {
	e := newEnv(t)
	cfg := e.partitioned(PartitionStatic, 3, "m0", "m1", "m2")
	m0, m1, m2 := e.startReplica("m0", cfg), e.startReplica("m1", cfg), e.startReplica("m2", cfg)
	filters := pcgroups.GeneratePartitionFilters([]string{"m0", "m1", "m2"}, 3, nil, "m1", ">")
	require.Len(t, filters, 1)
	m1Part, _, _ := strings.Cut(filters[0], ".")
	ofM1 := func(key string) bool { return strconv.Itoa(group.PartitionOf(key, cfg.Partitions.Count)) == m1Part }
	prods := publishers(t, 4, e.srv.ClientURL())

	// m1 dies holding the tracks and workflows of its partition's events, before their commits
	// are published.
	keys := eventKeys("a", 600)
	n1 := 0
	for _, k := range keys {
		if ofM1(k) {
			n1++
		}
	}
	var crashed time.Time
	events, err := publishEvents(prods, keys, func() {
		require.Eventually(t, func() bool { return m1.gauge("notifizz_bridge_held_messages") >= float64(3*n1) },
			scaleWait, pollEvery, "m1 never held its share")
		crashed = time.Now()
		m1.crash(t)
	})
	require.NoError(t, err)
	calls := waitDelivered(t, events, m0, m1, m2)
	staticSettled(t, e.js, cfg)
	checkEvents(t, cfg.Stream.Name, events, callsByKey(m0, m1, m2))
	var first2 time.Time
	for _, ev := range events {
		for _, c := range calls[ev.key] {
			if ofM1(ev.key) && c.replica != "m2" || !ofM1(ev.key) && c.replica == "m1" {
				t.Errorf("event %s sent by %s", ev.key, c.replica)
			}
			if c.replica == "m2" && ofM1(ev.key) && (first2.IsZero() || c.At.Before(first2)) {
				first2 = c.At
			}
		}
	}
	require.False(t, first2.IsZero(), "m2 sent none of m1's partition")
	t.Logf("m2 covered m1's %d events, the first %s after the crash (AckWait %s)",
		n1, first2.Sub(crashed).Round(time.Millisecond), cfg.Consumer.AckWait)
	assert.Zero(t, e.dlqCount(), "no dead letters")

	// m1 comes back: m2 gives its partition back, stepping down from the pin it holds.
	pinned := func() string {
		cons, err := e.js.Consumer(ctx, cfg.Stream.Name, group.StaticConsumerName(cfg.Partitions.Group, "m1"))
		if err != nil {
			return ""
		}
		for _, pg := range cons.CachedInfo().PriorityGroups {
			return pg.PinnedClientID
		}
		return ""
	}
	coverPin := pinned()
	require.NotEmpty(t, coverPin, "m2 holds m1's pin")
	m1b := e.startReplica("m1", cfg)
	// The server pins m1 at its next message; until then the pin is empty.
	require.Eventually(t, func() bool { return pinned() != coverPin }, scaleWait, 50*time.Millisecond,
		"m2 never gave m1's partition back")
	pub := <-publishInBackground(prods, eventKeys("b", 500), nil)
	require.NoError(t, pub.err)
	calls = waitDelivered(t, pub.events, m0, m1b, m2)
	staticSettled(t, e.js, cfg)
	checkEvents(t, cfg.Stream.Name, pub.events, callsByKey(m0, m1b, m2))
	for _, ev := range pub.events {
		if !ofM1(ev.key) {
			continue
		}
		for _, c := range calls[ev.key] {
			assert.Equal(t, "m1", c.replica, "event %s of m1's partition sent by %s after m1 came back", ev.key, c.replica)
		}
	}
	assert.Zero(t, e.dlqCount(), "no dead letters")
}

// TestStaticStandbyKeepsEventsWhole: the active instance of a member dies holding the track and
// a workflow of an event, which it kept alive with in-progress pings, so they come back later
// than the pin moves to the standby. The second workflow and the commit are published after the
// crash and reach the standby first: it holds its windows from the moment it is pinned, and the
// event goes out whole.
func TestStaticStandbyKeepsEventsWhole(t *testing.T) {
	e := newEnv(t)
	cfg := e.partitioned(PartitionStatic, 1, "m0")
	active := e.startReplica("m0", cfg)
	standbyCfg := cfg
	standbyCfg.Partitions.Member = "m0"
	standby := e.startReplica("m0-standby", standbyCfg)

	_, err := e.prod.Track(ctx, "k1", "ev", nil)
	require.NoError(t, err)
	_, err = e.prod.Workflow(ctx, "k1", "c1", recipients("u1")...)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return active.gauge("notifizz_bridge_held_messages") == 2 && active.gauge("notifizz_bridge_in_progress_total") >= 2
	}, scaleWait, pollEvery, "the active instance never held the pieces and pinged")
	active.crash(t)
	_, err = e.prod.Workflow(ctx, "k1", "c2", recipients("u2")...)
	require.NoError(t, err)
	_, err = e.prod.Commit(ctx, "k1")
	require.NoError(t, err)

	calls := standby.api.waitCalls(t, 1)
	staticSettled(t, e.js, cfg)
	assert.Empty(t, active.api.snapshot(), "the active instance sent nothing")
	assert.Len(t, standby.api.snapshot(), 1, "one call for the event")
	assert.Equal(t, []string{"c1", "c2"}, workflowIDs(calls[0]), "both workflows in the one call")
	assert.Zero(t, e.dlqCount(), "no workflow left behind as missing_track")
}

// TestHeartbeatBucketComesBack: the heartbeat bucket is lost (a server that lost its storage, an
// operator's mistake): the replicas create it again and beat on.
func TestHeartbeatBucketComesBack(t *testing.T) {
	e := newEnv(t)
	cfg := e.partitioned(PartitionStatic, 2, "m0", "m1")
	e.startReplica("m0", cfg)
	e.startReplica("m1", cfg)
	beats := func() []string {
		kv, err := e.js.KeyValue(ctx, group.LivenessBucket)
		if err != nil {
			return nil
		}
		keys, err := kv.Keys(ctx)
		if err != nil {
			return nil
		}
		return keys
	}
	want := []string{cfg.Stream.Name + ".bridges.m0", cfg.Stream.Name + ".bridges.m1"}
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, sortedCopy(beats())) }, scaleWait, pollEvery)
	require.NoError(t, e.js.DeleteKeyValue(ctx, group.LivenessBucket))
	require.Eventually(t, func() bool { return assert.ObjectsAreEqual(want, sortedCopy(beats())) }, scaleWait, pollEvery,
		"the bucket never came back with both beats")
}

// TestHeartbeatBucketCreatedLater: the operator manages the streams and creates the heartbeat
// bucket only after the replicas started: they find it and beat.
func TestHeartbeatBucketCreatedLater(t *testing.T) {
	e := newEnv(t)
	cfg := e.partitioned(PartitionStatic, 2, "m0", "m1")
	e.startReplica("m0", cfg).stop(t) // the streams and the group, as an operator would have them
	require.NoError(t, e.js.DeleteKeyValue(ctx, group.LivenessBucket))
	cfg.Stream.Create = false
	e.startReplica("m0", cfg)
	e.startReplica("m1", cfg)
	_, err := e.js.KeyValue(ctx, group.LivenessBucket)
	require.ErrorIs(t, err, jetstream.ErrBucketNotFound, "the replicas do not create it")

	kv, err := e.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: group.LivenessBucket, History: 1})
	require.NoError(t, err)
	want := []string{cfg.Stream.Name + ".bridges.m0", cfg.Stream.Name + ".bridges.m1"}
	require.Eventually(t, func() bool {
		keys, err := kv.Keys(ctx)
		return err == nil && assert.ObjectsAreEqual(want, sortedCopy(keys))
	}, scaleWait, pollEvery, "the replicas never beat in the bucket created after their start")
}

func sortedCopy(s []string) []string { return slices.Sorted(slices.Values(s)) }

// TestPartitionedCluster: three replicas on a three-node cluster with the stream, the group's
// consumers and its config replicated three times; the node that leads the stream stops
// mid-run, while every window is open, and the replicas carry on, losing nothing. The commits
// go out once the replicas hold every other piece again: a delivery lost with the node comes
// back only after AckWait, and a commit that overtook it would close its window without it (a
// limit of commit-closed windows in every mode, see docs/SCALING.md).
func TestPartitionedCluster(t *testing.T) {
	servers := startCluster(t)
	urls := clientURLs(servers...)
	e := newEnv(t)
	_, js := connectURLs(t, urls)
	members := []string{"r0", "r1", "r2"}
	cfg := e.partitioned(PartitionStatic, 3, members...)
	cfg.Stream.Replicas = 3
	cfg.Stream.Storage = "file"

	replicas := make([]*replica, len(members))
	for i, m := range members {
		// Each replica prefers another node and fails over to the others.
		rotated := append(append([]string(nil), urls[i:]...), urls[:i]...)
		replicas[i] = e.startReplica(m, cfg, rotated...)
	}
	s, err := js.Stream(ctx, cfg.Stream.Name)
	require.NoError(t, err)
	require.Equal(t, 3, s.CachedInfo().Config.Replicas)

	const keys = 1500
	held := func() (n float64) {
		for _, r := range replicas {
			n += r.gauge("notifizz_bridge_held_messages")
		}
		return n
	}
	allHeld := make(chan struct{})
	done := publishInBackground(publishers(t, 4, urls...), eventKeys("c", keys), func() { <-allHeld })
	// Stop the node once the tracks are in and the workflows coming: every window is open.
	require.Eventually(t, func() bool {
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs >= 2000
	}, scaleWait, pollEvery)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	leader := info.Cluster.Leader
	for _, srv := range servers {
		if srv.Name() == leader {
			srv.Shutdown()
		}
	}
	assert.Eventually(t, func() bool { return held() == 3*keys }, scaleWait, pollEvery, "tracks and workflows held again")
	close(allHeld)
	pub := <-done
	require.NoError(t, pub.err)

	calls := waitDelivered(t, pub.events, replicas...)
	staticSettled(t, js, cfg)
	checkEvents(t, cfg.Stream.Name, pub.events, calls)
	for _, r := range replicas {
		assert.True(t, r.b.Ready(), "replica %s still consuming", r.name)
	}
	dlq, err := js.Stream(ctx, cfg.DeadLetter.Stream)
	require.NoError(t, err)
	assert.Zero(t, dlq.CachedInfo().State.Msgs, "no dead letters")
	t.Logf("stopped node %s, the stream's leader", leader)
}

// TestReplicasStartTogetherOnAFreshCluster: three replicas started at once against a fresh
// three-node cluster, each creating the replicated streams, the group and its buckets, all come
// up: what the cluster answers while it settles (timeouts, no responders) is retried.
func TestReplicasStartTogetherOnAFreshCluster(t *testing.T) {
	servers := startCluster(t)
	urls := clientURLs(servers...)
	e := newEnv(t)
	members := []string{"r0", "r1", "r2"}
	cfg := e.partitioned(PartitionStatic, 3, members...)
	cfg.Stream.Replicas = 3
	cfg.Stream.Storage = StorageFile
	replicas := make([]*replica, len(members))
	for i, m := range members {
		rotated := append(append([]string(nil), urls[i:]...), urls[:i]...)
		replicas[i] = e.launchReplica(m, cfg, rotated...)
	}
	for _, r := range replicas {
		e.waitJoined(r)
	}
	_, js := connectURLs(t, urls)
	s, err := js.Stream(ctx, cfg.Stream.Name)
	require.NoError(t, err)
	assert.Equal(t, 3, s.CachedInfo().Config.Replicas)
	for _, r := range replicas {
		assert.True(t, r.b.Ready(), "replica %s consuming", r.name)
	}

	// Traffic at once: a replica slow to start may have been covered meanwhile and be getting
	// its partitions back, with the cover's windows handed back as this traffic arrives. Every
	// event still goes out once and whole, and nothing is dead-lettered.
	pub := <-publishInBackground(publishers(t, 3, urls...), eventKeys("a", 100), nil)
	require.NoError(t, pub.err)
	calls := waitDelivered(t, pub.events, replicas...)
	staticSettled(t, js, cfg)
	checkEvents(t, cfg.Stream.Name, pub.events, calls)
	dlq, err := js.Stream(ctx, cfg.DeadLetter.Stream)
	require.NoError(t, err)
	assert.Zero(t, dlq.CachedInfo().State.Msgs, "no dead letters")
	if t.Failed() {
		for _, r := range replicas {
			t.Logf("log of %s:\n%s", r.name, r.logs.String())
		}
	}
}

// TestStaticMemberSettingsAreFixed: pcgroups creates a static member's consumer once; a replica
// started with other consumer settings fails to start, with the group and member in the error.
func TestStaticMemberSettingsAreFixed(t *testing.T) {
	e := newEnv(t)
	cfg := e.partitioned(PartitionStatic, 2, "m0", "m1")
	m0 := e.startReplica("m0", cfg)
	m0.stop(t)

	cfg.Partitions.Member = "m0"
	cfg.Consumer.AckWait = 3 * time.Second
	b, err := New(cfg, e.js, e.client())
	require.NoError(t, err)
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = b.Run(c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `partitions: consume static group "bridges" on stream NOTIFIZZ as member "m0"`)
	assert.Contains(t, err.Error(), fmt.Sprintf("its consumer %s has ackWait %s where the config says consumer.ackWait: 3s",
		group.StaticConsumerName("bridges", "m0"), e.partitioned(PartitionStatic, 2, "m0", "m1").Consumer.AckWait),
		"the error names the setting that differs, with both values")
}
