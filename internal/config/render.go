package config

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/notifizz-bridge/notifizz-bridge/catalog"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// YAML renders the effective config as a YAML document in the file's layout, with every secret
// replaced by [REDACTED] (empty secrets stay empty, so that a missing one shows). Loading the
// result gives the same config back, secrets aside.
func (c *Config) YAML() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range c.keys() {
		parent := root
		parts := strings.Split(k.name, ".")
		for _, p := range parts[:len(parts)-1] {
			parent = childMapping(parent, p)
		}
		value := scalarNode(k)
		if events, ok := k.ptr.(*map[string]catalog.Event); ok {
			value = eventsNode(*events)
		}
		parent.Content = append(parent.Content, strNode(parts[len(parts)-1]), value)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func childMapping(parent *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(parent.Content); i += 2 {
		if parent.Content[i].Value == key {
			return parent.Content[i+1]
		}
	}
	child := &yaml.Node{Kind: yaml.MappingNode}
	parent.Content = append(parent.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, child)
	return child
}

func scalarNode(k key) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode}
	switch p := k.ptr.(type) {
	case *string:
		n.Tag, n.Value = "!!str", *p
		switch {
		case k.secret && *p != "":
			n.Value = schema.Redacted
		case k.show != nil:
			n.Value = k.show(*p)
		}
	case *bool:
		n.Tag, n.Value = "!!bool", strconv.FormatBool(*p)
	case *int:
		n.Tag, n.Value = "!!int", strconv.Itoa(*p)
	case *float64:
		// Written so that YAML reads it as a float without an explicit tag: "0" alone would
		// be an int, and be printed as "!!float 0".
		n.Tag, n.Value = "!!float", strconv.FormatFloat(*p, 'g', -1, 64)
		if !strings.ContainsAny(n.Value, ".eEn") {
			n.Value += ".0"
		}
	case *time.Duration:
		n.Tag, n.Value = "!!str", p.String()
	case *[]string:
		n.Tag, n.Value = "!!str", strings.Join(*p, ",")
	}
	return n
}
