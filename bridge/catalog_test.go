package bridge

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/notifizz-bridge/notifizz-bridge/catalog"
	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
)

// orderPaidCatalog declares order_paid with a schema for its properties and the fields its key
// is derived from, in mode.
func orderPaidCatalog(t *testing.T, mode catalog.Mode) catalog.Config {
	file := filepath.Join(t.TempDir(), "order_paid.json")
	require.NoError(t, os.WriteFile(file, []byte(`{
		"type": "object",
		"required": ["orderId"],
		"properties": {"orderId": {"type": "string"}, "amount": {"type": "number", "minimum": 0}}
	}`), 0o600))
	return catalog.Config{Mode: mode, Events: map[string]catalog.Event{
		"order_paid": {Schema: file, IdempotencyFields: []string{"orderId", "amount"}},
	}}
}

// sdkKey is the key the SDKs 2.x derive, computed here from its definition:
// the first 32 hex characters of sha256(eventName + "|" + fields).
func sdkKey(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:32]
}

func TestCatalogStrictDeadLettersAndDerivesKeys(t *testing.T) {
	e := newEnv(t)
	e.cfg.API = APIv2
	e.cfg.Catalog = orderPaidCatalog(t, catalog.ModeStrict)
	r := e.start(nil)

	e.publishRaw("notifizz.track.ok-1", []byte(`{"eventName":" order_paid","properties":{"orderId":"ORD-9","amount":12.50}}`), nil)
	e.publishRaw("notifizz.track.ok-2", []byte(`{"eventName":"order_paid","properties":{"orderId":"ORD-10"},"idempotencyKey":"own-key"}`), nil)
	e.publishRaw("notifizz.track.ok-3", []byte(`{"eventName":"order_paid","properties":{"orderId":"ORD-11"}}`), nil)
	bad := e.publishRaw("notifizz.track.bad", []byte(`{"eventName":"order_paid","properties":{"orderId":"ORD-PRIVATE-77","amount":-3}}`), nil)
	undeclared := e.publishRaw("notifizz.track.undeclared", []byte(`{"eventName":"mystery","properties":{}}`), nil)

	calls := e.api.waitCalls(t, 3)
	letters := e.deadLetters(2)
	e.settled(e.cfg)
	keys := map[any]string{}
	for _, c := range calls {
		keys[c.Body["properties"].(map[string]any)["orderId"]] = c.idempotencyKey()
	}
	assert.Equal(t, map[any]string{
		"ORD-9":  sdkKey("order_paid|amount=12.5&orderId=ORD-9"),
		"ORD-10": "own-key",
		"ORD-11": deriveKey("track", e.cfg.Stream.Name, "ok-3", 3),
	}, keys, "the SDK's key from the declared fields; the track's own key first; none when a field is missing")

	bySeq := map[string]deadLetter{}
	for _, l := range letters {
		bySeq[l.Header.Get(deadletter.HeaderOriginalSequence)] = l
		assert.Equal(t, "schema_mismatch", l.Header.Get(deadletter.HeaderReason))
	}
	badErr := bySeq[seqStr(bad)].Header.Get(deadletter.HeaderError)
	assert.Contains(t, badErr, `/amount`)
	assert.NotContains(t, badErr, "ORD-PRIVATE-77", "no property value in the error")
	assert.Contains(t, bySeq[seqStr(undeclared)].Header.Get(deadletter.HeaderError), `"mystery"`)
	assert.Equal(t, 1.0, r.counter(t, "notifizz_bridge_catalog_violations_total", map[string]string{"problem": "schema", "action": "dead_lettered"}))
	assert.Equal(t, 1.0, r.counter(t, "notifizz_bridge_catalog_violations_total", map[string]string{"problem": "undeclared", "action": "dead_lettered"}))
}

func TestCatalogSoftSendsAndCounts(t *testing.T) {
	e := newEnv(t)
	e.cfg.Catalog = orderPaidCatalog(t, catalog.ModeSoft)
	r := e.start(nil)
	e.publishRaw("notifizz.track.bad", []byte(`{"eventName":"order_paid","properties":{"amount":"12"}}`), nil)
	e.publishRaw("notifizz.track.undeclared", []byte(`{"eventName":"mystery","properties":{}}`), nil)
	e.publishRaw("notifizz.commit.bad", nil, nil)
	e.publishRaw("notifizz.commit.undeclared", nil, nil)
	e.api.waitCalls(t, 2)
	e.settled(e.cfg)
	assert.Zero(t, e.dlqCount())
	assert.Equal(t, 1.0, r.counter(t, "notifizz_bridge_catalog_violations_total", map[string]string{"problem": "schema", "action": "sent"}))
	assert.Equal(t, 1.0, r.counter(t, "notifizz_bridge_catalog_violations_total", map[string]string{"problem": "undeclared", "action": "sent"}))
}
