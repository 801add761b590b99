// Package notifizz is a Go client for the Notifizz HTTP API with the surface
// of the official Node.js SDK (@notifizz/nodejs), in Go idioms.
//
// It owns the wire format of the API (request bodies, headers, idempotency
// keys), the classification of outcomes (success, transient, permanent), the
// retry of transient failures, and the SDK's track → workflow → auto-send
// chain. It imports nothing else of this module, never logs, and reports
// everything through returned errors and an optional per-attempt observer.
//
// The Node SDK maps onto it as follows:
//
//	new NotifizzClient(auth, sdk)        NewClient(auth, sdk, opts...)
//	client.config({...})                 (*Client).Config(opts...)
//	client.track({...}).workflow(...)    (*Client).Track(props).Workflow(...)
//	await trackContext                   (*TrackContext).Send(ctx)
//	client.send({notifId, properties})   (*Client).Send(ctx, notifID, properties)
//	client.generateHashedToken(userId)   (*Client).GenerateHashedToken(userID)
//
// Callers that hold a whole event at once, such as the bridge, use
// (*Client).TrackEvent, which makes exactly one logical request.
//
// The SDKs 2.x (2026) changed the API: no workflows, no Notification Center
// route, and new calls. A client made WithAPI(APIv2) speaks that surface:
//
//	track(name, props, key?, occurredAt?)  (*Client).TrackEvent(ctx, TrackRequest{..., OccurredAt})
//	identify({...}) / detach({...})         (*Client).Identify / (*Client).Detach
//	subscribe / unsubscribe                 (*Client).Subscribe / (*Client).Unsubscribe
//	notifySubscribers(resource, props)      (*Client).NotifySubscribers
//	generateSubscribeToken(sub, resource)   (*Client).GenerateSubscribeToken
//	the boot ping                           (*Client).Ping
//	keys from idempotencyFields             DeriveIdempotencyKey
//
// Under APIv2, Send and a TrackRequest with Workflows are refused with
// ErrInvalidRequest before anything is sent.
//
// # Usage
//
//	client := notifizz.NewClient(authSecretKey, sdkSecretKey)
//
//	err := client.
//		Track(notifizz.TrackProps{
//			EventName:  "order_shipped",
//			Properties: map[string]any{"orderId": "ORD-4521", "carrier": "FedEx"},
//		}).
//		Workflow("shipping_notification", []notifizz.Recipient{
//			{ID: "user_42", Email: "alice@example.com"},
//		}).
//		Send(ctx)
//
// Without the final Send the event goes out on its own after the auto-send
// delay (1 s by default, WithAutoSendDelay); its result is then available
// from Done and Err.
//
// # Errors and retries
//
// A non-2xx response is an *APIError carrying the status, the Retry-After
// and a bounded body excerpt. 408, 425, 429, 5xx, network errors and
// per-attempt timeouts are transient (IsRetryable) and are retried per the
// RetryPolicy (by default after 1 s and 2 s, like the SDK), waiting at least
// the server's Retry-After. Every other 4xx is permanent and never retried:
// the API's idempotency layer would only mask the rejection. Redirects are
// never followed, whatever http.Client is supplied: a 3xx is a permanent
// APIError whose Location says where the API pointed. Every attempt
// of one event carries the same idempotency key, so that a retry cannot run
// it twice. The caller's context ends a call, and its waits, at once.
//
// The SDK secret key travels only in the Authorization header and the track
// body; neither key ever appears in an error message or in a Client's
// String, and response excerpts that echo a key have it redacted.
package notifizz
