package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/internal/config"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// The dlq command's line in the command table (cli.go).
const (
	dlqArgs    = "list|show|replay [--config FILE] [--reason R] [--key K] [--dry-run] [SEQ]"
	dlqSummary = "list, show or replay dead letters"
	dlqHelp    = `Act on the dead-letter stream (deadLetter.stream, NOTIFIZZ_DLQ by default)
with the config's NATS settings (the embedded server's listen address when
nats.url is empty).

  dlq list [--config FILE] [--reason R] [--key K]
      Print a table of dead letters: its sequence in the dead-letter stream (for
      dlq show), when it was dead-lettered, its reason, its original subject, its
      event key and the error, shortened.

  dlq show [--config FILE] SEQ
      Print one dead letter whole: its subject, every header, the full error and
      the body (secrets redacted).

  dlq replay [--config FILE] [--reason R] [--key K] [--dry-run]
      Republish each dead letter's original body and headers to its original
      subject, then delete it from the dead-letter stream, only once the stream
      has acknowledged the publish. Fix the cause first (the API, the producer,
      notifizz.api for unsupported ones, the catalog for schema_mismatch): a
      dead letter replayed unchanged fails the same way. The replay carries the
      idempotency key the bridge used (Notifizz-Idempotency-Key), so a replayed
      track or send reaches the API under its first key.

A dead letter whose body the bridge redacted (reason secret_in_message, or any
reason when the body named a secret key) holds a redacted copy, not what was
sent, and one whose body was cut to fit the server's max payload
(Notifizz-Dlq-Truncated) holds only its start; one refused as invalid_json or
invalid_message would be refused again as it is. Replay skips all of these unless
--reason names their reason, and says what it skipped.

Run "notifizz-bridge dlq list --help", "dlq show --help" or "dlq replay --help"
for the flags.`
)

// reasonList is every dead-letter reason, for the --reason flag's help and error.
func reasonList() string {
	var b strings.Builder
	for i, r := range deadletter.Reasons() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(r))
	}
	return b.String()
}

// dlqTimeout bounds one dlq command's connection and each of its requests.
const dlqTimeout = 10 * time.Second

// maxErrorColumn bounds the error column of dlq list, so that a row stays one line.
const maxErrorColumn = 100

func dlqCommand(ctx context.Context, std stdio, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := newFlagSet("dlq")
		if err := parseFlags(fs, std, args); err != nil {
			return err
		}
		return usagef("dlq needs a subcommand: list, show or replay")
	}
	switch args[0] {
	case "list":
		return dlqListCommand(ctx, std, args[1:])
	case "show":
		return dlqShowCommand(ctx, std, args[1:])
	case "replay":
		return dlqReplayCommand(ctx, std, args[1:])
	default:
		return usagef("unknown dlq subcommand %q: list, show or replay", args[0])
	}
}

// dlqFlags are the flags both subcommands share.
type dlqFlags struct {
	config, reason, key *string
	dryRun              *bool
}

func parseDLQFlags(sub string, std stdio, args []string) (dlqFlags, error) {
	synopsis, help := "[--config FILE] [--reason R] [--key K]", `Print a table of the dead letters: SEQ (its sequence in the dead-letter stream, which
dlq show takes), TIME (when it was dead-lettered, UTC), REASON, SUBJECT (the original
subject), KEY (the event key) and ERROR (shortened; dlq show prints it whole).`
	if sub == "replay" {
		synopsis, help = synopsis+" [--dry-run]", `Republish each dead letter's original body and headers (without the dead-letter
headers, but with the idempotency key the bridge used) to its original subject,
then delete it from the dead-letter stream once the publish is acknowledged.
Skipped, and counted on stderr, unless --reason names their reason: dead letters
whose body was redacted (reason secret_in_message, or any reason when the body
named a secret key) or cut to fit the server's max payload, and those refused as
invalid_json or invalid_message, which would be refused again as they are.`
	}
	fs := flag.NewFlagSet("notifizz-bridge dlq "+sub, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: notifizz-bridge dlq %s %s\n\n%s\n\nFlags:\n", sub, synopsis, help)
		fs.PrintDefaults()
	}
	f := dlqFlags{
		config: configFlag(fs),
		reason: fs.String("reason", "", "only dead letters with reason `R` ("+reasonList()+")"),
		key:    fs.String("key", "", "only dead letters of the event key `K`"),
	}
	if sub == "replay" {
		f.dryRun = fs.Bool("dry-run", false, "print what would be replayed, and change nothing")
	}
	if err := parseFlags(fs, std, args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, usagef("dlq %s takes no arguments, got %q (flags come before arguments)", sub, fs.Arg(0))
	}
	if *f.reason != "" && !deadletter.Known(deadletter.Reason(*f.reason)) {
		return f, usagef("--reason %q is not a dead-letter reason; one of %s", *f.reason, reasonList())
	}
	if *f.key != "" {
		if err := schema.ValidateKey(*f.key); err != nil {
			return f, usagef("--key %q: %s", *f.key, problemText(err))
		}
	}
	return f, nil
}

// openDLQ parses a dlq subcommand's flags, loads the config and connects to NATS; the caller
// closes the connection.
func openDLQ(sub string, std stdio, args []string) (dlqFlags, config.Config, *nats.Conn, jetstream.JetStream, error) {
	f, err := parseDLQFlags(sub, std, args)
	if err != nil {
		return f, config.Config{}, nil, nil, err
	}
	cfg, nc, js, err := loadAndConnect(*f.config)
	return f, cfg, nc, js, err
}

// loadAndConnect loads the config at path and connects as a dlq command does.
func loadAndConnect(path string) (config.Config, *nats.Conn, jetstream.JetStream, error) {
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		return cfg, nil, nil, err
	}
	nc, js, err := connectTool(cfg, nats.Name("notifizz-bridge dlq"), nats.Timeout(dlqTimeout))
	return cfg, nc, js, err
}

func dlqListCommand(ctx context.Context, std stdio, args []string) error {
	f, cfg, nc, js, err := openDLQ("list", std, args)
	if err != nil {
		return err
	}
	defer nc.Close()
	tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tREASON\tSUBJECT\tKEY\tERROR")
	s, err := dlqStream(ctx, js, cfg)
	if err != nil {
		return err
	}
	n := 0
	err = eachDeadLetter(ctx, s, cfg, f, func(dl deadLetter) error {
		n++
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", dl.seq, dl.time.UTC().Format(time.RFC3339), orDash(string(dl.Reason)),
			orDash(dl.target), orDash(dl.key), orDash(shorten(dl.Error, maxErrorColumn)))
		return nil
	})
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(std.out, "%s\n", plural(n, "dead letter"))
	return err
}

func dlqReplayCommand(ctx context.Context, std stdio, args []string) error {
	f, cfg, nc, js, err := openDLQ("replay", std, args)
	if err != nil {
		return err
	}
	defer nc.Close()
	stream, err := dlqStream(ctx, js, cfg)
	if err != nil {
		return err
	}
	var replayed int
	refused, cut, invalid := map[deadletter.Reason]int{}, map[deadletter.Reason]int{}, map[deadletter.Reason]int{}
	var failures []error
	err = eachDeadLetter(ctx, stream, cfg, f, func(dl deadLetter) error {
		if *f.reason == "" && dl.Redacted() {
			refused[dl.Reason]++
			return nil
		}
		if *f.reason == "" && dl.Truncated {
			cut[dl.Reason]++
			return nil
		}
		if *f.reason == "" && deadletter.FailsUnchanged(dl.Reason) {
			invalid[dl.Reason]++
			return nil
		}
		if dl.target == "" {
			failures = append(failures, fmt.Errorf("dead letter %d: no %s header, so no subject to replay to", dl.seq, deadletter.HeaderOriginalSubject))
			return nil
		}
		if *f.dryRun {
			replayed++
			_, err := fmt.Fprintf(std.out, "would replay dead letter %d (%s) to %s\n", dl.seq, dl.Reason, dl.target)
			return err
		}
		ack, err := replayOne(ctx, js, cfg, dl)
		if err != nil {
			failures = append(failures, fmt.Errorf("dead letter %d (%s, %s): %w", dl.seq, dl.Reason, dl.target, err))
			return nil
		}
		// Only now, with the publish acknowledged, may the dead letter go: were the delete
		// lost, a second replay would be de-duplicated by its Nats-Msg-Id.
		dctx, cancel := context.WithTimeout(ctx, dlqTimeout)
		defer cancel()
		if err := stream.DeleteMsg(dctx, dl.seq); err != nil {
			failures = append(failures, fmt.Errorf("dead letter %d was replayed (%s seq %d) but not deleted: %w", dl.seq, ack.Stream, ack.Sequence, err))
			return nil
		}
		replayed++
		_, err = fmt.Fprintf(std.out, "replayed dead letter %d (%s) to %s: %s seq %d\n", dl.seq, dl.Reason, dl.target, ack.Stream, ack.Sequence)
		return err
	})
	if err != nil {
		return err
	}
	verb := "replayed"
	if *f.dryRun {
		verb = "would replay"
	}
	fmt.Fprintf(std.out, "%s %s\n", verb, plural(replayed, "dead letter"))
	for _, reason := range slices.Sorted(maps.Keys(refused)) {
		fmt.Fprintf(std.err, "skipped %s with reason %s: their body was redacted because it named a secret key, "+
			"so replaying one would publish [REDACTED] in place of what was sent. Have the producer publish it again "+
			"without the secret, or pass --reason %s to replay the redacted copies anyway.\n",
			plural(refused[reason], "dead letter"), reason, reason)
	}
	for _, reason := range slices.Sorted(maps.Keys(cut)) {
		fmt.Fprintf(std.err, "skipped %s with reason %s: their body was cut to fit the server's max payload (%s), "+
			"so replaying one would publish only its start. Have the producer publish it again, "+
			"or pass --reason %s to replay the cut copies anyway.\n",
			plural(cut[reason], "dead letter"), reason, deadletter.HeaderTruncated, reason)
	}
	for _, reason := range slices.Sorted(maps.Keys(invalid)) {
		fmt.Fprintf(std.err, "skipped %s with reason %s: the message itself is at fault, so replaying it unchanged "+
			"would only dead-letter it again. Have the producer publish a corrected message, "+
			"or pass --reason %s to replay them anyway.\n",
			plural(invalid[reason], "dead letter"), reason, reason)
	}
	return errors.Join(failures...)
}

// dlqShowCommand prints one dead letter whole: dlq list shortens the error, and shows neither
// the headers nor the body.
func dlqShowCommand(ctx context.Context, std stdio, args []string) error {
	fs := flag.NewFlagSet("notifizz-bridge dlq show", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: notifizz-bridge dlq show [--config FILE] SEQ\n\n%s\n\nFlags:\n",
			`Print the dead letter stored at sequence SEQ of the dead-letter stream (the first
column of dlq list): its subject, when it
was stored, every header, the full error and the body. Secrets are redacted: the
bridge stored a redacted copy of any body that named a secret key, and values of
the configured secrets are scrubbed wherever they appear.`)
		fs.PrintDefaults()
	}
	configPath := configFlag(fs)
	if err := parseFlags(fs, std, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("dlq show takes one SEQ, the dead letter's sequence in the dead-letter stream")
	}
	seq, err := strconv.ParseUint(fs.Arg(0), 10, 64)
	if err != nil || seq == 0 {
		return usagef("dlq show: SEQ must be a positive integer, not %q", fs.Arg(0))
	}
	cfg, nc, js, err := loadAndConnect(*configPath)
	if err != nil {
		return err
	}
	defer nc.Close()
	stream, err := dlqStream(ctx, js, cfg)
	if err != nil {
		return err
	}
	gctx, cancel := context.WithTimeout(ctx, dlqTimeout)
	defer cancel()
	raw, err := stream.GetMsg(gctx, seq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("dead-letter stream %s has no message %d (dlq list shows what it holds)", cfg.Bridge.DeadLetter.Stream, seq)
		}
		return fmt.Errorf("dead-letter stream %s: message %d: %w", cfg.Bridge.DeadLetter.Stream, seq, err)
	}
	secrets := []string{cfg.Notifizz.SDKSecretKey, cfg.Notifizz.AuthSecretKey, cfg.NATS.Token, cfg.NATS.Password}
	scrub := func(s string) string { return notifizz.Redact(s, schema.Redacted, secrets...) }
	l := deadletter.Parse(raw.Subject, raw.Header, raw.Data)
	var b strings.Builder
	fmt.Fprintf(&b, "dead letter %d of %s, stored %s\n", raw.Sequence, cfg.Bridge.DeadLetter.Stream, raw.Time.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(&b, "subject: %s\n", scrub(raw.Subject))
	fmt.Fprintf(&b, "reason: %s\n", orDash(string(l.Reason)))
	fmt.Fprintf(&b, "error: %s\n", orDash(scrub(l.Error)))
	b.WriteString("headers:\n")
	for _, k := range slices.Sorted(maps.Keys(raw.Header)) {
		for _, v := range raw.Header[k] {
			fmt.Fprintf(&b, "  %s: %s\n", k, scrub(v))
		}
	}
	// The bridge stored a redacted copy of a body that named a secret key; an older bridge's
	// letter may not be, so it is redacted here too.
	body := raw.Data
	if deadletter.MayHoldSecret(body) {
		body = schema.Redact(body)
	}
	fmt.Fprintf(&b, "body (%s):\n%s\n", plural(len(raw.Data), "byte"), scrub(string(body)))
	_, err = io.WriteString(std.out, b.String())
	return err
}

// deadLetter is one message of the dead-letter stream, as the dlq commands read it.
type deadLetter struct {
	deadletter.Letter
	seq    uint64
	time   time.Time
	target string // where a replay goes: the original subject, without a partition
	key    string // the event key, parsed from the original subject; empty when it has none
}

// dlqStream binds the dead-letter stream.
func dlqStream(ctx context.Context, js jetstream.JetStream, cfg config.Config) (jetstream.Stream, error) {
	name := cfg.Bridge.DeadLetter.Stream
	sctx, cancel := context.WithTimeout(ctx, dlqTimeout)
	defer cancel()
	s, err := js.Stream(sctx, name)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", name, err)
	}
	return s, nil
}

// eachDeadLetter calls fn for each dead letter of s (bound by dlqStream) that f's --key and
// --reason select, in stream order, up to the last one stored when s was bound (so that a replay
// that fails again is not replayed twice in one run). The key is filtered by the server.
func eachDeadLetter(ctx context.Context, s jetstream.Stream, cfg config.Config, f dlqFlags, fn func(deadLetter) error) error {
	name, key := cfg.Bridge.DeadLetter.Stream, *f.key
	sctx, cancel := context.WithTimeout(ctx, dlqTimeout)
	defer cancel()
	state := s.CachedInfo().State
	if state.Msgs == 0 {
		return nil
	}
	// A short inactivity threshold: the server removes the reader soon after the command.
	occ := jetstream.OrderedConsumerConfig{InactiveThreshold: 3 * dlqTimeout}
	if key != "" {
		occ.FilterSubjects = []string{deadletter.KeyFilter(cfg.Bridge.DeadLetter.SubjectPrefix, key)}
	}
	cons, err := s.OrderedConsumer(sctx, occ)
	if err != nil {
		return fmt.Errorf("read dead-letter stream %s: %w", name, err)
	}
	info, err := cons.Info(sctx)
	if err != nil {
		return fmt.Errorf("read dead-letter stream %s: %w", name, err)
	}
	pending := info.NumPending
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, 256)), jetstream.FetchMaxWait(dlqTimeout))
		if err != nil {
			return fmt.Errorf("read dead-letter stream %s: %w", name, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("read dead-letter stream %s: %w", name, err)
			}
			pending = meta.NumPending
			if meta.Sequence.Stream > state.LastSeq {
				return nil
			}
			dl := newDeadLetter(m, meta, cfg)
			if *f.reason != "" && string(dl.Reason) != *f.reason {
				continue
			}
			if err := fn(dl); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("read dead-letter stream %s: %w", name, err)
		}
		if got == 0 {
			return fmt.Errorf("read dead-letter stream %s: no message within %s", name, dlqTimeout)
		}
	}
	return nil
}

func newDeadLetter(m jetstream.Msg, meta *jetstream.MsgMetadata, cfg config.Config) deadLetter {
	l := deadletter.Parse(m.Subject(), m.Headers(), m.Data())
	dl := deadLetter{Letter: l, seq: meta.Sequence.Stream, time: meta.Timestamp, target: l.OriginalSubject}
	if cfg.Bridge.Partitions.Count > 0 {
		// A partitioned stream stores subjects with the partition in front; the replay goes to
		// the subject producers publish to, which the stream's transform partitions again.
		if _, published, ok := schema.SplitPartition(dl.target); ok {
			dl.target = published
		}
	}
	if _, key, err := schema.ParseSubject(cfg.Bridge.Stream.SubjectPrefix, dl.target); err == nil {
		dl.key = key
	}
	return dl
}

// replayOne publishes the original message again and waits for the stream's ack. Its
// Nats-Msg-Id names the dead letter, so replaying it twice within the duplicate window (a
// delete that failed, a replay run twice) stores it once.
func replayOne(ctx context.Context, js jetstream.JetStream, cfg config.Config, dl deadLetter) (*jetstream.PubAck, error) {
	m := nats.NewMsg(dl.target)
	m.Header = deadletter.ReplayHeaders(dl.Header)
	m.Data = dl.Data
	ctx, cancel := context.WithTimeout(ctx, dlqTimeout)
	defer cancel()
	return js.PublishMsg(ctx, m,
		jetstream.WithMsgID(deadletter.ReplayMsgID(cfg.Bridge.DeadLetter.Stream, dl.seq)),
		jetstream.WithExpectStream(cfg.Bridge.Stream.Name))
}

// connectTool connects a short-lived command with the config's NATS settings (the external
// server, or the embedded one's listen address) and extra, which names the connection and sets
// its connect timeout.
func connectTool(cfg config.Config, extra ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	url, target := cfg.NATS.URL, config.RedactURL(cfg.NATS.URL)
	if url == "" {
		url = embeddedClientURL(cfg.NATS.Embedded.Listen, cfg.NATS.TLS.CertFile != "")
		target = "embedded " + cfg.NATS.Embedded.Listen
	}
	opts, err := clientOptions(cfg.NATS)
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		unreachable := errors.Is(err, nats.ErrNoServers) // rather than a refused credential or certificate
		err = connectError(target, cfg.NATS.URL == "", err)
		if cfg.NATS.URL == "" && unreachable {
			err = fmt.Errorf("%w (is notifizz-bridge running with this config?)", err)
		}
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// plural is "1 dead letter", "2 dead letters".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shorten cuts s to at most n runes, marking the cut.
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
