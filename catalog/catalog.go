package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/goccy/go-json"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// Catalog is a loaded catalog: its mode, and each declared event with its compiled schema and
// idempotency fields. It is immutable, so it is safe for concurrent use. A nil *Catalog is the
// empty catalog in mode off.
type Catalog struct {
	mode   Mode
	events map[string]event // by event name
}

// event is one declared event, ready to check and derive keys with.
type event struct {
	schema *jsonschema.Schema // nil: any properties
	fields []string           // empty: no derived key
}

// Load compiles the schema of every event in cfg (Schema is a file path, already resolved by
// whoever read the config) and returns the catalog. An empty Mode is ModeOff. Every schema that
// cannot be used is reported, together (errors.Join), each as a *LoadError naming the event and
// the file; an unknown mode is reported alone. Schemas are compiled whatever the mode, so that a
// broken file shows before the mode is switched on.
func Load(cfg Config) (*Catalog, error) {
	mode := cfg.Mode
	switch mode {
	case "":
		mode = ModeOff
	case ModeOff, ModeSoft, ModeStrict:
	default:
		return nil, fmt.Errorf("catalog mode must be %q, %q or %q, not %q", ModeOff, ModeSoft, ModeStrict, mode)
	}
	c := &Catalog{mode: mode, events: make(map[string]event, len(cfg.Events))}
	if len(cfg.Events) == 0 {
		return c, nil
	}
	compiled := make(map[string]*jsonschema.Schema) // by file: events may share a schema
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(cfg.Events)) {
		decl := cfg.Events[name]
		ev := event{fields: slices.Clone(decl.IdempotencyFields)}
		if decl.Schema != "" {
			sch, ok := compiled[decl.Schema]
			if !ok {
				var err error
				if sch, err = compile(decl.Schema); err != nil {
					errs = append(errs, &LoadError{Event: name, File: decl.Schema, Err: err})
					continue
				}
				compiled[decl.Schema] = sch
			}
			ev.schema = sch
		}
		c.events[name] = ev
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// LoadError is why the schema of one event cannot be used.
type LoadError struct {
	Event string // the event's name
	File  string // the schema file, as the config gave it after resolution
	Err   error  // what is wrong with it: unreadable, too large, not JSON, not a valid schema
}

// Error returns `event "<Event>": schema "<File>": <Err>`.
func (e *LoadError) Error() string {
	return fmt.Sprintf("event %q: schema %q: %v", e.Event, e.File, e.Err)
}

// Unwrap returns Err.
func (e *LoadError) Unwrap() error { return e.Err }

// Mode returns the catalog's mode; ModeOff for a nil catalog.
func (c *Catalog) Mode() Mode {
	if c == nil {
		return ModeOff
	}
	return c.mode
}

// Check returns nil when the mode is off, or when eventName is declared and properties pass
// its schema (or it has none); otherwise the *Violation, whose Detail names the properties that
// failed by JSON pointer and never holds their values. properties are what the schema package's
// decoder gives (numbers as json.Number); any other Go value that encodes to JSON is accepted.
func (c *Catalog) Check(eventName string, properties map[string]any) *Violation {
	if c.Mode() == ModeOff {
		return nil
	}
	ev, ok := c.events[eventName]
	if !ok {
		return &Violation{Event: eventName, Undeclared: true, Detail: undeclaredDetail}
	}
	if ev.schema == nil {
		return nil
	}
	// A nil map is validated as the {} the API receives for it.
	err := ev.schema.Validate(properties)
	if err != nil && invalidGoValue(err) {
		// A Go type the validator does not know (a []string, a struct...): validate what it
		// encodes to instead. The decoder never gives one, so this path is not the usual one.
		if v, convErr := asJSON(properties); convErr == nil {
			err = ev.schema.Validate(v)
		}
	}
	if err == nil {
		return nil
	}
	return &Violation{Event: eventName, Detail: describe(err)}
}

// Key returns the idempotency key the SDKs derive for eventName from its declared
// idempotencyFields (notifizz.DeriveIdempotencyKey), in every mode; false when the event is not
// declared, declares no fields, or one of them is missing or null in properties.
func (c *Catalog) Key(eventName string, properties map[string]any) (string, bool) {
	if c == nil {
		return "", false
	}
	ev, ok := c.events[eventName]
	if !ok || len(ev.fields) == 0 {
		return "", false
	}
	return notifizz.DeriveIdempotencyKey(eventName, ev.fields, properties)
}

// invalidGoValue reports whether err is the validator refusing a Go type, anywhere.
func invalidGoValue(err error) bool {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return false
	}
	var walk func(*jsonschema.ValidationError) bool
	walk = func(e *jsonschema.ValidationError) bool {
		if _, ok := e.ErrorKind.(*kind.InvalidJsonValue); ok {
			return true
		}
		return slices.ContainsFunc(e.Causes, walk)
	}
	return walk(ve)
}

// asJSON returns properties as the decoder would give them back after encoding.
func asJSON(properties map[string]any) (any, error) {
	data, err := json.Marshal(properties)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	err = dec.Decode(&v)
	return v, err
}
