package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
	"github.com/notifizz-bridge/notifizz-bridge/schema"
)

// What the configured API profile (notifizz.api) accepts is judged as a message is decoded, on
// the consumer's goroutine: a message the profile cannot express is dead-lettered unsupported,
// whatever else it holds.

// Texts of the unsupported dead letters. They name the setting and the SDK change, so that
// whoever reads a dead letter knows what to change.
const (
	msgWorkflowV2 = "workflows cannot be expressed with notifizz.api: v2: the Notifizz SDKs 2.x removed " +
		"the workflow chain (campaigns choose channels and recipients on the Notifizz side); publish the " +
		"track alone, or use notifizz.api: v1 for an account on the v1 API"
	msgSendV2 = "send cannot be expressed with notifizz.api: v2: the Notifizz SDKs 2.x removed send and " +
		"its Notification Center route; publish a track, or use notifizz.api: v1 for an account on the v1 API"
	msgKindV1 = " messages need notifizz.api: v2 (the surface of the Notifizz SDKs 2.x); this bridge " +
		"runs notifizz.api: v1"
)

// checkKind refuses, as unsupported, a kind the API profile cannot express: a v2 kind under v1,
// a workflow or a send under v2.
func (b *Bridge) checkKind(kind schema.Kind) error {
	switch {
	case b.cfg.API != APIv2:
		if !kind.Valid() {
			return refused(deadletter.ReasonUnsupported, "kind", string(kind)+msgKindV1)
		}
	case kind == schema.KindWorkflow:
		return refused(deadletter.ReasonUnsupported, "kind", msgWorkflowV2)
	case kind == schema.KindSend:
		return refused(deadletter.ReasonUnsupported, "kind", msgSendV2)
	}
	return nil
}

// checkTrackV2 judges a decoded track under v2 and completes it: its occurredAt, when the body
// has none, is published, the time the message was stored in the stream (notifizz.occurredAt:
// publish), so that an event that waited in the stream reaches Notifizz with the time it
// happened. received is when the bridge got the message, against which a future occurredAt is
// judged.
func (b *Bridge) checkTrackV2(t *schema.Track, received, published time.Time) error {
	// The name first: a track the API would refuse by its name is invalid before anything else
	// is said of it.
	if _, problem := notifizz.CheckEventName(t.EventName); problem != "" {
		return refused(deadletter.ReasonInvalidMessage, "eventName", eventNameProblem(problem))
	}
	if len(t.Workflows) > 0 {
		return refused(deadletter.ReasonUnsupported, "workflows", msgWorkflowV2)
	}
	if err := schema.CheckOccurredAt(t.OccurredAt, received); err != nil {
		return err
	}
	if t.OccurredAt.IsZero() && b.cfg.OccurredAt == OccurredAtPublish {
		t.OccurredAt = published
	}
	return nil
}

// eventNameError is the error of a v2 track the decoder refused, when its eventName is a
// string the API would refuse: the name is judged before anything else, so that the dead letter
// says first what the API would have said.
func eventNameError(data []byte) error {
	var t struct {
		EventName *string `json:"eventName"`
	}
	if json.Unmarshal(data, &t) != nil || t.EventName == nil {
		return nil
	}
	if _, problem := notifizz.CheckEventName(*t.EventName); problem != "" {
		return refused(deadletter.ReasonInvalidMessage, "eventName", eventNameProblem(problem))
	}
	return nil
}

// refused is the error of a message that can never be sent, with its reason and the field at
// fault.
func refused(reason deadletter.Reason, path, message string) error {
	return &schema.Error{Reason: reason, Problems: []schema.Problem{{Path: path, Message: message}}}
}

// eventNameProblem says in words what notifizz.CheckEventName found.
func eventNameProblem(problem string) string {
	switch problem {
	case "empty":
		return "must not be empty once leading and trailing spaces are trimmed (the Notifizz API refuses it)"
	case "too_long":
		return "must be at most " + strconv.Itoa(notifizz.MaxEventNameLen) + " bytes once trimmed (the Notifizz API refuses a longer name)"
	default:
		return "must be printable ASCII, bytes 0x20 to 0x7E (the Notifizz API refuses other characters)"
	}
}

// msgSendGone is added to the error of a send the v1 API answered 404: the route was deleted
// when the SDKs 2.x came, so the account is most likely on today's API.
const msgSendGone = "the Notification Center route of send was removed from the Notifizz API with the SDKs 2.x: " +
	"if this account is on today's API, set notifizz.api: v2 (where send cannot be expressed: use a track)"

// callV2 makes the call of a message under the v2 profile and returns the idempotency key it
// used (tracks only: the other calls have none).
func (w *caller) callV2(ctx context.Context, h *heldMsg) (string, error) {
	switch h.kind {
	case schema.KindTrack:
		t := h.track
		req := notifizz.TrackRequest{EventName: t.EventName, Properties: t.Properties,
			IdempotencyKey: trackKey(h), OccurredAt: t.OccurredAt}
		return req.IdempotencyKey, w.call(ctx, "track", func(ctx context.Context) error { return w.api.TrackEvent(ctx, req) })
	case schema.KindIdentify:
		m := h.identify
		req := notifizz.IdentifyRequest{EnvironmentID: m.EnvironmentID, SubjectA: apiSubject(m.SubjectA),
			SubjectB: apiSubject(m.SubjectB), ConsentBasis: m.ConsentBasis, ExpiresAt: m.ExpiresAt}
		return "", w.call(ctx, "identify", func(ctx context.Context) error {
			_, err := w.api.Identify(ctx, req)
			return err
		})
	case schema.KindDetach:
		m := h.detach
		req := notifizz.DetachRequest{EnvironmentID: m.EnvironmentID, Subject: apiSubject(m.Subject)}
		return "", w.call(ctx, "detach", func(ctx context.Context) error {
			_, err := w.api.Detach(ctx, req)
			return err
		})
	case schema.KindSubscribe:
		m := h.subscribe
		return "", w.call(ctx, "subscribe", func(ctx context.Context) error {
			_, err := w.api.Subscribe(ctx, m.ResourceID, m.SubscriberID, m.Meta)
			return err
		})
	case schema.KindUnsubscribe:
		m := h.unsubscribe
		return "", w.call(ctx, "unsubscribe", func(ctx context.Context) error {
			_, err := w.api.Unsubscribe(ctx, m.ResourceID, m.SubscriberID)
			return err
		})
	}
	// checkKind lets no other kind reach a lane.
	return "", fmt.Errorf("%w: no v2 call for a %s message", notifizz.ErrInvalidRequest, h.kind)
}

// apiSubject is an identity of a message as the Notifizz client takes it.
func apiSubject(id schema.Identity) notifizz.Subject {
	return notifizz.Subject{Type: id.Type, Identifier: id.Identifier}
}
