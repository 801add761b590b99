package schema

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// updateFixtures rewrites testdata/producer-fixtures.json from the Go producer's output:
// go test ./schema -run TestProducerFixtures -update-fixtures.
var updateFixtures = flag.Bool("update-fixtures", false, "rewrite testdata/producer-fixtures.json")

// producerFixture is one publish of the Go producer as producers in other languages must
// reproduce it byte for byte: the same subject, body and Nats-Msg-Id, so that a message retried
// from another language is de-duplicated by the stream like one retried from Go. Input is the
// call's arguments as JSON, decoded the way a JavaScript producer holds them (numbers as
// float64).
type producerFixture struct {
	Name    string          `json:"name"`
	Kind    Kind            `json:"kind"`
	Prefix  string          `json:"prefix"`
	Key     string          `json:"key"`
	Input   json.RawMessage `json:"input"`
	Subject string          `json:"subject"`
	Body    string          `json:"body"`
	MsgID   string          `json:"msgId"`
}

var producerFixtureInputs = []producerFixture{
	{Name: "track", Kind: KindTrack, Key: "order-4521-shipped",
		Input: json.RawMessage(`{"eventName":"order_shipped","properties":{"orderId":"ORD-4521","carrier":"FedEx"}}`)},
	{Name: "track without properties", Kind: KindTrack, Key: "signup-7",
		Input: json.RawMessage(`{"eventName":"signup"}`)},
	{Name: "track with idempotency key and occurredAt in another zone", Kind: KindTrack, Key: "clé-ünïcode",
		Input: json.RawMessage(`{"eventName":"order_paid","properties":{"amount":99.99},"idempotencyKey":"pay-1","occurredAt":"2026-03-01T14:00:00.123+02:00"}`)},
	{Name: "track with strings, numbers and keys that encoders disagree on", Kind: KindTrack, Key: "tricky",
		Input: json.RawMessage(`{"eventName":"tricky","properties":{
			"html":"<b>Tom & Jerry</b>","uni":"é€😀","seps":"a\u2028b\u2029c","ctl":"\u0000\u0001\b\f\n\r\t\u001f\u007f",
			"quote":"\"\\/","nums":[0,-0,1,-1,1.5,0.1,1e21,1.5e21,1e-7,1e-6,123456789012345678,9007199254740993,1e300,-2.5e-10,5e-324],
			"nested":{"b":{"z":1,"a":[{"y":true,"x":null}]},"a":false,"empty":{},"list":[]},
			"Z":1,"a":2,"é":3,"e":4,"😀":5,"\uffff":6,"":7}}`)},
	{Name: "workflow", Kind: KindWorkflow, Key: "order-4521-shipped",
		Input: json.RawMessage(`{"campaignId":"shipping-update","recipients":[{"id":"user_42","email":"ada@example.com","firstName":"Ada","age":36,"tags":["vip"]},{"email":"bob@example.com","id":"user_7"}]}`)},
	{Name: "commit", Kind: KindCommit, Key: "order-4521-shipped", Input: json.RawMessage(`{}`)},
	{Name: "send", Kind: KindSend, Key: "welcome-user-42",
		Input: json.RawMessage(`{"notifId":"notif_123","properties":{"title":"Welcome","recipients":[{"id":"user_42","email":"ada@example.com","lang":"fr"}],"message":"Hi"}}`)},
	{Name: "track under another prefix", Kind: KindTrack, Prefix: "acme.notifizz", Key: "k1",
		Input: json.RawMessage(`{"eventName":"e","properties":{"x":1}}`)},
	{Name: "identify", Kind: KindIdentify, Key: "link-user-42",
		Input: json.RawMessage(`{"environmentId":"env_1","subjectA":{"type":"email","identifier":"ada@example.com"},"subjectB":{"type":"user_id","identifier":"user_42"},"consentBasis":"contract","expiresAt":"2027-01-01T00:00:00Z"}`)},
	{Name: "identify without expiry", Kind: KindIdentify, Key: "link-user-43",
		Input: json.RawMessage(`{"environmentId":"env_1","subjectA":{"type":"email","identifier":"bob@example.com"},"subjectB":{"type":"user_id","identifier":"user_43"},"consentBasis":"consent"}`)},
	{Name: "detach", Kind: KindDetach, Key: "unlink-user-42",
		Input: json.RawMessage(`{"environmentId":"env_1","subject":{"type":"email","identifier":"ada@example.com"}}`)},
	{Name: "subscribe with meta", Kind: KindSubscribe, Key: "order-4521-user-42",
		Input: json.RawMessage(`{"resourceId":"order-4521","subscriberId":"user_42","meta":{"role":"buyer","channel":"email","weight":2.5}}`)},
	{Name: "subscribe without meta", Kind: KindSubscribe, Key: "order-4521-user-43",
		Input: json.RawMessage(`{"resourceId":"order-4521","subscriberId":"user_43"}`)},
	{Name: "unsubscribe", Kind: KindUnsubscribe, Key: "order-4521-user-42",
		Input: json.RawMessage(`{"resourceId":"order-4521","subscriberId":"user_42"}`)},
}

// TestProducerFixtures publishes every fixture input with the Go producer, reads the stored
// message back, and compares its subject, body and Nats-Msg-Id with testdata/producer-fixtures.json,
// which the Node producer's tests (clients/node) check themselves against.
func TestProducerFixtures(t *testing.T) {
	var subjects []string
	for _, prefix := range []string{DefaultPrefix, "acme.notifizz"} {
		for _, k := range AllKinds {
			subjects = append(subjects, prefix+"."+string(k)+".*")
		}
	}
	js, stream := setupJetStreamSubjects(t, subjects)
	ctx := t.Context()

	var got []producerFixture
	for _, f := range producerFixtureInputs {
		prefix := f.Prefix
		if prefix == "" {
			prefix = DefaultPrefix
		}
		p := NewProducer(js, WithPrefix(prefix))
		var in struct {
			EventName      string           `json:"eventName"`
			Properties     map[string]any   `json:"properties"`
			IdempotencyKey string           `json:"idempotencyKey"`
			OccurredAt     string           `json:"occurredAt"`
			CampaignID     string           `json:"campaignId"`
			Recipients     []map[string]any `json:"recipients"`
			NotifID        string           `json:"notifId"`
			EnvironmentID  string           `json:"environmentId"`
			SubjectA       Identity         `json:"subjectA"`
			SubjectB       Identity         `json:"subjectB"`
			Subject        Identity         `json:"subject"`
			ConsentBasis   string           `json:"consentBasis"`
			ExpiresAt      string           `json:"expiresAt"`
			ResourceID     string           `json:"resourceId"`
			SubscriberID   string           `json:"subscriberId"`
			Meta           map[string]any   `json:"meta"`
		}
		require.NoError(t, json.Unmarshal(f.Input, &in), f.Name)
		var err error
		switch f.Kind {
		case KindTrack:
			tr := Track{EventName: in.EventName, Properties: in.Properties, IdempotencyKey: in.IdempotencyKey}
			if in.OccurredAt != "" {
				tr.OccurredAt, err = time.Parse(time.RFC3339Nano, in.OccurredAt)
				require.NoError(t, err, f.Name)
			}
			_, err = p.TrackWith(ctx, f.Key, tr)
		case KindWorkflow:
			_, err = p.Workflow(ctx, f.Key, in.CampaignID, fixtureRecipients(in.Recipients)...)
		case KindCommit:
			_, err = p.Commit(ctx, f.Key)
		case KindSend:
			props := in.Properties
			if rs, ok := props["recipients"].([]any); ok {
				var ms []map[string]any
				for _, r := range rs {
					ms = append(ms, r.(map[string]any))
				}
				props["recipients"] = fixtureRecipients(ms)
			}
			_, err = p.Send(ctx, f.Key, in.NotifID, props)
		case KindIdentify:
			m := Identify{EnvironmentID: in.EnvironmentID, SubjectA: in.SubjectA, SubjectB: in.SubjectB, ConsentBasis: in.ConsentBasis}
			if in.ExpiresAt != "" {
				m.ExpiresAt, err = time.Parse(time.RFC3339Nano, in.ExpiresAt)
				require.NoError(t, err, f.Name)
			}
			_, err = p.Identify(ctx, f.Key, m)
		case KindDetach:
			_, err = p.Detach(ctx, f.Key, Detach{EnvironmentID: in.EnvironmentID, Subject: in.Subject})
		case KindSubscribe:
			_, err = p.Subscribe(ctx, f.Key, in.ResourceID, in.SubscriberID, in.Meta)
		case KindUnsubscribe:
			_, err = p.Unsubscribe(ctx, f.Key, in.ResourceID, in.SubscriberID)
		default:
			t.Fatalf("%s: no case for kind %s", f.Name, f.Kind)
		}
		require.NoError(t, err, f.Name)

		info, err := stream.Info(ctx)
		require.NoError(t, err)
		msg, err := stream.GetMsg(ctx, info.State.LastSeq)
		require.NoError(t, err)
		f.Subject = msg.Subject
		f.Body = string(msg.Data)
		f.MsgID = msg.Header.Get("Nats-Msg-Id")
		got = append(got, f)
	}

	path := filepath.Join("testdata", "producer-fixtures.json")
	if *updateFixtures {
		data, err := json.MarshalIndent(got, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, append(data, '\n'), 0o644))
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update-fixtures to create it")
	var want []producerFixture
	require.NoError(t, json.Unmarshal(data, &want))
	require.Len(t, want, len(got), "run with -update-fixtures after changing the inputs")
	for i := range got {
		assert.Equal(t, want[i].Name, got[i].Name)
		assert.JSONEq(t, string(want[i].Input), string(got[i].Input), got[i].Name)
		assert.Equal(t, want[i].Subject, got[i].Subject, got[i].Name)
		assert.Equal(t, want[i].Body, got[i].Body, got[i].Name)
		assert.Equal(t, want[i].MsgID, got[i].MsgID, got[i].Name)
	}
}

// fixtureRecipients turns decoded JSON objects into Recipients, id and email apart, the rest as
// custom keys.
func fixtureRecipients(ms []map[string]any) []Recipient {
	rs := make([]Recipient, 0, len(ms))
	for _, m := range ms {
		r := Recipient{Extra: map[string]any{}}
		r.ID, _ = m["id"].(string)
		r.Email, _ = m["email"].(string)
		for k, v := range m {
			if k != "id" && k != "email" {
				r.Extra[k] = v
			}
		}
		rs = append(rs, r)
	}
	return rs
}
