// Package ingest decouples the fleet server's device-message handling from
// the MQTT client that delivers the messages: the delivery callback only
// copies the message into a bounded queue and returns (so the client
// acknowledges it to the broker at once and the broker's in-flight window to
// the server never fills), and a pool of workers runs the handlers. Many
// workers writing concurrently is what lets the store group-commit (bbolt
// Batch: many handlers' writes in one transaction, one fsync). A full queue
// blocks the callback — backpressure — instead of dropping the message.
package ingest

import (
	"context"
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Message is one delivered MQTT message.
type Message struct {
	Topic   string
	Payload []byte
	// Key, if set, makes the message replace a queued, not yet handled
	// message with the same key instead of queueing behind it. Telemetry
	// uses the device id: a device resends its unacknowledged records as a
	// superset batch, so under a resend storm only the newest batch per
	// device needs handling (its cumulative ack covers the older one).
	Key string
}

// Handler processes one message; its error is counted and logged by the caller.
type Handler func(ctx context.Context, m Message) error

// Config sizes a Pipeline.
type Config struct {
	// Queue is the queue capacity in messages (default 16384) and MaxBytes
	// in payload bytes (default 64 MiB). Beyond either, Submit blocks.
	Queue    int
	MaxBytes int
	// Workers is the number of concurrent handlers (default 128).
	Workers int
	// OnError, if set, is called with every handler error.
	OnError func(m Message, err error)
}

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("ingest pipeline closed")

type entry struct{ m Message }

// Pipeline is a bounded queue with a worker pool.
type Pipeline struct {
	h        Handler
	onErr    func(Message, error)
	max      int
	maxBytes int
	wg       sync.WaitGroup

	mu      sync.Mutex
	cond    *sync.Cond // workers wait for messages
	q       []*entry
	pending map[string]*entry
	bytes   int
	closed  bool
	space   chan struct{} // closed (and replaced) whenever a message leaves the queue

	blocked   prometheus.Counter
	handled   prometheus.Counter
	failed    prometheus.Counter
	coalesced prometheus.Counter
	depth     prometheus.GaugeFunc
}

// New starts the workers; register the metrics with Collectors.
func New(cfg Config, h Handler) *Pipeline {
	if cfg.Queue <= 0 {
		cfg.Queue = 16384
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 128
	}
	p := &Pipeline{h: h, onErr: cfg.OnError, max: cfg.Queue, maxBytes: cfg.MaxBytes, pending: map[string]*entry{}, space: make(chan struct{}),
		blocked:   prometheus.NewCounter(prometheus.CounterOpts{Name: "edgefleet_ingest_backpressure_total", Help: "Device messages whose delivery waited for room in the full ingest queue."}),
		handled:   prometheus.NewCounter(prometheus.CounterOpts{Name: "edgefleet_ingest_handled_total", Help: "Device messages handled by the ingest workers."}),
		failed:    prometheus.NewCounter(prometheus.CounterOpts{Name: "edgefleet_ingest_failed_total", Help: "Device messages whose handler returned an error."}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgefleet_ingest_coalesced_total", Help: "Queued device messages replaced by a newer one with the same key (telemetry resends)."}),
	}
	p.cond = sync.NewCond(&p.mu)
	p.depth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgefleet_ingest_queue_depth", Help: "Device messages waiting in the ingest queue."},
		func() float64 { return float64(p.Len()) })
	for range cfg.Workers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

// Collectors returns the pipeline's metrics.
func (p *Pipeline) Collectors() []prometheus.Collector {
	return []prometheus.Collector{p.blocked, p.handled, p.failed, p.coalesced, p.depth}
}

// Submit queues a message, blocking while the queue is full (until ctx
// ends or the pipeline closes). The payload must not be modified afterwards.
func (p *Pipeline) Submit(ctx context.Context, m Message) error {
	waited := false
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return ErrClosed
		}
		if e := p.pending[m.Key]; m.Key != "" && e != nil {
			p.bytes += len(m.Payload) - len(e.m.Payload)
			e.m = m
			p.mu.Unlock()
			p.coalesced.Inc()
			return nil
		}
		if len(p.q) == 0 || len(p.q) < p.max && p.bytes+len(m.Payload) <= p.maxBytes {
			e := &entry{m: m}
			p.q = append(p.q, e)
			if m.Key != "" {
				p.pending[m.Key] = e
			}
			p.bytes += len(m.Payload)
			p.mu.Unlock()
			p.cond.Signal()
			return nil
		}
		space := p.space
		p.mu.Unlock()
		if !waited {
			waited = true
			p.blocked.Inc()
		}
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Len returns the number of queued messages.
func (p *Pipeline) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.q)
}

func (p *Pipeline) work() {
	defer p.wg.Done()
	// Handlers run to completion even while closing: queued messages
	// were accepted and must be handled.
	ctx := context.Background()
	for {
		p.mu.Lock()
		for len(p.q) == 0 && !p.closed {
			p.cond.Wait()
		}
		if len(p.q) == 0 {
			p.mu.Unlock()
			return
		}
		e := p.q[0]
		p.q[0] = nil
		p.q = p.q[1:]
		if e.m.Key != "" && p.pending[e.m.Key] == e {
			delete(p.pending, e.m.Key)
		}
		p.bytes -= len(e.m.Payload)
		close(p.space)
		p.space = make(chan struct{})
		m := e.m
		p.mu.Unlock()
		if err := p.h(ctx, m); err != nil {
			p.failed.Inc()
			if p.onErr != nil {
				p.onErr(m, err)
			}
		}
		p.handled.Inc()
	}
}

// Close stops accepting messages, handles what is queued and waits for the
// workers.
func (p *Pipeline) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.space) // wake blocked submitters: they see closed
		p.space = make(chan struct{})
	}
	p.mu.Unlock()
	p.cond.Broadcast()
	p.wg.Wait()
}
