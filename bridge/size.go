package bridge

import "bytes"

// requestEnvelope is an allowance for what the bridge adds to the bodies of a window's messages
// when it builds the request: the "workflows" array of a track that has none, the SDK secret key
// and a derived idempotency key. It counts towards coalesce.maxBytes with the track.
const requestEnvelope = 1 << 10

// encodedBound is an upper bound on the bytes a message body takes in the request, once decoded
// and encoded again by the API client. Whitespace and unknown fields are dropped and escapes such
// as \u00e9 only shrink, but the client escapes <, > and & (1 byte to 6) and U+2028 and U+2029
// (3 bytes to 6) as encoding/json does; numbers are copied as written.
func encodedBound(data []byte) int {
	n := len(data)
	n += 5 * (bytes.Count(data, []byte{'<'}) + bytes.Count(data, []byte{'>'}) + bytes.Count(data, []byte{'&'}))
	n += 3 * (bytes.Count(data, []byte("\u2028")) + bytes.Count(data, []byte("\u2029")))
	return n
}
