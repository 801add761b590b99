package bridge

import (
	"errors"
	"fmt"
	"time"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/notifizz"
)

// action is what happens to the messages of one API call.
type action uint8

const (
	actAck action = iota
	actNak
	actDeadLetter
	actPause // the API refused the bridge's key: the coordinator sets the call aside (authpause.go)
)

func (a action) String() string {
	switch a {
	case actAck:
		return "ack"
	case actNak:
		return "nak"
	case actPause:
		return "pause"
	default:
		return "dead_letter"
	}
}

// decision is the verdict on one API call's outcome.
type decision struct {
	action action
	delay  time.Duration     // for actNak; 0 naks for immediate redelivery
	reason deadletter.Reason // for actDeadLetter
	status int               // HTTP status, 0 when there was none
	detail string            // human text for the dead letter and logs; never holds a secret
	key    string            // the idempotency key of the call, recorded in its dead letters
}

// backoff is the nak schedule: exponential by delivery count from initial, capped at max, with
// ±20 % jitter so that a burst of failures does not come back as one burst.
type backoff struct {
	initial, max time.Duration
	maxDeliver   int
}

// delay returns the nak delay for a message delivered n times. jitter is a number in [0, 1).
func (b backoff) delay(n uint64, retryAfter time.Duration, jitter float64) time.Duration {
	d := b.initial
	for i := uint64(1); i < n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	d = time.Duration(float64(d) * (0.8 + 0.4*jitter))
	return max(d, retryAfter)
}

// decide maps the outcome of one API call to what happens to its messages. It is the one place
// where that choice is made:
//
//   - success acks, and so does a 2xx whose body cannot be read: the API accepted the call,
//     and sending it again would repeat it (the detail keeps an excerpt of the body for the log);
//   - a call cut short by shutdown naks at once, so that another bridge (or this one, restarted)
//     takes the messages over without waiting;
//   - a permanent rejection (a 4xx other than 408, 425 and 429, or a 3xx, since redirects are
//     never followed) dead-letters, since sending the same request again cannot succeed and the
//     API's idempotency layer would only mask it; so does a request the client refused to make
//     (notifizz.ErrInvalidRequest);
//   - a 401 or a 403 says that the bridge's own key is wrong, not the event: the call is
//     set aside by a pause (authpause.go), never dead-lettered, whatever the delivery count;
//   - anything else is transient: nak with a growing delay, honouring Retry-After, until the
//     message's last delivery, when it is dead-lettered instead of being left to expire.
//
// delivered is the delivery count of the message that decides (the track of a window).
func decide(err error, aborted bool, delivered uint64, b backoff, jitter float64) decision {
	if err == nil {
		return decision{action: actAck}
	}
	if invalid, ok := errors.AsType[*notifizz.InvalidResponseError](err); ok {
		// Checked before aborted: the API answered 2xx even if shutdown cut the body short.
		return decision{action: actAck, status: invalid.StatusCode, detail: err.Error()}
	}
	if aborted {
		return decision{action: actNak, detail: "shutdown interrupted the call"}
	}
	if errors.Is(err, notifizz.ErrInvalidRequest) {
		// The client refused to make the request (net/http would have): no retry can send it.
		return decision{action: actDeadLetter, reason: deadletter.ReasonInvalidMessage, detail: err.Error()}
	}
	var apiErr *notifizz.APIError
	status := 0
	if errors.As(err, &apiErr) {
		status = apiErr.StatusCode
		if status >= 300 && status <= 399 {
			return decision{action: actDeadLetter, reason: deadletter.ReasonAPIRejected, status: status,
				detail: "notifizz.baseUrl needs updating: " + err.Error()}
		}
		if isAuthStatus(status) {
			return decision{action: actPause, status: status, detail: err.Error()}
		}
		if !apiErr.Retryable() {
			return decision{action: actDeadLetter, reason: deadletter.ReasonAPIRejected, status: status, detail: err.Error()}
		}
	}
	if b.maxDeliver > 0 && delivered >= uint64(b.maxDeliver) {
		return decision{
			action: actDeadLetter, reason: deadletter.ReasonMaxDeliveries, status: status,
			detail: fmt.Sprintf("still failing after %d deliveries: %v", delivered, err),
		}
	}
	return decision{
		action: actNak, status: status, detail: err.Error(),
		delay: b.delay(delivered, notifizz.RetryAfterOf(err), jitter),
	}
}
