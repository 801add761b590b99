package schema

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseKind(t *testing.T) {
	for _, k := range Kinds {
		got, err := ParseKind(string(k))
		require.NoError(t, err)
		assert.Equal(t, k, got)
	}
	for _, s := range []string{"", "Track", "tracks", "dlq", "track "} {
		t.Run(s, func(t *testing.T) {
			_, err := ParseKind(s)
			assert.Equal(t, ReasonUnknownSubject, ReasonOf(err))
		})
	}
}

func TestSubject(t *testing.T) {
	tests := []struct {
		name    string
		prefix  string
		kind    Kind
		key     string
		want    string
		problem Problem // zero when valid
	}{
		{name: "track", prefix: DefaultPrefix, kind: KindTrack, key: "order-4521-shipped", want: "notifizz.track.order-4521-shipped"},
		{name: "workflow", prefix: DefaultPrefix, kind: KindWorkflow, key: "k", want: "notifizz.workflow.k"},
		{name: "commit", prefix: DefaultPrefix, kind: KindCommit, key: "k", want: "notifizz.commit.k"},
		{name: "send", prefix: DefaultPrefix, kind: KindSend, key: "req_1", want: "notifizz.send.req_1"},
		{name: "dotted prefix", prefix: "acme.notifizz", kind: KindTrack, key: "k", want: "acme.notifizz.track.k"},
		{name: "unicode key", prefix: DefaultPrefix, kind: KindTrack, key: "commande-é", want: "notifizz.track.commande-é"},
		{name: "255 byte key", prefix: DefaultPrefix, kind: KindTrack, key: strings.Repeat("k", 255), want: "notifizz.track." + strings.Repeat("k", 255)},
		{name: "256 byte key", prefix: DefaultPrefix, kind: KindTrack, key: strings.Repeat("k", 256),
			problem: Problem{"key", "must be at most 255 bytes"}},
		{name: "empty key", prefix: DefaultPrefix, kind: KindTrack, key: "",
			problem: Problem{"key", "must not be empty"}},
		{name: "dot in key", prefix: DefaultPrefix, kind: KindTrack, key: "order.4521",
			problem: Problem{"key", "must be a single subject token (no '.')"}},
		{name: "star in key", prefix: DefaultPrefix, kind: KindTrack, key: "*",
			problem: Problem{"key", "must not contain the wildcards '*' or '>'"}},
		{name: "gt in key", prefix: DefaultPrefix, kind: KindTrack, key: "a>",
			problem: Problem{"key", "must not contain the wildcards '*' or '>'"}},
		{name: "space in key", prefix: DefaultPrefix, kind: KindTrack, key: "order 1",
			problem: Problem{"key", "must not contain whitespace or control characters"}},
		{name: "tab in key", prefix: DefaultPrefix, kind: KindTrack, key: "a\tb",
			problem: Problem{"key", "must not contain whitespace or control characters"}},
		{name: "newline in key", prefix: DefaultPrefix, kind: KindTrack, key: "a\r\nPUB x",
			problem: Problem{"key", "must not contain whitespace or control characters"}},
		{name: "DEL in key", prefix: DefaultPrefix, kind: KindTrack, key: "a\x7f",
			problem: Problem{"key", "must not contain whitespace or control characters"}},
		{name: "unicode space in key", prefix: DefaultPrefix, kind: KindTrack, key: "a\u00a0b",
			problem: Problem{"key", "must not contain whitespace or control characters"}},
		{name: "invalid UTF-8 key", prefix: DefaultPrefix, kind: KindTrack, key: "a\xffb",
			problem: Problem{"key", "must be valid UTF-8"}},
		// Subject builds subjects of every kind (the producer publishes the v2 kinds too), so its
		// error lists them all; ParseSubject, which the bridge uses, keeps the four of Kinds.
		{name: "unknown kind", prefix: DefaultPrefix, kind: Kind("event"), key: "k",
			problem: Problem{"kind", `unknown kind "event" (want track, workflow, commit, send, identify, detach, subscribe or unsubscribe)`}},
		{name: "empty prefix", prefix: "", kind: KindTrack, key: "k",
			problem: Problem{"prefix", "must not be empty"}},
		{name: "prefix with empty token", prefix: "acme..notifizz", kind: KindTrack, key: "k",
			problem: Problem{"prefix", "token 2 must not be empty"}},
		{name: "prefix with trailing dot", prefix: "notifizz.", kind: KindTrack, key: "k",
			problem: Problem{"prefix", "token 2 must not be empty"}},
		{name: "prefix with wildcard", prefix: "notifizz.>", kind: KindTrack, key: "k",
			problem: Problem{"prefix", "token 2 must not contain the wildcards '*' or '>'"}},
		{name: "prefix with space", prefix: "noti fizz", kind: KindTrack, key: "k",
			problem: Problem{"prefix", "token 1 must not contain whitespace or control characters"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Subject(tt.prefix, tt.kind, tt.key)
			if tt.problem == (Problem{}) {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)

				// Every subject built must parse back to its parts.
				kind, key, err := ParseSubject(tt.prefix, got)
				require.NoError(t, err)
				assert.Equal(t, tt.kind, kind)
				assert.Equal(t, tt.key, key)
				return
			}
			assertSchemaError(t, err, ReasonUnknownSubject, []Problem{tt.problem})
			assert.Empty(t, got)
		})
	}
}

func TestValidateKeyAndPrefix(t *testing.T) {
	assert.NoError(t, ValidateKey("order-4521-shipped"))
	assert.NoError(t, ValidatePrefix("acme.notifizz"))
	assert.Equal(t, ReasonUnknownSubject, ReasonOf(ValidateKey("a.b")))
	assert.Equal(t, ReasonUnknownSubject, ReasonOf(ValidatePrefix("a.*")))
}

func TestParseSubject(t *testing.T) {
	tests := []struct {
		name     string
		prefix   string
		subject  string
		wantKind Kind
		wantKey  string
		problem  Problem
	}{
		{name: "track", prefix: "notifizz", subject: "notifizz.track.order-1", wantKind: KindTrack, wantKey: "order-1"},
		{name: "send", prefix: "notifizz", subject: "notifizz.send.req-9", wantKind: KindSend, wantKey: "req-9"},
		{name: "dotted prefix", prefix: "acme.notifizz", subject: "acme.notifizz.commit.k", wantKind: KindCommit, wantKey: "k"},
		{name: "v2 kind", prefix: "notifizz", subject: "notifizz.unsubscribe.sub-1", wantKind: KindUnsubscribe, wantKey: "sub-1"},
		{name: "prefix mismatch", prefix: "notifizz", subject: "other.track.k",
			problem: Problem{"subject", `"other.track.k" does not start with "notifizz."`}},
		{name: "prefix is only a substring", prefix: "notifizz", subject: "notifizzz.track.k",
			problem: Problem{"subject", `"notifizzz.track.k" does not start with "notifizz."`}},
		{name: "dotted prefix mismatch", prefix: "acme.notifizz", subject: "notifizz.track.k",
			problem: Problem{"subject", `"notifizz.track.k" does not start with "acme.notifizz."`}},
		{name: "wrong kind", prefix: "notifizz", subject: "notifizz.event.k",
			problem: Problem{"kind", `unknown kind "event" (want track, workflow, commit, send, identify, detach, subscribe or unsubscribe)`}},
		{name: "kind in other case", prefix: "notifizz", subject: "notifizz.Track.k",
			problem: Problem{"kind", `unknown kind "Track" (want track, workflow, commit, send, identify, detach, subscribe or unsubscribe)`}},
		{name: "dead-letter subject", prefix: "notifizz", subject: "notifizz.dlq.track.k",
			problem: Problem{"kind", `unknown kind "dlq" (want track, workflow, commit, send, identify, detach, subscribe or unsubscribe)`}},
		{name: "no key", prefix: "notifizz", subject: "notifizz.track",
			problem: Problem{"subject", `"notifizz.track" has no key token`}},
		{name: "empty key", prefix: "notifizz", subject: "notifizz.track.",
			problem: Problem{"key", "must not be empty"}},
		{name: "two key tokens", prefix: "notifizz", subject: "notifizz.track.a.b",
			problem: Problem{"key", "must be a single subject token (no '.')"}},
		{name: "wildcard key", prefix: "notifizz", subject: "notifizz.track.*",
			problem: Problem{"key", "must not contain the wildcards '*' or '>'"}},
		{name: "long key", prefix: "notifizz", subject: "notifizz.track." + strings.Repeat("k", 256),
			problem: Problem{"key", "must be at most 255 bytes"}},
		{name: "invalid prefix", prefix: "", subject: "notifizz.track.k",
			problem: Problem{"prefix", "must not be empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, key, err := ParseSubject(tt.prefix, tt.subject)
			if tt.problem == (Problem{}) {
				require.NoError(t, err)
				assert.Equal(t, tt.wantKind, kind)
				assert.Equal(t, tt.wantKey, key)
				return
			}
			assertSchemaError(t, err, ReasonUnknownSubject, []Problem{tt.problem})
			assert.Empty(t, kind)
			assert.Empty(t, key)
		})
	}
}

func TestStreamSubjects(t *testing.T) {
	assert.Equal(t, []string{"notifizz.track.*", "notifizz.workflow.*", "notifizz.commit.*", "notifizz.send.*",
		"notifizz.identify.*", "notifizz.detach.*", "notifizz.subscribe.*", "notifizz.unsubscribe.*"},
		StreamSubjects(DefaultPrefix))
	assert.Equal(t, []string{"acme.n.track.*", "acme.n.workflow.*", "acme.n.commit.*", "acme.n.send.*",
		"acme.n.identify.*", "acme.n.detach.*", "acme.n.subscribe.*", "acme.n.unsubscribe.*"},
		StreamSubjects("acme.n"))
}

func TestKinds(t *testing.T) {
	// Kinds names the v1 surface: the v2 kinds stay out of it, and out of Valid and ParseKind.
	assert.Equal(t, []Kind{KindTrack, KindWorkflow, KindCommit, KindSend}, Kinds)
	assert.Equal(t, []Kind{KindIdentify, KindDetach, KindSubscribe, KindUnsubscribe}, KindsV2)
	assert.Equal(t, append(slices.Clone(Kinds), KindsV2...), AllKinds)
	for _, k := range AllKinds {
		v1 := slices.Contains(Kinds, k)
		assert.Equal(t, v1, k.Valid(), k)
		assert.True(t, k.Known(), k)
		got, err := ParseKindAny(string(k))
		assert.NoError(t, err)
		assert.Equal(t, k, got)
		got, err = ParseKind(string(k))
		if v1 {
			assert.NoError(t, err)
			assert.Equal(t, k, got)
		} else {
			assertSchemaError(t, err, ReasonUnknownSubject,
				problems("kind", `unknown kind "`+string(k)+`" (want track, workflow, commit or send)`))
		}
	}
	for _, s := range []string{"", "event", "Identify", "tracks", "dlq"} {
		assert.False(t, Kind(s).Known(), s)
		_, err := ParseKindAny(s)
		assertSchemaError(t, err, ReasonUnknownSubject, problems("kind",
			`unknown kind "`+s+`" (want track, workflow, commit, send, identify, detach, subscribe or unsubscribe)`))
		// The v1 text is unchanged.
		_, err = ParseKind(s)
		assertSchemaError(t, err, ReasonUnknownSubject, problems("kind",
			`unknown kind "`+s+`" (want track, workflow, commit or send)`))
	}
	for _, k := range KindsV2 {
		subject, err := Subject(DefaultPrefix, k, "req-1")
		require.NoError(t, err)
		assert.Equal(t, "notifizz."+string(k)+".req-1", subject)
	}
}
