// Package catalog is the event catalog of the Notifizz SDKs 2.x, as the bridge applies it to
// track messages: events declared with a JSON Schema for their properties, checked in soft mode
// (sent and counted) or strict mode (refused), and idempotency keys derived from declared fields,
// the same keys an SDK derives, so that one business event tracked directly and through the
// bridge carries one key.
package catalog
