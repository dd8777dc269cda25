package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// defaultPredictTimeout bounds a remote prediction when Config.PredictTimeout
// is 0: the agent answers within its own 30 s prediction timeout plus up
// to 10 s waiting for a prediction slot.
const defaultPredictTimeout = 45 * time.Second

// defaultPredictReadyWait is how long a remote prediction waits, when
// Config.PredictReadyWait is 0, for a device that is connected to the
// embedded broker but has not subscribed to its prediction requests yet
// (an agent subscribes right after its CONNACK: milliseconds, more
// during a reconnect storm).
const defaultPredictReadyWait = 5 * time.Second

// predictReady tracks, with the embedded broker, whether each connected
// device has subscribed to its predict requests on its current
// connection. Until it has, a request published to it is lost: on its
// first connect its session has no subscription yet (the broker drops
// the message), and on a later one the session's subscription delivers
// it to a client that may not route it yet (an agent process that just
// started registers its message handlers with its SUBSCRIBE).
type predictReady struct {
	mu    sync.Mutex
	conns map[string]*readyConn // device → its current connection
}

// readyConn is one connection of a device.
type readyConn struct {
	remote string
	since  time.Time
	ready  bool
	wake   chan struct{} // closed when the connection subscribed or ended
}

// connected starts a device's new connection: not ready until it
// subscribes.
func (p *predictReady) connected(device, remote string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = map[string]*readyConn{}
	}
	if old := p.conns[device]; old != nil && !old.ready {
		close(old.wake)
	}
	p.conns[device] = &readyConn{remote: remote, since: now, wake: make(chan struct{})}
}

// disconnected ends the device's connection.
func (p *predictReady) disconnected(device string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[device]; c != nil {
		if !c.ready {
			close(c.wake)
		}
		delete(p.conns, device)
	}
}

// subscribed marks the device's connection from remote ready when the
// broker granted it its predict request topic (a SUBSCRIBE of an older,
// taken-over connection counts for nothing).
func (p *predictReady) subscribed(device, remote string, filters []string) {
	topic := wire.PredictRequestTopic(device)
	for _, f := range filters {
		if f != topic {
			continue
		}
		p.mu.Lock()
		if c := p.conns[device]; c != nil && c.remote == remote && !c.ready {
			c.ready = true
			close(c.wake)
		}
		p.mu.Unlock()
		return
	}
}

// state returns a copy of the device's current connection (ok=false: not
// connected).
func (p *predictReady) state(device string) (c readyConn, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cp := p.conns[device]
	if cp == nil {
		return readyConn{}, false
	}
	return *cp, true
}

// predictWaiters routes the devices' predict responses to the API
// requests waiting for them, by correlation id.
type predictWaiters struct {
	mu      sync.Mutex
	waiting map[string]predictWaiter // predictKey → the waiting request
}

type predictWaiter struct {
	device string
	ch     chan *wire.PredictResponse
}

func (p *predictWaiters) add(device, id string) chan *wire.PredictResponse {
	ch := make(chan *wire.PredictResponse, 1)
	p.mu.Lock()
	if p.waiting == nil {
		p.waiting = map[string]predictWaiter{}
	}
	p.waiting[predictKey(device, id)] = predictWaiter{device, ch}
	p.mu.Unlock()
	return ch
}

// offline answers the requests waiting for device, which went offline
// (the server saw it disconnect, its offline status or Last Will, or its
// liveness timeout), with 503 device_offline: on a NATS cluster the
// request is lost, on the embedded broker it would be answered only when
// the device returns.
func (p *predictWaiters) offline(device string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.waiting {
		if w.device != device {
			continue
		}
		select {
		case w.ch <- &wire.PredictResponse{V: wire.Version, Status: http.StatusServiceUnavailable,
			Error: &wire.PredictError{Code: "device_offline", Message: "went offline before answering"}}:
		default:
		}
	}
}

func (p *predictWaiters) remove(id string) {
	p.mu.Lock()
	delete(p.waiting, id)
	p.mu.Unlock()
}

// deliver hands a device's predict response to its waiting request: only
// on the device's own topic, only for an id this server is waiting for
// from that device (another replica's, or one given up on, is dropped).
func (p *predictWaiters) deliver(device string, payload []byte) error {
	r, err := wire.DecodePredictResponse(payload)
	if err != nil {
		return err
	}
	p.mu.Lock()
	w, ok := p.waiting[predictKey(device, r.ID)]
	p.mu.Unlock()
	if ok {
		select {
		case w.ch <- r:
		default: // a duplicate (QoS 1 redelivery): the first one counts
		}
	}
	return nil
}

// predictKey binds a correlation id to its device: a device answering
// with another device's id reaches nobody.
func predictKey(device, id string) string { return device + "/" + id }

// awaitSubscribed returns once the device, connected to the embedded
// broker, has subscribed to its predict requests on this connection,
// waiting at most Config.PredictReadyWait (and no longer than ctx's
// deadline); else it returns 409
// device_not_ready (still not subscribed) or 409 device_offline (the
// connection ended first). Nothing has been sent to the device then.
func (s *Server) awaitSubscribed(ctx context.Context, id string) error {
	wait := s.cfg.PredictReadyWait
	if wait == 0 {
		wait = defaultPredictReadyWait
	}
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	expired, waiting := wait < 0, false
	for {
		c, ok := s.h.ready.state(id)
		switch {
		case !ok:
			return errf(http.StatusConflict, "device_offline", "device %s disconnected before it subscribed to prediction requests: the prediction was not sent", id)
		case c.ready:
			return nil
		case expired:
			s.h.notReady.Inc()
			return errf(http.StatusConflict, "device_not_ready",
				"device %s is connected (for %s) but has not subscribed to prediction requests yet: the prediction was not sent; retry shortly",
				id, s.cfg.Clock.Now().Sub(c.since).Round(time.Millisecond))
		}
		if !waiting {
			waiting = true
			s.h.readyWaiting.Inc()
			defer s.h.readyWaiting.Dec()
		}
		select {
		case <-c.wake:
		case <-timeout:
			expired = true
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return ctx.Err() // the caller went away
			}
			expired = true // the predict timeout is shorter than the wait
		}
	}
}

// predict handles POST /api/v1/devices/{id}/predict/{model}: it forwards
// the REST predict request body to the device over MQTT (the predict topic
// pair, docs/mqtt.md) and answers with the device's response. A device the
// server knows to be offline is answered at once, 409 device_offline with
// its last-seen time, on every broker: the embedded broker would queue the
// request in the device's session and a NATS cluster would drop it, and
// either way the caller could only wait for its timeout. A device
// connected to the embedded broker that has not yet subscribed to its
// prediction requests on this connection (awaitSubscribed) is waited for
// up to Config.PredictReadyWait, then answered 409 device_not_ready,
// nothing sent; with an external broker the server counts a device
// online from the status it publishes once subscribed. A device that
// goes offline while a request waits is 503 device_offline as soon as the
// server knows; no answer within Config.PredictTimeout is 504.
func (s *Server) predict(w http.ResponseWriter, r *http.Request) (any, error) {
	id, model := r.PathValue("id"), r.PathValue("model")
	if err := wire.ValidateModelRef(model); err != nil {
		return nil, errf(http.StatusBadRequest, "bad_model", "%v", err)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, wire.MaxPayload/2+1))
	if err != nil {
		return nil, errf(http.StatusBadRequest, "bad_request", "read body: %v", err)
	}
	if len(b) > wire.MaxPayload/2 {
		return nil, errf(http.StatusRequestEntityTooLarge, "too_large", "body over %d bytes", wire.MaxPayload/2)
	}
	d, err := s.reg.Devices.Get(r.Context(), id)
	if err != nil {
		return nil, err // 404 for an unknown device
	}
	online := d.Presence == wire.Online
	if connected, known := s.h.connState(id); known {
		online = connected // embedded broker: the connection itself
	}
	if !online {
		last := "never"
		if !d.LastSeen.IsZero() {
			last = d.LastSeen.UTC().Format(time.RFC3339) + ", " + s.cfg.Clock.Now().Sub(d.LastSeen).Round(time.Second).String() + " ago"
		}
		return nil, errf(http.StatusConflict, "device_offline", "device %s is offline (last seen %s): the prediction was not sent", id, last)
	}
	// One bound for the whole request: the wait for the device's
	// subscription counts against the predict timeout.
	timeout := s.cfg.PredictTimeout
	if timeout <= 0 {
		timeout = defaultPredictTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if _, known := s.h.connState(id); known {
		if err := s.awaitSubscribed(ctx, id); err != nil {
			return nil, err
		}
	}
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	req := wire.PredictRequest{V: wire.Version, ID: "fleet-" + hex.EncodeToString(nonce), Model: model, Body: json.RawMessage(b)}
	if err := req.Validate(); err != nil {
		return nil, errf(http.StatusBadRequest, "bad_request", "%v", err)
	}
	payload, err := wire.Encode(req)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "bad_request", "%v", err)
	}
	ch := s.h.predicts.add(id, req.ID)
	defer s.h.predicts.remove(predictKey(id, req.ID))
	if err := s.h.mqtt.Publish(ctx, wire.PredictRequestTopic(id), payload); err != nil {
		return nil, errf(http.StatusServiceUnavailable, "broker_unavailable", "send the prediction to device %s: %v", id, err)
	}
	select {
	case resp := <-ch:
		if resp.Status >= 300 {
			return nil, errf(resp.Status, resp.Error.Code, "device %s: %s", id, resp.Error.Message)
		}
		return resp.Body, nil
	case <-ctx.Done():
		if errors.Is(r.Context().Err(), context.Canceled) {
			return nil, r.Context().Err()
		}
		return nil, errf(http.StatusGatewayTimeout, "device_timeout", "device %s did not answer the prediction within %s", id, timeout)
	}
}
