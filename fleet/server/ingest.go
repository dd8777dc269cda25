package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefleet/edgefleet/fleet/ingest"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/fleet/wire"
)

// startIngest creates the bounded queue and worker pool that handle device
// messages apart from the MQTT client's delivery (see package ingest).
func (s *Server) startIngest() {
	// Job updates kick the rollout controller; during a large rollout they
	// arrive by the thousand: two fleet snapshots a second are enough.
	s.mgr.SetMinTickGap(500 * time.Millisecond)
	// The queue absorbs a reconnect storm (every device's status and
	// jobs/get at once) so the broker's in-flight window to this client
	// (8,192 in mochi) never fills; snapshots coalesce per device.
	s.ingest = ingest.New(ingest.Config{Queue: 65536, MaxBytes: 256 << 20, OnError: func(m ingest.Message, err error) {
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
	ctx, cancel := context.WithCancel(context.Background())
	seenOf.Store(s, &seen{last: map[string]time.Time{}, persisted: map[string]time.Time{}, dropped: map[string]uint64{}, stop: cancel})
	go s.livenessLoop(ctx)
}

// stopIngest handles what is queued and stops the workers.
func (s *Server) stopIngest() {
	if s.ingest != nil {
		s.ingest.Close()
	}
	s.resignLeader()
	if v, ok := seenOf.LoadAndDelete(s); ok && v.(*seen).stop != nil {
		v.(*seen).stop()
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
	s.touch(t.DeviceID, s.cfg.Clock.Now())
	msg := ingest.Message{Topic: m.Topic(), Payload: m.Payload()}
	switch t.Kind {
	// Snapshots: a newer message of the same device supersedes a queued
	// one (a telemetry resend is a superset batch, a status is the whole
	// state, jobs/get asks for the same answer). Job updates are state
	// transitions and are never coalesced.
	case wire.KindTelemetry, wire.KindStatus, wire.KindJobsGet:
		msg.Key = string(t.Kind) + "/" + t.DeviceID
	}
	if err := s.ingest.Submit(context.Background(), msg); err != nil {
		s.log.Warn("mqtt message not queued", "topic", m.Topic(), "err", err)
	}
}

// persistEvery bounds how often a device's registry record is rewritten for
// telemetry bookkeeping (last seen, acknowledged seq): the telemetry store
// is the source of truth for seqs, so the registry copy may lag.
const persistEvery = 30 * time.Second

// livenessTimeout marks a device offline when no message arrived for this
// long (a crash whose Last Will was lost must not stay "online").
const livenessTimeout = 2 * time.Minute

// seen records when each device last sent anything (liveness), and when
// its registry record was last updated from telemetry.
type seen struct {
	mu        sync.Mutex
	last      map[string]time.Time
	persisted map[string]time.Time
	dropped   map[string]uint64
	stop      context.CancelFunc
}

var seenOf sync.Map // *Server → *seen (kept out of Server to keep server.go edits minimal)

func (s *Server) seen() *seen {
	v, _ := seenOf.LoadOrStore(s, &seen{last: map[string]time.Time{}, persisted: map[string]time.Time{}, dropped: map[string]uint64{}})
	return v.(*seen)
}

func (s *Server) touch(device string, now time.Time) {
	sn := s.seen()
	sn.mu.Lock()
	sn.last[device] = now
	sn.mu.Unlock()
}

// handleTelemetry stores a batch (group-committed with other workers'
// writes), acknowledges what is durable, and updates the registry's
// bookkeeping at most every persistEvery.
func (s *Server) handleTelemetry(ctx context.Context, t wire.Topic, payload []byte, now time.Time) error {
	b, err := wire.DecodeTelemetryBatch(payload)
	if err != nil {
		return err
	}
	if b.DeviceID != t.DeviceID {
		return fmt.Errorf("telemetry for %s on %s's topic", b.DeviceID, t.DeviceID)
	}
	if _, err := s.reg.Device(ctx, t.DeviceID); err != nil {
		return err
	}
	ack, _, ierr := s.tel.Ingest(ctx, b, func(r wire.TelemetryRecord) string { return s.mgr.StageTag(t.DeviceID, r) })
	if ierr != nil && !errors.Is(ierr, telemetry.ErrSeqOutOfRange) {
		return ierr
	}
	sn := s.seen()
	sn.mu.Lock()
	due := now.Sub(sn.persisted[t.DeviceID]) >= persistEvery || sn.dropped[t.DeviceID] != b.Dropped
	if due {
		sn.persisted[t.DeviceID], sn.dropped[t.DeviceID] = now, b.Dropped
	}
	sn.mu.Unlock()
	if due {
		s.reg.UpdateDevice(ctx, t.DeviceID, func(d *registry.Device) error {
			d.LastSeen, d.TelemetrySeq, d.TelemetryDropped = now, ack, b.Dropped
			return nil
		})
	}
	// The ack is sent QoS 1 without waiting for the broker's PUBACK: the
	// worker moves on (paho keeps and resends it across a reconnect), and
	// a lost ack only makes the device resend records the server already
	// has, which it recognises.
	a, err := wire.Encode(wire.TelemetryAck{V: wire.Version, DeviceID: t.DeviceID, Seq: ack, Epoch: b.Epoch})
	if err != nil {
		return err
	}
	s.publishAck(wire.TelemetryAckTopic(t.DeviceID), a) // cluster.go: NATS mode acks at QoS 0
	return ierr
}

// livenessLoop marks devices offline whose last message is older than
// livenessTimeout, until ctx ends.
func (s *Server) livenessLoop(ctx context.Context) {
	tick := time.NewTicker(livenessTimeout / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := s.cfg.Clock.Now()
		ds, err := s.reg.Devices(ctx, registry.Selector{})
		if err != nil {
			continue
		}
		sn := s.seen()
		for _, d := range ds {
			if d.Presence != wire.Online {
				continue
			}
			sn.mu.Lock()
			last := sn.last[d.ID]
			sn.mu.Unlock()
			if d.LastSeen.After(last) {
				last = d.LastSeen
			}
			if now.Sub(last) < livenessTimeout {
				continue
			}
			err := s.reg.UpdateDevice(ctx, d.ID, func(d *registry.Device) error {
				if d.Presence == wire.Online && now.Sub(d.LastSeen) >= livenessTimeout {
					d.Presence = wire.Offline
				}
				return nil
			})
			if err == nil {
				s.log.Info("device offline: liveness timeout", "device", d.ID, "last_seen", last)
			}
		}
	}
}
