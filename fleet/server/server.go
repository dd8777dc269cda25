// Package server is fleet-server: Server (this file) wires the store,
// registry, telemetry and rollout manager, runs (or connects to) the MQTT
// broker and serves the REST API under /api/v1 (api*.go), the signed update
// repository under /repo/, Prometheus metrics on /metrics and the web
// console on /. The devices' messages (status, telemetry, job updates) are
// handled by mqttHandler (mqtt.go, ingest.go); an external Mosquitto's
// files are written by fleet/broker/mosquitto.Writer.
package server

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgefleet/edgefleet/fleet/broker"
	"github.com/edgefleet/edgefleet/fleet/broker/mosquitto"
	"github.com/edgefleet/edgefleet/fleet/broker/natscluster"
	"github.com/edgefleet/edgefleet/fleet/brokerauth"
	"github.com/edgefleet/edgefleet/fleet/ingest"
	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/fleet/store/postgres"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// Config configures a fleet server.
type Config struct {
	// DataDir holds fleet.db and, by default, the update repository (repo/).
	DataDir string
	// StoreURL, if set (postgres://user:pass@host:port/db), keeps the
	// fleet's state in PostgreSQL instead of DataDir/fleet.db, so several
	// replicas can share it; one of them (advisory-lock leader) runs the
	// rollout controller.
	StoreURL string
	// HTTPAddr is the API/console/repository listen address (default 127.0.0.1:8080).
	HTTPAddr string
	// PublicURL is how devices reach HTTPAddr (default http://HTTPAddr).
	PublicURL string

	// BrokerURL selects an external broker (mqtt:// or mqtts://); empty runs
	// the embedded broker on EmbeddedAddr.
	BrokerURL string
	// EmbeddedAddr is the embedded broker's listen address (default 127.0.0.1:1883).
	EmbeddedAddr string
	// BrokerUser and BrokerPassword are the server's credentials on an
	// external broker (user default "fleet-server").
	BrokerUser, BrokerPassword string
	// BrokerCAFile verifies an mqtts:// broker (system roots if empty).
	BrokerCAFile string
	// PublicBrokerURL is the broker URL handed to devices (default: the
	// broker URL the server uses).
	PublicBrokerURL string
	// MosquittoDir, if set, receives passwd, acl and mosquitto.conf for an
	// external Mosquitto, rewritten after every enrollment (then SIGHUP
	// Mosquitto to reload them).
	MosquittoDir string
	// SharedGroup, if set, subscribes through MQTT v5 shared subscriptions
	// ($share/<group>/...) so several replicas split device traffic.
	SharedGroup string
	// ClientID is the server's MQTT client id (default "fleet-server").
	ClientID string
	// NATSURLs, if set, are a NATS cluster's client URLs (cluster.go): device
	// messages come from its shared durable consumer, one replica per
	// message, acknowledged after handling; BrokerURL is then the cluster's
	// MQTT listener, used only to publish to devices.
	NATSURLs []string
	// NATSAckWait is how long a replica may hold a device message before
	// NATS hands it to another replica (default 30 s).
	NATSAckWait time.Duration

	// InsecurePlaintext serves HTTP and plain MQTT without TLS (and turns
	// on password auth for devices). Tests and throwaway setups only.
	InsecurePlaintext bool
	// BrokerPasswordAuth also issues MQTT passwords at enrollment, for
	// external brokers that cannot authenticate client certificates.
	BrokerPasswordAuth bool
	// CACertFile and CAKeyFile use an operator-provided fleet CA instead of
	// the one generated in DataDir/pki.
	CACertFile, CAKeyFile string
	// TLSHosts are the DNS names / IPs of the server certificate (default
	// localhost, 127.0.0.1, ::1, the listen hosts and the public URL hosts).
	TLSHosts []string
	// Broker limits (0: the broker's defaults).
	MaxPacketSize uint32
	DeviceRate    float64
	// OnBrokerEvent, if set, receives the embedded broker's client
	// connect/disconnect events, once the server has taken them in (a
	// remote prediction sees the device connected).
	OnBrokerEvent func(broker.ClientEvent)

	// RepoDir is the TUF repository served under /repo/ (default DataDir/repo).
	RepoDir string
	// RepoHandler serves RepoDir under /repo/; ota/release.Handler fits
	// (wired by the command). Nil serves the directory's files as they are.
	RepoHandler func(repoDir string) http.Handler
	// KeysDir, if set, holds the online keys used to re-sign timestamp
	// metadata before it expires (see ota/release.Refresh).
	KeysDir string
	// Tokens are enrollment token secrets accepted without expiry.
	Tokens []string
	// AdminToken, if set, is an extra operator-chosen admin API token
	// (at least 32 random characters). Without it the server generates an
	// admin token at first start into AdminTokenFile.
	AdminToken string
	// AdminTokenFile receives the admin token generated at first start
	// (default DataDir/admin.token, mode 0600).
	AdminTokenFile string
	// InsecureNoAuth serves the API without authentication; refused unless
	// HTTPAddr is a loopback address.
	InsecureNoAuth bool
	// Pprof serves the Go runtime profiles (net/http/pprof) under
	// /debug/pprof/ on the API listener, to admin tokens only. Off by
	// default: profiles reveal internals and a CPU profile costs CPU.
	Pprof bool
	// PredictTimeout bounds a remote prediction through the API
	// (POST /api/v1/devices/{id}/predict/{model}; default 45 s).
	PredictTimeout time.Duration
	// PredictReadyWait bounds how long a remote prediction waits for a
	// device connected to the embedded broker to subscribe to its
	// prediction requests before it is answered 409 device_not_ready,
	// nothing sent (default 5 s; negative: not at all). The wait counts
	// against PredictTimeout.
	PredictReadyWait time.Duration
	// AuditMax bounds the audit log in entries (default auth.DefaultAuditMax).
	AuditMax int
	// EnrollRate and EnrollBurst limit enrollment calls per client address
	// (default 5/s, burst 20).
	EnrollRate  float64
	EnrollBurst int
	// Retention bounds stored telemetry (default 7 days).
	Retention time.Duration
	// TickInterval is how often rollouts advance (default 1s).
	TickInterval time.Duration
	// Clock is the time of the fleet's records, tokens, audit, rate limits,
	// telemetry and rollouts (default the system clock). Tickers and
	// signed-command times stay on the system clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// Server is a running fleet server.
type Server struct {
	ingest  *ingest.Pipeline
	cfg     Config
	log     *slog.Logger
	store   store.Store
	reg     *registry.Registry
	tel     *telemetry.Store
	mgr     *rollout.Manager
	prom    *prometheus.Registry
	h       *mqttHandler // device messages (mqtt.go, ingest.go)
	emb     *broker.Embedded
	httpLn  net.Listener
	httpSrv *http.Server
	kick    chan struct{}

	ca      *pki.CA
	cmdKey  ed25519.PrivateKey
	srvCert tls.Certificate

	serverHash string
	brokerAuth *brokerauth.Auth
	mosq       *mosquitto.Writer // nil without Config.MosquittoDir

	auth authState // auth.go

	gauges    fleetGauges        // metrics_fleet.go
	stopGauge context.CancelFunc // ends gaugeLoop

	// leader elects the rollout controller among replicas sharing a
	// PostgreSQL store (storeopen.go); nil on bbolt (one node, always leads).
	leader *postgres.Leader
	// nats is the NATS cluster's consumer of device messages (cluster.go);
	// nil unless Config.NATSURLs. Set once its handlers already run.
	nats atomic.Pointer[natscluster.Consumer]
}

// Refresher re-signs expiring repository metadata; ota/release.Refresh
// fits (wired by the command so this package does not depend on go-tuf).
type Refresher func(keysDir, repoDir string, now time.Time) error

func (c *Config) defaults() error {
	if c.DataDir == "" {
		return errors.New("data dir is required")
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.EmbeddedAddr == "" {
		c.EmbeddedAddr = "127.0.0.1:8883"
		if c.InsecurePlaintext {
			c.EmbeddedAddr = "127.0.0.1:1883"
		}
	}
	if c.BrokerUser == "" {
		c.BrokerUser = registry.ServerUser
	}
	if c.ClientID == "" {
		c.ClientID = c.BrokerUser
	}
	if c.RepoDir == "" {
		c.RepoDir = filepath.Join(c.DataDir, "repo")
	}
	if c.Retention == 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.TickInterval == 0 {
		c.TickInterval = time.Second
	}
	c.Clock = clock.Or(c.Clock)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Start opens the store, starts the broker (embedded mode), connects the
// server's MQTT client, and starts the HTTP server. Stop with Close.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, fmt.Errorf("fleet server: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("fleet server: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, prom: prometheus.NewRegistry(), kick: make(chan struct{}, 1)}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	var err error
	if s.store, err = s.openStore(ctx); err != nil { // storeopen.go: bbolt, or PostgreSQL with Config.StoreURL
		return nil, err
	}
	s.reg = registry.New(s.store, cfg.Clock)
	if err := s.initAuth(ctx); err != nil {
		return nil, fmt.Errorf("fleet server: %w", err)
	}
	if s.tel, err = telemetry.Open(ctx, s.store, cfg.Retention, cfg.Clock, s.prom); err != nil {
		return nil, err
	}
	s.h = newMQTTHandler(s.reg, s.tel, cfg.Clock, s.log)
	s.h.kick, s.h.sign, s.h.signLink, s.h.publishAck = s.Kick, s.signJob, s.signLink, s.publishAck
	s.h.onEvent, s.h.inProcess = cfg.OnBrokerEvent, cfg.BrokerURL == ""
	if s.mgr, err = rollout.NewManager(ctx, s.store, s.reg, s.tel, s.h, cfg.Clock, s.log); err != nil {
		return nil, err
	}
	s.h.mgr = s.mgr
	for _, t := range cfg.Tokens {
		if _, err := s.reg.Tokens.Add(ctx, t, nil, 0, 0); err != nil {
			return nil, fmt.Errorf("fleet server: %w", err)
		}
	}
	s.registerMetrics()
	if err := s.setupTLS(); err != nil {
		return nil, fmt.Errorf("fleet server: %w", err)
	}

	s.h.startIngest(s.prom) // device messages: bounded queue + workers (ingest.go)
	gctx, stopGauge := context.WithCancel(context.Background())
	s.stopGauge = stopGauge
	s.refreshGauges(gctx) // metrics_fleet.go: first counts before the first scrape
	go s.gaugeLoop(gctx)

	// Broker.
	brokerURL := cfg.BrokerURL
	password := cfg.BrokerPassword
	if brokerURL == "" {
		// Embedded: a fresh random server password each start, never stored.
		if password, err = mosquitto.NewPassword(); err != nil {
			return nil, err
		}
	}
	if s.serverHash, err = mosquitto.HashPassword(password); err != nil {
		return nil, err
	}
	s.brokerAuth = brokerauth.New(s.reg.Devices, s.ca, s.serverHash)
	if brokerURL == "" {
		s.emb, err = broker.StartEmbedded(broker.EmbeddedConfig{Addr: cfg.EmbeddedAddr, Auth: s.brokerAuth,
			TLS: s.brokerTLS(), PasswordAuth: cfg.BrokerPasswordAuth || cfg.InsecurePlaintext,
			MaxPacketSize: cfg.MaxPacketSize, DeviceRate: cfg.DeviceRate, OnEvent: s.h.onBrokerEvent, OnSubscribed: s.h.onSubscribed, Logger: s.log}) // presence from connect/disconnect (ingest.go)
		if err != nil {
			return nil, fmt.Errorf("fleet server: %w", err)
		}
		s.reg.Devices.OnRevoke(func(id string) { s.emb.Disconnect(id) })
		brokerURL = s.emb.URL()
		s.log.Info("embedded MQTT broker listening", "url", brokerURL)
	}
	if s.cfg.PublicBrokerURL == "" {
		s.cfg.PublicBrokerURL = brokerURL
	}
	if s.mosq, err = s.mosquittoWriter(); err != nil { // tls.go
		return nil, fmt.Errorf("fleet server: %w", err)
	}
	if err := s.writeMosquitto(ctx); err != nil {
		return nil, err
	}
	if err := s.connectMQTT(localDialURL(brokerURL), password); err != nil {
		return nil, err
	}
	s.h.ingestReady()
	if err := s.startNATS(ctx, password); err != nil { // cluster.go: device messages from a NATS cluster
		return nil, err
	}

	// HTTP.
	if s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("fleet server: listen %s: %w", cfg.HTTPAddr, err)
	}
	if s.cfg.PublicURL == "" {
		s.cfg.PublicURL = "https://" + s.httpLn.Addr().String()
		if cfg.InsecurePlaintext {
			s.cfg.PublicURL = "http://" + s.httpLn.Addr().String()
		}
	}
	if !cfg.InsecurePlaintext {
		s.httpLn = tls.NewListener(s.httpLn, s.httpTLS())
	}
	s.httpSrv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.httpSrv.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server", "err", err)
		}
	}()
	s.log.Info("fleet server listening", "url", s.cfg.PublicURL, "console", s.cfg.PublicURL+"/")
	if s.ca != nil {
		s.log.Info("fleet CA (devices pin it: edge-agent enroll --ca-fingerprint)", "fingerprint", s.ca.Fingerprint(),
			"ca_file", s.caFile())
	}
	ok = true
	return s, nil
}

// URL returns the server's public HTTP base URL.
func (s *Server) URL() string { return s.cfg.PublicURL }

// BrokerURL returns the broker URL devices are given.
func (s *Server) BrokerURL() string { return s.cfg.PublicBrokerURL }

// Registry exposes the registry (tests, demo).
func (s *Server) Registry() *registry.Registry { return s.reg }

// Rollouts exposes the rollout manager.
func (s *Server) Rollouts() *rollout.Manager { return s.mgr }

// Telemetry exposes the telemetry store.
func (s *Server) Telemetry() *telemetry.Store { return s.tel }

// Run drives rollouts, job timeouts and telemetry retention until ctx ends.
// refresh, if non-nil and KeysDir is set, re-signs timestamp metadata hourly.
func (s *Server) Run(ctx context.Context, refresh Refresher) error {
	t := time.NewTicker(s.cfg.TickInterval)
	defer t.Stop()
	lastPrune, lastRefresh, lastTick := time.Time{}, time.Time{}, time.Time{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.kick:
			// Status, presence and job updates kick by the thousand in a
			// big fleet; every tick scans the jobs. A kick only brings the
			// next tick forward, at most to half an interval after the last.
			if time.Since(lastTick) < s.cfg.TickInterval/2 {
				continue
			}
		}
		lastTick = time.Now()
		if err := s.tickRollouts(ctx); err != nil && ctx.Err() == nil { // storeopen.go: only the leader ticks
			s.log.Error("rollout tick", "err", err)
		}
		now := s.cfg.Clock.Now()
		if now.Sub(lastPrune) > time.Minute {
			lastPrune = now
			if n, err := s.tel.Prune(ctx); err != nil {
				s.log.Error("telemetry retention", "err", err)
			} else if n > 0 {
				s.log.Info("telemetry retention", "pruned", n)
			}
		}
		if refresh != nil && s.cfg.KeysDir != "" && now.Sub(lastRefresh) > time.Hour {
			lastRefresh = now
			if err := refresh(s.cfg.KeysDir, s.cfg.RepoDir, now); err != nil {
				s.log.Error("refresh repository metadata", "err", err)
			}
		}
	}
}

// Kick makes Run tick now (after a job update).
func (s *Server) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Close stops HTTP, MQTT, the broker and the store.
func (s *Server) Close() error {
	if s.stopGauge != nil {
		s.stopGauge()
	}
	s.stopNATS() // cluster.go
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s.httpSrv.Shutdown(ctx)
		cancel()
	} else if s.httpLn != nil {
		s.httpLn.Close()
	}
	if s.h != nil {
		if s.h.mqtt != nil {
			s.h.mqtt.Close()
		}
		s.h.stopIngest()
	}
	s.resignLeader() // storeopen.go
	if s.emb != nil {
		s.emb.Close()
	}
	if s.store != nil {
		return s.store.Close()
	}
	return nil
}

func (s *Server) registerMetrics() {
	s.prom.MustRegister(s.h.msgs, s.h.bad, s.h.readyWaiting, s.h.notReady)
	s.prom.MustRegister(s.fleetCollectors()...) // metrics_fleet.go: counts kept, not recomputed per scrape
}

// connectMQTT sets up the server's side of the message plane: in-process
// with the embedded broker (its inline client: no loopback MQTT session
// whose in-flight window could drop device messages), or an MQTT client
// session with an external broker.
func (s *Server) connectMQTT(brokerURL, password string) error {
	var err error
	if s.emb != nil {
		s.h.mqtt, err = s.emb.InProcess(append(wire.ServerFilters(), wire.PredictResponseFilter), s.h.deliver)
		if err != nil {
			return fmt.Errorf("fleet server: %w", err)
		}
		st := s.emb.Stats
		s.prom.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgefleet_mqtt_delivery_dropped_total", Help: "Messages to devices the embedded broker dropped (write queue full, QoS 1 expired)."},
				func() float64 { return float64(st.DeliveryDropped.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgefleet_mqtt_rate_limited_total", Help: "Device publishes the embedded broker dropped over the device's rate."},
				func() float64 { return float64(st.RateLimited.Load()) }))
		s.log.Info("server attached to the embedded broker in-process")
		return nil
	}
	var tc *tls.Config
	if strings.HasPrefix(brokerURL, "mqtts://") || strings.HasPrefix(brokerURL, "ssl://") || strings.HasPrefix(brokerURL, "tls://") {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
		if s.cfg.BrokerCAFile == "" && s.ca != nil {
			tc.RootCAs = s.ca.Pool() // Mosquitto with the files written by writeMosquitto
		} else if s.cfg.BrokerCAFile != "" {
			pem, err := os.ReadFile(s.cfg.BrokerCAFile)
			if err != nil {
				return fmt.Errorf("fleet server: broker CA: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("fleet server: broker CA %s: no certificates", s.cfg.BrokerCAFile)
			}
		}
	}
	s.h.mqtt, err = broker.DialClient(broker.ClientConfig{URL: brokerURL, TLS: tc, ClientID: s.cfg.ClientID,
		Username: s.cfg.BrokerUser, Password: password, SharedGroup: s.cfg.SharedGroup,
		Filters: s.serverFilters(), Deliver: s.h.deliver, Logger: s.log, // cluster.go: none in NATS mode
		// Every replica hears every predict response (never shared): the
		// one whose API request waits for it takes it (predict.go).
		OwnFilters: []string{wire.PredictResponseFilter}})
	if err != nil {
		return fmt.Errorf("fleet server: %w", err)
	}
	return nil
}

// writeMosquitto regenerates the external broker's files, if configured.
func (s *Server) writeMosquitto(ctx context.Context) error {
	if s.mosq == nil {
		return nil
	}
	return s.mosq.Write(ctx)
}
