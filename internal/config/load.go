package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/notifizz-bridge/notifizz-bridge/catalog"
)

// Options adapt loading to the command that loads.
type Options struct {
	// DryRun makes the config a dry run whatever notifizz.dryRun says (--dry-run was given).
	DryRun bool
	// NeedSDKKey asks for notifizz.sdkSecretKey unless in a dry run: the command calls the API.
	NeedSDKKey bool
	// Serve asks for authentication on an embedded server that listens beyond loopback
	// (RequireEmbeddedAuth): the command runs it (run), or checks a config for run (check).
	Serve bool
	// Warnings, when not nil, receives what is valid but would stop another command: the
	// secrets left empty (notifizz.sdkSecretKey, which run needs, when NeedSDKKey is false;
	// notifizz.authSecretKey, which token needs), each saying which environment variable the
	// file reads it from. A dry run warns of nothing: it needs no secret.
	Warnings *Problems
}

// Load reads the file at path (none when path is empty, which gives the defaults), expands
// environment variables, decodes it strictly and validates the result. Every problem is
// reported together, in the order of the file, as Problems (wrapped with the path when there
// is a file), each with its key and, when the key is in the file, its line.
func Load(path string, opts Options) (Config, error) {
	cfg := Default()
	// notifizz.baseUrl's default depends on notifizz.api, which the file may set anywhere in it:
	// decode without one, and give the profile's once the file is read.
	cfg.Notifizz.BaseURL = ""
	var (
		lines    map[string]int
		vars     map[string][]string
		problems Problems
	)
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Default(), fmt.Errorf("read config: %w", err)
		}
		lines, vars, problems = cfg.decode(data, os.LookupEnv)
		cfg.resolveSchemas(filepath.Dir(path))
	}
	if cfg.Notifizz.BaseURL == "" {
		cfg.Notifizz.BaseURL = ProfileBaseURL(cfg.Bridge.API)
	}
	if opts.DryRun {
		cfg.Notifizz.DryRun = true
	}
	var found Problems
	if err := cfg.Validate(); err != nil {
		found = err.(Problems)
	}
	if err := cfg.RequireSDKKey(); err != nil {
		p := err.(Problem)
		p.Msg = noSDKKey(vars[p.Key])
		if opts.NeedSDKKey {
			found = append(found, p)
		} else if opts.Warnings != nil {
			p.Msg = "is empty: run refuses to start without it; " + exportHint(vars[p.Key], "NOTIFIZZ_SDK_SECRET_KEY") + ", or run with --dry-run"
			p.Line = lines[p.Key]
			*opts.Warnings = append(*opts.Warnings, p)
		}
	}
	if opts.Serve {
		if err := cfg.requireEmbeddedAuth(vars); err != nil {
			found = append(found, err.(Problem))
		}
	}
	if cfg.Notifizz.AuthSecretKey == "" && opts.Warnings != nil && !cfg.Notifizz.DryRun {
		name := cfg.keyNames().name("Notifizz.AuthSecretKey")
		*opts.Warnings = append(*opts.Warnings, Problem{Key: name, Line: lines[name],
			Msg: "is empty: the token command needs it; " + exportHint(vars[name], "NOTIFIZZ_AUTH_SECRET_KEY")})
	}
	for _, p := range found {
		p.Line = lines[p.Key] // 0 for a key that is not in the file
		problems = append(problems, p)
	}
	if len(problems) == 0 {
		return cfg, nil
	}
	// In file order, so that the list reads like the file; problems of keys that are not in
	// the file (defaults) come last.
	slices.SortStableFunc(problems, func(a, b Problem) int { return sortLine(a) - sortLine(b) })
	if path == "" {
		return cfg, problems
	}
	return cfg, fmt.Errorf("%s: %w", path, problems)
}

// noSDKKey is ErrNoSDKKey's message, naming the variable the file reads the key from, if any.
func noSDKKey(vars []string) string {
	if len(vars) == 0 {
		return ErrNoSDKKey.Error()
	}
	return "is empty, and run needs it to call the Notifizz API: " + exportHint(vars, "") +
		", or run with --dry-run to print the calls instead"
}

// exportHint says how to give a key its value: export the variables the file reads it from, or,
// when it reads none, write it in the file from the conventional variable.
func exportHint(vars []string, conventional string) string {
	if len(vars) == 0 {
		return "set it in the file, e.g. from the environment with ${" + conventional + "}"
	}
	parts := make([]string, len(vars))
	for i, v := range vars {
		parts[i] = "export " + v + "=…"
	}
	return strings.Join(parts, " and ") + " (the file reads it from there)"
}

// sortLine orders problems without a line after every line of a file.
func sortLine(p Problem) int {
	if p.Line == 0 {
		return 1 << 31
	}
	return p.Line
}

// RequireSDKKey returns the Problem of notifizz.sdkSecretKey, wrapping ErrNoSDKKey, when the
// key is empty outside a dry run; nil otherwise.
func (c Config) RequireSDKKey() error {
	if c.Notifizz.DryRun || c.Notifizz.SDKSecretKey != "" {
		return nil
	}
	return Problem{Key: c.keyNames().name("Notifizz.SDKSecretKey"), Msg: ErrNoSDKKey.Error(), err: ErrNoSDKKey}
}

// RequireEmbeddedAuth returns the Problem of nats.embedded.listen, wrapping ErrEmbeddedNoAuth,
// when the embedded server would listen beyond loopback without authentication and
// nats.embedded.allowNoAuth is false; nil otherwise.
func (c Config) RequireEmbeddedAuth() error { return c.requireEmbeddedAuth(nil) }

// requireEmbeddedAuth is RequireEmbeddedAuth, whose message names the variables the file reads
// nats.token and nats.embedded.allowNoAuth from (vars, as decode returns them), if any.
func (c Config) requireEmbeddedAuth(vars map[string][]string) error {
	n := c.NATS
	if n.URL != "" || n.secured() || n.Embedded.AllowNoAuth || loopback(n.Embedded.Listen) {
		return nil
	}
	names := c.keyNames()
	token, allow := names.name("NATS.Token"), names.name("NATS.Embedded.AllowNoAuth")
	secure := "set " + token + " (e.g. token: ${NOTIFIZZ_BRIDGE_NATS_TOKEN})"
	if v := vars[token]; len(v) > 0 {
		secure = "export " + v[0] + "=… (the file reads " + token + " from there)"
	}
	optOut := "set " + allow + ": true"
	if v := vars[allow]; len(v) > 0 {
		optOut = "export " + v[0] + "=true (the file reads " + allow + " from there)"
	}
	return Problem{
		Key: names.name("NATS.Embedded.Listen"),
		Msg: fmt.Sprintf("%q is reachable from other hosts, and the embedded server has no authentication: anyone who reaches it could read the messages or delete the stream. "+
			"Secure it: %s, or set %s/%s or %s; or listen on loopback (127.0.0.1); or, on a network you trust, %s",
			n.Embedded.Listen, secure, names.name("NATS.User"), names.name("NATS.Password"), names.name("NATS.NkeySeedFile"), optOut),
		err: ErrEmbeddedNoAuth,
	}
}

// decode applies the YAML document in data over c. It returns the line of every key it set,
// for later messages, and every problem it met; keys with problems keep their defaults.
// vars lists, for each key whose value names environment variables, their names.
func (c *Config) decode(data []byte, lookup func(string) (string, bool)) (lines map[string]int, vars map[string][]string, problems Problems) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, nil // an empty file keeps every default
		}
		// The parser's own message carries the line; its errors have no field for it.
		msg := "parse YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")
		if strings.Contains(msg, "found character that cannot start any token") && bytes.ContainsRune(data, '\t') {
			msg += " (YAML does not allow tabs for indentation: indent with spaces)"
		}
		return nil, nil, Problems{{Msg: msg}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, nil, Problems{{Msg: "parse YAML: the file must hold exactly one YAML document"}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil, nil
		}
		root = root.Content[0]
	}
	d := decoder{
		leaves:   make(map[string]key),
		sections: make(map[string]bool),
		lines:    make(map[string]int),
		vars:     make(map[string][]string),
		lookup:   lookup,
	}
	for _, k := range c.keys() {
		d.leaves[k.name] = k
		for i := range k.name {
			if k.name[i] == '.' {
				d.sections[k.name[:i]] = true
			}
		}
	}
	if isNull(root) {
		return nil, nil, nil
	}
	d.mapping("", root)
	return d.lines, d.vars, d.problems
}

// decoder walks the YAML tree against the key list.
type decoder struct {
	leaves   map[string]key
	sections map[string]bool
	lines    map[string]int
	vars     map[string][]string // the environment variables each key's value names
	lookup   func(string) (string, bool)
	problems Problems
}

// fail records a problem of the key named (none for the file's shape) at line.
func (d *decoder) fail(line int, key, format string, args ...any) {
	d.problems = append(d.problems, Problem{Key: key, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// mapping decodes the mapping n found at key path prefix ("" for the document).
func (d *decoder) mapping(prefix string, n *yaml.Node) {
	n = resolveAlias(n)
	if n.Kind != yaml.MappingNode {
		if prefix == "" {
			d.fail(n.Line, "", "the document must be a mapping of keys to values")
		} else {
			d.fail(n.Line, prefix, "must be a mapping of keys to values")
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
			d.fail(k.Line, "", "keys must be plain names")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k.Line, "", "key %q appears twice (first on line %d)", path, first)
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
			if _, ok := d.leaves[path].ptr.(*map[string]catalog.Event); ok {
				d.events(d.leaves[path], k.Line, v)
				continue
			}
			d.leaf(d.leaves[path], k.Line, resolveAlias(v))
		default:
			d.fail(k.Line, "", "unknown key %q%s", path, d.suggest(path))
		}
	}
}

// leaf decodes one scalar value into k, or a YAML list into a list key. Values that expand to
// nothing keep the default, as an empty value would, so that `${UNSET}` means "not configured".
func (d *decoder) leaf(k key, line int, v *yaml.Node) {
	if p, ok := k.ptr.(*[]string); ok && v.Kind == yaml.SequenceNode {
		d.list(k, p, v)
		return
	}
	if v.Kind != yaml.ScalarNode {
		d.fail(line, k.name, "must be a single value, not a %s", kindName(v.Kind))
		return
	}
	if isNull(v) {
		return
	}
	d.vars[k.name] = varNames(v.Value)
	s, err := expandEnv(v.Value, d.lookup)
	if err != nil {
		d.fail(line, k.name, "%v", err)
		return
	}
	quoted := v.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0
	if s == "" && (!quoted || !isString(k.ptr)) {
		return
	}
	// Messages quote the value only when it cannot be a secret: a secret is a string, and
	// strings never fail to decode.
	switch p := k.ptr.(type) {
	case *string:
		*p = s
	case *bool:
		b, ok := parseBool(s)
		if !ok {
			d.fail(line, k.name, "must be true or false, not %q", s)
			return
		}
		*p = b
	case *int:
		n, err := strconv.ParseInt(s, 0, strconv.IntSize)
		if err != nil {
			d.fail(line, k.name, "must be an integer, not %q", s)
			return
		}
		*p = int(n)
	case *float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			d.fail(line, k.name, "must be a number, not %q", s)
			return
		}
		*p = x
	case *time.Duration:
		x, err := time.ParseDuration(s)
		if err != nil {
			d.fail(line, k.name, "invalid duration %q (write a Go duration such as \"1s\", \"500ms\" or \"2m\")", s)
			return
		}
		*p = x
	case *[]string:
		// A list may also be one comma-separated value, like nats.url, so that ${VAR} can
		// hold it.
		var list []string
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		*p = list
	default:
		panic(fmt.Sprintf("config key %s has unsupported type %T", k.name, k.ptr))
	}
}

// list decodes a YAML list of single values into p, each expanded and trimmed; items that
// are empty or expand to nothing are left out, as in the comma-separated form.
func (d *decoder) list(k key, p *[]string, v *yaml.Node) {
	var list []string
	for _, item := range v.Content {
		item = resolveAlias(item)
		if item.Kind != yaml.ScalarNode {
			d.fail(item.Line, k.name, "must be a list of single values, not of a %s", kindName(item.Kind))
			return
		}
		if isNull(item) {
			continue
		}
		d.vars[k.name] = append(d.vars[k.name], varNames(item.Value)...)
		s, err := expandEnv(item.Value, d.lookup)
		if err != nil {
			d.fail(item.Line, k.name, "%v", err)
			return
		}
		if s = strings.TrimSpace(s); s != "" {
			list = append(list, s)
		}
	}
	*p = list
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
