package broker

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// Default limits of the embedded broker.
const (
	// DefaultMaxPacketSize bounds every MQTT packet (fixed header included).
	DefaultMaxPacketSize = 256 << 10
	// DefaultDeviceRate is the sustained messages per second a device may publish.
	DefaultDeviceRate = 20
	// DefaultDeviceBurst is how many messages a device may publish at once.
	DefaultDeviceBurst = 200
	// DefaultMaxStatusBytes bounds a status payload.
	DefaultMaxStatusBytes = 64 << 10
	// DefaultClientQueue is how many outgoing packets may wait in a
	// connected client's write queue (mochi's default, 8,192, costs 64 KB
	// of channel per connection: 640 MB for 10,000 devices). A device
	// receives a few acks and job notifications at a time; beyond the
	// queue mochi drops the message (counted in Stats.DeliveryDropped; the
	// device's resend or jobs/get recovers it).
	DefaultClientQueue = 128
	// DefaultClientBuffer is the size of each connection's read buffer
	// (mochi's default is 2 KB). Packets larger than the buffer are read
	// straight into the packet, so a small buffer costs only more reads
	// of the TLS layer's already decrypted record.
	DefaultClientBuffer = 256
	// DefaultMaxInflight bounds the QoS 1 messages stored per session
	// (also for an offline persistent session) — mochi's default is 8,192.
	DefaultMaxInflight = 1024
)

// writeCoalesce is how many bytes of queued packets mochi gathers into one
// write to a connection (a buffer that exists only while packets queue).
const writeCoalesce = 1024

// EmbeddedConfig configures the embedded broker.
type EmbeddedConfig struct {
	// Addr is the TCP listen address, e.g. "127.0.0.1:8883" (":0" picks a port).
	Addr string
	// TLS, when set, makes the listener speak MQTT over TLS. Set ClientCAs
	// and ClientAuth (tls.VerifyClientCertIfGiven) for device certificates.
	TLS *tls.Config
	// Auth checks credentials; required. If it also implements
	// CertAuthenticator, a verified client certificate identifies the device.
	Auth Authenticator
	// PasswordAuth lets devices log in with a username and password. Off, a
	// device must present its client certificate; the password login then
	// only serves the fleet server's own client.
	PasswordAuth bool
	// MaxPacketSize bounds every packet a client sends, checked on the fixed
	// header before the packet is read (default DefaultMaxPacketSize).
	MaxPacketSize uint32
	// DeviceRate and DeviceBurst bound each device's publishes (token
	// bucket; defaults DefaultDeviceRate, DefaultDeviceBurst). Messages over
	// the limit are dropped and counted. Predict responses (answers to the
	// server's MQTT predict requests) have their own bucket, PredictFactor
	// times larger (default 10).
	DeviceRate    float64
	DeviceBurst   int
	PredictFactor float64
	// MaxStatusBytes bounds status payloads (default DefaultMaxStatusBytes).
	MaxStatusBytes int
	// ClientQueue, ClientBuffer and MaxInflight size each client's write
	// queue, read buffer and QoS 1 store (defaults DefaultClientQueue,
	// DefaultClientBuffer, DefaultMaxInflight).
	ClientQueue, ClientBuffer, MaxInflight int
	// ConnectTimeout bounds how long a new connection may take to finish
	// its TLS handshake and send CONNECT (default DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// OnEvent, if set, is called (synchronously, keep it short) when a
	// client connects or disconnects.
	OnEvent func(ClientEvent)
	// OnSubscribed, if set, is called (synchronously, keep it short) when
	// the broker has granted a device's SUBSCRIBE: after the subscriptions
	// are in place, before the SUBACK is sent. A message published from
	// then on reaches the device's connection. Subscriptions a persistent
	// session carries over to a new connection are not reported: only
	// the device's own SUBSCRIBE on that connection.
	OnSubscribed func(SubscribeEvent)
	// Clock is the clock of the rate limiter and of client events (the
	// system clock if nil).
	Clock  clock.Clock
	Logger *slog.Logger
}

// ClientEvent reports a client connecting or disconnecting.
type ClientEvent struct {
	Principal Principal
	ClientID  string
	Remote    string
	Connected bool
	// TakenOver is set on the disconnect of a connection replaced by a
	// newer connection of the same client (the client is still online).
	TakenOver bool
	Err       error
	Time      time.Time
}

// SubscribeEvent reports the topic filters the broker granted to one
// SUBSCRIBE of a device's connection (refused filters are left out).
type SubscribeEvent struct {
	Principal Principal
	ClientID  string
	// Remote is the connection's remote address, as in the connection's
	// ClientEvent: a SUBSCRIBE of an older connection of the same client
	// (taken over) carries that connection's address.
	Remote  string
	Filters []string
	Time    time.Time
}

// CertAuthenticator identifies a client by its verified TLS certificate.
type CertAuthenticator interface {
	// AuthenticateCert returns the principal for a certificate that already
	// chained to the fleet CA, or ok=false when it is unknown or revoked.
	AuthenticateCert(cert *x509.Certificate) (p Principal, ok bool)
}

// Stats counts what the embedded broker refused.
type Stats struct {
	AuthRejected   atomic.Int64
	RateLimited    atomic.Int64
	OversizeStatus atomic.Int64
	Revoked        atomic.Int64
	// DeliveryDropped counts messages to clients that mochi dropped: the
	// client's write queue was full, or a QoS 1 message expired unacknowledged.
	DeliveryDropped atomic.Int64
}

// Embedded is a running in-process mochi-mqtt broker.
type Embedded struct {
	srv   *mqtt.Server
	addr  string
	tls   bool
	hook  *authHook
	Stats *Stats
}

// StartEmbedded starts the broker and returns once it accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Auth == nil {
		return nil, fmt.Errorf("start embedded broker: no authenticator")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.MaxPacketSize == 0 {
		cfg.MaxPacketSize = DefaultMaxPacketSize
	}
	if cfg.DeviceRate <= 0 {
		cfg.DeviceRate = DefaultDeviceRate
	}
	if cfg.DeviceBurst <= 0 {
		cfg.DeviceBurst = DefaultDeviceBurst
	}
	if cfg.PredictFactor <= 0 {
		cfg.PredictFactor = 10
	}
	if cfg.MaxStatusBytes <= 0 {
		cfg.MaxStatusBytes = DefaultMaxStatusBytes
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.ClientQueue <= 0 {
		cfg.ClientQueue = DefaultClientQueue
	}
	if cfg.ClientBuffer <= 0 {
		cfg.ClientBuffer = DefaultClientBuffer
	}
	if cfg.MaxInflight <= 0 || cfg.MaxInflight > 65535 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker: listen %s: %w", cfg.Addr, err)
	}
	addr := ln.Addr().String()

	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumSessionExpiryInterval = 7 * 24 * 3600
	// Checked on the fixed header, before mochi allocates the packet.
	caps.MaximumPacketSize = cfg.MaxPacketSize
	caps.MaximumClientWritesPending = int32(cfg.ClientQueue)
	caps.MaximumInflight = uint16(cfg.MaxInflight)
	// The inline client is the fleet server's in-process transport
	// (InProcess): no loopback MQTT session, no in-flight window to it.
	srv := mqtt.New(&mqtt.Options{Capabilities: caps, InlineClient: true,
		ClientNetReadBufferSize: cfg.ClientBuffer, ClientNetWriteBufferSize: writeCoalesce,
		Logger: log.With("component", "mqtt-broker")})
	stats := &Stats{}
	hook := &authHook{cfg: cfg, log: log, srv: srv, stats: stats}
	if err := srv.AddHook(hook, nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("start embedded broker: add auth hook: %w", err)
	}
	l := &listener{id: "tcp", ln: ln, tls: cfg.TLS, timeout: cfg.ConnectTimeout, log: log}
	if err := srv.AddListener(l); err != nil {
		ln.Close()
		return nil, fmt.Errorf("start embedded broker: listener %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("start embedded broker: serve: %w", err)
	}
	return &Embedded{srv: srv, addr: addr, tls: cfg.TLS != nil, hook: hook, Stats: stats}, nil
}

// Addr returns the host:port the broker listens on.
func (e *Embedded) Addr() string { return e.addr }

// URL returns the broker URL for clients ("mqtts://host:port" with TLS,
// "mqtt://host:port" without).
func (e *Embedded) URL() string {
	if e.tls {
		return "mqtts://" + e.addr
	}
	return "mqtt://" + e.addr
}

// Disconnect revokes a device's live session: the broker forgets its
// authorization (nothing more is delivered to its persistent session) and
// closes its connection at once. The next connect is checked again by the
// authenticator.
func (e *Embedded) Disconnect(deviceID string) bool {
	v, known := e.hook.known.LoadAndDelete(deviceID)
	s, _ := v.(*session)
	cl, ok := e.srv.Clients.Get(deviceID)
	if !ok {
		return false
	}
	e.Stats.Revoked.Add(1)
	e.srv.UnsubscribeClient(cl)
	live := !cl.Closed()
	if live {
		e.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
	}
	cl.Stop(packets.ErrNotAuthorized)
	if live && known && e.hook.cfg.OnEvent != nil {
		// mochi's OnDisconnect no longer knows the principal: report here.
		e.hook.cfg.OnEvent(ClientEvent{Principal: s.p, ClientID: deviceID, Remote: cl.Net.Remote, Err: ErrRevoked, Time: e.hook.cfg.Clock.Now()})
	}
	return true
}

// ErrRevoked is the Err of the disconnect event of a revoked session.
var ErrRevoked = errors.New("credentials revoked")

// Close stops the broker and disconnects every client.
func (e *Embedded) Close() error {
	if err := e.srv.Close(); err != nil {
		return fmt.Errorf("close embedded broker: %w", err)
	}
	return nil
}

// session is what the hook knows about an authorized client id. It
// outlives the connection (a persistent session keeps receiving QoS 1
// messages while the device is offline) and ends with the session, a
// revocation or a new login.
type session struct {
	p Principal
	// Token buckets: general publishes and predict responses (under mu).
	mu                    sync.Mutex
	tokens, predictTokens float64
	last, predictLast     time.Time
}

// authHook enforces credentials, client id = device id, the Last Will
// topic (mochi does not ACL-check wills), Allowed, and the per-device
// publish limits.
type authHook struct {
	mqtt.HookBase
	cfg   EmbeddedConfig
	log   *slog.Logger
	srv   *mqtt.Server
	stats *Stats

	// known maps client id → *session. A sync.Map, not a mutex-guarded
	// map: every publish, subscription check and delivery of 10,000
	// devices looks up its session; one global lock made them queue behind
	// each other (a lock convoy on a busy machine).
	known sync.Map

	// live counts the in-process transports subscribed to the device
	// topics (InProcess). While there is one, device messages are not
	// kept retained: the server, their only subscriber, runs in this
	// process and gets each one as it is published, and mochi copies
	// every retained message once a second to check expiry (10,000
	// retained statuses: ≈ 15 MB kept and 10 MB/s of garbage). Before the
	// transport subscribes they are retained, so a device that connected
	// first is not missed.
	live atomic.Int32
}

func (h *authHook) ID() string { return "edgefleet-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnDisconnect, mqtt.OnPublish, mqtt.OnSessionEstablished,
		mqtt.OnPublishDropped, mqtt.OnQosDropped, mqtt.OnWill, mqtt.OnSubscribed}, []byte{b})
}

// OnSubscribed reports a device's granted subscriptions (OnSubscribed of
// the config): a SUBACK code up to 2 is a granted QoS, anything above a
// refusal (MQTT 3.1.1 §3.9.3).
func (h *authHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, reasonCodes []byte) {
	if h.cfg.OnSubscribed == nil || cl.Net.Inline {
		return
	}
	s, ok := h.principal(cl)
	if !ok || s.p.Server {
		return
	}
	var granted []string
	for i, f := range pk.Filters {
		if i < len(reasonCodes) && reasonCodes[i] <= packets.CodeGrantedQos2.Code {
			granted = append(granted, f.Filter)
		}
	}
	if len(granted) == 0 {
		return
	}
	h.cfg.OnSubscribed(SubscribeEvent{Principal: s.p, ClientID: cl.ID, Remote: cl.Net.Remote, Filters: granted, Time: h.cfg.Clock.Now()})
}

func peerCert(cl *mqtt.Client) *x509.Certificate {
	tc, ok := cl.Net.Conn.(*tls.Conn)
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return nil
	}
	return st.PeerCertificates[0]
}

func (h *authHook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	if n := h.stats.DeliveryDropped.Add(1); n&(n-1) == 0 { // log at powers of two
		h.log.Warn("mqtt delivery dropped: client write queue full", "client_id", cl.ID, "topic", pk.TopicName, "dropped_total", n)
	}
}

// OnWill does not retain a device's Last Will while the in-process
// transport delivers it (see live).
func (h *authHook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	if h.live.Load() > 0 {
		will.Retain = false
	}
	return will, nil
}

func (h *authHook) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	if n := h.stats.DeliveryDropped.Add(1); n&(n-1) == 0 {
		h.log.Warn("mqtt delivery dropped: QoS 1 message expired", "client_id", cl.ID, "packet_id", pk.PacketID, "dropped_total", n)
	}
}

func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if cl.ID == mqtt.InlineClientId {
		// The inline client's id: a network client with it would take over
		// the server's in-process session.
		h.stats.AuthRejected.Add(1)
		h.log.Warn("mqtt auth rejected: reserved client id", "client_id", cl.ID, "remote", cl.Net.Remote)
		return false
	}
	user := string(pk.Connect.Username)
	var p Principal
	ok := false
	how := "password"
	if cert := peerCert(cl); cert != nil {
		how = "certificate " + cert.Subject.CommonName
		if ca, isCA := h.cfg.Auth.(CertAuthenticator); isCA {
			p, ok = ca.AuthenticateCert(cert)
		}
	} else {
		p, ok = h.cfg.Auth.Authenticate(user, string(pk.Connect.Password))
		if ok && !p.Server && !h.cfg.PasswordAuth {
			h.log.Warn("mqtt auth rejected: devices must present their client certificate (password auth is off)", "username", user, "remote", cl.Net.Remote)
			ok = false
		}
	}
	if !ok {
		h.stats.AuthRejected.Add(1)
		h.log.Warn("mqtt auth rejected", "credential", how, "username", user, "client_id", cl.ID, "remote", cl.Net.Remote)
		return false
	}
	if p.DeviceID != "" && cl.ID != p.DeviceID {
		h.stats.AuthRejected.Add(1)
		h.log.Warn("mqtt auth rejected: client id must equal device id", "device", p.DeviceID, "client_id", cl.ID)
		return false
	}
	if pk.Connect.WillFlag && !Allowed(p, pk.Connect.WillTopic, true) {
		h.stats.AuthRejected.Add(1)
		h.log.Warn("mqtt auth rejected: will topic not allowed", "client_id", cl.ID, "topic", pk.Connect.WillTopic)
		return false
	}
	now := h.cfg.Clock.Now()
	h.known.Store(cl.ID, &session{p: p, tokens: float64(h.cfg.DeviceBurst), last: now,
		predictTokens: float64(h.cfg.DeviceBurst) * h.cfg.PredictFactor, predictLast: now})
	return true
}

func (h *authHook) principal(cl *mqtt.Client) (*session, bool) {
	v, ok := h.known.Load(cl.ID)
	if !ok {
		return nil, false
	}
	return v.(*session), true
}

func (h *authHook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	if h.cfg.OnEvent == nil {
		return
	}
	if s, ok := h.principal(cl); ok {
		h.cfg.OnEvent(ClientEvent{Principal: s.p, ClientID: cl.ID, Remote: cl.Net.Remote, Connected: true, Time: h.cfg.Clock.Now()})
	}
}

func (h *authHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	s, ok := h.principal(cl)
	if expire && !cl.IsTakenOver() {
		// The session ends with the connection (clean session): forget it.
		// A persistent session keeps its authorization so QoS 1 messages
		// queue for the device while it is offline.
		if ok {
			h.known.CompareAndDelete(cl.ID, s)
		}
	}
	if h.cfg.OnEvent != nil && ok {
		h.cfg.OnEvent(ClientEvent{Principal: s.p, ClientID: cl.ID, Remote: cl.Net.Remote, TakenOver: cl.IsTakenOver(), Err: err, Time: h.cfg.Clock.Now()})
	}
}

func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	s, ok := h.principal(cl)
	if ok && Allowed(s.p, topic, write) {
		return true
	}
	h.log.Warn("mqtt acl denied", "client_id", cl.ID, "topic", topic, "write", write)
	return false
}

// ErrRateLimited is logged for publishes over a device's rate.
var ErrRateLimited = errors.New("device publish rate exceeded")

func (h *authHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	s, ok := h.principal(cl)
	if !ok || s.p.Server {
		return pk, nil
	}
	t, topicErr := wire.ParseTopic(pk.TopicName)
	factor, tokens, last := 1.0, &s.tokens, &s.last
	if topicErr == nil && t.Kind == wire.KindPredictResponse {
		factor, tokens, last = h.cfg.PredictFactor, &s.predictTokens, &s.predictLast
	}
	now := h.cfg.Clock.Now()
	s.mu.Lock()
	*tokens += now.Sub(*last).Seconds() * h.cfg.DeviceRate * factor
	if max := float64(h.cfg.DeviceBurst) * factor; *tokens > max {
		*tokens = max
	}
	*last = now
	limited := *tokens < 1
	if !limited {
		*tokens--
	}
	s.mu.Unlock()
	if limited {
		if n := h.stats.RateLimited.Add(1); n&(n-1) == 0 { // log at powers of two
			h.log.Warn("mqtt publish dropped", "client_id", cl.ID, "topic", pk.TopicName, "err", ErrRateLimited, "dropped_total", n)
		}
		return pk, packets.ErrRejectPacket
	}
	if len(pk.Payload) > h.cfg.MaxStatusBytes {
		if topicErr == nil && t.Kind == wire.KindStatus {
			h.stats.OversizeStatus.Add(1)
			h.log.Warn("mqtt status dropped: too large", "client_id", cl.ID, "bytes", len(pk.Payload), "max", h.cfg.MaxStatusBytes)
			return pk, packets.ErrRejectPacket
		}
	}
	if pk.FixedHeader.Retain && h.live.Load() > 0 {
		pk.FixedHeader.Retain = false // see live
	}
	return pk, nil
}

// Pending returns how many QoS 1 and 2 messages the broker holds for the
// session of clientID: sent and not yet acknowledged, or queued while it
// is offline (0 for a client it does not know).
func (e *Embedded) Pending(clientID string) int {
	cl, ok := e.srv.Clients.Get(clientID)
	if !ok {
		return 0
	}
	return cl.State.Inflight.Len()
}

// Connected reports whether a client with this id has a live connection.
func (e *Embedded) Connected(clientID string) bool {
	cl, ok := e.srv.Clients.Get(clientID)
	return ok && !cl.Closed()
}
