// Package schema owns the message contract between producers and the notifizz bridge on NATS:
// what a producer publishes and what the bridge accepts. Everything that decides whether a message
// is well-formed lives here, so the bridge, the CLI and producers judge a message the same way.
//
// It defines:
//
//   - subjects, <prefix>.<kind>.<key>: the four kinds the bridge consumes (Kinds: track,
//     workflow, commit, send), the event key that ties the pieces of one event together, and the
//     subjects a stream must capture;
//   - the bodies (Track, Workflow, Send; a commit has none) and their decoders, which validate a
//     body completely and report every problem with its field path and one of the reason codes
//     the bridge writes into dead letters;
//   - the kinds of the Notifizz API's v2 surface (KindsV2: identify, detach, subscribe,
//     unsubscribe), their bodies (Identify, Detach, Subscribe, Unsubscribe) and decoders, and a
//     track's occurredAt with the rule on future dates (CheckOccurredAt), for the bridge's
//     notifizz.api: v2 profile; until the bridge handles them, Kinds, StreamSubjects, ParseKind
//     and ParseSubject leave the v2 kinds out, and AllKinds and ParseKindAny include them;
//   - Redact, which removes secrets from a body before it is kept anywhere;
//   - JSON Schema documents of the bodies, for producers in other languages, which agree with the
//     decoders;
//   - Producer, a Go producer that mirrors the Notifizz SDK's calls over JetStream.
//
// The package imports nothing else of the project and never logs: it returns errors, and the
// bridge decides what to log and what to dead-letter. The contract is described for users in
// docs/CONTRACT.md.
package schema
