package server

import (
	"context"
	"fmt"
	"time"

	"github.com/edgefleet/edgefleet/fleet/broker/natscluster"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// natsMode reports whether device messages come from a NATS cluster's
// shared durable consumer (Config.NATSURLs) instead of MQTT subscriptions.
func (s *Server) natsMode() bool { return len(s.cfg.NATSURLs) > 0 }

// serverFilters are the MQTT subscriptions of the server's MQTT client:
// none in NATS mode (the client only publishes to devices; subscribing
// there would hand every device message to every replica).
func (s *Server) serverFilters() []string {
	if s.natsMode() {
		return nil
	}
	return wire.ServerFilters()
}

// natsWorkers handle device messages concurrently per replica. Their
// store updates are group-committed (one PostgreSQL transaction for all
// waiting), so more workers make bigger, not more, transactions: 64 kept
// batches small and acks fell behind at 5,000 devices.
const natsWorkers = 256

// startNATS starts consuming device messages from the NATS cluster: each
// message is handled (stored) by exactly one replica before it is
// acknowledged; a replica that dies leaves its unacknowledged messages to
// the others after Config.NATSAckWait. The server's MQTT client (publishes
// to devices) must be connecting already: the MQTT listener creates the
// stream at its first connection.
func (s *Server) startNATS(ctx context.Context, password string) error {
	if !s.natsMode() {
		return nil
	}
	if s.cfg.BrokerURL == "" {
		return fmt.Errorf("fleet server: --nats needs --broker (the NATS cluster's MQTT listener) for messages to devices")
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := natscluster.Consume(cctx, natscluster.ConsumerConfig{URLs: s.cfg.NATSURLs, User: s.cfg.BrokerUser, Password: password,
		TLS: s.natsTLS(), AckWait: s.cfg.NATSAckWait, Logger: s.log, Workers: natsWorkers,
		Handle: func(ctx context.Context, topic string, payload []byte) error {
			t, err := wire.ParseTopic(topic)
			if err != nil {
				s.h.bad.Inc()
				return nil // never valid: acknowledge and forget
			}
			s.h.msgs.WithLabelValues(string(t.Kind)).Inc()
			s.h.touch(t.DeviceID, s.cfg.Clock.Now())
			return s.h.handle(ctx, t, payload)
		}})
	if err != nil {
		return fmt.Errorf("fleet server: %w", err)
	}
	s.nats.Store(c)
	s.log.Info("consuming device messages from the NATS cluster", "urls", s.cfg.NATSURLs, "consumer", natscluster.ConsumerName)
	return nil
}

// stopNATS stops consuming (what is being handled finishes and is
// acknowledged; the rest goes to other replicas).
func (s *Server) stopNATS() {
	if c := s.nats.Swap(nil); c != nil {
		c.Close()
	}
}

// publishAck sends a telemetry ack: in NATS mode as a plain NATS message
// (QoS 0 to the device: a QoS 1 publish costs a replicated JetStream write
// per ack, which capped acks near 20/s at 1,000 devices; a lost ack only
// makes the device resend records the server recognises), else QoS 1 over
// MQTT without waiting for the PUBACK.
func (s *Server) publishAck(topic string, payload []byte) {
	if c := s.nats.Load(); c != nil {
		if err := c.PublishCore(topic, payload); err == nil {
			return
		}
	}
	if err := s.h.mqtt.Send(topic, payload); err != nil {
		s.log.Warn("telemetry ack not sent", "topic", topic, "err", err)
	}
}
