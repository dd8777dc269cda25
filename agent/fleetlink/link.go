// Package fleetlink is the device side of the fleet link: one mutual-TLS
// MQTT session (paho) with the fleet's broker (credentials from
// agent/enroll) that publishes presence (retained status, Last Will "offline"), uploads the
// agent's buffered telemetry with acknowledgements (store-and-forward:
// records leave the agent's ring only after the server acknowledged their
// sequence number, so nothing is lost or duplicated across reconnects), and
// runs the jobs the server assigns (install, shadow, A/B, rollback) through a
// JobHandler the agent supplies, reporting each job's progress. Jobs run
// only when their server signature (wire.Command) verifies with the
// command key received at enrollment, and telemetry acks beyond what was
// sent are ignored, so a rogue broker can delay the device but not steer it.
//
// It imports nothing of the fleet side but the shared wire package.
package fleetlink

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/internal/atomicfile"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TelemetrySource is the agent's store-and-forward buffer.
type TelemetrySource interface {
	// Read returns up to limit records with Seq > after, oldest first.
	Read(after uint64, limit int) ([]wire.TelemetryRecord, error)
	// Ack tells the source the fleet stored every record with Seq <= upTo.
	Ack(upTo uint64) error
	// Dropped returns how many records the bounded buffer discarded so far.
	Dropped() (uint64, error)
	// Notify returns a channel closed when new records arrive (may be nil).
	Notify() <-chan struct{}
}

// JobHandler runs one job on the device. Returning nil means succeeded; a
// *wire.JobError ends the job in its State (rejected, failed, rolled_back);
// any other error means failed. progress may be called with 0..100.
type JobHandler interface {
	HandleJob(ctx context.Context, job wire.Job, progress func(pct int)) error
}

// JobHandlerFunc adapts a function to JobHandler.
type JobHandlerFunc func(ctx context.Context, job wire.Job, progress func(pct int)) error

// HandleJob implements JobHandler.
func (f JobHandlerFunc) HandleJob(ctx context.Context, job wire.Job, progress func(int)) error {
	return f(ctx, job, progress)
}

// StatusProvider describes the device for its status message. The link
// fills V, DeviceID, State and Time.
type StatusProvider interface {
	Status(ctx context.Context) wire.Status
}

// StatusFunc adapts a function to StatusProvider.
type StatusFunc func(ctx context.Context) wire.Status

// Status implements StatusProvider.
func (f StatusFunc) Status(ctx context.Context) wire.Status { return f(ctx) }

// Config configures a Link.
type Config struct {
	// Enrollment holds the device id, MQTT credentials and broker URL
	// (enroll.LoadEnrollment reads them from the data dir).
	Enrollment enroll.Enrollment
	// DataDir is the agent's data dir; the link keeps its job journal in
	// DataDir/fleet.
	DataDir string
	// TLS is used for mqtts:// and ssl:// brokers (nil: enroll.TLSConfig(DataDir),
	// the pinned fleet CA and the device certificate).
	TLS *tls.Config
	// Clock is the clock for command expiry (nil: the system clock).
	Clock clock.Clock
	// Telemetry, Jobs and Status may be nil (nothing uploaded, every job
	// rejected, minimal status).
	Telemetry TelemetrySource
	Jobs      JobHandler
	Status    StatusProvider
	Logger    *slog.Logger
	// Predict serves the MQTT predict topic pair: it runs a REST predict
	// request body for model ("id" or "id@version") and returns the REST
	// response body; errors are RefusedError (agent/predict's *Error:
	// Daemon binds it to predict.Service.PredictBody). Nil: requests are answered 503.
	Predict PredictFunc
	// PredictConcurrency bounds predictions running at once (default 4).
	PredictConcurrency int
	// PredictTimeout bounds one MQTT prediction (default 30s).
	PredictTimeout time.Duration

	// UploadInterval is the longest a record waits before upload (default 2s).
	UploadInterval time.Duration
	// BatchSize bounds records per batch (default 100, max wire.MaxBatchRecords).
	BatchSize int
	// AckTimeout is how long to wait for an ack before resending (default 10s).
	AckTimeout time.Duration
	// MaxAckTimeout caps the ack wait, which doubles after every
	// consecutive timeout and returns to AckTimeout with the next ack
	// (default 2 min): a fleet whose acks run late is not flooded with
	// resends of every device every AckTimeout (congestion collapse).
	MaxAckTimeout time.Duration
	// StatusInterval is how often status is republished (default 30s).
	StatusInterval time.Duration
	// MaxReconnectInterval caps the reconnect backoff (default 30s).
	MaxReconnectInterval time.Duration
}

// Link is a running fleet link. Create it with New and run it with Run.
type Link struct {
	cfg    Config
	id     string
	log    *slog.Logger
	client paho.Client

	acks        chan uint64
	notify      chan *wire.JobNotify
	statusNudge chan struct{}
	connected   chan struct{}

	mu      sync.Mutex
	journal map[string]wire.JobUpdate // final updates of finished jobs
	running string                    // job id in progress
	online  bool

	predictSem chan struct{}   // bounds concurrent MQTT predictions
	runCtx     context.Context // Run's context, for predictions

	connGen     atomic.Uint64 // connections so far (a subscribe loop serves one)
	subAttempts atomic.Int64
	subErr      error // guarded by mu
	// qos is the subscription QoS: the enrollment's, then what the fleet's
	// signed link settings say (JobNotify.Link).
	qos atomic.Int32
	// linkGen is the connection generation on which verified link settings
	// last arrived; resubscribes counts subscriptions redone at a new QoS.
	linkGen      atomic.Uint64
	linkSeen     atomic.Int64
	resubscribes atomic.Int64

	// subscribed is closed once the current connection's subscriptions
	// are granted (guarded by mu, replaced at every connect); early counts
	// messages that arrived before them (onEarlyMessage).
	subscribed chan struct{}
	early      atomic.Int64
	// statusHeld counts periodic statuses not published because the
	// connection had not subscribed yet; beforeSubscribe, if set (tests),
	// runs before each SUBSCRIBE of subscribeLoop.
	statusHeld      atomic.Int64
	beforeSubscribe func()

	lastSent atomic.Uint64 // highest telemetry seq published
	refused  atomic.Int64  // commands refused (bad/missing signature...)
	badAcks  atomic.Int64  // telemetry acks beyond what was sent
}

// Refused returns how many commands and telemetry acks the link refused
// (unsigned, forged, expired, other device's; acks beyond what was sent).
func (l *Link) Refused() (commands, acks int64) { return l.refused.Load(), l.badAcks.Load() }

// New validates cfg and prepares a Link; it does no network I/O.
func New(cfg Config) (*Link, error) {
	e := cfg.Enrollment
	if err := wire.ValidateID("device id", e.DeviceID); err != nil {
		return nil, fmt.Errorf("fleet link: %w", err)
	}
	if e.BrokerURL == "" || cfg.DataDir == "" {
		return nil, fmt.Errorf("fleet link: broker URL and data dir are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.UploadInterval <= 0 {
		cfg.UploadInterval = 2 * time.Second
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > wire.MaxBatchRecords {
		cfg.BatchSize = 100
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 10 * time.Second
	}
	if cfg.MaxAckTimeout < cfg.AckTimeout {
		cfg.MaxAckTimeout = max(2*time.Minute, cfg.AckTimeout)
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 30 * time.Second
	}
	if cfg.MaxReconnectInterval <= 0 {
		cfg.MaxReconnectInterval = 30 * time.Second
	}
	if cfg.PredictConcurrency <= 0 {
		cfg.PredictConcurrency = 4
	}
	if cfg.PredictTimeout <= 0 {
		cfg.PredictTimeout = 30 * time.Second
	}
	cfg.Clock = clock.Or(cfg.Clock)
	l := &Link{cfg: cfg, id: e.DeviceID, log: cfg.Logger.With("component", "fleetlink", "device", e.DeviceID),
		acks: make(chan uint64, 16), notify: make(chan *wire.JobNotify, 4), statusNudge: make(chan struct{}, 1),
		connected: make(chan struct{}, 1), journal: map[string]wire.JobUpdate{},
		predictSem: make(chan struct{}, cfg.PredictConcurrency), runCtx: context.Background()}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, enroll.Dir), 0o700); err != nil {
		return nil, fmt.Errorf("fleet link: %w", err)
	}
	if err := l.loadJournal(); err != nil {
		return nil, err
	}
	l.qos.Store(1)
	if q := e.SubscribeQoS; q != nil && *q == 0 {
		l.qos.Store(0)
	}
	return l, nil
}

// BrokerAddress converts mqtt:// and mqtts:// URLs to paho's tcp:// and ssl://.
func BrokerAddress(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("broker URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "mqtt", "tcp":
		u.Scheme = "tcp"
	case "mqtts", "ssl", "tls":
		u.Scheme = "ssl"
	default:
		return "", fmt.Errorf("broker URL %q: scheme %q, want mqtt or mqtts", raw, u.Scheme)
	}
	if u.Port() == "" {
		return "", fmt.Errorf("broker URL %q: missing port", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

// StatusChanged asks the link to republish status soon (after an install).
func (l *Link) StatusChanged() {
	select {
	case l.statusNudge <- struct{}{}:
	default:
	}
}

// Online reports whether the MQTT session is up.
func (l *Link) Online() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.online
}

func (l *Link) setOnline(v bool) {
	l.mu.Lock()
	l.online = v
	l.mu.Unlock()
}

// Run connects and serves until ctx ends; it then publishes an orderly
// offline status and disconnects. Connection loss is retried forever with
// backoff; Run returns an error only for bad configuration.
func (l *Link) Run(ctx context.Context) error {
	addr, err := BrokerAddress(l.cfg.Enrollment.BrokerURL)
	if err != nil {
		return fmt.Errorf("fleet link: %w", err)
	}
	tlsConf := l.cfg.TLS
	if strings.HasPrefix(addr, "ssl://") && tlsConf == nil {
		if tlsConf, err = enroll.TLSConfig(l.cfg.DataDir); err != nil {
			return fmt.Errorf("fleet link: %w (re-enroll)", err)
		}
	}
	if strings.HasPrefix(addr, "tcp://") && !l.cfg.Enrollment.Insecure {
		return fmt.Errorf("fleet link: broker %s is plaintext MQTT: refused (the device enrolled over TLS; use the mqtts:// URL)", l.cfg.Enrollment.BrokerURL)
	}
	offline, _ := wire.Encode(wire.Status{V: wire.Version, DeviceID: l.id, State: wire.Offline})
	opts := paho.NewClientOptions().AddBroker(addr).SetClientID(l.id).
		SetUsername(l.cfg.Enrollment.Username).SetPassword(l.cfg.Enrollment.Password).
		SetCleanSession(false). // persistent session: QoS 1 jobs queue while offline
		SetOrderMatters(false).
		SetKeepAlive(15*time.Second).
		SetBinaryWill(wire.StatusTopic(l.id), offline, 1, true).
		SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(l.cfg.MaxReconnectInterval).
		SetConnectTimeout(10 * time.Second).
		SetOnConnectHandler(l.onConnect).
		// A persistent session delivers at once what it kept (QoS 1
		// messages queued while offline; its subscriptions, restored by
		// the broker at CONNECT) — before this process's SUBSCRIBE has
		// registered a handler for the topics, and paho drops (and
		// acknowledges) a message no handler takes. The default handler
		// takes them (onEarlyMessage): a predict request arriving in that
		// window is answered, a job notify is acted on.
		SetDefaultPublishHandler(l.onEarlyMessage).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			l.setOnline(false)
			l.log.Warn("fleet connection lost", "err", err)
		})
	if tlsConf != nil {
		opts.SetTLSConfig(tlsConf)
	}
	l.mu.Lock()
	l.runCtx = ctx
	l.mu.Unlock()
	l.client = paho.NewClient(opts)
	l.client.Connect() // with ConnectRetry this keeps trying in the background

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.uploadLoop(ctx) }()
	go func() { defer wg.Done(); l.jobLoop(ctx) }()
	statusTick := time.NewTicker(l.cfg.StatusInterval)
	defer statusTick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			if l.client.IsConnectionOpen() {
				l.publish(wire.StatusTopic(l.id), true, offline, 2*time.Second)
			}
			l.client.Disconnect(500)
			l.setOnline(false)
			return nil
		case <-statusTick.C:
		case <-l.statusNudge:
		}
		// Status "online" says the device takes jobs and predictions: only
		// once this connection's subscriptions are granted (subscribeLoop
		// publishes it then), never between a connect and its SUBACK or
		// while the broker refuses them — a fleet on an external broker
		// counts the device online from it.
		if ctx.Err() == nil && l.client.IsConnectionOpen() {
			if l.Online() {
				l.publishStatus(ctx)
			} else {
				l.statusHeld.Add(1)
			}
		}
	}
}

// onConnect runs after every (re)connect: subscribe, then publish status
// and jobs/get. Until the broker granted every subscription the link
// stays offline for uploads (an ack could never arrive).
func (l *Link) onConnect(c paho.Client) {
	l.log.Info("fleet connected", "broker", l.cfg.Enrollment.BrokerURL)
	l.mu.Lock()
	gen := l.connGen.Add(1)
	l.subscribed = make(chan struct{})
	l.mu.Unlock()
	go l.subscribeLoop(c, gen)
}

// earlyWait bounds how long a message delivered before the connection's
// SUBSCRIBE waits for the subscriptions (the SUBACK wait of subscribe).
const earlyWait = 10 * time.Second

// onEarlyMessage handles a message no subscription handler took: one the
// persistent session delivered right after CONNACK, before this process's
// SUBSCRIBE registered the handlers. It is handled once the connection's
// subscriptions are granted (at most earlyWait later): paho resends the
// session's stored packets just after CONNACK, and a publish (a predict
// response, a job update) made while it does is sent twice and races
// with that resend.
func (l *Link) onEarlyMessage(c paho.Client, m paho.Message) {
	l.early.Add(1)
	l.mu.Lock()
	ready, ctx := l.subscribed, l.runCtx
	l.mu.Unlock()
	if ready != nil {
		t := time.NewTimer(earlyWait)
		select {
		case <-ready:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
	l.onMessage(c, m)
}

// subscribeQoS is the QoS of the server → device subscriptions: 0 when
// the fleet said so (a NATS cluster) at enrollment or since in signed link
// settings, else 1.
func (l *Link) subscribeQoS() byte { return byte(l.qos.Load()) }

// SubscribeQoS is the QoS at which the link subscribes (or will at its
// next connect) to its server → device topics.
func (l *Link) SubscribeQoS() int { return int(l.qos.Load()) }

// Resubscribes counts subscriptions redone at a QoS the fleet's signed
// link settings changed.
func (l *Link) Resubscribes() int64 { return l.resubscribes.Load() }

// LinkSettingsVerified counts the fleet's link settings received and
// verified (changed or not).
func (l *Link) LinkSettingsVerified() int64 { return l.linkSeen.Load() }

// SubscribeError reports subscriptions the broker refused (SUBACK return
// code 0x80) or did not answer.
type SubscribeError struct {
	// Refused maps each refused topic to its SUBACK return code (0x80; 0
	// with Err set when there was no SUBACK).
	Refused map[string]byte
	// Err is set when the SUBSCRIBE itself failed or timed out.
	Err error
}

// Error names the refused topics and their return codes.
func (e *SubscribeError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("fleet subscribe: %v", e.Err)
	}
	var parts []string
	for t, code := range e.Refused {
		parts = append(parts, fmt.Sprintf("%s (SUBACK %#02x)", t, code))
	}
	sort.Strings(parts)
	return "fleet subscribe: the broker refused " + strings.Join(parts, ", ") +
		" (the device would miss its jobs or telemetry acks; check the broker's ACL and limits)"
}

// Unwrap returns the SUBSCRIBE's own failure, if any.
func (e *SubscribeError) Unwrap() error { return e.Err }

// SubscribeErr is the last subscription failure of the current connection
// (a *SubscribeError), nil once the broker granted every subscription.
func (l *Link) SubscribeErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.subErr
}

// SubscribeAttempts counts SUBSCRIBE packets sent (one per connect, more
// while the broker refuses).
func (l *Link) SubscribeAttempts() int64 { return l.subAttempts.Load() }

// subscribe subscribes the device's server → device topics once and
// checks every SUBACK return code.
func (l *Link) subscribe(c paho.Client) error {
	qos := l.subscribeQoS()
	subs := map[string]byte{}
	for _, t := range wire.DeviceSubscribeTopics(l.id) {
		subs[t] = qos
	}
	l.subAttempts.Add(1)
	tok := c.SubscribeMultiple(subs, l.onMessage)
	if !tok.WaitTimeout(10 * time.Second) {
		return &SubscribeError{Err: errors.New("no SUBACK within 10s")}
	}
	if err := tok.Error(); err != nil {
		return &SubscribeError{Err: err}
	}
	st, ok := tok.(*paho.SubscribeToken)
	if !ok {
		return &SubscribeError{Err: fmt.Errorf("unexpected token %T", tok)}
	}
	res := st.Result()
	refused := map[string]byte{}
	for t := range subs {
		code, ok := res[t]
		if !ok || code > 2 { // 0x80: failure (MQTT 3.1.1 §3.9.3)
			refused[t] = code
		}
	}
	if len(refused) > 0 {
		return &SubscribeError{Refused: refused}
	}
	return nil
}

// subscribeLoop subscribes until the broker grants every subscription
// (retrying with exponential backoff up to MaxReconnectInterval while the
// connection of generation gen lasts), then marks the link online and
// publishes status and jobs/get.
func (l *Link) subscribeLoop(c paho.Client, gen uint64) {
	l.mu.Lock()
	ctx := l.runCtx
	l.mu.Unlock()
	backoff := min(time.Second, l.cfg.MaxReconnectInterval)
	for {
		if l.connGen.Load() != gen || !c.IsConnectionOpen() {
			return // a newer connection subscribes for itself
		}
		if l.beforeSubscribe != nil {
			l.beforeSubscribe()
		}
		err := l.subscribe(c)
		l.mu.Lock()
		l.subErr = err
		l.mu.Unlock()
		if err == nil {
			break
		}
		l.log.Error("fleet subscription failed: not serving jobs or uploads on this connection until it succeeds", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, l.cfg.MaxReconnectInterval)
	}
	l.mu.Lock()
	if l.connGen.Load() != gen {
		l.mu.Unlock()
		return
	}
	close(l.subscribed) // messages delivered before the SUBSCRIBE: handle them now
	l.mu.Unlock()
	l.setOnline(true)
	l.publishStatus(context.Background())
	l.jobsGet(true)
	go l.awaitLink(ctx, c, gen)
	select {
	case l.connected <- struct{}{}:
	default:
	}
}

// jobsGet asks the server for every pending job; with features, also for
// the fleet's signed link settings (wire.FeatureLinkSettings).
func (l *Link) jobsGet(features bool) {
	g := wire.JobsGet{V: wire.Version, DeviceID: l.id}
	if features {
		g.Features = []string{wire.FeatureLinkSettings}
	}
	get, _ := wire.Encode(g)
	if err := l.publish(wire.JobsGetTopic(l.id), false, get, 10*time.Second); err != nil {
		l.log.Debug("jobs/get not published", "err", err)
	}
}

// awaitLink asks again without features when no link settings answered
// the connection's jobs/get within AckTimeout: a fleet server older than
// the features field refuses that jobs/get (strict decoding), and the
// device would miss the jobs notified while it was offline. (A newer
// server whose answer was lost just answers twice.)
func (l *Link) awaitLink(ctx context.Context, c paho.Client, gen uint64) {
	t := time.NewTimer(l.cfg.AckTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	if l.connGen.Load() != gen || l.linkGen.Load() == gen || !c.IsConnectionOpen() {
		return
	}
	l.log.Info("no link settings in answer to jobs/get (an older fleet server?): asking for jobs again without features")
	l.jobsGet(false)
}

// applyLink acts on the link settings of a JobNotify: only when they
// verify with the command key (else they are refused and counted, like a
// forged job). A new QoS is kept in the enrollment file and the link
// subscribes again at it on the current connection.
func (l *Link) applyLink(sc *wire.SignedCommand) {
	ls, err := wire.VerifyLinkSettings(ed25519.PublicKey(l.cfg.Enrollment.CommandKey), sc, l.id, l.cfg.Clock.Now())
	if err != nil {
		l.refused.Add(1)
		l.log.Warn("link settings refused: not signed by the fleet", "err", err)
		return
	}
	gen := l.connGen.Load()
	l.linkGen.Store(gen)
	l.linkSeen.Add(1)
	if old := l.qos.Swap(int32(ls.SubscribeQoS)); old == int32(ls.SubscribeQoS) {
		return
	}
	l.log.Info("fleet changed the subscription QoS: subscribing again", "qos", ls.SubscribeQoS)
	if err := l.saveSubscribeQoS(ls.SubscribeQoS); err != nil {
		l.log.Warn("subscription QoS not saved (used until restart)", "err", err)
	}
	go l.resubscribe(gen)
}

// saveSubscribeQoS records qos in the enrollment file, so that the link
// subscribes at it from its first connect after a restart.
func (l *Link) saveSubscribeQoS(qos int) error {
	e, err := enroll.LoadEnrollment(l.cfg.DataDir)
	if err != nil {
		return err
	}
	e.SubscribeQoS = &qos
	return enroll.SaveEnrollment(l.cfg.DataDir, e)
}

// resubscribe subscribes the device's topics again at the current QoS on
// connection gen (MQTT replaces a subscription to the same filter), then
// asks for its jobs again, in case one was notified in between.
func (l *Link) resubscribe(gen uint64) {
	c := l.client
	if c == nil || l.connGen.Load() != gen || !c.IsConnectionOpen() {
		return // the next connection subscribes at the new QoS
	}
	err := l.subscribe(c)
	l.mu.Lock()
	l.subErr = err
	l.mu.Unlock()
	if err != nil {
		l.log.Error("subscribing again at the new QoS failed (retried at the next connect)", "err", err)
		return
	}
	l.resubscribes.Add(1)
	l.jobsGet(false)
}

func (l *Link) onMessage(_ paho.Client, m paho.Message) {
	t, err := wire.ParseTopic(m.Topic())
	if err != nil || t.DeviceID != l.id {
		l.log.Warn("fleet message on unexpected topic", "topic", m.Topic())
		return
	}
	switch t.Kind {
	case wire.KindTelemetryAck:
		a, err := wire.DecodeTelemetryAck(m.Payload())
		if err != nil {
			l.log.Warn("bad telemetry ack", "err", err)
			return
		}
		if sent := l.lastSent.Load(); a.Seq > sent {
			// Acking what was never sent would make the ring drop records
			// the server never stored: ignore it.
			l.badAcks.Add(1)
			l.log.Warn("telemetry ack beyond what was sent ignored", "ack", a.Seq, "sent_up_to", sent)
			return
		}
		select {
		case l.acks <- a.Seq:
		default: // a newer ack will follow; acks are cumulative
		}
	case wire.KindPredictRequest:
		l.handlePredict(m.Payload())
	case wire.KindJobsNotify:
		n, err := wire.DecodeJobNotify(m.Payload())
		if err != nil {
			l.log.Warn("bad job notify", "err", err)
			return
		}
		if n.Link != nil {
			l.applyLink(n.Link)
		}
		// Keep only the newest notify: each lists every pending job.
		for {
			select {
			case l.notify <- n:
				return
			default:
				select {
				case <-l.notify:
				default:
				}
			}
		}
	}
}

func (l *Link) publish(topic string, retain bool, payload []byte, wait time.Duration) error {
	if l.client == nil || !l.client.IsConnectionOpen() { // nil: Run has not started
		return fmt.Errorf("publish %s: not connected", topic)
	}
	tok := l.client.Publish(topic, 1, retain, payload)
	if !tok.WaitTimeout(wait) {
		return fmt.Errorf("publish %s: no PUBACK within %s", topic, wait)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

func (l *Link) publishStatus(ctx context.Context) {
	var s wire.Status
	if l.cfg.Status != nil {
		s = l.cfg.Status.Status(ctx)
	}
	s.V, s.DeviceID, s.State, s.Time = wire.Version, l.id, wire.Online, time.Now().UTC()
	b, err := wire.Encode(s)
	if err != nil {
		l.log.Error("encode status", "err", err)
		return
	}
	if err := l.publish(wire.StatusTopic(l.id), true, b, 10*time.Second); err != nil {
		l.log.Debug("status not published", "err", err)
	}
}

// uploadLoop sends one batch at a time and waits for its ack; an ack
// timeout resends the same records (the server skips those it already has).
func (l *Link) uploadLoop(ctx context.Context) {
	src := l.cfg.Telemetry
	if src == nil {
		<-ctx.Done()
		return
	}
	var acked uint64
	ackWait := l.cfg.AckTimeout
	tick := time.NewTicker(l.cfg.UploadInterval)
	defer tick.Stop()
	for {
		var wake <-chan struct{}
		if n := src.Notify(); n != nil {
			wake = n
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		case <-l.connected:
		}
		for ctx.Err() == nil && l.Online() {
			recs, err := src.Read(acked, l.cfg.BatchSize)
			if err != nil {
				l.log.Error("read telemetry buffer", "err", err)
				break
			}
			if len(recs) == 0 {
				break
			}
			dropped, _ := src.Dropped()
			b, recs, err := encodeBatch(l.id, recs, dropped)
			if err != nil {
				l.log.Error("encode telemetry batch", "err", err)
				break
			}
			last := recs[len(recs)-1].Seq
			if last > l.lastSent.Load() {
				l.lastSent.Store(last)
			}
			if err := l.publish(wire.TelemetryTopic(l.id), false, b, l.cfg.AckTimeout); err != nil {
				l.log.Debug("telemetry upload", "err", err)
				break
			}
			got, ok := l.waitAck(ctx, last, ackWait)
			if !ok {
				ackWait = NextAckWait(ackWait, l.cfg.MaxAckTimeout)
				l.log.Warn("telemetry not acknowledged, will resend", "up_to", last, "next_wait", ackWait)
				break
			}
			ackWait = l.cfg.AckTimeout
			if got > acked {
				if err := src.Ack(got); err != nil {
					l.log.Error("ack telemetry buffer", "err", err)
					break
				}
				acked = got
			}
		}
	}
}

// NextAckWait is the ack wait after a timeout of wait: doubled, at most
// maxWait.
func NextAckWait(wait, maxWait time.Duration) time.Duration {
	return min(2*wait, maxWait)
}

func (l *Link) waitAck(ctx context.Context, want uint64, wait time.Duration) (uint64, bool) {
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, false
		case <-timeout.C:
			return 0, false
		case seq := <-l.acks:
			if seq >= want && seq <= l.lastSent.Load() {
				return seq, true
			}
		}
	}
}

// jobLoop runs the pending jobs of the newest notify, one at a time.
func (l *Link) jobLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-l.notify:
			for _, j := range n.Jobs {
				if ctx.Err() != nil {
					return
				}
				l.runJob(ctx, j)
			}
		}
	}
}

func (l *Link) sendUpdate(u wire.JobUpdate) {
	u.V, u.DeviceID, u.Time = wire.Version, l.id, time.Now().UTC()
	b, err := wire.Encode(u)
	if err != nil {
		l.log.Error("encode job update", "err", err)
		return
	}
	if err := l.publish(wire.JobUpdateTopic(l.id, u.JobID), false, b, 10*time.Second); err != nil {
		l.log.Warn("job update not delivered (resent on the next notify)", "job", u.JobID, "err", err)
	}
}

// verify returns the signed job, or an error when the job is unsigned,
// forged, expired or meant for another device.
func (l *Link) verify(j wire.Job) (wire.Job, error) {
	c, err := wire.VerifyCommand(ed25519.PublicKey(l.cfg.Enrollment.CommandKey), j.Signed, l.id, l.cfg.Clock.Now())
	if err != nil {
		return wire.Job{}, err
	}
	if c.JobID != j.JobID {
		return wire.Job{}, fmt.Errorf("%w: signed job %s delivered as %s", wire.ErrCommand, c.JobID, j.JobID)
	}
	return c.Job(), nil
}

func (l *Link) runJob(ctx context.Context, j wire.Job) {
	signed, err := l.verify(j)
	if err != nil {
		// Not from the fleet server: never acted on, never answered (the
		// real server did not send it). A genuine job arrives again signed.
		l.refused.Add(1)
		l.log.Warn("job refused: not signed by the fleet", "job", j.JobID, "kind", j.Kind, "err", err)
		return
	}
	j = signed
	l.mu.Lock()
	done, finished := l.journal[j.JobID]
	l.mu.Unlock()
	if finished {
		// The server has not seen our final update yet: send it again
		// instead of running the job twice.
		l.sendUpdate(done)
		return
	}
	if !j.Deadline.IsZero() && time.Now().After(j.Deadline) {
		l.finish(wire.JobUpdate{JobID: j.JobID, State: wire.JobTimedOut, Reason: "deadline passed before the job started"})
		return
	}
	if l.cfg.Jobs == nil {
		l.finish(wire.JobUpdate{JobID: j.JobID, State: wire.JobRejected, Reason: "agent has no job handler"})
		return
	}
	l.log.Info("job started", "job", j.JobID, "kind", j.Kind, "model", j.ModelID, "version", j.Version)
	l.sendUpdate(wire.JobUpdate{JobID: j.JobID, State: wire.JobInProgress})
	last := -1
	err = l.cfg.Jobs.HandleJob(ctx, j, func(p int) {
		if p < 0 || p > 100 || p < last+10 && p != 100 {
			return
		}
		last = p
		l.sendUpdate(wire.JobUpdate{JobID: j.JobID, State: wire.JobInProgress, Progress: p})
	})
	if ctx.Err() != nil {
		return // interrupted: the job stays in progress and is resumed after restart
	}
	u := wire.JobUpdate{JobID: j.JobID, State: wire.JobSucceeded, Progress: 100}
	var je *wire.JobError
	switch {
	case err == nil:
	case errors.As(err, &je) && je.State.Terminal():
		u.State, u.Reason, u.Progress = je.State, je.Reason, 0
	default:
		u.State, u.Reason, u.Progress = wire.JobFailed, err.Error(), 0
	}
	if len(u.Reason) > 1000 {
		u.Reason = u.Reason[:1000]
	}
	u.Serving = l.serving(ctx, j.ModelID) // serving.go
	l.log.Info("job finished", "job", j.JobID, "state", u.State, "reason", u.Reason)
	l.finish(u)
	l.StatusChanged()
}

func (l *Link) finish(u wire.JobUpdate) {
	l.mu.Lock()
	l.journal[u.JobID] = u
	if len(l.journal) > 200 {
		// Drop the oldest entries; the server has long since seen them.
		var oldest string
		for id := range l.journal {
			if oldest == "" || id < oldest {
				oldest = id
			}
		}
		delete(l.journal, oldest)
	}
	err := l.saveJournalLocked()
	l.mu.Unlock()
	if err != nil {
		l.log.Error("save job journal", "err", err)
	}
	l.sendUpdate(u)
}

const journalFile = "jobs.json"

func (l *Link) loadJournal() error {
	b, err := os.ReadFile(filepath.Join(l.cfg.DataDir, enroll.Dir, journalFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fleet link: load job journal: %w", err)
	}
	if err := json.Unmarshal(b, &l.journal); err != nil {
		// A corrupt journal only costs re-running idempotent jobs.
		l.log.Warn("job journal unreadable, starting empty", "err", err)
		l.journal = map[string]wire.JobUpdate{}
	}
	return nil
}

func (l *Link) saveJournalLocked() error {
	b, _ := json.Marshal(l.journal)
	return atomicfile.Write(filepath.Join(l.cfg.DataDir, enroll.Dir, journalFile), b, 0o600)
}
