package bridge

import "sync"

// settledMemory is how many settled messages the bridge remembers: far more than the acks that
// can be in flight when a consumer or a server goes away.
const settledMemory = 1 << 16

// settledSeqs remembers the stream sequences of the last messages the bridge settled (acked,
// or terminated after their dead-letter copy was stored). A message can come again after the
// bridge settled it:
//
//   - the server redelivers a message whose AckWait ran out while the bridge still held it (a
//     process starved of CPU, a call that outlasted the in-progress pings), and the copy can
//     reach the coordinator just after the original was settled and forgotten;
//   - an ack can be lost after the bridge sent it: pcgroups answers a membership change by
//     deleting and re-creating each member's consumer, and a server can go down with acks it
//     has not applied.
//
// A copy of a message noted here is acked instead of being sent a second time or, for a
// workflow whose event has gone, dead-lettered as missing its track. The workers note what they
// settle before they hand the job back to the coordinator, which forgets the held messages only
// then: a copy is always found either held or settled.
//
// It remembers the sequences of one stream, the one the bridge reads: a message whose metadata
// names another (a consumer group's work-queue copy without its origin) is neither noted nor
// found, so that two sequence spaces never mix.
type settledSeqs struct {
	stream string
	mu     sync.Mutex
	seqs   map[uint64]struct{}
	ring   []uint64 // the same sequences in the order noted, to forget the oldest
	next   int
}

func newSettledSeqs(stream string, n int) *settledSeqs {
	return &settledSeqs{stream: stream, seqs: make(map[uint64]struct{}, n), ring: make([]uint64, n)}
}

// note remembers seq of stream.
func (s *settledSeqs) note(stream string, seq uint64) {
	if stream != s.stream {
		return
	}
	s.mu.Lock()
	s.add(seq)
	s.mu.Unlock()
}

// noteAll remembers the sequences of ms, under one lock.
func (s *settledSeqs) noteAll(ms []*heldMsg) {
	s.mu.Lock()
	for _, h := range ms {
		if h.stream == s.stream {
			s.add(h.seq)
		}
	}
	s.mu.Unlock()
}

func (s *settledSeqs) add(seq uint64) {
	if _, ok := s.seqs[seq]; ok {
		return
	}
	if old := s.ring[s.next]; old != 0 {
		delete(s.seqs, old)
	}
	s.ring[s.next] = seq
	s.next = (s.next + 1) % len(s.ring)
	s.seqs[seq] = struct{}{}
}

// has reports whether seq of stream was noted lately.
func (s *settledSeqs) has(stream string, seq uint64) bool {
	if stream != s.stream {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.seqs[seq]
	return ok
}

// reset forgets every sequence: the stream was deleted and created again, and numbers its
// messages from 1 again.
func (s *settledSeqs) reset() {
	s.mu.Lock()
	clear(s.seqs)
	clear(s.ring)
	s.next = 0
	s.mu.Unlock()
}
