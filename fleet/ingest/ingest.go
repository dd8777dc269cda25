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
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Message is one delivered MQTT message.
type Message struct {
	Topic   string
	Payload []byte
}

// Handler processes one message; its error is counted and logged by the caller.
type Handler func(ctx context.Context, m Message) error

// Config sizes a Pipeline.
type Config struct {
	// Queue is the queue capacity in messages (default 16384). Beyond it
	// Submit blocks.
	Queue int
	// Workers is the number of concurrent handlers (default 128).
	Workers int
	// OnError, if set, is called with every handler error.
	OnError func(m Message, err error)
}

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("ingest pipeline closed")

// Pipeline is a bounded queue with a worker pool.
type Pipeline struct {
	q       chan Message
	h       Handler
	onErr   func(Message, error)
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closeMu sync.RWMutex
	closed  bool

	depth    atomic.Int64
	blocked  prometheus.Counter
	handled  prometheus.Counter
	failed   prometheus.Counter
	depthVec prometheus.GaugeFunc
}

// New starts the workers; register the metrics with Collectors.
func New(cfg Config, h Handler) *Pipeline {
	if cfg.Queue <= 0 {
		cfg.Queue = 16384
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 128
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pipeline{q: make(chan Message, cfg.Queue), h: h, onErr: cfg.OnError, ctx: ctx, cancel: cancel,
		blocked: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgefleet_ingest_backpressure_total", Help: "Device messages whose delivery waited for room in the full ingest queue."}),
		handled: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgefleet_ingest_handled_total", Help: "Device messages handled by the ingest workers."}),
		failed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "edgefleet_ingest_failed_total", Help: "Device messages whose handler returned an error."}),
	}
	p.depthVec = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgefleet_ingest_queue_depth", Help: "Device messages waiting in the ingest queue."},
		func() float64 { return float64(len(p.q)) })
	for range cfg.Workers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

// Collectors returns the pipeline's metrics.
func (p *Pipeline) Collectors() []prometheus.Collector {
	return []prometheus.Collector{p.blocked, p.handled, p.failed, p.depthVec}
}

// Submit queues a message, blocking while the queue is full (until ctx
// ends). The payload must not be modified afterwards.
func (p *Pipeline) Submit(ctx context.Context, m Message) error {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	select {
	case p.q <- m:
		return nil
	default:
	}
	p.blocked.Inc()
	select {
	case p.q <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.ctx.Done():
		return ErrClosed
	}
}

// Len returns the number of queued messages.
func (p *Pipeline) Len() int { return len(p.q) }

func (p *Pipeline) work() {
	defer p.wg.Done()
	// Handlers run to completion even while closing: queued messages
	// were accepted and must be handled.
	ctx := context.WithoutCancel(p.ctx)
	for m := range p.q {
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
	p.cancel() // wake blocked submitters
	p.closeMu.Lock()
	if !p.closed {
		p.closed = true
		close(p.q)
	}
	p.closeMu.Unlock()
	p.wg.Wait()
}
