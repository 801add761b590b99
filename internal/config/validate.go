package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/notifizz-bridge/notifizz-bridge/bridge"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// Validate reports every problem at once as Problems, each with the key it concerns and no
// line: the daemon's own keys here, the bridge's through bridge.Config.Validate, whose fields
// are named by their keys. It also checks that the files the config names can be read, since
// a typo there would otherwise only show when connecting, and compiles the catalog's schema
// files (catalog.Load), each problem under catalog.events.<eventName>.schema.
func (c Config) Validate() error {
	v := validation{names: c.keyNames()}
	v.nats(c.NATS)

	if u, err := url.Parse(c.Notifizz.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.bad("Notifizz.BaseURL", "must be an absolute http:// or https:// URL, not %q", c.Notifizz.BaseURL)
	} else if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		v.bad("Notifizz.BaseURL", "must not carry credentials, a query or a fragment")
	}
	if strings.ContainsFunc(c.Notifizz.SDKSecretKey, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		// It goes into the Authorization header, which cannot carry them: every call would be
		// refused. A trailing newline read from a file is the usual cause. Never quoted.
		v.bad("Notifizz.SDKSecretKey", "must not contain control characters such as a trailing newline")
	}
	if c.Notifizz.Timeout <= 0 {
		v.bad("Notifizz.Timeout", "must be positive, not %s", c.Notifizz.Timeout)
	}

	if err := checkHostPort(c.HTTP.Listen); err != nil {
		v.bad("HTTP.Listen", "%v", err)
	}
	if _, ok := logLevels[c.Log.Level]; !ok {
		v.bad("Log.Level", "must be one of debug, info, warn, error, not %q", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		v.bad("Log.Format", "must be json or text, not %q", c.Log.Format)
	}

	if err := c.Bridge.Validate(); err != nil {
		v.bridge(err)
	}
	v.schemas(c.Bridge.Catalog)
	if len(v.problems) == 0 {
		return nil
	}
	return v.problems
}

// validation collects problems, naming fields by their keys.
type validation struct {
	names    keyNames
	problems Problems
}

// ref is an argument of a message that names a field of Config by its Go path.
type ref string

// bad records a problem of the field at Go path field; ref arguments are named by their keys.
func (v *validation) bad(field, format string, args ...any) {
	for i, a := range args {
		if r, ok := a.(ref); ok {
			args[i] = v.names.name(string(r))
		}
	}
	v.problems = append(v.problems, Problem{Key: v.names.name(field), Msg: fmt.Sprintf(format, args...)})
}

// bridge records the problems bridge.Config.Validate found, naming its fields by their keys.
func (v *validation) bridge(err error) {
	inBridge := func(field string) string { return v.names.name("Bridge." + field) }
	for _, e := range flatten(err) {
		var fe *bridge.FieldError
		if !errors.As(e, &fe) {
			v.problems = append(v.problems, Problem{Msg: e.Error()})
			continue
		}
		v.problems = append(v.problems, Problem{Key: inBridge(fe.Field), Msg: fe.Message(inBridge)})
	}
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

// nats checks the connection settings: the embedded server's, or the client's of an external
// server. The ways to authenticate and the TLS files serve both: an external server checks
// them, and the embedded one requires them (see NATS).
func (v *validation) nats(n NATS) {
	if n.URL == "" {
		if err := checkHostPort(n.Embedded.Listen); err != nil {
			v.bad("NATS.Embedded.Listen", "%v", err)
		}
		if n.Embedded.StoreDir == "" {
			v.bad("NATS.Embedded.StoreDir", "must not be empty when %s is empty", ref("NATS.URL"))
		}
		if n.CredsFile != "" {
			// A creds file is a user JWT, which only a server that trusts an operator and
			// resolves its accounts can check; the embedded server has neither.
			v.bad("NATS.CredsFile", "needs an external server set up with an operator and accounts, but %s is empty (the embedded server is used): secure the embedded server with %s, %s/%s or %s instead",
				ref("NATS.URL"), ref("NATS.Token"), ref("NATS.User"), ref("NATS.Password"), ref("NATS.NkeySeedFile"))
		}
		if len(n.Password) > maxEmbeddedPassword {
			v.bad("NATS.Password", "must be at most %d bytes with the embedded server, which keeps only a bcrypt hash of it", maxEmbeddedPassword)
		}
		if n.TLS.CAFile != "" && n.TLS.CertFile == "" {
			v.bad("NATS.TLS.CAFile", "verifies the embedded server's certificate (%s is empty), but the server has none: set %s and %s to give it TLS",
				ref("NATS.URL"), ref("NATS.TLS.CertFile"), ref("NATS.TLS.KeyFile"))
		}
	} else {
		for _, u := range strings.Split(n.URL, ",") {
			if err := checkNATSURL(strings.TrimSpace(u)); err != nil {
				v.bad("NATS.URL", "%v", err)
			}
		}
	}
	if methods := v.authMethods(n); len(methods) > 1 {
		v.bad("NATS", "set only one way to authenticate, not %s", strings.Join(methods, " and "))
	}
	if n.User != "" && n.Password == "" {
		v.bad("NATS.Password", "is required with %s", ref("NATS.User"))
	}
	if n.Password != "" && n.User == "" {
		v.bad("NATS.User", "is required with %s", ref("NATS.Password"))
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		if n.TLS.CertFile == "" {
			v.bad("NATS.TLS.CertFile", "is required with %s", ref("NATS.TLS.KeyFile"))
		} else {
			v.bad("NATS.TLS.KeyFile", "is required with %s", ref("NATS.TLS.CertFile"))
		}
	}
	for _, f := range []struct{ field, path string }{
		{"NATS.CredsFile", n.CredsFile}, {"NATS.NkeySeedFile", n.NkeySeedFile},
		{"NATS.TLS.CAFile", n.TLS.CAFile}, {"NATS.TLS.CertFile", n.TLS.CertFile}, {"NATS.TLS.KeyFile", n.TLS.KeyFile},
	} {
		if f.path == "" || (f.field == "NATS.CredsFile" && n.URL == "") {
			continue // a creds file without a URL is refused above
		}
		if err := checkReadable(f.path); err != nil {
			v.bad(f.field, "%v", err)
		}
	}
}

// maxEmbeddedPassword is the longest password bcrypt hashes, and so the embedded server checks.
const maxEmbeddedPassword = 72

// authMethods names the ways to authenticate n sets, by their keys.
func (v *validation) authMethods(n NATS) []string {
	var methods []string
	if n.CredsFile != "" && n.URL != "" { // without a URL, refused on its own
		methods = append(methods, v.names.name("NATS.CredsFile"))
	}
	if n.NkeySeedFile != "" {
		methods = append(methods, v.names.name("NATS.NkeySeedFile"))
	}
	if n.Token != "" {
		methods = append(methods, v.names.name("NATS.Token"))
	}
	if n.User != "" || n.Password != "" {
		methods = append(methods, v.names.name("NATS.User")+"/"+v.names.name("NATS.Password"))
	}
	return methods
}

// secured reports whether the embedded server requires authentication: one of the ways to
// authenticate it supports is set.
func (n NATS) secured() bool {
	return n.Token != "" || n.User != "" || n.Password != "" || n.NkeySeedFile != ""
}

// loopback reports whether the listen address host:port is reachable from this host only: its
// host is localhost or in 127.0.0.0/8 or ::1. An empty host, a wildcard address and any other
// name are reachable from elsewhere.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
		return fmt.Errorf("%q is not a valid URL", RedactURL(s))
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("%q must start with nats://, tls://, ws:// or wss://", RedactURL(s))
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", RedactURL(s))
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

// RedactURL hides the credentials in one NATS URL or a comma-separated list of them. A user
// name alone is hidden too, since NATS reads it as a token.
func RedactURL(s string) string {
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
