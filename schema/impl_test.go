package schema

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// implementations are the parsers the tests run against, each in turn.
var implementations = []struct {
	name string
	run  func(Kind, []byte, target) error
}{
	{"production", decodeProduction},
	{"gojson", runGoJSON},
}

// TestMain runs the package's tests once per parser, except when fuzzing or benchmarking, where
// the targets compare the parsers themselves.
func TestMain(m *testing.M) {
	flag.Parse()
	for name, off := range map[string]string{"test.fuzz": "", "test.fuzzworker": "false", "test.bench": ""} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != off {
			os.Exit(m.Run())
		}
	}
	code := 0
	for _, impl := range implementations {
		decodeWith = impl.run
		fmt.Println("=== parser:", impl.name)
		if c := m.Run(); c != 0 {
			code = c
		}
	}
	os.Exit(code)
}

// FuzzDecodeParsers checks that the scanner (which decodes track, workflow and commit) and
// go-json judge every body alike: the same error, or the same decoded message, occurredAt
// included. The kinds decoded with go-json in production (send, KindsV2) are compared too, which
// checks that building and validating only agree.
// Run it with: go test -run '^$' -fuzz FuzzDecodeParsers -fuzztime 60s ./schema/
func FuzzDecodeParsers(f *testing.F) {
	for _, verdict := range []string{"valid", "invalid"} {
		for _, file := range corpusFiles(f, verdict) {
			f.Add(uint8(slices.Index(AllKinds, file.kind)), file.data)
		}
	}
	for _, b := range recipientBodies {
		f.Add(uint8(slices.Index(AllKinds, b.kind)), []byte(b.body))
	}
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		kind := AllKinds[int(k)%len(AllKinds)]
		type decoded struct {
			tr  Track
			w   Workflow
			s   Send
			id  Identify
			d   Detach
			sub Subscribe
			un  Unsubscribe
		}
		targetOf := func(v *decoded) target {
			return target{track: &v.tr, workflow: &v.w, send: &v.s,
				identify: &v.id, detach: &v.d, subscribe: &v.sub, unsubscribe: &v.un}
		}
		var want, got decoded
		wantErr := decodeProduction(kind, data, targetOf(&want))
		gotErr := runGoJSON(kind, data, targetOf(&got))
		require.Equal(t, wantErr, gotErr)
		if wantErr == nil {
			require.Equal(t, want, got)
		}
		require.Equal(t, decodeProduction(kind, data, target{}), runGoJSON(kind, data, target{}), "validate only")
	})
}
