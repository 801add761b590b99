// Command notifizz-load measures the bridge against the JetStream limit on the same machine, in
// one process: it starts an embedded JetStream server (or uses --nats), measures how fast a bare
// pull consumer drains and acks a workload, then runs the bridge on the same workload against an
// instant local stand-in for the Notifizz API, and reports the bridge's throughput as a ratio to
// that raw limit, the API calls per event, commit and delay latencies at a fixed rate, and the
// memory each held message costs. A per-message baseline (one API call per workflow message, no
// coalescing) shows what coalescing saves. --soak runs a steady workload for a duration and fails
// if goroutines, heap or connections grow.
//
// The logic lives in functions of this package so that the test suite runs a short workload
// in-process and checks its correctness (never its timing). See docs/PERFORMANCE.md.
package main
