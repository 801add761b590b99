package main

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"

	"github.com/notifizz-bridge/notifizz-bridge/deadletter"
	"github.com/notifizz-bridge/notifizz-bridge/internal/config"
)

// headerMsg is a dead letter as read back from the stream: only its subject, headers and body
// matter.
type headerMsg struct {
	jetstream.Msg
	h nats.Header
}

func (m headerMsg) Subject() string      { return "notifizz.dlq.workflow.order-1" }
func (m headerMsg) Headers() nats.Header { return m.h }
func (m headerMsg) Data() []byte         { return []byte(`{}`) }

func TestDeadLetterReplaySubjectDropsPartition(t *testing.T) {
	tests := []struct {
		name       string
		partitions int
		original   string
		subject    string
		key        string
	}{
		{"single replica", 0, "notifizz.workflow.order-1", "notifizz.workflow.order-1", "order-1"},
		{"partitioned", 4, "3.notifizz.workflow.order-1", "notifizz.workflow.order-1", "order-1"},
		{"partitioned, unparsable", 4, "notifizz.bogus.x", "notifizz.bogus.x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Bridge.Partitions.Count = tt.partitions
			m := headerMsg{h: nats.Header{}}
			m.h.Set(deadletter.HeaderOriginalSubject, tt.original)
			m.h.Set(deadletter.HeaderReason, string(deadletter.ReasonAPIRejected))
			dl := newDeadLetter(m, &jetstream.MsgMetadata{}, cfg)
			assert.Equal(t, tt.subject, dl.target)
			assert.Equal(t, tt.key, dl.key)
		})
	}
}
