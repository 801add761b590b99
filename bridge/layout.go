package bridge

import "github.com/notifizz-bridge/notifizz-bridge/bridge/layout"

// StreamLayout is the layout of the notification and dead-letter streams c describes.
func (c Config) StreamLayout() layout.Streams {
	return layout.Streams{
		Name: c.Stream.Name, SubjectPrefix: c.Stream.SubjectPrefix,
		DeadLetter: c.DeadLetter.Stream, DeadLetterPrefix: c.DeadLetter.SubjectPrefix,
		Storage: layout.Storage(string(c.Stream.Storage)), Replicas: c.Stream.Replicas,
		MaxAge: c.Stream.MaxAge, DuplicateWindow: c.Stream.DuplicateWindow,
		Partitions: c.Partitions.Count,
	}
}

// ConsumerLayout is the layout of the consumers c describes.
func (c Config) ConsumerLayout() layout.Consumer {
	return layout.Consumer{
		Durable: c.Consumer.Durable, AckWait: c.Consumer.AckWait,
		MaxDeliver: c.Consumer.MaxDeliver, MaxAckPending: c.Consumer.MaxAckPending,
	}
}
