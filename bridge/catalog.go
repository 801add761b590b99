package bridge

import (
	"strings"
	"time"

	"github.com/notifizz-bridge/notifizz-bridge/catalog"
	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
)

// catalogWarnEvery spaces the warnings of the catalog's soft mode.
const catalogWarnEvery = 10 * time.Second

// applyCatalog checks a decoded track against the event catalog (catalog.mode) and gives it the
// key the SDKs derive from its event's idempotencyFields when it brings none. In strict mode a
// violation is the error that dead-letters the track (schema_mismatch); in soft mode the track
// is sent, and the violation counted and logged now and then.
func (b *Bridge) applyCatalog(in *inbound) error {
	t := in.track
	// Matched by the trimmed name, as the v2 API receives it (checkTrackV2) and the catalog's
	// names are written (Config.Validate).
	name := strings.TrimSpace(t.EventName)
	if v := b.catalog.Check(name, t.Properties); v != nil {
		problem := "schema"
		if v.Undeclared {
			problem = "undeclared"
		}
		if b.catalog.Mode() == catalog.ModeStrict {
			b.m.catalog.WithLabelValues(problem, "dead_lettered").Inc()
			return refused(deadletter.ReasonSchemaMismatch, "", v.Error())
		}
		b.m.catalog.WithLabelValues(problem, "sent").Inc()
		b.catalogWarn.Do(func() {
			b.log.Warn("a track fails the event catalog; sent all the same (catalog.mode: soft)",
				"event_key", in.key, "stream_seq", in.seq, "problem", v.Error(),
				"note", "one such warning every "+catalogWarnEvery.String()+"; notifizz_bridge_catalog_violations_total counts them all")
		})
	}
	if t.IdempotencyKey == "" && in.headerKey == "" {
		if key, ok := b.catalog.Key(name, t.Properties); ok {
			in.catalogKey = key
		}
	}
	return nil
}
