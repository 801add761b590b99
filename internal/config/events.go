package config

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/notifizz-bridge/notifizz-bridge/catalog"
)

// catalog.events is the one key whose children are named by the file: event names, any
// string (they may hold dots or spaces), each with the fixed keys of eventKeys. This file
// decodes, resolves, checks and prints it.

// events decodes the value of catalog.events (key k, at line) into k's map: a mapping from
// event names to their declarations. An event with an empty value is declared with neither a
// schema nor idempotency fields.
func (d *decoder) events(k key, line int, n *yaml.Node) {
	n = resolveAlias(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(line, k.name, "must be a mapping of event names to their schema and idempotencyFields")
		return
	}
	events := k.ptr.(*map[string]catalog.Event)
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, v := resolveAlias(n.Content[i]), resolveAlias(n.Content[i+1])
		if kn.Kind != yaml.ScalarNode {
			d.fail(kn.Line, "", "event names in %s must be plain names", k.name)
			continue
		}
		name := kn.Value
		if first, dup := seen[name]; dup {
			d.fail(kn.Line, "", "event %q appears twice in %s (first on line %d)", name, k.name, first)
			continue
		}
		seen[name] = kn.Line
		d.lines[eventKey(name, "")] = kn.Line
		ev, ok := d.event(name, kn.Line, v)
		if !ok {
			continue
		}
		if *events == nil {
			*events = make(map[string]catalog.Event)
		}
		(*events)[name] = ev
	}
}

// event decodes the declaration of the event name, at line; false when it is not a mapping.
func (d *decoder) event(name string, line int, n *yaml.Node) (catalog.Event, bool) {
	var ev catalog.Event
	if isNull(n) {
		return ev, true
	}
	if n.Kind != yaml.MappingNode {
		d.fail(line, eventKey(name, ""), "must be a mapping with %s and %s, not a single value",
			strings.Join(eventKeys[:len(eventKeys)-1], ", "), eventKeys[len(eventKeys)-1])
		return ev, false
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, v := resolveAlias(n.Content[i]), resolveAlias(n.Content[i+1])
		field := kn.Value
		path := eventKey(name, field)
		if kn.Kind != yaml.ScalarNode {
			d.fail(kn.Line, "", "keys must be plain names")
			continue
		}
		if first, dup := seen[field]; dup {
			d.fail(kn.Line, "", "key %q appears twice (first on line %d)", path, first)
			continue
		}
		seen[field] = kn.Line
		var k key
		switch field {
		case eventSchemaKey:
			k = key{name: path, ptr: &ev.Schema}
		case eventFieldsKey:
			k = key{name: path, ptr: &ev.IdempotencyFields}
		default:
			d.fail(kn.Line, "", "unknown key %q%s", path, suggestEventKey(name, field))
			continue
		}
		d.lines[path] = kn.Line
		d.leaf(k, kn.Line, v)
	}
	return ev, true
}

// suggestEventKey names the key of an event closest to a misspelt one.
func suggestEventKey(name, field string) string {
	for _, k := range eventKeys {
		if editDistance(strings.ToLower(field), strings.ToLower(k)) < 3 {
			return fmt.Sprintf(" (did you mean %q?)", eventKey(name, k))
		}
	}
	return ""
}

// resolveSchemas makes the relative schema paths of catalog.events relative to dir, the
// directory of the config file, rather than to the directory the daemon runs in, and
// absolute, so that the printed config loads the same files from anywhere.
func (c *Config) resolveSchemas(dir string) {
	events := c.Bridge.Catalog.Events
	for name, ev := range events {
		if ev.Schema == "" || filepath.IsAbs(ev.Schema) {
			continue
		}
		if abs, err := filepath.Abs(filepath.Join(dir, ev.Schema)); err == nil {
			ev.Schema = abs
			events[name] = ev
		}
	}
}

// schemas records a problem for each schema file of catalog.events that catalog.Load cannot
// use, under the key of its event's schema.
func (v *validation) schemas(c catalog.Config) {
	if len(c.Events) == 0 {
		return
	}
	// The mode is the bridge's to check; the files are compiled whatever it is.
	_, err := catalog.Load(catalog.Config{Mode: catalog.ModeOff, Events: c.Events})
	if err == nil {
		return
	}
	for _, e := range flatten(err) {
		var le *catalog.LoadError
		if !errors.As(e, &le) {
			v.problems = append(v.problems, Problem{Msg: e.Error()})
			continue
		}
		v.problems = append(v.problems, Problem{Key: eventKey(le.Event, eventSchemaKey), Msg: fmt.Sprintf("%q: %v", le.File, le.Err)})
	}
}

// eventsNode renders catalog.events, the events sorted by name.
func eventsNode(events map[string]catalog.Event) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	if len(events) == 0 {
		n.Style = yaml.FlowStyle // {}
		return n
	}
	for _, name := range slices.Sorted(maps.Keys(events)) {
		ev := events[name]
		entry := &yaml.Node{Kind: yaml.MappingNode}
		if ev.Schema != "" {
			entry.Content = append(entry.Content, strNode(eventSchemaKey), strNode(ev.Schema))
		}
		if len(ev.IdempotencyFields) > 0 {
			list := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, f := range ev.IdempotencyFields {
				list.Content = append(list.Content, strNode(f))
			}
			entry.Content = append(entry.Content, strNode(eventFieldsKey), list)
		}
		if len(entry.Content) == 0 {
			entry.Style = yaml.FlowStyle // declared only: {}
		}
		n.Content = append(n.Content, strNode(name), entry)
	}
	return n
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}
