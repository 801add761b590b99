// Package heldback counts the messages another consumer instance held as they come back: the
// ones a JetStream consumer showed delivered and not acked (its NumAckPending) at stream
// sequences up to its Delivered.Stream, when its previous holder died or stopped. The bridge
// counts them after a start (bridge/recovery.go) and a static group member after taking over a
// dead member's consumer (bridge/group/static.go); either ends its hold when the last is back.
package heldback

// Awaited is the count of one such set. The nil *Awaited awaits nothing.
type Awaited struct {
	left int
	last uint64
	seen map[uint64]struct{}
}

// Await returns the count of pending messages delivered at stream sequences up to last.
func Await(pending int, last uint64) *Awaited {
	return &Awaited{left: pending, last: last, seen: make(map[uint64]struct{}, pending)}
}

// Left is how many have not come back yet.
func (a *Awaited) Left() int {
	if a == nil {
		return 0
	}
	return a.left
}

// Back counts a delivery of stream sequence seq, and reports whether it was the last one
// awaited. A sequence after last was published since, and a sequence seen before was counted
// then: neither counts.
func (a *Awaited) Back(seq uint64) bool {
	if a.Left() == 0 || seq > a.last {
		return false
	}
	if _, ok := a.seen[seq]; ok {
		return false
	}
	a.seen[seq] = struct{}{}
	a.left--
	return a.left == 0
}
