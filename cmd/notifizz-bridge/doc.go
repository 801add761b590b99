// Command notifizz-bridge consumes notification messages from NATS JetStream, coalesces the
// pieces of each event and calls the Notifizz API once per event. See `notifizz-bridge help`.
//
// This package owns everything around the bridge: the command line (cli.go, commands.go,
// publish.go, dlq.go), the NATS connection and the embedded server
// (embedded.go, run.go), the dry-run printer (dryrun.go), the health and metrics endpoints
// (httpserver.go) and logging. The config file is internal/config's; the consuming, coalescing
// and acking are the bridge package's.
package main
