package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Exit codes. Scripts rely on them: 2 means the command line was wrong, 1 that the command ran
// and failed.
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitForced = 130 // a second signal: 128 + SIGINT, as a shell reports it
)

// usageError is a mistake on the command line.
type usageError struct {
	msg     string
	printed bool // the flag package has already printed it with the usage
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// stdio are the streams a command uses, so that tests can run commands in process.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// command is one subcommand of the CLI.
type command struct {
	name    string
	args    string // synopsis after the name
	summary string // one line for the command list
	help    string // paragraph for the command's --help
	run     func(ctx context.Context, std stdio, args []string) error
}

func commands() []command {
	return []command{
		{
			name:    "run",
			args:    "[--config FILE] [--dry-run]",
			summary: "run the bridge (the default command)",
			help: `Consume the notification stream, coalesce the pieces of each event and call the
Notifizz API once per event. With an empty nats.url it starts an embedded NATS
server. SIGINT or SIGTERM shut down gracefully within shutdownTimeout; a second
signal exits at once. Logs go to stderr; stdout carries only dry-run lines.`,
			run: runCommand,
		},
		{
			name:    "check",
			args:    "[--config FILE] [--dry-run]",
			summary: "validate a config and print it with secrets redacted",
			help: `Validate the config as run would, print the effective config as YAML on stdout
with every secret shown as [REDACTED], and exit 0; or list every problem on
stderr and exit 1. A secret left empty (run needs notifizz.sdkSecretKey unless
in a dry run, token needs notifizz.authSecretKey) is a warning on stderr naming
the variable to export, not a problem: the environment gives it to run. Without
--config the built-in defaults are printed.`,
			run: checkCommand,
		},
		{
			name:    "publish",
			args:    "[--config FILE] [--timeout D] [--msg-id ID] KIND KEY [JSON|-]",
			summary: "publish one message to the stream",
			help: `Publish one validated message of KIND for the event KEY, using the config's
NATS settings (the embedded server's listen address when nats.url is empty).
JSON is the body; "-" or no JSON reads it from stdin, except for commit, which
needs no body. Prints the stream and sequence.

KIND is one of track, workflow, commit, send (notifizz.api: v1), and identify,
detach, subscribe, unsubscribe (notifizz.api: v2, which also takes track and
commit; KEY then names the request, and the bridge makes the calls of one KEY
in order). A kind the config's profile does not handle is published with a
warning: that bridge would dead-letter it (unsupported).`,
			run: publishCommand,
		},
		{
			name:    "token",
			args:    "[--config FILE] USER_ID | [--config FILE] --subscribe SUBSCRIBER RESOURCE",
			summary: "print the widget token of a user, or a subscribe token",
			help: `Print the Notification Center widget token for USER_ID: the hex SHA-256 of
USER_ID followed by notifizz.authSecretKey, as the official SDKs compute it.

With --subscribe, print the token the Subscribe widget needs in secure mode (SDK
2.x generateSubscribeToken) for subscriber SUBSCRIBER and resource RESOURCE: the
hex HMAC-SHA256, keyed with notifizz.authSecretKey, of SUBSCRIBER followed by
RESOURCE.`,
			run: tokenCommand,
		},
		{name: "dlq", args: dlqArgs, summary: dlqSummary, help: dlqHelp, run: dlqCommand},
		{
			name:    "version",
			args:    "",
			summary: "print the version and build information",
			help:    `Print the module version, the VCS revision when the build recorded it, and the Go version.`,
			run:     versionCommand,
		},
		{
			name:    "help",
			args:    "[COMMAND]",
			summary: "explain a command",
			help:    `Print the list of commands, or the help of one command.`,
			run:     nil, // dispatch handles it, since it needs the command list
		},
	}
}

// cli runs the command line args and returns the process exit code.
func cli(ctx context.Context, args []string, std stdio) int {
	err := dispatch(ctx, args, std)
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		if !ue.printed {
			fmt.Fprintf(std.err, "notifizz-bridge: %v\nRun 'notifizz-bridge help' for usage.\n", ue)
		}
		return exitUsage
	default:
		fmt.Fprintf(std.err, "notifizz-bridge: %v\n", err)
		return exitError
	}
}

func dispatch(ctx context.Context, args []string, std stdio) error {
	cmds := commands()
	// run is the default: no arguments, or flags first, mean run.
	name := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	} else if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			printUsage(std.out, cmds)
			return nil
		case "-version", "--version":
			name, args = "version", args[1:]
		}
	}
	if name == "help" {
		return helpCommand(cmds, std, args)
	}
	for _, c := range cmds {
		if c.name == name {
			return c.run(ctx, std, args)
		}
	}
	return usagef("unknown command %q", name)
}

func printUsage(w io.Writer, cmds []command) {
	fmt.Fprint(w, `notifizz-bridge consumes notification messages from NATS JetStream, coalesces
the pieces of each event and calls the Notifizz API once per event.

Usage:
  notifizz-bridge [COMMAND] [FLAGS] [ARGS]

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range cmds {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
Flags come before arguments. "notifizz-bridge --config FILE" runs the bridge.
Run "notifizz-bridge COMMAND --help" for a command's flags.
`)
}

func helpCommand(cmds []command, std stdio, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		printUsage(std.out, cmds)
		return nil
	}
	if len(args) > 1 {
		return usagef("help takes at most one command")
	}
	for _, c := range cmds {
		if c.name == args[0] && c.run != nil {
			// Parsing --help prints the command's usage through its own flag set.
			err := c.run(context.Background(), std, []string{"--help"})
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	return usagef("unknown command %q", args[0])
}

// newFlagSet returns the flag set of cmd, whose --help explains the command and every flag.
func newFlagSet(name string) *flag.FlagSet {
	var cmd command
	for _, c := range commands() {
		if c.name == name {
			cmd = c
		}
	}
	fs := flag.NewFlagSet("notifizz-bridge "+name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: notifizz-bridge %s %s\n\n%s\n", cmd.name, cmd.args, cmd.help)
		var n int
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args into fs. The flag package prints its message and the usage itself;
// that text goes to stdout for --help, which asked for it, and to stderr for a mistake.
func parseFlags(fs *flag.FlagSet, std stdio, args []string) error {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	switch {
	case err == nil:
		return flagAfterArguments(fs)
	case errors.Is(err, flag.ErrHelp):
		_, _ = std.out.Write(buf.Bytes())
		return err
	default:
		_, _ = std.err.Write(buf.Bytes())
		return &usageError{msg: err.Error(), printed: true}
	}
}

// flagAfterArguments reports a flag of fs written after the first argument, which the flag
// package would otherwise take as one more argument (and the command would then complain about
// the number of its arguments, or use "--config" as a key). Only the command's own flags count:
// an argument such as a key may begin with "-".
func flagAfterArguments(fs *flag.FlagSet) error {
	for _, a := range fs.Args() {
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if fs.Lookup(name) != nil || name == "h" || name == "help" {
			cmd := strings.TrimPrefix(fs.Name(), "notifizz-bridge ")
			return usagef("%s comes after the arguments: flags go before arguments, e.g. notifizz-bridge %s %s ... "+
				"(see 'notifizz-bridge help %s')", a, cmd, a, cmd)
		}
	}
	return nil
}

// configFlag declares the --config flag every command but version shares.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "read the YAML config from `FILE` (${VAR} and ${VAR:-default} are expanded from the environment); without it the built-in defaults apply")
}
