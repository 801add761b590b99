package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/notifizz-bridge/notifizz-bridge/internal/config"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

func runCommand(ctx context.Context, std stdio, args []string) error {
	fs := newFlagSet("run")
	configPath := configFlag(fs)
	dryRun := fs.Bool("dry-run", false, "print each Notifizz API request as one JSON line on stdout, secrets redacted, instead of sending it (same as notifizz.dryRun: true)")
	if err := parseFlags(fs, std, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("run takes no arguments, got %q (flags come before arguments)", fs.Arg(0))
	}
	cfg, err := config.Load(*configPath, config.Options{DryRun: *dryRun, NeedSDKKey: true, Serve: true})
	if err != nil {
		return err
	}
	stopProfiles, err := startProfiles()
	if err != nil {
		return err
	}
	err = runDaemon(ctx, cfg, std.out, std.err)
	return errors.Join(err, stopProfiles())
}

func checkCommand(_ context.Context, std stdio, args []string) error {
	fs := newFlagSet("check")
	configPath := configFlag(fs)
	dryRun := fs.Bool("dry-run", false, "check as run --dry-run would: notifizz.sdkSecretKey may then be empty")
	if err := parseFlags(fs, std, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("check takes no arguments, got %q (flags come before arguments)", fs.Arg(0))
	}
	// check validates what run needs, but a secret the environment will give run is not the
	// file's fault: an empty one is a warning, with the variable to export, not a failure.
	var warnings config.Problems
	cfg, err := config.Load(*configPath, config.Options{DryRun: *dryRun, Warnings: &warnings, Serve: true})
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(std.err, "notifizz-bridge: warning: %v\n", w)
	}
	out, err := cfg.YAML()
	if err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	_, err = std.out.Write(out)
	return err
}

func tokenCommand(_ context.Context, std stdio, args []string) error {
	fs := newFlagSet("token")
	configPath := configFlag(fs)
	subscribe := fs.Bool("subscribe", false, "print the v2 Subscribe widget token of SUBSCRIBER for RESOURCE instead")
	if err := parseFlags(fs, std, args); err != nil {
		return err
	}
	switch {
	case *subscribe && fs.NArg() != 2:
		return usagef("token --subscribe takes two arguments, SUBSCRIBER RESOURCE, got %s", plural(fs.NArg(), "argument"))
	case *subscribe && (fs.Arg(0) == "" || fs.Arg(1) == ""):
		return usagef("token --subscribe: SUBSCRIBER and RESOURCE must not be empty")
	case !*subscribe && fs.NArg() == 2:
		return usagef("token takes one USER_ID, got 2 arguments; for a subscribe token, give --subscribe before SUBSCRIBER RESOURCE")
	case !*subscribe && fs.NArg() != 1:
		return usagef("token takes one USER_ID, got %s", plural(fs.NArg(), "argument"))
	case !*subscribe && fs.Arg(0) == "":
		return usagef("token: USER_ID must not be empty")
	}
	var warnings config.Problems
	cfg, err := config.Load(*configPath, config.Options{Warnings: &warnings})
	if err != nil {
		return err
	}
	if cfg.Notifizz.AuthSecretKey == "" {
		return noAuthSecretKey(*configPath, warnings)
	}
	c := notifizz.NewClient(cfg.Notifizz.AuthSecretKey, "")
	token := c.GenerateHashedToken(fs.Arg(0))
	if *subscribe {
		token = c.GenerateSubscribeToken(fs.Arg(0), fs.Arg(1))
	}
	_, err = fmt.Fprintln(std.out, token)
	return err
}

// noAuthSecretKey is token's error for an empty notifizz.authSecretKey. A file that reads the
// key from the environment already says where it comes from: then the error is check's warning,
// which names the variable to export, rather than advice to write what the file already has.
func noAuthSecretKey(path string, warnings config.Problems) error {
	if path != "" {
		for _, w := range warnings {
			if w.Key == "notifizz.authSecretKey" {
				return fmt.Errorf("%s: %w", path, w)
			}
		}
	}
	return errors.New("notifizz.authSecretKey is empty: set it in the file given with --config (e.g. authSecretKey: ${NOTIFIZZ_AUTH_SECRET_KEY})")
}

func versionCommand(_ context.Context, std stdio, args []string) error {
	fs := newFlagSet("version")
	if err := parseFlags(fs, std, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("version takes no arguments")
	}
	_, err := fmt.Fprintln(std.out, buildVersion())
	return err
}

func publishCommand(ctx context.Context, std stdio, args []string) error {
	fs := newFlagSet("publish")
	configPath := configFlag(fs)
	timeout := fs.Duration("timeout", 10*time.Second, "give up connecting and publishing after `D`")
	var msgID *string
	fs.Func("msg-id", "set Nats-Msg-Id to `ID` instead of the default, which is derived from KIND, KEY and the body "+
		"so that the same message published twice within stream.duplicateWindow is stored once; an empty ID turns de-duplication off",
		func(s string) error { msgID = &s; return nil })
	if err := parseFlags(fs, std, args); err != nil {
		return err
	}
	if fs.NArg() < 2 || fs.NArg() > 3 {
		return usagef("publish takes KIND KEY [JSON|-], got %d arguments", fs.NArg())
	}
	if *timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	msg, err := parsePublishArgs(fs.Args())
	if err != nil {
		return err
	}
	if msg.fromStdin {
		if stdinIsTerminal(std.in) {
			// Otherwise the command looks like it hangs.
			fmt.Fprintf(std.err, "reading the %s body from standard input; end it with Ctrl-D (or give the JSON as an argument)\n", msg.kind)
		}
		if msg.body, err = readBody(std.in); err != nil {
			return err
		}
	}
	// Validate before connecting, so that a bad body is reported the same way whether or
	// not the server is up. The producer validates again; that costs nothing worth saving.
	if err := schema.Validate(msg.kind, msg.body); err != nil {
		return fmt.Errorf("invalid %s body: %w", msg.kind, err)
	}
	cfg, err := config.Load(*configPath, config.Options{})
	if err != nil {
		return err
	}
	if why := profileMismatch(msg.kind, cfg.Bridge.API); why != "" {
		// A warning, not a refusal: the bridge that consumes may run with another config.
		fmt.Fprintf(std.err, "notifizz-bridge: warning: %s\n", why)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if msgID != nil {
		msg.opts = append(msg.opts, schema.WithMsgID(*msgID))
	}
	ack, err := publishOne(ctx, cfg, msg)
	if err != nil {
		return err
	}
	dup := ""
	if ack.Duplicate {
		dup = " duplicate=true"
	}
	_, err = fmt.Fprintf(std.out, "stream=%s seq=%d%s\n", ack.Stream, ack.Sequence, dup)
	return err
}

// maxStdinBody is larger than any valid body, so that an oversized one reaches validation and
// gets its proper message rather than being cut.
const maxStdinBody = 8 << 20

// stdinIsTerminal reports whether r is a terminal, where nobody may know that the command
// waits for input. A variable, so that tests can stand in for a terminal.
var stdinIsTerminal = isTerminalFile

func isTerminalFile(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func readBody(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxStdinBody))
	if err != nil {
		return nil, fmt.Errorf("read body from stdin: %w", err)
	}
	return body, nil
}
