package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// Transport is how the fleet server exchanges messages with its devices
// through the broker. It has two real sides: InProcess, the embedded
// broker's inline client (no network connection, no in-flight window: a
// device's publish is handed to the server in the device's own connection
// goroutine), and DialClient, an MQTT client session with an external
// broker (Mosquitto, a cluster). Both pass the same conformance tests.
type Transport interface {
	// Publish sends payload on topic at QoS 1 and returns once the broker
	// has taken it (queued in every subscribed session, also an offline
	// persistent one), or ctx ends.
	Publish(ctx context.Context, topic string, payload []byte) error
	// Send is Publish without waiting for the broker: for messages whose
	// loss only costs a resend by the device (telemetry acks). It fails
	// only when the transport is closed.
	Send(topic string, payload []byte) error
	// Close stops the delivery of device messages and ends the session.
	Close() error
}

// Deliver receives one message a device published (or its Last Will, or
// a retained message at subscription). It may block: the transport then
// delivers nothing more on this path until it returns — in-process the
// publishing device's connection is not read (TCP backpressure up to the
// device), as an MQTT client the broker's in-flight window towards the
// server fills. The payload is not reused by the transport.
type Deliver func(topic string, payload []byte)

// ErrTransportClosed is returned by Publish and Send after Close.
var ErrTransportClosed = errors.New("broker transport closed")

// inlineSubBase numbers the inline subscriptions (mochi identifies them by
// filter and id); each InProcess transport takes its own range.
var inlineSubBase atomic.Int64

// InProcess returns the transport of the server running in the same
// process as the embedded broker: deliver receives every message published
// on filters (device publishes after the auth hook's checks and rate
// limits, Last Wills, retained messages at subscription), synchronously in
// the publishing connection's goroutine, and Publish injects messages
// through mochi's inline client. Nothing is dropped towards the server:
// a slow deliver holds the publishing device back instead.
func (e *Embedded) InProcess(filters []string, deliver Deliver) (Transport, error) {
	if deliver == nil {
		return nil, errors.New("in-process transport: no deliver function")
	}
	t := &inProcess{srv: e.srv, hook: e.hook, base: int(inlineSubBase.Add(int64(len(filters)))) - len(filters) + 1, filters: filters}
	for i, f := range filters {
		err := e.srv.Subscribe(f, t.base+i, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			if t.closed.Load() {
				return
			}
			deliver(pk.TopicName, pk.Payload)
		})
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("in-process transport: subscribe %s: %w", f, err)
		}
		t.subscribed = i + 1
	}
	// From now on every device message reaches the server as it is
	// published: the broker need not keep retained copies (authHook.live).
	e.hook.live.Add(1)
	return t, nil
}

type inProcess struct {
	srv        *mqtt.Server
	hook       *authHook
	base       int
	filters    []string
	subscribed int
	closed     atomic.Bool
}

func (t *inProcess) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return t.Send(topic, payload)
}

func (t *inProcess) Send(topic string, payload []byte) error {
	if t.closed.Load() {
		return fmt.Errorf("publish %s: %w", topic, ErrTransportClosed)
	}
	// Synchronous: when it returns the message is in every subscribed
	// session (the write queue of a connected device, the in-flight store
	// of an offline persistent session).
	if err := t.srv.Publish(topic, payload, false, 1); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

func (t *inProcess) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	if t.subscribed == len(t.filters) {
		t.hook.live.Add(-1)
	}
	for i := 0; i < t.subscribed; i++ {
		t.srv.Unsubscribe(t.filters[i], t.base+i)
	}
	return nil
}

// ClientConfig configures DialClient.
type ClientConfig struct {
	// URL is the broker, mqtt://host:port or mqtts://host:port.
	URL string
	// TLS is used for mqtts:// (nil: system roots).
	TLS *tls.Config
	// ClientID, Username and Password are the server's MQTT identity.
	ClientID, Username, Password string
	// SharedGroup, if set, subscribes through shared subscriptions
	// ($share/<group>/filter) so several servers split the messages.
	SharedGroup string
	// Filters are subscribed at every (re)connect; Deliver receives their
	// messages (also those a persistent session queued while the server was
	// away, which may arrive before the subscriptions are renewed).
	Filters []string
	// OwnFilters are subscribed at every (re)connect at QoS 0 and never
	// shared: every server gets their messages, while they are connected
	// only (answers to requests this server is waiting for: on a NATS
	// cluster a QoS 0 subscription is no JetStream consumer).
	OwnFilters []string
	Deliver    Deliver
	// WaitConnected makes DialClient fail unless the first connection
	// succeeds within ConnectTimeout (default 10 s); without it the client
	// keeps retrying in the background (an external broker may start later).
	WaitConnected  bool
	ConnectTimeout time.Duration
	Logger         *slog.Logger
}

// DialClient connects the server's MQTT client session (persistent, QoS 1,
// automatic reconnect) and subscribes cfg.Filters.
func DialClient(cfg ClientConfig) (Transport, error) {
	addr, err := wire.BrokerAddress(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("mqtt client transport: %w", err)
	}
	if cfg.Deliver == nil {
		return nil, errors.New("mqtt client transport: no deliver function")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	t := &client{}
	subscribed := make(chan struct{}) // closed after the first connect's subscriptions
	var subscribedOnce sync.Once
	// paho acknowledges a message after its handler returns (order does
	// not matter: each message gets its own goroutine).
	handle := func(_ paho.Client, m paho.Message) { cfg.Deliver(m.Topic(), m.Payload()) }
	opts := paho.NewClientOptions().AddBroker(addr).SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).SetPassword(cfg.Password).
		SetCleanSession(false).SetOrderMatters(false).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).SetKeepAlive(60 * time.Second).SetPingTimeout(30 * time.Second). // a busy broker must not cost the server its session
		SetDefaultPublishHandler(handle).
		SetOnConnectHandler(func(c paho.Client) {
			for _, f := range cfg.Filters {
				if cfg.SharedGroup != "" {
					f = wire.SharedFilter(cfg.SharedGroup, f)
				}
				tok := c.Subscribe(f, 1, handle)
				if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					log.Error("mqtt subscribe", "filter", f, "err", tok.Error())
				}
			}
			for _, f := range cfg.OwnFilters {
				tok := c.Subscribe(f, 0, handle)
				if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					log.Error("mqtt subscribe", "filter", f, "err", tok.Error())
				}
			}
			subscribedOnce.Do(func() { close(subscribed) })
			log.Info("server MQTT client connected", "broker", cfg.URL)
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) { log.Warn("server MQTT connection lost", "err", err) })
	if strings.HasPrefix(addr, "ssl://") {
		tc := cfg.TLS
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		opts.SetTLSConfig(tc)
	}
	t.c = paho.NewClient(opts)
	tok := t.c.Connect()
	if cfg.WaitConnected {
		// paho runs the on-connect handler (the subscriptions) after the
		// connect token completes: wait for both, or messages published
		// right after DialClient returns could find no subscriber.
		timeout := time.NewTimer(cfg.ConnectTimeout)
		defer timeout.Stop()
		var err error
		select {
		case <-tok.Done():
			err = tok.Error()
		case <-timeout.C:
			err = fmt.Errorf("no answer within %s", cfg.ConnectTimeout)
		}
		if err == nil {
			select {
			case <-subscribed:
			case <-timeout.C:
				err = fmt.Errorf("subscriptions not confirmed within %s", cfg.ConnectTimeout)
			}
		}
		if err != nil {
			t.c.Disconnect(0)
			return nil, fmt.Errorf("mqtt client transport: connect %s: %w", cfg.URL, err)
		}
	}
	return t, nil
}

type client struct {
	c      paho.Client
	mu     sync.Mutex
	closed bool
}

func (t *client) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

func (t *client) Publish(ctx context.Context, topic string, payload []byte) error {
	if t.isClosed() {
		return fmt.Errorf("publish %s: %w", topic, ErrTransportClosed)
	}
	tok := t.c.Publish(topic, 1, false, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish %s: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publish %s: %w", topic, ctx.Err())
	}
}

func (t *client) Send(topic string, payload []byte) error {
	if t.isClosed() {
		return fmt.Errorf("publish %s: %w", topic, ErrTransportClosed)
	}
	// paho keeps the message and resends it across a reconnect.
	t.c.Publish(topic, 1, false, payload)
	return nil
}

func (t *client) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	t.c.Disconnect(250)
	return nil
}
