package bridge

import "time"

// timerKind says what a timer entry does when it fires.
type timerKind uint8

const (
	timerDue      timerKind = iota // the window's delay has passed
	timerOrphan                    // the window's orphan timeout has passed
	timerCopy                      // a waiting dead-letter copy may be due (see copyRetry); no window
	timerLane                      // a lane's wait for a redelivery is over (see lanes.go); gen is the wait's
	timerProbe                     // a paused bridge may probe the API (see authpause.go); no window
	timerLaneHold                  // a recovery hold that kept the lanes waiting may be over; no window
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
// timer (and its runtime entry) per window. It is sifted by hand rather than through
// container/heap, whose Push and Pop take the entry as an interface value and so allocate for
// every window opened.
type timerHeap []timerEntry

// add inserts e, sifting it up past every later entry.
func (h *timerHeap) add(e timerEntry) {
	*h = append(*h, e)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s[i].at.Before(s[parent].at) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

// popDue removes and returns the earliest entry if it is due at now.
func (h *timerHeap) popDue(now time.Time) (timerEntry, bool) {
	s := *h
	if len(s) == 0 || s[0].at.After(now) {
		return timerEntry{}, false
	}
	e := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = timerEntry{} // drop the key string for the collector
	s = s[:n]
	for i := 0; ; {
		least, l, r := i, 2*i+1, 2*i+2
		if l < n && s[l].at.Before(s[least].at) {
			least = l
		}
		if r < n && s[r].at.Before(s[least].at) {
			least = r
		}
		if least == i {
			break
		}
		s[i], s[least] = s[least], s[i]
		i = least
	}
	*h = s
	return e, true
}

// next returns the time of the earliest entry.
func (h timerHeap) next() (time.Time, bool) {
	if len(h) == 0 {
		return time.Time{}, false
	}
	return h[0].at, true
}

// clock is the time the coordinator reads and waits on: realClock in the daemon, a fake that
// tests move by hand in the coordinator's unit tests.
type clock interface {
	Now() time.Time
	NewTimer(d time.Duration) clockTimer
	NewTicker(d time.Duration) clockTicker
}

// clockTimer is a time.Timer as the coordinator uses it.
type clockTimer interface {
	Chan() <-chan time.Time
	Reset(d time.Duration) bool
	Stop() bool
}

// clockTicker is a time.Ticker as the coordinator uses it.
type clockTicker interface {
	Chan() <-chan time.Time
	Stop()
}

// realClock is the clock of package time.
type realClock struct{}

func (realClock) Now() time.Time                        { return time.Now() }
func (realClock) NewTimer(d time.Duration) clockTimer   { return realTimer{time.NewTimer(d)} }
func (realClock) NewTicker(d time.Duration) clockTicker { return realTicker{time.NewTicker(d)} }

type realTimer struct{ *time.Timer }

func (t realTimer) Chan() <-chan time.Time { return t.C }

type realTicker struct{ *time.Ticker }

func (t realTicker) Chan() <-chan time.Time { return t.C }
