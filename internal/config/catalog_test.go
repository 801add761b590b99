package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/catalog"
)

// schemaFile writes a JSON Schema at dir/rel and returns its path.
func schemaFile(t *testing.T, dir, rel, content string) string {
	t.Helper()
	path := filepath.Join(dir, rel)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

const objectSchema = `{"type": "object", "required": ["orderId"]}`

func TestCatalogDefaults(t *testing.T) {
	cfg := Default()
	assert.Equal(t, catalog.Config{Mode: catalog.ModeOff}, cfg.Bridge.Catalog)
	out, err := cfg.YAML()
	require.NoError(t, err)
	assert.Contains(t, string(out), "\ncatalog:\n  mode: off\n  events: {}\n")
}

func TestLoadCatalog(t *testing.T) {
	dir := t.TempDir()
	shipped := schemaFile(t, dir, "schemas/order_shipped.json", objectSchema)
	absolute := schemaFile(t, t.TempDir(), "elsewhere.json", objectSchema)
	fromEnv := schemaFile(t, dir, "env/paid.json", objectSchema)
	t.Setenv("NB_TEST_SCHEMA_DIR", "env")
	t.Setenv("NB_TEST_FIELDS", "invoiceId, amount")
	t.Setenv("NB_TEST_FIELD", "currency")
	path := filepath.Join(dir, "conf.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
catalog:
  mode: strict
  events:
    order_shipped:
      schema: schemas/order_shipped.json
      idempotencyFields: [orderId, carrier]
    "order.shipped v2":
      schema: `+absolute+`
      idempotencyFields:
        - orderId
        - ${NB_TEST_FIELD}
        - ${NB_TEST_UNSET}
    invoice_paid:
      schema: ${NB_TEST_SCHEMA_DIR}/paid.json
      idempotencyFields: ${NB_TEST_FIELDS}
    "key: with a colon":
    declared_only: {}
`), 0o600))
	// Relative paths follow the file, not the directory the daemon runs in.
	require.NotEqual(t, dir, must(os.Getwd()))

	cfg, err := Load(path, Options{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, catalog.Config{Mode: catalog.ModeStrict, Events: map[string]catalog.Event{
		"order_shipped":     {Schema: shipped, IdempotencyFields: []string{"orderId", "carrier"}},
		"order.shipped v2":  {Schema: absolute, IdempotencyFields: []string{"orderId", "currency"}},
		"invoice_paid":      {Schema: fromEnv, IdempotencyFields: []string{"invoiceId", "amount"}},
		"key: with a colon": {},
		"declared_only":     {},
	}}, cfg.Bridge.Catalog)

	out, err := cfg.YAML()
	require.NoError(t, err)
	assert.Contains(t, string(out), `
catalog:
  mode: strict
  events:
    declared_only: {}
    invoice_paid:
      schema: `+fromEnv+`
      idempotencyFields: [invoiceId, amount]
    'key: with a colon': {}
    order.shipped v2:
      schema: `+absolute+`
      idempotencyFields: [orderId, currency]
    order_shipped:
      schema: `+shipped+`
      idempotencyFields: [orderId, carrier]
`)
	back := Default()
	_, _, errs := back.decode(out, func(string) (string, bool) { return "", false })
	require.Empty(t, errs)
	assert.Equal(t, cfg.Bridge.Catalog, back.Bridge.Catalog, "check's output reads back")

	// What check prints loads from anywhere: its schema paths are absolute.
	printed := filepath.Join(t.TempDir(), "printed.yaml")
	require.NoError(t, os.WriteFile(printed, out, 0o600))
	again, err := Load(printed, Options{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, cfg.Bridge.Catalog, again.Bridge.Catalog)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestLoadCatalogProblems(t *testing.T) {
	dir := t.TempDir()
	schemaFile(t, dir, "ok.json", objectSchema)
	schemaFile(t, dir, "broken.json", "{\n  \"type\": \"object\",\n}\n")
	path := filepath.Join(dir, "conf.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`catalog:
  mode: loud
  events:
    order_shipped:
      schema: ok.json
      idempotencyFeilds: [orderId]
    order_paid: paid.json
    " padded":
      schema: missing.json
    "order shipped.v2":
      schema: broken.json
      schema: ok.json
      color: blue
    order_shipped:
      schema: ok.json
    user_signed_up:
      idempotencyFields:
        - {a: b}
`), 0o600))
	_, err := Load(path, Options{DryRun: true})
	assert.Equal(t, []string{
		`line 2: catalog.mode: must be "off", "soft" or "strict", not "loud"`,
		`line 3: catalog.events: " padded" has spaces around it: tracks are matched by their trimmed name, "padded"`,
		`line 6: unknown key "catalog.events.order_shipped.idempotencyFeilds" (did you mean "catalog.events.order_shipped.idempotencyFields"?)`,
		`line 7: catalog.events.order_paid: must be a mapping with schema and idempotencyFields, not a single value`,
		`line 9: catalog.events." padded".schema: "` + filepath.Join(dir, "missing.json") + `": file not found`,
		`line 11: catalog.events."order shipped.v2".schema: "` + filepath.Join(dir, "broken.json") + `": not JSON: line 3, column 1: invalid character '}' looking for beginning of object key string`,
		`line 12: key "catalog.events.\"order shipped.v2\".schema" appears twice (first on line 11)`,
		`line 13: unknown key "catalog.events.\"order shipped.v2\".color"`,
		`line 14: event "order_shipped" appears twice in catalog.events (first on line 4)`,
		`line 18: catalog.events.user_signed_up.idempotencyFields: must be a list of single values, not of a mapping`,
	}, problems(t, err))
}

func TestLoadCatalogEventsNotAMapping(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"catalog:\n  events: order_shipped\n", "line 2: catalog.events: must be a mapping of event names to their schema and idempotencyFields"},
		{"catalog:\n  events:\n    - order_shipped\n", "line 2: catalog.events: must be a mapping of event names to their schema and idempotencyFields"},
		{"catalog:\n  events:\n    [a]: {}\n", `line 3: event names in catalog.events must be plain names`},
		{"catalog:\n  mode: [soft]\n", "line 2: catalog.mode: must be a single value, not a list"},
		{"catalog:\n  modes: soft\n", `line 2: unknown key "catalog.modes" (did you mean "catalog.mode"?)`},
	} {
		_, err := Load(writeFile(t, "c.yaml", tc.yaml), Options{DryRun: true})
		assert.Equal(t, []string{tc.want}, problems(t, err), tc.yaml)
	}
}

// TestLoadListForms checks that a list key takes a YAML list as well as one comma-separated
// value.
func TestLoadListForms(t *testing.T) {
	cfg, err := Load(writeFile(t, "c.yaml", `partitions:
  count: 3
  member: b
  members:
    - a
    - b
`), Options{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, cfg.Bridge.Partitions.Members)
}

// TestExampleCatalogSection loads the catalog example that config.example.yaml gives in
// comments, so that what a user uncomments works.
func TestExampleCatalogSection(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(data), "\n  events:\n")
	require.True(t, ok, "the example has catalog.events")
	var section strings.Builder
	section.WriteString("catalog:\n  mode: strict\n  events:\n")
	for _, line := range strings.Split(after, "\n") {
		rest, ok := strings.CutPrefix(line, "    # ")
		if !ok {
			break
		}
		section.WriteString("    " + rest + "\n")
	}
	dir := t.TempDir()
	schema := schemaFile(t, dir, "schemas/order_shipped.json", objectSchema)
	path := filepath.Join(dir, "example.yaml")
	require.NoError(t, os.WriteFile(path, []byte(section.String()), 0o600))

	cfg, err := Load(path, Options{DryRun: true})
	require.NoError(t, err, section.String())
	assert.Equal(t, map[string]catalog.Event{
		"order_shipped":  {Schema: schema, IdempotencyFields: []string{"orderId", "carrier"}},
		"user signed up": {},
	}, cfg.Bridge.Catalog.Events)
}
