package schema

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-json"
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

// windowBodies are the messages of the window path (as BenchmarkWindowPath in the bridge sends
// them, and the corpus's typical ones), a send, and two large messages.
func windowBodies(b *testing.B) []struct {
	name string
	kind Kind
	data []byte
} {
	var items, recipients []string
	for i := range 1000 {
		items = append(items, fmt.Sprintf(`{"sku":"SKU-%d","qty":%d,"price":12.5,"name":"Item number %d","tags":["a","b"]}`, i, i%7, i))
	}
	for i := range 500 {
		recipients = append(recipients, fmt.Sprintf(`{"id":"user_%d","email":"user%d@example.com"}`, i, i))
	}
	return []struct {
		name string
		kind Kind
		data []byte
	}{
		{"track", KindTrack, []byte(`{"eventName":"order_shipped","properties":{"orderId":"ORD-4521","carrier":"FedEx"}}`)},
		{"track-inline", KindTrack, benchBody(b, KindTrack)},
		{"workflow", KindWorkflow, []byte(`{"campaignId":"campaign-1","recipients":[{"id":"user_42","email":"alice@example.com"}]}`)},
		{"workflow-custom", KindWorkflow, benchBody(b, KindWorkflow)},
		{"commit", KindCommit, nil},
		{"commit-object", KindCommit, benchBody(b, KindCommit)},
		{"send", KindSend, benchBody(b, KindSend)},
		{"track-large", KindTrack, []byte(`{"eventName":"order_shipped","properties":{"items":[` + strings.Join(items, ",") + `]}}`)},
		{"workflow-large", KindWorkflow, []byte(`{"campaignId":"c","recipients":[` + strings.Join(recipients, ",") + `]}`)},
	}
}

// bareGoJSON only unmarshals the body with go-json into plain structs: no strict syntax, no
// secrets, no depth bound, no field checks. It is the least any go-json parser does, so that
// its time bounds what a go-json parser could reach.
func bareGoJSON(kind Kind, data []byte, _ target) error {
	type recipient struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	}
	type workflow struct {
		CampaignID string      `json:"campaignId"`
		Recipients []recipient `json:"recipients"`
	}
	switch kind {
	case KindTrack:
		var t struct {
			EventName      string         `json:"eventName"`
			Properties     map[string]any `json:"properties"`
			Workflows      []workflow     `json:"workflows"`
			IdempotencyKey string         `json:"idempotencyKey"`
		}
		return json.UnmarshalOf(data, &t, useNumber)
	case KindWorkflow:
		var w workflow
		return json.UnmarshalOf(data, &w, useNumber)
	case KindSend:
		var s struct {
			NotifID    string         `json:"notifId"`
			Properties map[string]any `json:"properties"`
		}
		return json.UnmarshalOf(data, &s, useNumber)
	default:
		if len(data) == 0 {
			return nil
		}
		var m map[string]any
		return json.UnmarshalOf(data, &m, useNumber)
	}
}

// BenchmarkParsers measures the whole decode of each message (size bound, syntax, secrets,
// fields with their paths, values built) with each parser, in the same run. Compare with
//
//	benchstat -col /impl out.txt
func BenchmarkParsers(b *testing.B) {
	for _, m := range windowBodies(b) {
		impls := append(implementations[:len(implementations):len(implementations)], struct {
			name string
			run  func(Kind, []byte, target) error
		}{"bare", bareGoJSON})
		for _, impl := range impls {
			b.Run("msg="+m.name+"/impl="+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(m.data)))
				for b.Loop() {
					var dst target
					switch m.kind {
					case KindTrack:
						dst.track = new(Track)
					case KindWorkflow:
						dst.workflow = new(Workflow)
					case KindSend:
						dst.send = new(Send)
					}
					if err := impl.run(m.kind, m.data, dst); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
