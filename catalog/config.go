package catalog

// Mode says what the catalog does with a track that names an undeclared event or whose
// properties fail their event's schema; it is spelled in config files as its value.
type Mode string

// Catalog modes.
const (
	ModeOff    Mode = "off"    // no checks (declared idempotency fields still derive keys)
	ModeSoft   Mode = "soft"   // the track is sent all the same; the violation is counted and logged
	ModeStrict Mode = "strict" // the track is refused (dead-lettered schema_mismatch)
)

// Event is one declared event.
type Event struct {
	// Schema is the path of a JSON Schema file for the event's properties; empty: any properties.
	Schema string
	// IdempotencyFields are the properties an event's idempotency key is derived from when the
	// track brings none (notifizz.DeriveIdempotencyKey); empty: the bridge's own key.
	IdempotencyFields []string
}

// Config is the catalog as a config file gives it: catalog.mode and catalog.events.
type Config struct {
	Mode   Mode
	Events map[string]Event // by event name
}
