package server

import (
	"context"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefleet/edgefleet/fleet/ingest"
	"github.com/edgefleet/edgefleet/fleet/wire"
)

// startIngest creates the bounded queue and worker pool that handle device
// messages apart from the MQTT client's delivery (see package ingest).
func (s *Server) startIngest() {
	s.ingest = ingest.New(ingest.Config{OnError: func(m ingest.Message, err error) {
		s.mqttBad.Inc()
		s.log.Warn("mqtt message rejected", "topic", m.Topic, "err", err)
	}}, func(ctx context.Context, m ingest.Message) error {
		t, err := wire.ParseTopic(m.Topic)
		if err != nil {
			return err
		}
		return s.handle(ctx, t, m.Payload)
	})
	s.prom.MustRegister(s.ingest.Collectors()...)
}

// stopIngest handles what is queued and stops the workers.
func (s *Server) stopIngest() {
	if s.ingest != nil {
		s.ingest.Close()
	}
}

// onMessage is the MQTT delivery callback: it only queues the message
// (blocking when the queue is full), so paho acknowledges it to the broker
// at once and the broker's in-flight window to the server stays small.
func (s *Server) onMessage(_ paho.Client, m paho.Message) {
	t, err := wire.ParseTopic(m.Topic())
	if err != nil {
		s.mqttBad.Inc()
		s.log.Warn("mqtt message on unknown topic", "topic", m.Topic(), "err", err)
		return
	}
	s.mqttMsgs.WithLabelValues(string(t.Kind)).Inc()
	if err := s.ingest.Submit(context.Background(), ingest.Message{Topic: m.Topic(), Payload: m.Payload()}); err != nil {
		s.log.Warn("mqtt message not queued", "topic", m.Topic(), "err", err)
	}
}
