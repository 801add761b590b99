package bridge

import (
	"container/heap"
	"time"
)

// timerKind says what a timer entry does when it fires.
type timerKind uint8

const (
	timerDue    timerKind = iota // the window's delay has passed
	timerOrphan                  // the window's orphan timeout has passed
)

// timerEntry refers to a window by key and generation rather than by pointer, so that a
// flushed window is freed at once even though its orphan entry stays in the heap until it fires.
type timerEntry struct {
	at   time.Time
	key  string
	gen  uint64
	kind timerKind
}

// timerHeap is a min-heap of timer entries: one time.Timer serves every window, instead of a
// timer (and its runtime entry) per window.
type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = timerEntry{}
	*h = old[:n-1]
	return e
}

func (h *timerHeap) add(e timerEntry) { heap.Push(h, e) }

// popDue removes and returns the earliest entry if it is due at now.
func (h *timerHeap) popDue(now time.Time) (timerEntry, bool) {
	if len(*h) == 0 || (*h)[0].at.After(now) {
		return timerEntry{}, false
	}
	return heap.Pop(h).(timerEntry), true
}

// next returns the time of the earliest entry.
func (h timerHeap) next() (time.Time, bool) {
	if len(h) == 0 {
		return time.Time{}, false
	}
	return h[0].at, true
}
