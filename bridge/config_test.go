package bridge

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/catalog"
)

// fieldProblems returns each problem of a Validate error as "<Go path>: <message>".
func fieldProblems(t *testing.T, err error) []string {
	t.Helper()
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		require.ErrorAs(t, e, &fe, "every problem names its field")
		got = append(got, e.Error())
	}
	return got
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	cfg := DefaultConfig()
	assert.NoError(t, cfg.Validate())

	cfg.Stream.Name = "bad.name"
	cfg.Consumer.AckWait = 0
	cfg.Coalesce.Mode = "bursty"
	cfg.Coalesce.OrphanTimeout = time.Millisecond
	cfg.DeadLetter.SubjectPrefix = cfg.Stream.SubjectPrefix
	cfg.MaxInFlight = 0
	assert.Equal(t, []string{
		"Stream.Name: must be a non-empty name without '.', '*', '>' or spaces",
		"Consumer.AckWait: must be at least 1s, not 0s",
		`Coalesce.Mode: must be "fixed" or "sliding", not "bursty"`,
		"Coalesce.OrphanTimeout: must be at least the longest window (1s), not 1ms",
		"DeadLetter.SubjectPrefix: must differ from Stream.SubjectPrefix",
		"MaxInFlight: must be at least 1, not 0",
	}, fieldProblems(t, cfg.Validate()))

	cfg = DefaultConfig()
	cfg.Coalesce.Mode = ModeSliding
	cfg.Coalesce.MaxDelay = cfg.Coalesce.Delay / 2
	assert.Equal(t, []string{"Coalesce.MaxDelay: must be at least Coalesce.Delay (1s) in sliding mode, not 500ms"},
		fieldProblems(t, cfg.Validate()))
}

// TestFieldErrorMessageNamesOtherFields checks that Message names the fields a message refers
// to as its caller asks, and leaves every other argument alone.
func TestFieldErrorMessageNamesOtherFields(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Retry.NakMax = time.Millisecond
	cfg.Stream.Storage = "Retry.NakInitial"
	cfg.Partitions = PartitionsConfig{Count: 2, Mode: PartitionStatic, Group: "g", Member: "m", Members: []string{"a"}, FailoverAfter: 5 * time.Second}
	err := cfg.Validate()
	var fields []string
	var msgs []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		require.True(t, errors.As(e, &fe))
		fields = append(fields, fe.Field)
		msgs = append(msgs, fe.Message(func(f string) string { return "<" + f + ">" }))
	}
	assert.Equal(t, []string{"Stream.Storage", "Retry.NakMax", "Partitions.Member"}, fields)
	assert.Equal(t, []string{
		`must be "file" or "memory", not "Retry.NakInitial"`,
		"must be at least <Retry.NakInitial>, not 1ms",
		`"m" is not in <Partitions.Members>`,
	}, msgs, "a value that looks like a field is not renamed")
}

func TestPartitionsValidate(t *testing.T) {
	tests := []struct {
		name string
		p    PartitionsConfig
		want []string // problems, each starting with its field
	}{
		{"single replica ignores the rest", PartitionsConfig{Mode: "nonsense"}, nil},
		{"static", PartitionsConfig{Count: 6, Mode: PartitionStatic, Group: "g", Member: "b", Members: []string{"a", "b", "c"}}, nil},
		{"elastic", PartitionsConfig{Count: 6, Mode: PartitionElastic, Group: "g", Member: "host-1"}, nil},
		{"negative count", PartitionsConfig{Count: -1, Mode: PartitionElastic, Group: "g", Member: "m"},
			[]string{"Partitions.Count: must be between 0 (a single replica) and 1024, not -1"}},
		{"bad names", PartitionsConfig{Count: 2, Mode: PartitionElastic, Group: "a.b", Member: "host.example.com"},
			[]string{`Partitions.Group: must be a name of at most 64 letters, digits, '-' or '_', not "a.b"`,
				`Partitions.Member: must be a name of at most 64 letters, digits, '-' or '_', not "host.example.com"`}},
		{"no member", PartitionsConfig{Count: 2, Mode: PartitionElastic, Group: "g"},
			[]string{"Partitions.Member: must be set when Partitions.Count is not 0 (the daemon defaults it to the host name)"}},
		{"unknown mode", PartitionsConfig{Count: 2, Mode: "dynamic", Group: "g", Member: "m"},
			[]string{`Partitions.Mode: must be "static" or "elastic", not "dynamic"`}},
		{"static without members", PartitionsConfig{Count: 2, Mode: PartitionStatic, Group: "g", Member: "m"},
			[]string{"Partitions.Members: must list every member of the static group (this replica's Partitions.Member among them)"}},
		{"static member not listed", PartitionsConfig{Count: 2, Mode: PartitionStatic, Group: "g", Member: "m", Members: []string{"a", "b"}},
			[]string{`Partitions.Member: "m" is not in Partitions.Members`}},
		{"static members beyond partitions", PartitionsConfig{Count: 2, Mode: PartitionStatic, Group: "g", Member: "a", Members: []string{"a", "b", "a"}},
			[]string{`Partitions.Members: names "a" twice`,
				"Partitions.Members: has 3 members for 2 partitions: a member without a partition would never receive a message"}},
		{"elastic with members", PartitionsConfig{Count: 2, Mode: PartitionElastic, Group: "g", Member: "m", Members: []string{"m"}},
			[]string{"Partitions.Members: is only used in static mode: elastic members join the group by themselves"}},
		{"failover at the lower bound", PartitionsConfig{Count: 2, Mode: PartitionElastic, Group: "g", Member: "m", FailoverAfter: 2 * time.Second}, nil},
		{"failover at the upper bound", PartitionsConfig{Count: 2, Mode: PartitionElastic, Group: "g", Member: "m", FailoverAfter: 10 * time.Minute}, nil},
		{"failover that would flap", PartitionsConfig{Count: 2, Mode: PartitionElastic, Group: "g", Member: "m", FailoverAfter: 1999 * time.Millisecond},
			[]string{"Partitions.FailoverAfter: must be between 2s and 10m0s, not 1.999s: replicas beat every quarter of it, " +
				"and a shorter one would take a replica that paused for a second for dead and move its partitions back and forth"}},
		{"failover too long", PartitionsConfig{Count: 2, Mode: PartitionStatic, Group: "g", Member: "m", Members: []string{"m"}, FailoverAfter: time.Hour},
			[]string{"Partitions.FailoverAfter: must be between 2s and 10m0s, not 1h0m0s: replicas beat every quarter of it, " +
				"and a shorter one would take a replica that paused for a second for dead and move its partitions back and forth"}},
		{"failover negative", PartitionsConfig{Count: 2, Mode: PartitionStatic, Group: "g", Member: "m", Members: []string{"m"}, FailoverAfter: -time.Second},
			[]string{"Partitions.FailoverAfter: must be between 2s and 10m0s, not -1s: replicas beat every quarter of it, " +
				"and a shorter one would take a replica that paused for a second for dead and move its partitions back and forth"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.p.FailoverAfter == 0 { // the cases above that are not about it take the default
				tt.p.FailoverAfter = cfg.Partitions.FailoverAfter
			}
			cfg.Partitions = tt.p
			err := cfg.Validate()
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.want, fieldProblems(t, err))
		})
	}
}

func TestCatalogValidate(t *testing.T) {
	assert.Equal(t, catalog.ModeOff, DefaultConfig().Catalog.Mode)
	tests := []struct {
		name string
		c    catalog.Config
		want []string // problems, each starting with its field
	}{
		{"soft, events with and without declarations", catalog.Config{Mode: catalog.ModeSoft, Events: map[string]catalog.Event{
			"order shipped.v2": {Schema: "s.json", IdempotencyFields: []string{"a"}},
			"declared only":    {},
		}}, nil},
		{"strict", catalog.Config{Mode: catalog.ModeStrict}, nil},
		{"unknown mode", catalog.Config{Mode: "loud"},
			[]string{`Catalog.Mode: must be "off", "soft" or "strict", not "loud"`}},
		{"empty mode", catalog.Config{},
			[]string{`Catalog.Mode: must be "off", "soft" or "strict", not ""`}},
		{"names the API refuses", catalog.Config{Mode: catalog.ModeOff, Events: map[string]catalog.Event{
			"":                       {},
			"café":                   {},
			strings.Repeat("e", 121): {},
			" padded ":               {},
			"order_shipped":          {IdempotencyFields: []string{"orderId", ""}},
		}}, []string{
			`Catalog.Events: "" is not an event name the API accepts (empty): a name is 1 to 120 characters of printable ASCII`,
			`Catalog.Events: " padded " has spaces around it: tracks are matched by their trimmed name, "padded"`,
			`Catalog.Events: "café" is not an event name the API accepts (non ascii): a name is 1 to 120 characters of printable ASCII`,
			`Catalog.Events: "` + strings.Repeat("e", 121) + `" is not an event name the API accepts (too long): a name is 1 to 120 characters of printable ASCII`,
			`Catalog.Events: "order_shipped" lists an empty name in its idempotency fields`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Catalog = tt.c
			err := cfg.Validate()
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.want, fieldProblems(t, err))
		})
	}
}
