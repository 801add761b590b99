// Package deadletter is the dead-letter contract: the reasons a message is dead-lettered, the
// headers and subjects of a dead letter, and the Letter the bridge writes and the dlq command
// reads. Operators script against these names (see docs/CONTRACT.md and the README), so every
// header, subject and reason here is fixed byte for byte.
//
// It imports schema, whose decoding reasons, secret keys and redaction it reuses; schema, the
// producers' package, imports nothing of ours, so it does not depend on this one.
package deadletter
