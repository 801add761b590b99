package bridge

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSinkDeliverAfterClose: the client library can run its message callback after the consume
// context says it is closed (when the connection was closed); a message delivered once the sink
// is closed is handed back, never sent on the closed channel.
func TestSinkDeliverAfterClose(t *testing.T) {
	h := newHarness(t, nil)
	in := make(chan inbound, 1)
	s := &sink{b: h.b, in: in}
	first := h.msg("track", "k1", trackBody)
	s.Deliver(first)
	s.close()
	late := h.msg("track", "k2", trackBody)
	assert.NotPanics(t, func() { s.Deliver(late) })
	assert.Equal(t, []string{"nak"}, late.settled(), "handed back")
	assert.Empty(t, first.settled(), "delivered before the close: the coordinator's")
	got := <-in
	assert.Equal(t, "k1", got.key)
	_, open := <-in
	assert.False(t, open)
}

// TestSinkCloseWhileDelivering: close waits for a Deliver blocked on a full channel, which the
// coordinator drains until the channel is closed.
func TestSinkCloseWhileDelivering(t *testing.T) {
	h := newHarness(t, nil)
	in := make(chan inbound) // unbuffered: every Deliver waits for the reader
	s := &sink{b: h.b, in: in}
	msgs := make([]*memMsg, 50)
	for i := range msgs {
		msgs[i] = h.msg("track", "k", trackBody)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, m := range msgs {
			s.Deliver(m)
		}
	}()
	read := 0
	<-in // one is through: the deliverer is running
	read++
	closed := make(chan struct{})
	go func() {
		s.close()
		close(closed)
	}()
	for range in { // the coordinator reads until in is closed
		read++
	}
	<-closed
	wg.Wait()
	naked := 0
	for _, m := range msgs {
		if len(m.settled()) > 0 {
			naked++
		}
	}
	assert.Equal(t, len(msgs), read+naked, "each message either reached the coordinator or was handed back")
}
