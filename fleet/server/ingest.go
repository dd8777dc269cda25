package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgefleet/edgefleet/fleet/broker"
	"github.com/edgefleet/edgefleet/fleet/ingest"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// startIngest creates the bounded queue and worker pool that handle device
// messages apart from the MQTT client's delivery (see package ingest).
func (h *mqttHandler) startIngest(prom prometheus.Registerer) {
	// Job updates kick the rollout controller; during a large rollout they
	// arrive by the thousand: two fleet snapshots a second are enough.
	h.mgr.SetMinTickGap(500 * time.Millisecond)
	// The queue absorbs a reconnect storm (every device's status and
	// jobs/get at once); snapshots (telemetry, status, jobs/get) coalesce
	// per device, so 65,536 entries hold three per device for 20,000
	// devices plus job updates. As an MQTT client that keeps the broker's
	// in-flight window to this client from filling. In-process a full
	// queue holds the publishing devices back (nothing is lost, but a
	// device whose connection is not read cannot answer its keepalive
	// either), and the byte bound is smaller to fit the memory budget.
	queue, maxBytes := 65536, 256<<20
	if h.inProcess {
		maxBytes = 96 << 20
	}
	h.ingest = ingest.New(ingest.Config{Queue: queue, MaxBytes: maxBytes, OnError: func(m ingest.Message, err error) {
		h.bad.Inc()
		h.log.Warn("mqtt message rejected", "topic", m.Topic, "err", err)
	}}, func(ctx context.Context, m ingest.Message) error {
		<-h.seen.ready // the transport is set up (deliveries may start before connectMQTT returns)
		if h.mqtt == nil {
			return errors.New("no broker transport")
		}
		if id, ok := strings.CutPrefix(m.Key, presenceKey); ok && m.Topic == "" {
			return h.applyPresence(ctx, id)
		}
		t, err := wire.ParseTopic(m.Topic)
		if err != nil {
			return err
		}
		return h.handle(ctx, t, m.Payload)
	})
	prom.MustRegister(h.ingest.Collectors()...)
	h.reg.Devices.OnRevoke(h.forgetEnrolled)
	ctx, cancel := context.WithCancel(context.Background())
	sn := &h.seen
	sn.mu.Lock()
	sn.stop = cancel
	sn.mu.Unlock()
	go h.livenessLoop(ctx)
}

// ingestReady lets the ingest workers start handling messages: the
// transport they answer through is set up.
func (h *mqttHandler) ingestReady() {
	sn := &h.seen
	sn.readyOnce.Do(func() { close(sn.ready) })
}

// presenceKey keys the ingest messages that carry no MQTT message but a
// device's connection state from the embedded broker's events.
const presenceKey = "presence/"

// onBrokerEvent receives the embedded broker's connect/disconnect events:
// the connection state becomes the device's presence (recorded at once in
// memory, persisted by an ingest worker, coalesced per device). A
// disconnect caused by the same device's newer connection is ignored.
// Config.OnBrokerEvent sees the event once the server has taken it in.
func (h *mqttHandler) onBrokerEvent(ev broker.ClientEvent) {
	if h.onEvent != nil {
		defer h.onEvent(ev)
	}
	id := ev.Principal.DeviceID
	if id == "" || ev.TakenOver {
		return
	}
	sn := &h.seen
	// Readiness first: a prediction that sees the device connected finds
	// its connection (not yet subscribed).
	if ev.Connected {
		h.ready.connected(id, ev.Remote, h.clock.Now())
	} else {
		h.ready.disconnected(id)
	}
	sn.connected.Store(id, ev.Connected)
	sn.last.Store(id, h.clock.Now())
	if !ev.Connected {
		h.predicts.offline(id)
	}
	if err := h.ingest.Submit(context.Background(), ingest.Message{Key: presenceKey + id}); err != nil {
		h.log.Warn("presence not queued", "device", id, "err", err)
	}
}

// onSubscribed receives the embedded broker's granted subscriptions: a
// device that subscribed to its predict requests can take them
// (predictReady).
func (h *mqttHandler) onSubscribed(ev broker.SubscribeEvent) {
	if id := ev.Principal.DeviceID; id != "" {
		h.ready.subscribed(id, ev.Remote, ev.Filters)
	}
}

// connState reports the device's connection state from the embedded
// broker's events (known=false with an external broker or before its
// first event).
func (h *mqttHandler) connState(id string) (connected, known bool) {
	sn := &h.seen
	v, known := sn.connected.Load(id)
	if !known {
		return false, false
	}
	return v.(bool), true
}

// applyPresence persists the device's current connection state (read at
// handling time, so out-of-order workers still store the newest state).
func (h *mqttHandler) applyPresence(ctx context.Context, id string) error {
	connected, known := h.connState(id)
	if !known {
		return nil
	}
	want := wire.Offline
	if connected {
		want = wire.Online
	}
	if d, err := h.reg.Devices.Get(ctx, id); err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			return nil
		}
		return err
	} else if d.Presence == want {
		return nil
	}
	now := h.clock.Now()
	err := h.reg.Devices.Update(ctx, id, func(d *registry.Device) error {
		d.Presence = want
		if connected {
			d.LastSeen = now
		}
		return nil
	})
	if errors.Is(err, registry.ErrNotFound) {
		return nil
	}
	h.kick()
	return err
}

// stopIngest handles what is queued and stops the workers.
func (h *mqttHandler) stopIngest() {
	h.ingestReady() // a Start that failed early: let queued messages drain
	if h.ingest != nil {
		h.ingest.Close()
	}
	if h.seen.stop != nil {
		h.seen.stop()
	}
}

// deliver is the transport's delivery callback (broker.Deliver): it only
// queues the message, blocking while the queue is full. In-process that
// holds back the publishing device's connection (backpressure, nothing
// dropped); as an MQTT client, paho acknowledges the message to the broker
// once it is queued, so the broker's in-flight window to the server stays
// small.
func (h *mqttHandler) deliver(topic string, payload []byte) {
	t, err := wire.ParseTopic(topic)
	if err != nil {
		h.bad.Inc()
		h.log.Warn("mqtt message on unknown topic", "topic", topic, "err", err)
		return
	}
	h.msgs.WithLabelValues(string(t.Kind)).Inc()
	h.touch(t.DeviceID, h.clock.Now())
	if t.Kind == wire.KindPredictResponse {
		// A caller is waiting: straight to it, not behind the ingest queue.
		if err := h.predicts.deliver(t.DeviceID, payload); err != nil {
			h.bad.Inc()
			h.log.Warn("bad predict response", "device", t.DeviceID, "err", err)
		}
		return
	}
	msg := ingest.Message{Topic: topic, Payload: payload}
	switch t.Kind {
	// Snapshots: a newer message of the same device supersedes a queued
	// one (a telemetry resend is a superset batch, a status is the whole
	// state, jobs/get asks for the same answer). Job updates are state
	// transitions and are never coalesced.
	case wire.KindTelemetry, wire.KindStatus, wire.KindJobsGet:
		msg.Key = string(t.Kind) + "/" + t.DeviceID
	}
	if err := h.ingest.Submit(context.Background(), msg); err != nil {
		h.log.Warn("mqtt message not queued", "topic", topic, "err", err)
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
	// last (device → time.Time), connected (device → bool: the embedded
	// broker's connection state from its events; empty with an external
	// broker) and enrolled (device → time.Time, checkEnrolled's cache) are
	// touched for every message, from the devices' connection goroutines:
	// sync.Maps, no global lock to queue on.
	last, connected, enrolled sync.Map

	mu        sync.Mutex // persisted, dropped, stop
	persisted map[string]time.Time
	dropped   map[string]uint64
	stop      context.CancelFunc
	ready     chan struct{} // closed once the transport is set up
	readyOnce sync.Once
}

func (h *mqttHandler) touch(device string, now time.Time) {
	sn := &h.seen
	sn.last.Store(device, now)
}

// handleTelemetry stores a batch (group-committed with other workers'
// writes), acknowledges what is durable, and updates the registry's
// bookkeeping at most every persistEvery.
func (h *mqttHandler) handleTelemetry(ctx context.Context, t wire.Topic, payload []byte, now time.Time) error {
	b, err := wire.DecodeTelemetryBatch(payload)
	if err != nil {
		return err
	}
	if b.DeviceID != t.DeviceID {
		return fmt.Errorf("telemetry for %s on %s's topic", b.DeviceID, t.DeviceID)
	}
	if err := h.checkEnrolled(ctx, t.DeviceID, now); err != nil {
		return err
	}
	ack, _, ierr := h.tel.Ingest(ctx, b, func(r wire.TelemetryRecord) string { return h.mgr.StageTag(t.DeviceID, r) })
	if ierr != nil && !errors.Is(ierr, telemetry.ErrSeqOutOfRange) {
		return ierr
	}
	sn := &h.seen
	sn.mu.Lock()
	due := now.Sub(sn.persisted[t.DeviceID]) >= persistEvery || sn.dropped[t.DeviceID] != b.Dropped
	if due {
		sn.persisted[t.DeviceID], sn.dropped[t.DeviceID] = now, b.Dropped
	}
	sn.mu.Unlock()
	if due {
		h.reg.Devices.Update(ctx, t.DeviceID, func(d *registry.Device) error {
			d.LastSeen, d.TelemetrySeq, d.TelemetryDropped = now, ack, b.Dropped
			return nil
		})
	}
	// The ack is sent QoS 1 without waiting for the broker: the worker
	// moves on, and a lost ack only makes the device resend records the
	// server already has, which it recognises.
	a, err := wire.Encode(wire.TelemetryAck{V: wire.Version, DeviceID: t.DeviceID, Seq: ack, Epoch: b.Epoch})
	if err != nil {
		return err
	}
	h.publishAck(wire.TelemetryAckTopic(t.DeviceID), a) // cluster.go: NATS mode acks at QoS 0
	return ierr
}

// checkEnrolled fails for a device that is not (or no longer) enrolled. A
// successful lookup is remembered for persistEvery, so a device's steady
// telemetry costs no registry read; revoking the device (delete, reset,
// re-enrollment) forgets it at once.
func (h *mqttHandler) checkEnrolled(ctx context.Context, id string, now time.Time) error {
	sn := &h.seen
	if v, ok := sn.enrolled.Load(id); ok {
		if at := v.(time.Time); now.Sub(at) < persistEvery && !now.Before(at) {
			return nil
		}
	}
	if _, err := h.reg.Devices.Get(ctx, id); err != nil {
		return err
	}
	sn.enrolled.Store(id, now)
	return nil
}

// forgetEnrolled drops a revoked device from the checkEnrolled cache.
func (h *mqttHandler) forgetEnrolled(id string) {
	sn := &h.seen
	sn.enrolled.Delete(id)
}

// livenessLoop marks devices offline whose last message is older than
// livenessTimeout, until ctx ends.
func (h *mqttHandler) livenessLoop(ctx context.Context) {
	tick := time.NewTicker(livenessTimeout / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := h.clock.Now()
		// Only id, presence and last seen are decoded (a full List of
		// 10,000 devices every 30 s allocated about 50 MB); the few
		// candidates are updated after the read transaction.
		var stale []string
		sn := &h.seen
		err := h.reg.Devices.EachPresence(ctx, func(id string, p wire.Presence, lastSeen time.Time) {
			if p != wire.Online {
				return
			}
			if connected, _ := h.connState(id); connected {
				return // the broker's keepalive ends a dead connection (disconnect event)
			}
			last := lastSeen
			if v, ok := sn.last.Load(id); ok && v.(time.Time).After(last) {
				last = v.(time.Time)
			}
			if now.Sub(last) >= livenessTimeout {
				stale = append(stale, id)
			}
		})
		if err != nil {
			continue
		}
		for _, id := range stale {
			var last time.Time
			err := h.reg.Devices.Update(ctx, id, func(d *registry.Device) error {
				last = d.LastSeen
				if d.Presence == wire.Online && now.Sub(d.LastSeen) >= livenessTimeout {
					d.Presence = wire.Offline
				}
				return nil
			})
			if err == nil {
				h.predicts.offline(id)
				h.log.Info("device offline: liveness timeout", "device", id, "last_seen", last)
			}
		}
	}
}
