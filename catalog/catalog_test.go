package catalog_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/catalog"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// props decodes the properties of a track body as the bridge does, so that the values have
// the decoder's types (numbers as json.Number).
func props(t *testing.T, properties string) map[string]any {
	t.Helper()
	tr, err := schema.DecodeTrack([]byte(`{"eventName":"e","properties":` + properties + `}`))
	require.NoError(t, err)
	return tr.Properties
}

// sdkKey is the SDKs' derived key, computed here from its definition: the first 32 hex
// characters of the SHA-256 of input, which the test spells out.
func sdkKey(input string) string {
	sum := sha256.Sum256([]byte(input))
	return hex.EncodeToString(sum[:])[:32]
}

func load(t *testing.T, mode catalog.Mode) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Load(catalog.Config{Mode: mode, Events: map[string]catalog.Event{
		"order_shipped":   {Schema: "testdata/order_shipped.json", IdempotencyFields: []string{"orderId", "carrier"}},
		"plan_changed":    {Schema: "testdata/draft7.json"},
		"user_signed_up":  {},                                      // declared, any properties, no key
		"order shipped.2": {IdempotencyFields: []string{"b", "a"}}, // a name with a space and a dot
	}})
	require.NoError(t, err)
	return c
}

const validOrder = `{"orderId":"ORD-1","carrier":"FedEx","amount":42,"quantity":3,"email":"a@example.com",
	"code":"ABC","address":{"city":"Lyon","zip":"69001"},"items":[{"sku":"S1","price":19.99},{"sku":"S2","price":1}]}`

func TestCheckPasses(t *testing.T) {
	for _, mode := range []catalog.Mode{catalog.ModeSoft, catalog.ModeStrict} {
		c := load(t, mode)
		assert.Equal(t, mode, c.Mode())
		for _, tc := range []struct{ event, properties string }{
			{"order_shipped", validOrder},
			{"order_shipped", `{"orderId":"x","carrier":"UPS","amount":0.5}`},
			{"order_shipped", `{"orderId":"x","carrier":"UPS","amount":1e3,"quantity":100.0}`},
			{"plan_changed", `{"plan":"pro"}`},
			{"user_signed_up", `{"anything":[1,{"b":null}]}`},
			{"order shipped.2", `{}`},
		} {
			assert.Nil(t, c.Check(tc.event, props(t, tc.properties)), "%s %s %s", mode, tc.event, tc.properties)
		}
	}
}

func TestCheckNilProperties(t *testing.T) {
	c := load(t, catalog.ModeStrict)
	assert.Nil(t, c.Check("user_signed_up", nil))
	v := c.Check("order_shipped", nil)
	require.NotNil(t, v, "nil properties are {}, which misses the required ones")
	assert.Equal(t, "/amount: is required and missing (required); /carrier: is required and missing (required); "+
		"/orderId: is required and missing (required)", v.Detail)
}

func TestCheckViolations(t *testing.T) {
	c := load(t, catalog.ModeStrict)
	for _, tc := range []struct {
		name, event, properties, detail string
	}{
		{"integer where a string is wanted", "order_shipped",
			`{"orderId":4521,"carrier":"FedEx","amount":1}`,
			"/orderId: is number, must be string (type)"},
		{"decimal where an integer is wanted", "order_shipped",
			`{"orderId":"x","carrier":"FedEx","amount":1,"quantity":2.5}`,
			"/quantity: is number, must be integer (type)"},
		{"bounds", "order_shipped",
			`{"orderId":"","carrier":"DHL","amount":-0.01,"quantity":101}`,
			"/amount: must be >= 0 (minimum); /carrier: is not one of the allowed values (enum); " +
				"/orderId: must be at least 1 characters long (minLength); /quantity: must be <= 100 (maximum)"},
		{"format and pattern", "order_shipped",
			`{"orderId":"x","carrier":"UPS","amount":1,"email":"jane.doe-at-example.com","code":"secret-code"}`,
			`/code: does not match the pattern "^[A-Z]{3}$" (pattern); /email: is not a valid email (format)`},
		{"nested object", "order_shipped",
			`{"orderId":"x","carrier":"UPS","amount":1,"address":{"zip":"12345678901","street":"1 rue de la Paix"}}`,
			"/address/city: is required and missing (required); /address/street: is not allowed (additionalProperties); " +
				"/address/zip: must be at most 10 characters long (maxLength)"},
		{"array items", "order_shipped",
			`{"orderId":"x","carrier":"UPS","amount":1,"items":[{"sku":"a","price":1.5},{"sku":7,"price":0},{"price":1.001}]}`,
			"/items/1/price: must be > 0 (exclusiveMinimum); /items/1/sku: is number, must be string (type); " +
				"/items/2/price: must be a multiple of 0.01 (multipleOf); /items/2/sku: is required and missing (required)"},
		{"empty array", "order_shipped",
			`{"orderId":"x","carrier":"UPS","amount":1,"items":[]}`,
			"/items: must have at least 1 items (minItems)"},
		{"through a $ref to another file, draft-07", "plan_changed",
			`{"plan":"enterprise"}`,
			"/plan: is not one of the allowed values (enum)"},
		{"property names are escaped as JSON pointers and ASCII", "order_shipped",
			`{"orderId":"x","carrier":"UPS","amount":1,"address":{"city":"x","a/b~c":1,"é\n":2}}`,
			`/address/\u00e9\u000a: is not allowed (additionalProperties); /address/a~1b~0c: is not allowed (additionalProperties)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := props(t, tc.properties)
			v := c.Check(tc.event, p)
			require.NotNil(t, v)
			assert.Equal(t, tc.event, v.Event)
			assert.False(t, v.Undeclared)
			assert.Equal(t, tc.detail, v.Detail)
			assert.Equal(t, `event "`+tc.event+`": properties do not match its schema: `+tc.detail, v.Error())
			assertNoValues(t, v.Detail, p)
		})
	}
}

// assertNoValues checks that no string or number of properties appears in detail.
func assertNoValues(t *testing.T, detail string, properties any) {
	t.Helper()
	switch v := properties.(type) {
	case map[string]any:
		for _, x := range v {
			assertNoValues(t, detail, x)
		}
	case []any:
		for _, x := range v {
			assertNoValues(t, detail, x)
		}
	case string:
		if len(v) > 1 { // a one-letter value shows up in any text
			assert.NotContains(t, detail, v, "a property's value")
		}
	case interface{ String() string }: // json.Number
		if s := v.String(); len(s) > 1 {
			assert.NotContains(t, detail, s, "a property's value")
		}
	}
}

func TestCheckDetailIsBounded(t *testing.T) {
	c := load(t, catalog.ModeStrict)
	var b strings.Builder
	b.WriteString(`{"orderId":"x","carrier":"UPS","amount":1,"items":[`)
	for i := range 200 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"sku":1,"price":-1}`)
	}
	b.WriteString(`]}`)
	v := c.Check("order_shipped", props(t, b.String()))
	require.NotNil(t, v)
	assert.LessOrEqual(t, len(v.Detail), catalog.MaxDetail)
	assert.Regexp(t, `^/items/0/price: must be > 0 \(exclusiveMinimum\); .*; and \d+ more$`, v.Detail)

	// A single failure longer than the bound is cut.
	long := strings.Repeat("k", 2*catalog.MaxDetail)
	v = c.Check("order_shipped", props(t, `{"orderId":"x","carrier":"UPS","amount":1,"address":{"city":"x","`+long+`":1}}`))
	require.NotNil(t, v)
	assert.Len(t, v.Detail, catalog.MaxDetail)
	assert.True(t, strings.HasPrefix(v.Detail, "/address/kkk"))
	assert.True(t, strings.HasSuffix(v.Detail, "kkk..."))
}

func TestCheckUndeclared(t *testing.T) {
	for _, mode := range []catalog.Mode{catalog.ModeSoft, catalog.ModeStrict} {
		v := load(t, mode).Check("order_cancelled", props(t, `{"a":1}`))
		require.NotNil(t, v, mode)
		assert.Equal(t, &catalog.Violation{Event: "order_cancelled", Undeclared: true,
			Detail: "the event is not declared in catalog.events"}, v)
		assert.Equal(t, `event "order_cancelled": the event is not declared in catalog.events`, v.Error())
	}
}

func TestModeOffChecksNothing(t *testing.T) {
	for _, c := range []*catalog.Catalog{load(t, catalog.ModeOff), load(t, ""), nil} {
		assert.Equal(t, catalog.ModeOff, c.Mode())
		assert.Nil(t, c.Check("order_cancelled", nil), "undeclared")
		assert.Nil(t, c.Check("order_shipped", props(t, `{"orderId":1}`)), "failing its schema")
	}
}

func TestEmptyCatalog(t *testing.T) {
	c, err := catalog.Load(catalog.Config{})
	require.NoError(t, err)
	assert.Equal(t, catalog.ModeOff, c.Mode())
	assert.Nil(t, c.Check("x", nil))
	_, ok := c.Key("x", map[string]any{"a": "b"})
	assert.False(t, ok)

	c, err = catalog.Load(catalog.Config{Mode: catalog.ModeStrict})
	require.NoError(t, err)
	assert.NotNil(t, c.Check("x", nil), "strict with no events: every event is undeclared")
}

func TestKey(t *testing.T) {
	for _, mode := range []catalog.Mode{catalog.ModeOff, catalog.ModeSoft, catalog.ModeStrict} {
		c := load(t, mode)
		for _, tc := range []struct {
			name, event, properties string
			input                   string // what the SDK hashes; "" for no key
		}{
			{"strings as they are, fields sorted", "order_shipped", `{"orderId":"ORD-1","carrier":"FedEx","other":1}`,
				"order_shipped|carrier=FedEx&orderId=ORD-1"},
			{"an integer as its JSON", "order_shipped", `{"orderId":4521,"carrier":"FedEx"}`,
				"order_shipped|carrier=FedEx&orderId=4521"},
			{"a decimal as its JSON", "order_shipped", `{"orderId":12.50,"carrier":"ups"}`,
				"order_shipped|carrier=ups&orderId=12.5"},
			{"declared fields sorted, not as listed", "order shipped.2", `{"a":1,"b":"x"}`,
				"order shipped.2|a=1&b=x"},
			{"a missing field", "order_shipped", `{"orderId":"ORD-1"}`, ""},
			{"a null field", "order_shipped", `{"orderId":"ORD-1","carrier":null}`, ""},
			{"no declared fields", "user_signed_up", `{"orderId":"ORD-1","carrier":"FedEx"}`, ""},
			{"an undeclared event", "order_cancelled", `{"orderId":"ORD-1","carrier":"FedEx"}`, ""},
		} {
			key, ok := c.Key(tc.event, props(t, tc.properties))
			if tc.input == "" {
				assert.False(t, ok, "%s: %s", mode, tc.name)
				assert.Empty(t, key)
				continue
			}
			assert.True(t, ok, "%s: %s", mode, tc.name)
			assert.Equal(t, sdkKey(tc.input), key, "%s: %s", mode, tc.name)
		}
	}
	// Pinned, so that the helper cannot drift: printf '%s' 'checkout|a=1&b=x' | sha256sum.
	assert.Equal(t, "e33e6a2d7a09db25990c88361b926a42", sdkKey("checkout|a=1&b=x"))
	c, err := catalog.Load(catalog.Config{Events: map[string]catalog.Event{"checkout": {IdempotencyFields: []string{"b", "a"}}}})
	require.NoError(t, err)
	key, ok := c.Key("checkout", props(t, `{"a":1,"b":"x"}`))
	require.True(t, ok)
	assert.Equal(t, "e33e6a2d7a09db25990c88361b926a42", key)

	var none *catalog.Catalog
	_, ok = none.Key("checkout", props(t, `{"a":1,"b":"x"}`))
	assert.False(t, ok)
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.json")
	require.NoError(t, os.WriteFile(big, []byte(`{"description":"`+strings.Repeat("x", catalog.MaxSchemaBytes)+`"}`), 0o600))
	empty := filepath.Join(dir, "empty.json")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))

	for _, tc := range []struct {
		name, file, msg string
	}{
		{"missing file", "testdata/nope.json", "file not found"},
		{"a directory", "testdata", "cannot read the file: is a directory"},
		{"too large", big, "is larger than 1048576 bytes (1 MiB), the most a schema file may hold"},
		{"empty", empty, "not JSON: the file is empty"},
		{"not JSON", "testdata/not_json.json", "not JSON: line 4, column 29: invalid character ',' looking for beginning of object key string"},
		{"not a valid schema", "testdata/invalid_schema.json",
			`not a valid JSON Schema: at "/properties/a/type": value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string'`},
		{"a reference that cannot be read", "testdata/bad_ref.json", "its reference "},
		{"a reference to the network", "testdata/remote_ref.json", "its reference https://schemas.example.com/a.json: only local files can be referenced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := catalog.Load(catalog.Config{Mode: catalog.ModeSoft, Events: map[string]catalog.Event{
				"ok": {Schema: "testdata/order_shipped.json"}, "broken one": {Schema: tc.file},
			}})
			require.Error(t, err)
			assert.Nil(t, c)
			var le *catalog.LoadError
			require.ErrorAs(t, err, &le)
			assert.Equal(t, "broken one", le.Event)
			assert.Equal(t, tc.file, le.File)
			assert.Contains(t, le.Err.Error(), tc.msg)
			assert.True(t, strings.HasPrefix(err.Error(), `event "broken one": schema "`+tc.file+`": `+tc.msg), err.Error())
			assert.NotContains(t, err.Error(), "\n")
		})
	}

	t.Run("every broken schema is reported", func(t *testing.T) {
		_, err := catalog.Load(catalog.Config{Events: map[string]catalog.Event{
			"a": {Schema: "testdata/nope.json"}, "b": {Schema: "testdata/not_json.json"}, "c": {Schema: "testdata/draft7.json"},
		}})
		var j interface{ Unwrap() []error }
		require.ErrorAs(t, err, &j)
		require.Len(t, j.Unwrap(), 2)
		assert.Contains(t, j.Unwrap()[0].Error(), `event "a"`)
		assert.Contains(t, j.Unwrap()[1].Error(), `event "b"`)
	})

	t.Run("unknown mode", func(t *testing.T) {
		_, err := catalog.Load(catalog.Config{Mode: "loud"})
		assert.EqualError(t, err, `catalog mode must be "off", "soft" or "strict", not "loud"`)
	})
}

// TestLoadSharedSchema checks that events may share a schema file, and that one event's schema
// may be another's reference.
func TestLoadSharedSchema(t *testing.T) {
	c, err := catalog.Load(catalog.Config{Mode: catalog.ModeStrict, Events: map[string]catalog.Event{
		"a": {Schema: "testdata/draft7.json"}, "b": {Schema: "testdata/draft7.json"}, "c": {Schema: "testdata/defs/plan.json"},
	}})
	require.NoError(t, err)
	assert.Nil(t, c.Check("a", props(t, `{"plan":"free"}`)))
	assert.NotNil(t, c.Check("b", props(t, `{"plan":"gold"}`)))
	v := c.Check("c", props(t, `{"plan":"free"}`))
	require.NotNil(t, v)
	assert.Equal(t, "(properties): is object, must be string (type)", v.Detail)
}

// TestCheckGoValues checks properties a Go program builds rather than the decoder: types the
// validator does not take are validated as their JSON.
func TestCheckGoValues(t *testing.T) {
	c := load(t, catalog.ModeStrict)
	type item struct {
		SKU   string  `json:"sku"`
		Price float64 `json:"price"`
	}
	assert.Nil(t, c.Check("order_shipped", map[string]any{
		"orderId": "x", "carrier": "UPS", "amount": 3, "quantity": int64(2),
		"items": []item{{SKU: "a", Price: 1.5}}, "address": map[string]string{"city": "Lyon"},
	}))
	v := c.Check("order_shipped", map[string]any{
		"orderId": "x", "carrier": "UPS", "amount": float32(-1), "items": []item{{SKU: "a", Price: -2}},
	})
	require.NotNil(t, v)
	assert.Equal(t, "/amount: must be >= 0 (minimum); /items/0/price: must be > 0 (exclusiveMinimum)", v.Detail)
}
