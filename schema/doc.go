// Package schema owns the message contract between producers and the notifizz bridge on NATS:
// what a producer publishes and what the bridge accepts. Everything that decides whether a message
// is well-formed lives here, so the bridge, the CLI and producers judge a message the same way.
//
// It defines:
//
//   - subjects, <prefix>.<kind>.<key>: the four kinds (track, workflow, commit, send), the event
//     key that ties the pieces of one event together, and the subjects a stream must capture;
//   - the bodies (Track, Workflow, Send; a commit has none) and their decoders, which validate a
//     body completely and report every problem with its field path and one of the reason codes
//     the bridge writes into dead letters;
//   - Redact, which removes secrets from a body before it is kept anywhere;
//   - JSON Schema documents of the bodies, for producers in other languages, which agree with the
//     decoders;
//   - Producer, a Go producer that mirrors the Notifizz SDK's chain over JetStream.
//
// The package imports nothing else of the project and never logs: it returns errors, and the
// bridge decides what to log and what to dead-letter. The contract is described for users in
// docs/CONTRACT.md.
package schema
