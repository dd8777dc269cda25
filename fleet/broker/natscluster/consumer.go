package natscluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// MQTTStream is the JetStream stream in which the NATS MQTT listener keeps
// every QoS 1 message before it acknowledges it to the publisher (PUBACK
// after the replicated write; an interest-retention stream). ConsumerName
// is the durable consumer on it that every fleet-server replica shares.
const (
	MQTTStream          = "$MQTT_msgs"
	mqttStreamSubPrefix = "$MQTT.msgs."
	ConsumerName        = "fleet-server"
)

// maxDeliver bounds the deliveries of a message whose handler keeps
// failing (a poison message is then acknowledged and logged).
const maxDeliver = 10

// FilterSubjects are the subjects of MQTTStream the replicas handle: the
// device → server topics (wire.ServerFilters). The consumer itself has no
// filter (see setup); it acknowledges other subjects unhandled.
func FilterSubjects() []string {
	var out []string
	for _, f := range wire.ServerFilters() {
		out = append(out, mqttStreamSubPrefix+TopicToSubject(f))
	}
	return out
}

// ConsumerConfig configures a replica's consumer.
type ConsumerConfig struct {
	// URLs are the cluster's NATS URLs (any subset: the client learns the
	// others and reconnects).
	URLs []string
	// User and Password log the replica in (the fleet-server account).
	User, Password string
	// TLS verifies tls:// nodes.
	TLS *tls.Config
	// AckWait is how long a delivered message may stay unacknowledged
	// before JetStream redelivers it, possibly to another replica (default
	// 30 s).
	AckWait time.Duration
	// Workers handle messages concurrently (default 64).
	Workers int
	// Handle handles one device message (MQTT topic, payload). A nil
	// error acknowledges it; an error makes JetStream redeliver it after a
	// second, up to 10 deliveries.
	Handle func(ctx context.Context, topic string, payload []byte) error
	Logger *slog.Logger
}

// Consumer receives device messages for one replica.
type Consumer struct {
	nc     *nats.Conn
	cc     jetstream.ConsumeContext
	msgs   chan jetstream.Msg
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	cancel context.CancelFunc
	log    *slog.Logger
}

// Consume connects to the cluster, creates (or updates) the shared durable
// consumer on MQTTStream, and starts handling messages. It retries until
// ctx ends while the cluster elects its JetStream leaders and until the
// MQTT listener has created its stream (at the first MQTT connection: the
// fleet-server connects its MQTT client first).
func Consume(ctx context.Context, cfg ConsumerConfig) (*Consumer, error) {
	if len(cfg.URLs) == 0 || cfg.Handle == nil {
		return nil, errors.New("nats consumer: URLs and a handler are required")
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	opts := []nats.Option{nats.Name("fleet-server"), nats.UserInfo(cfg.User, cfg.Password),
		nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond), nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				cfg.Logger.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { cfg.Logger.Info("nats reconnected", "url", nc.ConnectedUrl()) })}
	if cfg.TLS != nil {
		opts = append(opts, nats.Secure(cfg.TLS))
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("nats consumer: connect %v: %w", cfg.URLs, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats consumer: %w", err)
	}
	var cons jetstream.Consumer
	for attempt := 0; ; attempt++ {
		cons, err = setup(ctx, js, cfg)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			nc.Close()
			return nil, fmt.Errorf("nats consumer: consumer %s on stream %s: %w (last error: %v)", ConsumerName, MQTTStream, ctx.Err(), err)
		}
		if attempt%20 == 19 {
			cfg.Logger.Warn("nats consumer: stream not ready yet", "err", err)
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	wctx, cancel := context.WithCancel(context.Background())
	c := &Consumer{nc: nc, msgs: make(chan jetstream.Msg), done: make(chan struct{}), cancel: cancel, log: cfg.Logger}
	for range cfg.Workers {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				select {
				case m := <-c.msgs:
					c.handle(wctx, cfg.Handle, m)
				case <-c.done:
					return
				}
			}
		}()
	}
	c.cc, err = cons.Consume(func(m jetstream.Msg) {
		select {
		case c.msgs <- m:
		case <-c.done: // stopping: not acknowledged, redelivered elsewhere
		}
	},
		jetstream.PullMaxMessages(2*cfg.Workers),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			cfg.Logger.Debug("nats consume", "err", err)
		}))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("nats consumer: consume: %w", err)
	}
	return c, nil
}

func setup(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig) (jetstream.Consumer, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := js.Stream(cctx, MQTTStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s (created by the MQTT listener at its first connection): %w", MQTTStream, err)
	}
	// No FilterSubjects (see serverBound): with several filters, NATS
	// finds each next message by intersecting the message block's subject
	// index (one subject per device and topic) with the filters — at
	// 10,000 devices a quarter of the node's CPU. Unfiltered, it reads the
	// next sequence. Removing the filters of an existing consumer is an
	// update JetStream allows.
	return st.CreateOrUpdateConsumer(cctx, jetstream.ConsumerConfig{Durable: ConsumerName,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: cfg.AckWait, MaxDeliver: maxDeliver, MaxAckPending: 8192})
}

// serverFilterTokens are FilterSubjects split into tokens.
var serverFilterTokens = func() [][]string {
	var out [][]string
	for _, f := range FilterSubjects() {
		out = append(out, strings.Split(f, "."))
	}
	return out
}()

// serverBound reports whether a subject of MQTTStream is a device →
// server message (matches FilterSubjects). The replicas' consumer takes
// every message of the stream, which holds what devices publish at QoS 1
// and also the server's QoS 1 messages to devices (jobs/notify, predict
// requests) while some device holds a QoS 1 subscription to them; those
// are acknowledged unhandled (the interest-retention stream keeps them
// for the device's own consumer).
func serverBound(subject string) bool {
	toks := strings.Split(subject, ".")
next:
	for _, f := range serverFilterTokens {
		for i, ft := range f {
			switch {
			case ft == ">":
				if len(toks) > i {
					return true
				}
				continue next
			case i >= len(toks):
				continue next
			case ft != "*" && ft != toks[i]:
				continue next
			}
		}
		if len(toks) == len(f) {
			return true
		}
	}
	return false
}

func (c *Consumer) handle(ctx context.Context, h func(context.Context, string, []byte) error, m jetstream.Msg) {
	if !serverBound(m.Subject()) {
		m.Ack()
		return
	}
	err := h(ctx, SubjectToTopic(strings.TrimPrefix(m.Subject(), mqttStreamSubPrefix)), m.Data())
	if err == nil {
		m.Ack()
		return
	}
	md, merr := m.Metadata()
	if merr == nil && md.NumDelivered >= maxDeliver {
		c.log.Warn("device message dropped after repeated failures", "subject", m.Subject(), "deliveries", md.NumDelivered, "err", err)
		m.Term()
		return
	}
	c.log.Debug("device message failed; redelivery", "subject", m.Subject(), "err", err)
	m.NakWithDelay(time.Second)
}

// PublishCore publishes payload on topic as a plain NATS message: MQTT
// subscribers get it at QoS 0 (nothing stored in JetStream), for messages
// whose loss the protocol repairs (telemetry acks: the device resends).
func (c *Consumer) PublishCore(topic string, payload []byte) error {
	if err := c.nc.Publish(TopicToSubject(topic), payload); err != nil {
		return fmt.Errorf("nats publish %s: %w", topic, err)
	}
	return nil
}

// Close stops consuming, lets the workers finish what they hold and
// closes the connection; messages not acknowledged are redelivered to
// another replica.
func (c *Consumer) Close() {
	if c.cc != nil {
		c.cc.Stop()
	}
	c.once.Do(func() { close(c.done) })
	c.wg.Wait()
	c.cancel()
	c.nc.Close()
}

// Abort closes the connection at once, without handling or acknowledging
// what was delivered (a crash: JetStream redelivers it elsewhere after
// AckWait). The workers stop on their own.
func (c *Consumer) Abort() {
	c.cancel()
	c.nc.Close()
	c.once.Do(func() { close(c.done) })
}
