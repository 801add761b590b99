package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// TestSchemaKnowsEveryConfigSection compares the config sections values.schema.json accepts
// under config with the top-level keys of config.example.yaml, less those the chart sets
// itself: a section the bridge gains must be added to the schema, or the chart would refuse it.
func TestSchemaKnowsEveryConfigSection(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "config.example.yaml"))
	require.NoError(t, err)
	var example map[string]any
	require.NoError(t, yaml.Unmarshal(data, &example))

	data, err = os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	require.NoError(t, err)
	var schema struct {
		Properties struct {
			Config struct {
				Properties           map[string]any `json:"properties"`
				AdditionalProperties bool           `json:"additionalProperties"`
			} `json:"config"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(data, &schema))
	require.False(t, schema.Properties.Config.AdditionalProperties, "config's sections are listed")

	chartOwned := []string{"nats", "http", "partitions"}
	for key := range example {
		if slices.Contains(chartOwned, key) {
			assert.NotContains(t, schema.Properties.Config.Properties, key, "the chart sets %s", key)
			continue
		}
		assert.Contains(t, schema.Properties.Config.Properties, key, "values.schema.json lacks config.%s", key)
	}
}
