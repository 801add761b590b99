package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/bridge/group"
	"github.com/notifizz-bridge/notifizz-bridge/internal/natstest"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// countAPI answers every call at once and counts the track calls.
type countAPI struct {
	v1Only
	tracks atomic.Int64
}

func (a *countAPI) TrackEvent(context.Context, notifizz.TrackRequest) error {
	a.tracks.Add(1)
	return nil
}

func (a *countAPI) Send(context.Context, string, map[string]any, ...notifizz.CallOption) (json.RawMessage, error) {
	return json.RawMessage(`{}`), nil
}

// BenchmarkReplicas drains a backlog of events (a track, 10 workflows and a commit each) with
// one bridge, then with static groups of 1, 2 and 3 replicas over as many partitions, and of 3
// replicas over 6 and 12, all in this process against an instant in-process API. It reports
// messages per second from the start of the replicas to the last ack. On one machine the
// replicas share its cores with the server; the figure says what partitioning costs and how far
// it scales there, not what separate hosts would do. A member with several partitions reads
// through several filter subjects, which the file store serves far more slowly than one.
//
//	go test ./bridge -run '^$' -bench Replicas -benchtime 1x
func BenchmarkReplicas(b *testing.B) {
	const keys, workflows = 5000, 10
	for _, tc := range []struct {
		mode                 group.Mode
		replicas, partitions int // 0 replicas: the single durable consumer
	}{
		{"single", 0, 0},
		{PartitionStatic, 1, 1}, {PartitionStatic, 2, 2}, {PartitionStatic, 3, 3},
		{PartitionStatic, 3, 6}, {PartitionStatic, 3, 12},
		{PartitionElastic, 1, 1}, {PartitionElastic, 3, 3}, {PartitionElastic, 3, 12},
	} {
		name := string(tc.mode)
		if tc.replicas > 0 {
			name = fmt.Sprintf("%s-%dx%d", tc.mode, tc.replicas, tc.partitions)
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				benchReplicas(b, tc.mode, tc.replicas, tc.partitions, keys, workflows)
			}
		})
	}
}

func benchReplicas(b *testing.B, mode group.Mode, replicas, partitions, keys, workflows int) {
	b.StopTimer()
	// Started and shut down once per iteration, not at the end of the benchmark.
	srv, err := natstest.Start(natstest.Options(b.TempDir()), natstest.ReadyTimeout)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	connect := func() jetstream.JetStream {
		_, js := natstest.Connect(b, srv.ClientURL())
		return js
	}

	cfg := DefaultConfig()
	cfg.Coalesce.Delay = 5 * time.Second // every event ends with its commit
	cfg.Coalesce.OrphanTimeout = time.Minute
	var members []string
	for i := range replicas {
		members = append(members, "r"+strconv.Itoa(i))
	}
	if replicas > 0 {
		cfg.Partitions = PartitionsConfig{Count: partitions, Mode: mode, Group: "bench", Member: members[0], Members: members,
			FailoverAfter: DefaultConfig().Partitions.FailoverAfter}
		if mode == PartitionElastic {
			cfg.Partitions.Members = nil
		}
	}
	admin := connect()
	api := &countAPI{}
	setup, err := New(cfg, admin, api)
	if err != nil {
		b.Fatal(err)
	}
	if err := setup.provisionStreams(context.Background()); err != nil {
		b.Fatal(err)
	}

	// The backlog, published before the bridges start.
	pub := connect()
	var futures []jetstream.PubAckFuture
	publish := func(subject, body string) {
		f, err := pub.PublishAsync(subject, []byte(body))
		if err != nil {
			b.Fatal(err)
		}
		futures = append(futures, f)
	}
	for k := range keys {
		key := "k" + strconv.Itoa(k)
		publish("notifizz.track."+key, `{"eventName":"ev","properties":{"n":1}}`)
		for w := range workflows {
			publish("notifizz.workflow."+key, `{"campaignId":"c`+strconv.Itoa(w)+`","recipients":[{"id":"u","email":"u@example.com"}]}`)
		}
		publish("notifizz.commit."+key, "")
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			b.Fatal(err)
		}
	}
	total := len(futures)

	b.StartTimer()
	start := time.Now()
	var stops []func()
	for i := range max(replicas, 1) {
		c := cfg
		if replicas > 0 {
			c.Partitions.Member = members[i]
		}
		br, err := New(c, connect(), api)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- br.Run(ctx) }()
		stops = append(stops, func() {
			cancel()
			if err := <-done; err != nil {
				b.Error(err)
			}
		})
	}
	deadline := time.Now().Add(5 * time.Minute)
	for api.tracks.Load() < int64(keys) || !benchSettled(admin, cfg) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d events sent before the deadline", api.tracks.Load(), keys)
		}
		time.Sleep(5 * time.Millisecond) // the polling interval of the deadline loop above
	}
	elapsed := time.Since(start)
	b.StopTimer()
	for _, stop := range stops {
		stop()
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(api.tracks.Load())/float64(keys), "calls/event")
}

// benchSettled reports whether the consumers of cfg hold nothing more.
func benchSettled(js jetstream.JetStream, cfg Config) bool {
	if cfg.Partitions.Mode == PartitionElastic && cfg.Partitions.Count > 0 {
		s, err := js.Stream(context.Background(), group.ElasticStreamName(cfg.Stream.Name, cfg.Partitions.Group))
		return err == nil && s.CachedInfo().State.Msgs == 0
	}
	names := []string{cfg.Consumer.Durable}
	if cfg.Partitions.Count > 0 {
		names = names[:0]
		for _, m := range cfg.Partitions.Members {
			names = append(names, group.StaticConsumerName(cfg.Partitions.Group, m))
		}
	}
	for _, name := range names {
		cons, err := js.Consumer(context.Background(), cfg.Stream.Name, name)
		if err != nil {
			return false
		}
		info := cons.CachedInfo()
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return false
		}
	}
	return true
}
