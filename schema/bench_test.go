package schema

import (
	"os"
	"path/filepath"
	"testing"
)

// benchBodies are typical messages: a track with a few properties, a workflow with three
// recipients (one with custom keys), an empty commit and a send with two recipients.
var benchBodies = map[Kind]string{
	KindTrack:    "valid/track/inline-workflows.json",
	KindWorkflow: "valid/workflow/custom-recipient-keys.json",
	KindCommit:   "valid/commit/empty-object.json",
	KindSend:     "valid/send/with-properties.json",
}

func benchBody(b *testing.B, kind Kind) []byte {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "corpus", benchBodies[kind]))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkDecode(b *testing.B) {
	for _, kind := range Kinds {
		data := benchBody(b, kind)
		b.Run(string(kind), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := decode(kind, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValidate(b *testing.B) {
	for _, kind := range Kinds {
		data := benchBody(b, kind)
		b.Run(string(kind), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := Validate(kind, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRedact(b *testing.B) {
	data := []byte(`{"eventName":"e","properties":{"orderId":"ORD-4521","cfg":{"sdkSecretKey":"sk_live_123"}},"workflows":[]}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Redact(data)
	}
}

// BenchmarkParseSubject measures the subject parse the bridge does for every message.
func BenchmarkParseSubject(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseSubject("acme.notifizz", "acme.notifizz.workflow.order-4521-shipped"); err != nil {
			b.Fatal(err)
		}
	}
}
