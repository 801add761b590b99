package config

import (
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/notifizz-bridge/notifizz-bridge/bridge"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// Config is the daemon's whole configuration: the bridge's part plus what only the daemon uses
// (connections, HTTP endpoints, logging). Its YAML keys are listed in one place, the table in
// keys.go, because they are a contract users script against and must not follow Go field names.
type Config struct {
	NATS     NATS
	Notifizz Notifizz
	HTTP     HTTP
	Log      Log
	Tracing  Tracing
	// Bridge holds the stream, consumer, partitions, coalesce, retry and deadLetter sections,
	// and notifizz.maxInFlight, notifizz.rateLimit and shutdownTimeout.
	Bridge bridge.Config
}

// NATS says which NATS server to use: an external one when URL is set, otherwise one embedded
// in the process. The ways to authenticate (NkeySeedFile, Token, User and Password) and TLS
// are the client's settings for an external server; for the embedded one, they are what the
// server requires and what the daemon's own clients present (see Embedded).
type NATS struct {
	URL          string // comma-separated server URLs; empty starts the embedded server
	CredsFile    string
	NkeySeedFile string
	Token        string
	User         string
	Password     string
	TLS          TLS
	Embedded     Embedded
}

// TLS names the files for TLS to an external server: its CAs and a client certificate. With
// the embedded server, CertFile and KeyFile are the server's own certificate, which turns TLS
// on for its listener, and CAFile what the daemon's own TCP clients verify it with.
type TLS struct {
	CAFile   string
	CertFile string
	KeyFile  string
}

// Embedded configures the in-process JetStream server used when NATS.URL is empty.
type Embedded struct {
	Listen   string
	StoreDir string
	// AllowNoAuth lets the server listen beyond loopback without authentication, which run
	// otherwise refuses: anyone who reaches the port could read or delete the stream.
	AllowNoAuth bool
}

// Notifizz configures the Notifizz API client.
type Notifizz struct {
	// BaseURL is the API's base URL. A file that leaves it empty gets the URL of the profile
	// notifizz.api names (ProfileBaseURL): Load fills it in, so that the loaded config holds the
	// URL the client calls.
	BaseURL       string
	SDKSecretKey  string
	AuthSecretKey string
	Timeout       time.Duration // per HTTP attempt
	DryRun        bool
}

// HTTP configures the health and metrics endpoints.
type HTTP struct {
	Listen string
}

// Log configures the logger.
type Log struct {
	Level  string // "debug", "info", "warn" or "error"
	Format string // "json" or "text"
}

// Tracing turns OpenTelemetry tracing on. Everything else about it (the OTLP exporter and its
// endpoint, headers and protocol, the sampler, the service name) is read from the standard
// OTEL_* environment variables, as every OpenTelemetry SDK does.
type Tracing struct {
	Enabled bool
}

// logLevels are the values of Log.Level.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// SlogLevel returns the level Level names; a validated Log names one.
func (l Log) SlogLevel() slog.Level { return logLevels[l.Level] }

// Defaults of the daemon's own keys. Loopback listeners keep a fresh install private; a
// container overrides them (see config.example.yaml and the Dockerfile).
const (
	defaultEmbeddedListen = "127.0.0.1:4222"
	defaultStoreDir       = "./data/nats"
	defaultHTTPListen     = "127.0.0.1:8080"
	defaultLogLevel       = "info"
	// Text reads well in a terminal, where a fresh install is first tried; deployments that
	// ship logs to a collector set the format to json.
	defaultLogFormat = "text"
)

// Default returns the documented defaults; secrets have none.
func Default() Config {
	c := Config{
		NATS: NATS{
			Embedded: Embedded{Listen: defaultEmbeddedListen, StoreDir: defaultStoreDir},
		},
		Notifizz: Notifizz{
			Timeout: notifizz.DefaultTimeout,
		},
		HTTP:   HTTP{Listen: defaultHTTPListen},
		Log:    Log{Level: defaultLogLevel, Format: defaultLogFormat},
		Bridge: bridge.DefaultConfig(),
	}
	c.Notifizz.BaseURL = ProfileBaseURL(c.Bridge.API)
	c.Bridge.Partitions.Member = defaultMember()
	return c
}

// ProfileBaseURL is the default of notifizz.baseUrl under the API profile api: the base URL of
// the official SDKs of that surface (1.x for v1, 2.x for v2).
func ProfileBaseURL(api bridge.APIProfile) string {
	if api == bridge.APIv2 {
		return notifizz.DefaultBaseURLV2
	}
	return notifizz.DefaultBaseURL
}

// defaultMember is this replica's name in a consumer group when none is configured: the host's
// name, which tells replicas apart in most deployments (pod names, container ids). Member names
// become consumer names, which allow no '.', so only the first label of a fully qualified name
// is kept, and characters a name cannot hold become '-'.
func defaultMember() string {
	host, err := os.Hostname()
	if err != nil {
		return "" // Validate asks for a member when partitions are used
	}
	host, _, _ = strings.Cut(host, ".")
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, host)
}
