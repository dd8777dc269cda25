package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/edgefleet/edgefleet/agent/api"
	"github.com/edgefleet/edgefleet/agent/batch"
	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/jobs"
	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/agent/predict"
	"github.com/edgefleet/edgefleet/agent/serving"
	"github.com/edgefleet/edgefleet/agent/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/selfupdate"
	"golang.org/x/net/netutil"
)

// FleetDeps is what the daemon hands the fleet link (package
// agent/fleetlink) when it starts it.
type FleetDeps struct {
	Config  FleetConfig
	DataDir string
	// Store is the model store (implements ota.ModelStore); its OnChange
	// listeners already reload the serving side on Activate/Rollback.
	Store *modelstore.Store
	// Ring is the telemetry store-and-forward buffer: Read(after, limit),
	// Ack(upTo), Dropped(), Notify(), Stats().
	Ring *telemetry.Ring
	// Manager switches shadow and A/B routes (SetShadow, SetAB) and loads
	// versions (Get).
	Manager *serving.Manager
	// Status returns the agent's status snapshot; WireModels the model part
	// in the fleet's wire form.
	Status     func(ctx context.Context) (api.Status, error)
	WireModels func(ctx context.Context) []wire.ModelStatus
	// Predict is the prediction service that answers the MQTT predict
	// topic pair (Predict.PredictBody within PredictLimits, the bounds of
	// an HTTP request: body size and request timeout); nil: not served.
	Predict       *predict.Service
	PredictLimits predict.BodyLimits
	// GoldenCheck loads a model file in the agent's backend and checks the
	// release's golden vector (for ota's installer).
	GoldenCheck ota.GoldenCheck
	// AgentVersion is the running binary's version.
	AgentVersion string
	Log          *slog.Logger
}

// FleetLink runs the device side of the fleet link until ctx ends.
type FleetLink func(ctx context.Context, deps FleetDeps) error

// Options are the daemon's non-configuration inputs.
type Options struct {
	// Version is the agent version.
	Version string
	// Backend names the inference backend ("native" unless built with
	// -tags tflite and configured otherwise).
	Backend string
	// FleetLink starts the fleet link when cfg.Fleet.Broker is set or
	// cfg.Fleet.Enabled (nil: fleet disabled in this binary).
	FleetLink FleetLink
	// Ready, if set, is called with the bound TCP address once serving.
	Ready func(addr string)
	// Log is the logger (default: text on stderr at cfg.LogLevel).
	Log *slog.Logger
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// Run runs the agent until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, cfg Config, opt Options) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := opt.Log
	if log == nil {
		log = newLogger(cfg.LogLevel, os.Stderr)
	}
	if opt.Backend == "" {
		opt.Backend = "native"
	}
	backend, err := engine.Lookup(opt.Backend)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	store, err := modelstore.Open(cfg.DataDir, StoreOptions(cfg.Store)...)
	if err != nil {
		return err
	}
	defer store.Close()
	ring, err := telemetry.OpenRing(cfg.DataDir, cfg.Telemetry.RingSize)
	if err != nil {
		return err
	}
	defer ring.Close()
	coll := telemetry.NewCollector(nil)
	coll.RegisterRing(ring)
	mgr := serving.NewManager(backend, store, coll, serving.Config{
		Limits:       ServingLimits(cfg.Serving),
		CacheEntries: cfg.Cache.Entries, CacheTTL: cfg.Cache.TTL,
		MemoryBudget: cfg.Serving.MemoryBudget, IdleUnload: cfg.Serving.IdleUnload,
	}, log)
	defer mgr.Close()
	// One prediction service for the HTTP API, jobs and the fleet's MQTT
	// predict topic, with the API's limits.
	acfg := api.Config{Token: cfg.AuthToken, MaxBodyBytes: cfg.MaxBodyBytes, MaxInstances: cfg.MaxInstances, Version: opt.Version,
		MaxBatchInstances: cfg.HTTP.MaxBatchInstances, RequestMemory: cfg.HTTP.RequestMemory, RequestTimeout: cfg.HTTP.RequestTimeout,
		RateLimit: api.RateLimit{PerSecond: cfg.HTTP.RateLimit, Burst: cfg.HTTP.RateBurst}, Metrics: coll}
	svc := predict.New(mgr, acfg.PredictLimits())
	acfg.Service = svc
	srv := api.New(acfg, mgr, nil, ring, log)
	q, err := jobs.Open(cfg.DataDir, jobs.Predictor(svc, 0), JobsOptions(cfg.Jobs, log))
	if err != nil {
		return err
	}
	srv.SetJobs(q)

	var scheds []batch.Scheduled
	for _, s := range cfg.Schedules {
		scheds = append(scheds, batch.Scheduled{Name: s.Name, Cron: s.Cron, Spec: batch.Spec{Model: s.Model, Input: s.Input, Output: s.Output}})
	}
	sched, err := batch.NewScheduler(srv, scheds, log)
	if err != nil {
		q.Close()
		return err
	}

	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	if cfg.Listen != "" {
		addr := ParseListen(cfg.Listen)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			q.Close()
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		if w := ListenWarning(addr, cfg.AuthToken); w != "" {
			log.Warn(w, "addr", addr)
		}
		listeners = append(listeners, l)
	}
	if cfg.UnixSocket != "" {
		if err := os.Remove(cfg.UnixSocket); err != nil && !errors.Is(err, os.ErrNotExist) {
			closeAll()
			q.Close()
			return fmt.Errorf("unix socket %s: %w", cfg.UnixSocket, err)
		}
		if err := os.MkdirAll(filepath.Dir(cfg.UnixSocket), 0o755); err != nil {
			closeAll()
			q.Close()
			return fmt.Errorf("unix socket %s: %w", cfg.UnixSocket, err)
		}
		l, err := net.Listen("unix", cfg.UnixSocket)
		if err != nil {
			closeAll()
			q.Close()
			return fmt.Errorf("unix socket %s: %w", cfg.UnixSocket, err)
		}
		os.Chmod(cfg.UnixSocket, 0o660)
		listeners = append(listeners, l)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		coll.Run(runCtx, ring, cfg.Telemetry.Interval, log)
	}()
	q.Start(runCtx)
	sched.Start(runCtx)

	if opt.FleetLink != nil && (cfg.Fleet.Broker != "" || cfg.Fleet.Enabled) {
		deps := FleetDeps{
			Config: cfg.Fleet, DataDir: cfg.DataDir, Store: store, Ring: ring, Manager: mgr,
			Status:        srv.Snapshot,
			WireModels:    func(ctx context.Context) []wire.ModelStatus { return WireModels(ctx, mgr) },
			Predict:       svc,
			PredictLimits: acfg.BodyLimits(),
			GoldenCheck:   serving.GoldenCheck(backend),
			AgentVersion:  opt.Version, Log: log.With("component", "fleetlink"),
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := opt.FleetLink(runCtx, deps); err != nil && runCtx.Err() == nil {
				log.Error("fleet link stopped", "err", err)
			}
		}()
	} else if cfg.Fleet.Broker != "" {
		log.Warn("fleet.broker is set but this binary has no fleet link; running offline")
	}

	// Models load in the background: the API answers (health, 503 for a
	// model still loading) at once, and a model whose probe never ends
	// cannot hold up the start (probes are bounded by probe_timeout and
	// canceled at shutdown).
	warmDone := make(chan struct{})
	go func() {
		defer close(warmDone)
		if err := mgr.WarmUp(runCtx); err != nil && runCtx.Err() == nil {
			log.Warn("some models did not load; they answer 503 with the reason until fixed", "err", err)
		}
	}()
	hs := NewHTTPServer(srv.Handler(), cfg.HTTP)
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		log.Info("edge-agent serving", "addr", l.Addr().String(), "network", l.Addr().Network(), "data_dir", cfg.DataDir, "backend", backend.Name(),
			"max_connections", cfg.HTTP.MaxConnections, "rate_limit", cfg.HTTP.RateLimit)
		if cfg.HTTP.MaxConnections > 0 {
			l = netutil.LimitListener(l, cfg.HTTP.MaxConnections)
		}
		go func() { errc <- hs.Serve(l) }()
	}
	if opt.Ready != nil && cfg.Listen != "" {
		opt.Ready(listeners[0].Addr().String())
	}
	// Serving: tell a self-update health probe (selfupdate.Updater.Probe) that
	// this binary works. A no-op unless selfupdate.HealthMarkerEnv is set.
	if err := selfupdate.ReportHealthy(opt.Version); err != nil {
		log.Warn("self-update health report failed", "err", err)
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	log.Info("edge-agent shutting down")
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer shutCancel()
	hs.Shutdown(shutCtx)
	cancel()
	mgr.CancelLoads()
	<-warmDone
	sched.Wait()
	wg.Wait()
	q.Close()
	if cfg.UnixSocket != "" {
		os.Remove(cfg.UnixSocket)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// WireModels describes the store's models in the fleet's wire form.
func WireModels(ctx context.Context, mgr *serving.Manager) []wire.ModelStatus {
	st, err := mgr.Status(ctx)
	if err != nil {
		return nil
	}
	out := make([]wire.ModelStatus, len(st))
	for i, m := range st {
		out[i] = wire.ModelStatus{ID: m.ID, Active: m.Active, Previous: m.Previous, Shadow: m.Route.Shadow, Candidate: m.Route.Candidate, CandidatePercent: m.Route.CandidatePercent}
		for _, v := range m.Versions {
			out[i].Installed = append(out[i].Installed, v.Version)
		}
	}
	return out
}

// ParseListen normalizes a listen address from a flag, EDGE_LISTEN or the
// YAML file: "PORT" alone means 127.0.0.1:PORT (loopback: exposing the
// API is an explicit choice, e.g. "0.0.0.0:8080" or ":8080").
func ParseListen(s string) string {
	s = strings.TrimSpace(s)
	if s != "" && !strings.Contains(s, ":") {
		return "127.0.0.1:" + s
	}
	return s
}

// ListenWarning returns a warning when addr accepts connections from
// other hosts and no token protects the API ("" otherwise).
func ListenWarning(addr, token string) string {
	if token != "" {
		return ""
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if host == "localhost" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return ""
	}
	return "the API listens beyond loopback without auth_token: anyone who can reach this address can run models and change routes; set auth_token (--token, EDGE_AUTH_TOKEN) or listen on 127.0.0.1"
}

// NewHTTPServer returns the API's HTTP server with every timeout and the
// header bound of c (zero values: Defaults()).
func NewHTTPServer(h http.Handler, c HTTPConfig) *http.Server {
	d := Defaults().HTTP
	pick := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	hdr := c.MaxHeaderBytes
	if hdr <= 0 {
		hdr = d.MaxHeaderBytes
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(10*time.Second, pick(c.ReadTimeout, d.ReadTimeout)),
		ReadTimeout:       pick(c.ReadTimeout, d.ReadTimeout),
		WriteTimeout:      pick(c.WriteTimeout, d.WriteTimeout),
		IdleTimeout:       pick(c.IdleTimeout, d.IdleTimeout),
		MaxHeaderBytes:    hdr,
	}
}

// ServingLimits converts the serving configuration.
func ServingLimits(c ServingConfig) serving.Limits {
	return serving.Limits{Threads: c.Threads, Pool: c.Pool, MinPool: c.MinPool, ShrinkAfter: c.ShrinkAfter, MaxBatch: c.MaxBatch, MaxDelay: c.MaxDelay,
		Queue: c.Queue, LatencyBudget: c.LatencyBudget, ProbeTimeout: c.ProbeTimeout}
}
