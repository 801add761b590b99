package config

import (
	"reflect"
	"strconv"
	"strings"
)

// key ties one YAML key to the Go field it sets.
type key struct {
	name string // dotted path, e.g. "nats.tls.caFile"
	// ptr is *string, *bool, *int, *float64, *time.Duration, *[]string (a YAML list or one
	// comma-separated value), or *map[string]catalog.Event: catalog.events, a mapping from
	// names the file chooses to entries with the keys eventKeys lists (see events.go).
	ptr    any
	secret bool // printed as [REDACTED]
	// show, when set, is how a string is printed by YAML: a value that may hold secrets
	// inside it, such as a URL with credentials.
	show func(string) string
}

// keys lists every key of the config file, in the order `check` prints them. This is the one
// place a key is spelled: the list is the contract, and a key that is not here is an error in
// a file. Messages name keys through keyNames, by the Go path of their field.
func (c *Config) keys() []key {
	b := &c.Bridge
	return []key{
		{name: "nats.url", ptr: &c.NATS.URL, show: RedactURL},
		{name: "nats.credsFile", ptr: &c.NATS.CredsFile},
		{name: "nats.nkeySeedFile", ptr: &c.NATS.NkeySeedFile},
		{name: "nats.token", ptr: &c.NATS.Token, secret: true},
		{name: "nats.user", ptr: &c.NATS.User},
		{name: "nats.password", ptr: &c.NATS.Password, secret: true},
		{name: "nats.tls.caFile", ptr: &c.NATS.TLS.CAFile},
		{name: "nats.tls.certFile", ptr: &c.NATS.TLS.CertFile},
		{name: "nats.tls.keyFile", ptr: &c.NATS.TLS.KeyFile},
		{name: "nats.connectTimeout", ptr: &b.StartTimeout},
		{name: "nats.embedded.listen", ptr: &c.NATS.Embedded.Listen},
		{name: "nats.embedded.storeDir", ptr: &c.NATS.Embedded.StoreDir},
		{name: "nats.embedded.allowNoAuth", ptr: &c.NATS.Embedded.AllowNoAuth},

		{name: "stream.name", ptr: &b.Stream.Name},
		{name: "stream.subjectPrefix", ptr: &b.Stream.SubjectPrefix},
		{name: "stream.create", ptr: &b.Stream.Create},
		{name: "stream.storage", ptr: (*string)(&b.Stream.Storage)},
		{name: "stream.replicas", ptr: &b.Stream.Replicas},
		{name: "stream.maxAge", ptr: &b.Stream.MaxAge},
		{name: "stream.duplicateWindow", ptr: &b.Stream.DuplicateWindow},

		{name: "consumer.durable", ptr: &b.Consumer.Durable},
		{name: "consumer.ackWait", ptr: &b.Consumer.AckWait},
		{name: "consumer.maxDeliver", ptr: &b.Consumer.MaxDeliver},
		{name: "consumer.maxAckPending", ptr: &b.Consumer.MaxAckPending},

		{name: "partitions.count", ptr: &b.Partitions.Count},
		{name: "partitions.mode", ptr: (*string)(&b.Partitions.Mode)},
		{name: "partitions.group", ptr: &b.Partitions.Group},
		{name: "partitions.member", ptr: &b.Partitions.Member},
		{name: "partitions.members", ptr: &b.Partitions.Members},
		{name: "partitions.failoverAfter", ptr: &b.Partitions.FailoverAfter},

		{name: "coalesce.delay", ptr: &b.Coalesce.Delay},
		{name: "coalesce.mode", ptr: (*string)(&b.Coalesce.Mode)},
		{name: "coalesce.maxDelay", ptr: &b.Coalesce.MaxDelay},
		{name: "coalesce.maxWorkflows", ptr: &b.Coalesce.MaxWorkflows},
		{name: "coalesce.maxBytes", ptr: &b.Coalesce.MaxBytes},
		{name: "coalesce.orphanTimeout", ptr: &b.Coalesce.OrphanTimeout},

		{name: "notifizz.baseUrl", ptr: &c.Notifizz.BaseURL},
		{name: "notifizz.sdkSecretKey", ptr: &c.Notifizz.SDKSecretKey, secret: true},
		{name: "notifizz.authSecretKey", ptr: &c.Notifizz.AuthSecretKey, secret: true},
		{name: "notifizz.timeout", ptr: &c.Notifizz.Timeout},
		{name: "notifizz.maxInFlight", ptr: &b.MaxInFlight},
		{name: "notifizz.rateLimit", ptr: &b.RateLimit},
		{name: "notifizz.dryRun", ptr: &c.Notifizz.DryRun},
		{name: "notifizz.api", ptr: (*string)(&b.API)},
		{name: "notifizz.occurredAt", ptr: (*string)(&b.OccurredAt)},

		{name: "catalog.mode", ptr: (*string)(&b.Catalog.Mode)},
		{name: "catalog.events", ptr: &b.Catalog.Events},

		{name: "retry.attempts", ptr: &b.Retry.Attempts},
		{name: "retry.initialBackoff", ptr: &b.Retry.InitialBackoff},
		{name: "retry.maxBackoff", ptr: &b.Retry.MaxBackoff},
		{name: "retry.nakInitial", ptr: &b.Retry.NakInitial},
		{name: "retry.nakMax", ptr: &b.Retry.NakMax},

		{name: "deadLetter.stream", ptr: &b.DeadLetter.Stream},
		{name: "deadLetter.subjectPrefix", ptr: &b.DeadLetter.SubjectPrefix},

		{name: "http.listen", ptr: &c.HTTP.Listen},
		{name: "health.stallAfter", ptr: &b.Health.StallAfter},

		{name: "log.level", ptr: &c.Log.Level},
		{name: "log.format", ptr: &c.Log.Format},

		{name: "tracing.enabled", ptr: &c.Tracing.Enabled},

		{name: "shutdownTimeout", ptr: &b.ShutdownTimeout},
	}
}

// keyNames maps the Go path of each field that has a key (e.g. "Bridge.Coalesce.MaxBytes",
// from Config) to its key, and each section's Go path (e.g. "NATS") to its name. The paths are
// found by reflection from the pointers in keys, so that the table spells each key once and
// renaming a Go field cannot rename a key.
type keyNames map[string]string

func (c *Config) keyNames() keyNames {
	paths := make(map[uintptr]string)
	leafPaths(reflect.ValueOf(c).Elem(), "", paths)
	names := make(keyNames)
	for _, k := range c.keys() {
		path, ok := paths[reflect.ValueOf(k.ptr).Pointer()]
		if !ok {
			panic("config key " + k.name + " does not point into the Config")
		}
		names[path] = k.name
		// A section of the file matches a struct of the Config when both are as deep.
		p, n := strings.Split(path, "."), strings.Split(k.name, ".")
		if len(p) == len(n) {
			for i := 1; i < len(p); i++ {
				section := strings.Join(p[:i], ".")
				if _, known := names[section]; !known {
					names[section] = strings.Join(n[:i], ".")
				}
			}
		}
	}
	return names
}

// leafPaths records the address of every field of v that is not a struct, with its Go path.
func leafPaths(v reflect.Value, prefix string, paths map[uintptr]string) {
	t := v.Type()
	for i := range t.NumField() {
		f, path := v.Field(i), t.Field(i).Name
		if prefix != "" {
			path = prefix + "." + path
		}
		if f.Kind() == reflect.Struct {
			leafPaths(f, path, paths)
			continue
		}
		paths[f.Addr().Pointer()] = path
	}
}

// name returns the key of the field at Go path, or the path itself when no key sets that field
// (a test makes sure that none is left out).
func (n keyNames) name(path string) string {
	if k, ok := n[path]; ok {
		return k
	}
	return path
}

// The keys of one event of catalog.events: catalog.events.<eventName>.schema and
// catalog.events.<eventName>.idempotencyFields.
const (
	eventSchemaKey = "schema"
	eventFieldsKey = "idempotencyFields"
)

// eventKeys lists the keys of one event, in the order `check` prints them.
var eventKeys = []string{eventSchemaKey, eventFieldsKey}

// eventKey names the key field (one of eventKeys; none for the event itself) of the event name
// in catalog.events, as messages write it: catalog.events.<name>.<field>, the name quoted when
// it holds anything but letters, digits, '_' and '-', so that a name with dots or spaces reads
// as one.
func eventKey(name, field string) string {
	k := "catalog.events."
	if name != "" && !strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) {
		k += name
	} else {
		k += strconv.Quote(name)
	}
	if field != "" {
		k += "." + field
	}
	return k
}
