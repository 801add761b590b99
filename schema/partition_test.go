package schema

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSplitPartition(t *testing.T) {
	tests := []struct {
		subject   string
		partition int
		published string
		ok        bool
	}{
		{"3.notifizz.track.order-1", 3, "notifizz.track.order-1", true},
		{"0.acme.notifizz.commit.k", 0, "acme.notifizz.commit.k", true},
		{"11.notifizz.workflow.k", 11, "notifizz.workflow.k", true},
		{"notifizz.track.k", 0, "notifizz.track.k", false},
		{"3x.notifizz.track.k", 0, "3x.notifizz.track.k", false},
		{"3", 0, "3", false},
		{"3.", 3, "", true},
		{".notifizz.track.k", 0, ".notifizz.track.k", false},
		{"1234567890.notifizz.track.k", 0, "1234567890.notifizz.track.k", false},
		{"", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			p, published, ok := SplitPartition(tt.subject)
			assert.Equal(t, tt.partition, p)
			assert.Equal(t, tt.published, published)
			assert.Equal(t, tt.ok, ok)
		})
	}
}
