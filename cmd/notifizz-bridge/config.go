package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/notifizz-bridge/notifizz-bridge/bridge"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// Config is the daemon's whole configuration: the bridge's part plus what only the daemon uses
// (connections, HTTP endpoints, logging). Its YAML keys are listed in one place, Config.fields,
// because they are a contract users script against and must not follow Go field names.
type Config struct {
	NATS     NATSConfig
	Notifizz NotifizzConfig
	HTTP     HTTPConfig
	Log      LogConfig
	// Bridge holds stream, consumer, partitions, coalesce, retry, deadLetter,
	// notifizz.maxInFlight, notifizz.rateLimit and shutdownTimeout.
	Bridge bridge.Config
}

// NATSConfig says which NATS server to use: an external one when URL is set, otherwise one
// embedded in the process.
type NATSConfig struct {
	URL          string // comma-separated server URLs; empty starts the embedded server
	CredsFile    string
	NkeySeedFile string
	Token        string
	User         string
	Password     string
	TLS          TLSConfig
	Embedded     EmbeddedConfig
}

// TLSConfig names the files for TLS to an external server.
type TLSConfig struct {
	CAFile   string
	CertFile string
	KeyFile  string
}

// EmbeddedConfig configures the in-process JetStream server used when nats.url is empty.
type EmbeddedConfig struct {
	Listen   string
	StoreDir string
}

// NotifizzConfig configures the Notifizz API client.
type NotifizzConfig struct {
	BaseURL       string
	SDKSecretKey  string
	AuthSecretKey string
	Timeout       time.Duration // per HTTP attempt
	DryRun        bool
}

// HTTPConfig configures the health and metrics endpoints.
type HTTPConfig struct {
	Listen string
}

// LogConfig configures the logger.
type LogConfig struct {
	Level  string
	Format string
}

// Defaults of the daemon's own keys. Loopback listeners keep a fresh install private; a
// container overrides them (see config.example.yaml and the Dockerfile).
const (
	defaultEmbeddedListen = "127.0.0.1:4222"
	defaultStoreDir       = "./data/nats"
	defaultHTTPListen     = "127.0.0.1:8080"
	defaultLogLevel       = "info"
	// Text reads well in a terminal, where a fresh install is first tried; deployments that
	// ship logs to a collector set log.format to json.
	defaultLogFormat = "text"
)

// DefaultConfig returns the documented defaults; secrets have none.
func DefaultConfig() Config {
	c := Config{
		NATS: NATSConfig{
			Embedded: EmbeddedConfig{Listen: defaultEmbeddedListen, StoreDir: defaultStoreDir},
		},
		Notifizz: NotifizzConfig{
			BaseURL: notifizz.DefaultBaseURL,
			Timeout: notifizz.DefaultTimeout,
		},
		HTTP:   HTTPConfig{Listen: defaultHTTPListen},
		Log:    LogConfig{Level: defaultLogLevel, Format: defaultLogFormat},
		Bridge: bridge.DefaultConfig(),
	}
	c.Bridge.Partitions.Member = defaultMember()
	return c
}

// defaultMember is this replica's name in a consumer group when partitions.member is not set:
// the host's name, which tells replicas apart in most deployments (pod names, container ids).
// Member names become consumer names, which allow no '.', so only the first label of a
// fully qualified name is kept, and characters a name cannot hold become '-'.
func defaultMember() string {
	host, err := os.Hostname()
	if err != nil {
		return "" // Validate asks for partitions.member when partitions are used
	}
	host, _, _ = strings.Cut(host, ".")
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, host)
}

// field ties one YAML key to the Go value it sets.
type field struct {
	key    string // dotted path, e.g. "nats.tls.caFile"
	ptr    any    // *string, *bool, *int, *float64, *time.Duration or *[]string (comma-separated)
	secret bool   // printed as [REDACTED]
}

// fields lists every key of the config file, in the order `check` prints them. The list is the
// contract: a key that is not here is an error in a file.
func (c *Config) fields() []field {
	b := &c.Bridge
	return []field{
		{key: "nats.url", ptr: &c.NATS.URL},
		{key: "nats.credsFile", ptr: &c.NATS.CredsFile},
		{key: "nats.nkeySeedFile", ptr: &c.NATS.NkeySeedFile},
		{key: "nats.token", ptr: &c.NATS.Token, secret: true},
		{key: "nats.user", ptr: &c.NATS.User},
		{key: "nats.password", ptr: &c.NATS.Password, secret: true},
		{key: "nats.tls.caFile", ptr: &c.NATS.TLS.CAFile},
		{key: "nats.tls.certFile", ptr: &c.NATS.TLS.CertFile},
		{key: "nats.tls.keyFile", ptr: &c.NATS.TLS.KeyFile},
		{key: "nats.embedded.listen", ptr: &c.NATS.Embedded.Listen},
		{key: "nats.embedded.storeDir", ptr: &c.NATS.Embedded.StoreDir},

		{key: "stream.name", ptr: &b.Stream.Name},
		{key: "stream.subjectPrefix", ptr: &b.Stream.SubjectPrefix},
		{key: "stream.create", ptr: &b.Stream.Create},
		{key: "stream.storage", ptr: &b.Stream.Storage},
		{key: "stream.replicas", ptr: &b.Stream.Replicas},
		{key: "stream.maxAge", ptr: &b.Stream.MaxAge},
		{key: "stream.duplicateWindow", ptr: &b.Stream.DuplicateWindow},

		{key: "consumer.durable", ptr: &b.Consumer.Durable},
		{key: "consumer.ackWait", ptr: &b.Consumer.AckWait},
		{key: "consumer.maxDeliver", ptr: &b.Consumer.MaxDeliver},
		{key: "consumer.maxAckPending", ptr: &b.Consumer.MaxAckPending},

		{key: "partitions.count", ptr: &b.Partitions.Count},
		{key: "partitions.mode", ptr: &b.Partitions.Mode},
		{key: "partitions.group", ptr: &b.Partitions.Group},
		{key: "partitions.member", ptr: &b.Partitions.Member},
		{key: "partitions.members", ptr: &b.Partitions.Members},

		{key: "coalesce.delay", ptr: &b.Coalesce.Delay},
		{key: "coalesce.mode", ptr: &b.Coalesce.Mode},
		{key: "coalesce.maxDelay", ptr: &b.Coalesce.MaxDelay},
		{key: "coalesce.maxWorkflows", ptr: &b.Coalesce.MaxWorkflows},
		{key: "coalesce.maxBytes", ptr: &b.Coalesce.MaxBytes},
		{key: "coalesce.orphanTimeout", ptr: &b.Coalesce.OrphanTimeout},

		{key: "notifizz.baseUrl", ptr: &c.Notifizz.BaseURL},
		{key: "notifizz.sdkSecretKey", ptr: &c.Notifizz.SDKSecretKey, secret: true},
		{key: "notifizz.authSecretKey", ptr: &c.Notifizz.AuthSecretKey, secret: true},
		{key: "notifizz.timeout", ptr: &c.Notifizz.Timeout},
		{key: "notifizz.maxInFlight", ptr: &b.MaxInFlight},
		{key: "notifizz.rateLimit", ptr: &b.RateLimit},
		{key: "notifizz.dryRun", ptr: &c.Notifizz.DryRun},

		{key: "retry.attempts", ptr: &b.Retry.Attempts},
		{key: "retry.initialBackoff", ptr: &b.Retry.InitialBackoff},
		{key: "retry.maxBackoff", ptr: &b.Retry.MaxBackoff},
		{key: "retry.nakInitial", ptr: &b.Retry.NakInitial},
		{key: "retry.nakMax", ptr: &b.Retry.NakMax},

		{key: "deadLetter.stream", ptr: &b.DeadLetter.Stream},
		{key: "deadLetter.subjectPrefix", ptr: &b.DeadLetter.SubjectPrefix},

		{key: "http.listen", ptr: &c.HTTP.Listen},

		{key: "log.level", ptr: &c.Log.Level},
		{key: "log.format", ptr: &c.Log.Format},

		{key: "shutdownTimeout", ptr: &b.ShutdownTimeout},
	}
}

// ConfigError lists every problem found in a config file at once.
type ConfigError struct {
	File     string // empty when there was no file
	Problems []error
}

func (e *ConfigError) Error() string {
	var sb strings.Builder
	if e.File != "" {
		sb.WriteString(e.File)
		sb.WriteString(": ")
	}
	if len(e.Problems) == 1 {
		sb.WriteString("invalid configuration: ")
		sb.WriteString(e.Problems[0].Error())
		return sb.String()
	}
	fmt.Fprintf(&sb, "invalid configuration, %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		sb.WriteString("\n  ")
		sb.WriteString(p.Error())
	}
	return sb.String()
}

// Unwrap gives errors.Is and errors.As access to each problem.
func (e *ConfigError) Unwrap() []error { return e.Problems }

// loadOptions adapt loading to the command that loads.
type loadOptions struct {
	dryRun     bool // --dry-run was given: a dry run whatever notifizz.dryRun says
	needSDKKey bool // the command calls the API, so it needs notifizz.sdkSecretKey unless in a dry run
}

// errNoSDKKey is why run refuses to start without the key: every API call would be rejected,
// and each rejection would dead-letter an event.
var errNoSDKKey = errors.New("notifizz.sdkSecretKey: is empty, and run needs it to call the Notifizz API: " +
	"set it (e.g. sdkSecretKey: ${NOTIFIZZ_SDK_SECRET_KEY}) or run with --dry-run to print the calls instead")

// LoadConfig reads the file at path (none when path is empty, which gives the defaults),
// expands environment variables, decodes it strictly and validates the result. Every problem
// is reported together in a *ConfigError, each with its key path and, when the key is in the
// file, its line.
func LoadConfig(path string, opts loadOptions) (Config, error) {
	cfg := DefaultConfig()
	var (
		lines    map[string]int
		problems []error
	)
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		lines, problems = cfg.decode(data, os.LookupEnv)
	}
	if opts.dryRun {
		cfg.Notifizz.DryRun = true
	}
	if err := cfg.Validate(); err != nil {
		for _, p := range flatten(err) {
			problems = append(problems, withLine(p, lines))
		}
	}
	if opts.needSDKKey && !cfg.Notifizz.DryRun && cfg.Notifizz.SDKSecretKey == "" {
		problems = append(problems, withLine(errNoSDKKey, lines))
	}
	if len(problems) > 0 {
		// In file order, so that the list reads like the file; problems of keys that are
		// not in the file (defaults) come last.
		slices.SortStableFunc(problems, func(a, b error) int { return lineOf(a) - lineOf(b) })
		return cfg, &ConfigError{File: path, Problems: problems}
	}
	return cfg, nil
}

// lineOf returns the line a problem message starts with, or a number past any file's end.
func lineOf(err error) int {
	var n int
	if _, scanErr := fmt.Sscanf(err.Error(), "line %d:", &n); scanErr != nil {
		return math.MaxInt32
	}
	return n
}

// decode applies the YAML document in data over c. It returns the line of every key it set,
// for later messages, and every problem it met; keys with problems keep their defaults.
func (c *Config) decode(data []byte, lookup func(string) (string, bool)) (map[string]int, []error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file keeps every default
		}
		return nil, []error{fmt.Errorf("parse YAML: %w", trimYAMLError(err))}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, []error{errors.New("parse YAML: the file must hold exactly one YAML document")}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	d := decoder{
		leaves:   make(map[string]field),
		sections: make(map[string]bool),
		lines:    make(map[string]int),
		lookup:   lookup,
	}
	for _, f := range c.fields() {
		d.leaves[f.key] = f
		for i := range f.key {
			if f.key[i] == '.' {
				d.sections[f.key[:i]] = true
			}
		}
	}
	if isNull(root) {
		return nil, nil
	}
	d.mapping("", root)
	return d.lines, d.problems
}

// decoder walks the YAML tree against the key list.
type decoder struct {
	leaves   map[string]field
	sections map[string]bool
	lines    map[string]int
	lookup   func(string) (string, bool)
	problems []error
}

func (d *decoder) fail(line int, format string, args ...any) {
	d.problems = append(d.problems, fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...)))
}

// mapping decodes the mapping n found at key path prefix ("" for the document).
func (d *decoder) mapping(prefix string, n *yaml.Node) {
	n = resolveAlias(n)
	if n.Kind != yaml.MappingNode {
		if prefix == "" {
			d.fail(n.Line, "the document must be a mapping of keys to values")
		} else {
			d.fail(n.Line, "%s: must be a mapping of keys to values", prefix)
		}
		return
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolveAlias(n.Content[i]), n.Content[i+1]
		path := k.Value
		if prefix != "" {
			path = prefix + "." + k.Value
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, "keys must be plain names")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k.Line, "key %q appears twice (first on line %d)", path, first)
			continue
		}
		seen[k.Value] = k.Line
		switch {
		case d.sections[path]:
			d.lines[path] = k.Line
			if !isNull(v) {
				d.mapping(path, v)
			}
		case d.leaves[path].ptr != nil:
			d.lines[path] = k.Line
			d.leaf(d.leaves[path], k.Line, resolveAlias(v))
		default:
			d.fail(k.Line, "unknown key %q%s", path, d.suggest(path))
		}
	}
}

// suggest names the known key closest to a misspelt one, since a typo is the usual cause.
func (d *decoder) suggest(path string) string {
	candidates := make([]string, 0, len(d.leaves)+len(d.sections))
	for k := range d.leaves {
		candidates = append(candidates, k)
	}
	for k := range d.sections {
		candidates = append(candidates, k)
	}
	slices.Sort(candidates) // so that ties always resolve the same way
	best, bestDist := "", 3 // more than two edits away is not worth suggesting
	for _, k := range candidates {
		if dist := editDistance(strings.ToLower(path), strings.ToLower(k)); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// leaf decodes one scalar value into f. Values that expand to nothing keep the default, as an
// empty value would, so that `${UNSET}` means "not configured".
func (d *decoder) leaf(f field, line int, v *yaml.Node) {
	if v.Kind != yaml.ScalarNode {
		d.fail(line, "%s: must be a single value, not a %s", f.key, kindName(v.Kind))
		return
	}
	if isNull(v) {
		return
	}
	s, err := expandEnv(v.Value, d.lookup)
	if err != nil {
		d.fail(line, "%s: %v", f.key, err)
		return
	}
	quoted := v.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0
	if s == "" && (!quoted || !isString(f.ptr)) {
		return
	}
	// Messages quote the value only when it cannot be a secret: a secret is a string, and
	// strings never fail to decode.
	switch p := f.ptr.(type) {
	case *string:
		*p = s
	case *bool:
		b, ok := parseBool(s)
		if !ok {
			d.fail(line, "%s: must be true or false, not %q", f.key, s)
			return
		}
		*p = b
	case *int:
		n, err := strconv.ParseInt(s, 0, strconv.IntSize)
		if err != nil {
			d.fail(line, "%s: must be an integer, not %q", f.key, s)
			return
		}
		*p = int(n)
	case *float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			d.fail(line, "%s: must be a number, not %q", f.key, s)
			return
		}
		*p = x
	case *time.Duration:
		x, err := time.ParseDuration(s)
		if err != nil {
			d.fail(line, "%s: invalid duration %q (write a Go duration such as \"1s\", \"500ms\" or \"2m\")", f.key, s)
			return
		}
		*p = x
	case *[]string:
		// A list is one comma-separated value, like nats.url, so that ${VAR} can hold it.
		var list []string
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		*p = list
	default:
		panic(fmt.Sprintf("config key %s has unsupported type %T", f.key, f.ptr))
	}
}

func isString(ptr any) bool {
	_, ok := ptr.(*string)
	return ok
}

// parseBool accepts YAML 1.2's booleans in any case.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is YAML's null: an empty plain value, "~" or "null", or an explicit
// !!null tag.
func isNull(n *yaml.Node) bool {
	n = resolveAlias(n)
	if n.Kind != yaml.ScalarNode {
		return false
	}
	if n.Tag == "!!null" {
		return true
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle|yaml.TaggedStyle) != 0 {
		return false
	}
	switch n.Value {
	case "", "~", "null", "Null", "NULL":
		return true
	}
	return false
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	default:
		return "document"
	}
}

// trimYAMLError drops the "yaml: " prefix the parser puts on its messages, which already start
// with "line N:".
func trimYAMLError(err error) error {
	if msg, ok := strings.CutPrefix(err.Error(), "yaml: "); ok {
		return errors.New(msg)
	}
	return err
}

// withLine prefixes a validation problem that starts with a key path with the line of that key
// in the file, so that every message points at the place to fix.
func withLine(err error, lines map[string]int) error {
	msg := err.Error()
	key, _, ok := strings.Cut(msg, ":")
	if !ok {
		return err
	}
	if line, found := lines[key]; found {
		return fmt.Errorf("line %d: %w", line, err)
	}
	return err
}

// flatten returns the problems an errors.Join holds, or err alone.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// Validate reports every problem at once, each with the key it concerns: the daemon's own keys
// here, the bridge's through bridge.Config.Validate. It also checks that the files the config
// names can be read, since a typo there would otherwise only show when connecting.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	n := c.NATS
	// The client settings, which only an external server uses; file marks a path to a file.
	clientSettings := []struct {
		key, val string
		file     bool
	}{
		{"nats.credsFile", n.CredsFile, true}, {"nats.nkeySeedFile", n.NkeySeedFile, true},
		{"nats.token", n.Token, false}, {"nats.user", n.User, false}, {"nats.password", n.Password, false},
		{"nats.tls.caFile", n.TLS.CAFile, true}, {"nats.tls.certFile", n.TLS.CertFile, true}, {"nats.tls.keyFile", n.TLS.KeyFile, true},
	}
	if n.URL == "" {
		if err := checkHostPort(n.Embedded.Listen); err != nil {
			bad("nats.embedded.listen", "%v", err)
		}
		if n.Embedded.StoreDir == "" {
			bad("nats.embedded.storeDir", "must not be empty when nats.url is empty")
		}
		// Client settings would be silently ignored by the embedded server, which has no
		// users; a config that sets them almost certainly meant to name a server in nats.url.
		for _, s := range clientSettings {
			if s.val != "" {
				bad(s.key, "is only used with an external server, but nats.url is empty (the embedded server is used)")
			}
		}
	} else {
		for _, u := range strings.Split(n.URL, ",") {
			if err := checkNATSURL(strings.TrimSpace(u)); err != nil {
				bad("nats.url", "%v", err)
			}
		}
		var methods []string
		if n.CredsFile != "" {
			methods = append(methods, "nats.credsFile")
		}
		if n.NkeySeedFile != "" {
			methods = append(methods, "nats.nkeySeedFile")
		}
		if n.Token != "" {
			methods = append(methods, "nats.token")
		}
		if n.User != "" || n.Password != "" {
			methods = append(methods, "nats.user/nats.password")
		}
		if len(methods) > 1 {
			bad("nats", "set only one way to authenticate, not %s", strings.Join(methods, " and "))
		}
		if n.User != "" && n.Password == "" {
			bad("nats.password", "is required with nats.user")
		}
		if n.Password != "" && n.User == "" {
			bad("nats.user", "is required with nats.password")
		}
		if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
			if n.TLS.CertFile == "" {
				bad("nats.tls.certFile", "is required with nats.tls.keyFile")
			} else {
				bad("nats.tls.keyFile", "is required with nats.tls.certFile")
			}
		}
		for _, f := range clientSettings {
			if !f.file || f.val == "" {
				continue
			}
			if err := checkReadable(f.val); err != nil {
				bad(f.key, "%v", err)
			}
		}
	}

	if u, err := url.Parse(c.Notifizz.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("notifizz.baseUrl", "must be an absolute http:// or https:// URL, not %q", c.Notifizz.BaseURL)
	} else if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		bad("notifizz.baseUrl", "must not carry credentials, a query or a fragment")
	}
	if strings.ContainsFunc(c.Notifizz.SDKSecretKey, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		// It goes into the Authorization header, which cannot carry them: every call would be
		// refused. A trailing newline read from a file is the usual cause. Never quoted.
		bad("notifizz.sdkSecretKey", "must not contain control characters such as a trailing newline")
	}
	if c.Notifizz.Timeout <= 0 {
		bad("notifizz.timeout", "must be positive, not %s", c.Notifizz.Timeout)
	}

	if err := checkHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "%v", err)
	}
	if _, ok := logLevels[c.Log.Level]; !ok {
		bad("log.level", "must be one of debug, info, warn, error, not %q", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		bad("log.format", "must be json or text, not %q", c.Log.Format)
	}

	if err := c.Bridge.Validate(); err != nil {
		errs = append(errs, flatten(err)...)
	}
	return errors.Join(errs...)
}

// checkHostPort accepts "host:port" and ":port" with a port from 1 to 65535. Port 0 is refused
// because a random port cannot be found by probes or by the publish command.
func checkHostPort(hp string) error {
	_, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Errorf("must be host:port, not %q", hp)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("must be host:port with a port from 1 to 65535, not %q", hp)
	}
	return nil
}

// checkNATSURL checks one server URL, quoting it without credentials.
func checkNATSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a valid URL", redactURL(s))
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("%q must start with nats://, tls://, ws:// or wss://", redactURL(s))
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", redactURL(s))
	}
	return nil
}

func checkReadable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// redactURL hides the credentials in one NATS URL or a comma-separated list of them. A user
// name alone is hidden too, since NATS reads it as a token.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		at := strings.LastIndex(p, "@")
		scheme := strings.Index(p, "://")
		if at < 0 {
			continue
		}
		start := 0
		if scheme >= 0 && scheme < at {
			start = scheme + len("://")
		}
		parts[i] = p[:start] + schema.Redacted + p[at:]
	}
	return strings.Join(parts, ",")
}

// YAML renders the effective config as a YAML document in the file's layout, with every secret
// replaced by [REDACTED] (empty secrets stay empty, so that a missing one shows).
func (c *Config) YAML() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range c.fields() {
		parent := root
		parts := strings.Split(f.key, ".")
		for _, p := range parts[:len(parts)-1] {
			parent = childMapping(parent, p)
		}
		parent.Content = append(parent.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: parts[len(parts)-1]},
			scalarNode(f))
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func childMapping(parent *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(parent.Content); i += 2 {
		if parent.Content[i].Value == key {
			return parent.Content[i+1]
		}
	}
	child := &yaml.Node{Kind: yaml.MappingNode}
	parent.Content = append(parent.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, child)
	return child
}

func scalarNode(f field) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode}
	switch p := f.ptr.(type) {
	case *string:
		n.Tag, n.Value = "!!str", *p
		switch {
		case f.secret && *p != "":
			n.Value = schema.Redacted
		case f.key == "nats.url":
			n.Value = redactURL(*p)
		}
	case *bool:
		n.Tag, n.Value = "!!bool", strconv.FormatBool(*p)
	case *int:
		n.Tag, n.Value = "!!int", strconv.Itoa(*p)
	case *float64:
		n.Tag, n.Value = "!!float", strconv.FormatFloat(*p, 'g', -1, 64)
	case *time.Duration:
		n.Tag, n.Value = "!!str", p.String()
	case *[]string:
		n.Tag, n.Value = "!!str", strings.Join(*p, ",")
	}
	return n
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
