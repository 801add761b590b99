package heldback

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestAwaited: the count ends with the last message held, counts each once, and ignores what
// was published after the reading.
func TestAwaited(t *testing.T) {
	a := Await(2, 10)
	assert.False(t, a.Back(11), "delivered after the reading: not one it held")
	assert.False(t, a.Back(4))
	assert.False(t, a.Back(4), "the same one twice counts once")
	assert.Equal(t, 1, a.Left())
	assert.True(t, a.Back(10), "the last one it held")
	assert.False(t, a.Back(7), "nothing is awaited any more")
	assert.Zero(t, a.Left())
}

// TestAwaitedNil: the nil count awaits nothing.
func TestAwaitedNil(t *testing.T) {
	var a *Awaited
	assert.Zero(t, a.Left())
	assert.False(t, a.Back(1))
}
