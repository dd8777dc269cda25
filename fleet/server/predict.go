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

// predict handles POST /api/v1/devices/{id}/predict/{model}: it forwards
// the REST predict request body to the device over MQTT (the predict topic
// pair, docs/mqtt.md) and answers with the device's response. A device the
// server knows to be offline is answered at once, 409 device_offline with
// its last-seen time, on every broker: the embedded broker would queue the
// request in the device's session and a NATS cluster would drop it, and
// either way the caller could only wait for its timeout. A device that
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
	timeout := s.cfg.PredictTimeout
	if timeout <= 0 {
		timeout = defaultPredictTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
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
