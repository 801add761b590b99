package schema

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The corpus in testdata/corpus/{valid,invalid}/<kind>/ holds bodies that both the decoders and
// the JSON Schemas must judge the same way. Invalid files are named <reason>-<description>.json
// so that the test also checks the decoder's reason.
//
// The JSON Schemas express every rule of the decoders, secrets at any depth included (noSecrets
// applies itself to every property value and array item), except four the corpus leaves to the
// table tests in decode_test.go and decode_v2_test.go, where only the decoders are stricter:
//   - the size limit (MaxBodySize) and the nesting limit (64 levels);
//   - a leap second in a date-time (23:59:60Z), which the format allows and time.Parse refuses;
//   - invalid UTF-8, which encoding/json (used by the schema validator) silently replaces;
//   - duplicate keys, which a decoded JSON document no longer has.
// And an empty or blank commit body, which is valid but not a JSON document, is validated as {}
// on the schema side.

type corpusFile struct {
	name string // path below testdata/corpus
	kind Kind
	data []byte
}

func corpusFiles(t testing.TB, verdict string) []corpusFile {
	t.Helper()
	root := filepath.Join("testdata", "corpus", verdict)
	var files []corpusFile
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".json" {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		kind, err := ParseKindAny(filepath.Base(filepath.Dir(path)))
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join("testdata", "corpus"), path)
		files = append(files, corpusFile{name: filepath.ToSlash(rel), kind: kind, data: data})
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

var compiled = sync.OnceValues(func() (map[Kind]*jsonschema.Schema, error) {
	// The validator compiles "pattern" with Go's regexp; the patterns used (printable ASCII
	// [ -~], and the date-time's, of ASCII digits and literals only) mean the same in ECMA-262,
	// the dialect JSON Schema specifies, so other validators judge alike.
	c := jsonschema.NewCompiler()
	// "format" is only an annotation in draft 2020-12 unless a validator asserts it; the
	// date-time's pattern holds its syntax either way, and asserting the format here checks
	// that the ranges of its fields (month 13, February 30) are refused on both sides too.
	c.AssertFormat()
	schemas := make(map[Kind]*jsonschema.Schema, len(AllKinds))
	for _, kind := range AllKinds {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSONSchema(kind)))
		if err != nil {
			return nil, err
		}
		id := doc.(map[string]any)["$id"].(string)
		if err := c.AddResource(id, doc); err != nil {
			return nil, err
		}
		if schemas[kind], err = c.Compile(id); err != nil {
			return nil, err
		}
	}
	return schemas, nil
})

// schemaAccepts judges a body with the JSON Schema of kind.
func schemaAccepts(t testing.TB, kind Kind, data []byte) error {
	schemas, err := compiled()
	require.NoError(t, err)
	if kind == KindCommit && isBlank(data) {
		data = []byte("{}")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return schemas[kind].Validate(doc)
}

func TestCorpusAgreement(t *testing.T) {
	for _, verdict := range []string{"valid", "invalid"} {
		for _, f := range corpusFiles(t, verdict) {
			t.Run(f.name, func(t *testing.T) {
				goErr := Validate(f.kind, f.data)
				schemaErr := schemaAccepts(t, f.kind, f.data)
				if verdict == "valid" {
					assert.NoError(t, goErr, "Go")
					assert.NoError(t, schemaErr, "JSON Schema")
					return
				}
				assert.Error(t, goErr, "Go")
				assert.Error(t, schemaErr, "JSON Schema")
				reason, _, ok := strings.Cut(filepath.Base(f.name), "-")
				require.True(t, ok, "invalid corpus files are named <reason>-<description>.json")
				assert.Equal(t, Reason(reason), ReasonOf(goErr))
			})
		}
	}
}

func TestCorpusCoversEveryKind(t *testing.T) {
	for _, verdict := range []string{"valid", "invalid"} {
		seen := map[Kind]bool{}
		for _, f := range corpusFiles(t, verdict) {
			seen[f.kind] = true
		}
		for _, kind := range AllKinds {
			assert.True(t, seen[kind], "%s/%s has no file", verdict, kind)
		}
	}
}

func TestJSONSchemaFiles(t *testing.T) {
	defs := map[string]json.RawMessage{}
	for _, kind := range AllKinds {
		doc := JSONSchema(kind)
		require.NotNil(t, doc, kind)
		var s struct {
			Schema string                     `json:"$schema"`
			ID     string                     `json:"$id"`
			Defs   map[string]json.RawMessage `json:"$defs"`
		}
		require.NoError(t, json.Unmarshal(doc, &s), kind)
		assert.Equal(t, "https://json-schema.org/draft/2020-12/schema", s.Schema)
		assert.True(t, strings.HasSuffix(s.ID, "/"+string(kind)+".schema.json"), s.ID)
		// Each file is self-contained, so definitions are copied: they must not drift apart.
		for name, def := range s.Defs {
			if prev, ok := defs[name]; ok {
				assert.JSONEq(t, string(prev), string(def), "$defs/%s differs in %s", name, kind)
			}
			defs[name] = def
		}
	}
	assert.Nil(t, JSONSchema(Kind("event")))

	// JSONSchema returns a copy.
	doc := JSONSchema(KindTrack)
	doc[0] = 'x'
	assert.Equal(t, byte('{'), JSONSchema(KindTrack)[0])

	entries, err := fs.ReadDir(Schemas, ".")
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"track.schema.json", "workflow.schema.json", "commit.schema.json", "send.schema.json",
		"identify.schema.json", "detach.schema.json", "subscribe.schema.json", "unsubscribe.schema.json"}, names)
}

func TestJSONSchemaExamplesAreValid(t *testing.T) {
	for _, kind := range AllKinds {
		var s struct {
			Examples []json.RawMessage `json:"examples"`
		}
		require.NoError(t, json.Unmarshal(JSONSchema(kind), &s))
		require.NotEmpty(t, s.Examples, kind)
		for _, ex := range s.Examples {
			assert.NoError(t, Validate(kind, ex), "%s: %s", kind, ex)
			assert.NoError(t, schemaAccepts(t, kind, ex), "%s: %s", kind, ex)
		}
	}
}

// FuzzDecode checks, for every kind, that the decoders never panic and never accept a body that
// the JSON Schema rejects, i.e. that the schemas are never stricter than the bridge. The other
// direction is not checked: the decoders are stricter in what a schema cannot say (see above).
// Run it with: go test -run '^$' -fuzz FuzzDecode -fuzztime 30s ./schema/
func FuzzDecode(f *testing.F) {
	for _, verdict := range []string{"valid", "invalid"} {
		for _, file := range corpusFiles(f, verdict) {
			for i, kind := range AllKinds {
				if kind == file.kind {
					f.Add(uint8(i), file.data)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		kind := AllKinds[int(k)%len(AllKinds)]
		err := Validate(kind, data)
		redacted := Redact(data)

		_, decErr := decode(kind, data)
		require.Equal(t, err, decErr, "Validate and the decoder disagree")

		if err != nil {
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Contains(t, []Reason{ReasonInvalidJSON, ReasonInvalidMessage, ReasonSecretInMessage, ReasonTooLarge}, e.Reason)
			require.NotEmpty(t, e.Problems)
			if e.Reason == ReasonSecretInMessage {
				require.Error(t, Validate(kind, redacted), "a redacted body still has its keys")
				require.NotEqual(t, data, redacted)
			}
			return
		}
		require.NoError(t, schemaAccepts(t, kind, data), "accepted by Go but rejected by the JSON Schema")
		require.Equal(t, data, redacted, "Redact changed a body without secrets")
	})
}
