package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgefleet/edgefleet/fleet/broker"
	"github.com/edgefleet/edgefleet/fleet/ingest"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// mqttHandler is the server's side of the device message plane: it queues
// the devices' messages from the transport or the NATS consumer (ingest.go),
// handles status, telemetry, job updates and jobs/get, keeps presence and
// liveness, and sends devices their jobs (rollout.Notifier). The Server
// wires it: it owns the broker, the transports and the rollout controller.
type mqttHandler struct {
	reg   *registry.Registry
	tel   *telemetry.Store
	mgr   *rollout.Manager // set once the manager exists (it notifies through the handler)
	clock clock.Clock
	log   *slog.Logger
	// kick brings the rollout controller's next tick forward; sign signs
	// a job for a device; signLink signs a device's link settings (the
	// subscribe QoS of the fleet's broker, enroll.go); publishAck sends a
	// telemetry ack (cluster.go).
	kick       func()
	sign       func(deviceID string, j wire.Job) (wire.Job, error)
	signLink   func(deviceID string) (*wire.SignedCommand, error)
	publishAck func(topic string, payload []byte)
	// onEvent is Config.OnBrokerEvent; inProcess is set with the embedded
	// broker (its publishing devices wait while the queue is full).
	onEvent   func(broker.ClientEvent)
	inProcess bool

	mqtt   broker.Transport // in-process with the embedded broker, else an MQTT client
	ingest *ingest.Pipeline
	msgs   *prometheus.CounterVec
	bad    prometheus.Counter
	seen   seen
	// predicts routes predict responses to the API requests waiting for
	// them (predict.go); they bypass the ingest queue.
	predicts predictWaiters
	// ready tracks, with the embedded broker, which devices subscribed to
	// their predict requests on their current connection (predict.go);
	// readyWaiting and notReady count the API requests waiting for that
	// and those refused without it.
	ready        predictReady
	readyWaiting prometheus.Gauge
	notReady     prometheus.Counter
}

func newMQTTHandler(reg *registry.Registry, tel *telemetry.Store, clk clock.Clock, log *slog.Logger) *mqttHandler {
	return &mqttHandler{reg: reg, tel: tel, clock: clk, log: log,
		msgs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgefleet_mqtt_messages_total", Help: "Device MQTT messages handled, by kind."}, []string{"kind"}),
		bad:  prometheus.NewCounter(prometheus.CounterOpts{Name: "edgefleet_mqtt_rejected_total", Help: "Device MQTT messages rejected as malformed or mismatched."}),
		readyWaiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgefleet_remote_predict_waiting_subscribe",
			Help: "Remote predictions waiting for their device, connected to the embedded broker, to subscribe to prediction requests."}),
		notReady: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgefleet_remote_predict_not_ready_total",
			Help: "Remote predictions refused 409 device_not_ready: the device was connected but had not subscribed to prediction requests."}),
		seen: seen{persisted: map[string]time.Time{}, dropped: map[string]uint64{}, ready: make(chan struct{})}}
}

func (h *mqttHandler) publish(topic string, v any) error {
	b, err := wire.Encode(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.mqtt.Publish(ctx, topic, b)
}

// NotifyJobs publishes the device's pending jobs (rollout.Notifier).
func (h *mqttHandler) NotifyJobs(ctx context.Context, deviceID string) error {
	return h.notifyJobs(ctx, deviceID, false)
}

// notifyJobs publishes the device's pending jobs, with its signed link
// settings when link is set (the device asked with
// wire.FeatureLinkSettings: older agents refuse the field).
func (h *mqttHandler) notifyJobs(ctx context.Context, deviceID string, link bool) error {
	pending, err := h.reg.Jobs.Pending(ctx, deviceID)
	if err != nil {
		return err
	}
	n := wire.JobNotify{V: wire.Version, DeviceID: deviceID, Jobs: []wire.Job{}}
	if link && h.signLink != nil {
		if n.Link, err = h.signLink(deviceID); err != nil {
			return fmt.Errorf("notify %s: %w", deviceID, err)
		}
	}
	for _, j := range pending {
		sj, err := h.sign(deviceID, j.Job)
		if err != nil {
			return err
		}
		n.Jobs = append(n.Jobs, sj)
	}
	return h.publish(wire.JobsNotifyTopic(deviceID), n)
}

func (h *mqttHandler) handle(ctx context.Context, t wire.Topic, payload []byte) error {
	now := h.clock.Now()
	switch t.Kind {
	case wire.KindStatus:
		st, err := wire.DecodeStatus(payload)
		if err != nil {
			return err
		}
		if st.DeviceID != t.DeviceID {
			return fmt.Errorf("status for %s on %s's topic", st.DeviceID, t.DeviceID)
		}
		connected, known := h.connState(t.DeviceID) // embedded broker: presence is the connection state
		err = h.reg.Devices.Update(ctx, t.DeviceID, func(d *registry.Device) error {
			d.Presence = st.State
			if known && connected {
				d.Presence = wire.Online
			} else if known {
				d.Presence = wire.Offline
			}
			d.LastSeen = now
			if st.State == wire.Online {
				if st.AgentVersion != "" {
					d.AgentVersion = st.AgentVersion
				}
				if st.Hardware != nil {
					d.Hardware = *st.Hardware
				}
				if st.Models != nil {
					d.Models = st.Models
				}
			}
			return nil
		})
		if errors.Is(err, registry.ErrNotFound) {
			return nil // deleted device's retained status
		}
		if offline := st.State == wire.Offline; (known && !connected) || (!known && offline) {
			h.predicts.offline(t.DeviceID) // requests waiting for it get no answer
		}
		h.kick()
		return err
	case wire.KindTelemetry:
		return h.handleTelemetry(ctx, t, payload, now) // ingest.go
	case wire.KindJobUpdate:
		u, err := wire.DecodeJobUpdate(payload)
		if err != nil {
			return err
		}
		if u.DeviceID != t.DeviceID || u.JobID != t.JobID {
			return fmt.Errorf("job update %s/%s on topic of %s/%s", u.DeviceID, u.JobID, t.DeviceID, t.JobID)
		}
		_, changed, err := h.reg.Jobs.Update(ctx, t.DeviceID, t.JobID, u.State, u.Reason)
		if err != nil {
			return err
		}
		if changed && u.State.Terminal() {
			h.kick()
			// Tell the device what is still pending (confirms the update).
			return h.NotifyJobs(ctx, t.DeviceID)
		}
		return nil
	case wire.KindJobsGet:
		g, err := wire.DecodeJobsGet(payload)
		if err != nil {
			return err
		}
		if g.DeviceID != t.DeviceID {
			return fmt.Errorf("jobs/get for %s on %s's topic", g.DeviceID, t.DeviceID)
		}
		return h.notifyJobs(ctx, t.DeviceID, g.Has(wire.FeatureLinkSettings))
	case wire.KindPredictResponse:
		// From a consumer of every device message (NATS mode): the server's
		// own MQTT subscription delivers it to the waiting request.
		return nil
	}
	return fmt.Errorf("devices do not publish %s", t.Kind)
}
