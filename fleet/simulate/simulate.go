// Package simulate is the fleet load tool behind `fleetctl simulate`: it
// enrolls N simulated devices through the public enrollment API, connects
// each with its own real MQTT session (paho, persistent session, Last Will)
// and speaks the agent's protocol (wire): telemetry batches with
// sequence numbers and cumulative acks resent after an ack timeout, status,
// jobs/get, job updates, and install jobs that download the signed target
// from the update repository over HTTP and check its length and sha256. It
// can drive a staged rollout while the load runs and reports connect time,
// telemetry offered/stored/lost/duplicated, broker drops towards the server,
// rollout time and the server's RSS.
package simulate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/client"
	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// Config configures a simulation run.
type Config struct {
	// ServerURL is fleet-server's HTTP base URL; AdminToken its API bearer token.
	ServerURL, AdminToken string
	// EnrollToken is the enrollment token secret devices present.
	EnrollToken string
	// BrokerURL overrides the broker URL the enrollment answer gives.
	BrokerURL string
	// TLS is used for mqtts:// and https:// (nil: system defaults).
	TLS *tls.Config
	// Devices is how many devices to simulate; IDPrefix prefixes their ids.
	Devices  int
	IDPrefix string
	// Rate is telemetry records per second per device (0.1 = one per 10 s).
	Rate float64
	// Duration is how long records are generated.
	Duration time.Duration
	// AckTimeout is how long a device waits for a telemetry ack before
	// resending (the agent's default, 10 s).
	AckTimeout time.Duration
	// MaxAckTimeout caps the ack wait, doubled after each consecutive
	// timeout like the agent's (fleetlink.Config.MaxAckTimeout; default 2 min).
	MaxAckTimeout time.Duration
	// ConnectParallel bounds concurrent enrollments and connects.
	ConnectParallel int
	// DownloadParallel bounds concurrent target downloads across devices.
	DownloadParallel int
	// ModelID and BaseVersion are the model the devices run before a rollout.
	ModelID, BaseVersion string
	// Rollout, if set, is created RolloutAfter after every device connected
	// and followed until it ends (or RolloutTimeout passes).
	Rollout        *apitype.RolloutRequest
	RolloutAfter   time.Duration
	RolloutTimeout time.Duration
	// DrainTimeout bounds the wait for outstanding acks after Duration.
	DrainTimeout time.Duration
	// ServerPID, if non-zero, is read from /proc for RSS.
	ServerPID int
	// PeerURLs are the other replicas' HTTP base URLs (same admin token):
	// their counters are added to the server's.
	PeerURLs []string
	// OtherPIDs are further processes (name → pid: NATS node, replicas,
	// PostgreSQL) whose peak RSS is reported.
	OtherPIDs map[string]int
	Log       *slog.Logger
	// Progress, if set, receives a one-line status every ProgressEvery.
	Progress      io.Writer
	ProgressEvery time.Duration
}

func (c *Config) defaults() error {
	if c.ServerURL == "" || c.EnrollToken == "" {
		return errors.New("simulate: server URL and enrollment token are required")
	}
	if c.Devices < 1 || c.Devices > 1_000_000 {
		return fmt.Errorf("simulate: devices %d: want 1..1000000", c.Devices)
	}
	if c.Rate <= 0 || c.Rate > 100 {
		return fmt.Errorf("simulate: rate %v records/s per device: want >0 and ≤100", c.Rate)
	}
	if c.Duration <= 0 {
		return fmt.Errorf("simulate: duration %v: want > 0", c.Duration)
	}
	if c.IDPrefix == "" {
		c.IDPrefix = "sim"
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 10 * time.Second
	}
	if c.MaxAckTimeout < c.AckTimeout {
		c.MaxAckTimeout = max(2*time.Minute, c.AckTimeout)
	}
	if c.ConnectParallel <= 0 {
		c.ConnectParallel = 64
	}
	if c.DownloadParallel <= 0 {
		c.DownloadParallel = 32
	}
	if c.ModelID == "" {
		c.ModelID = "bench"
	}
	if c.BaseVersion == "" {
		c.BaseVersion = "1"
	}
	if c.RolloutTimeout <= 0 {
		c.RolloutTimeout = 10 * time.Minute
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 2 * time.Minute
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 10 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Result is what a run measured.
type Result struct {
	Devices     int           `json:"devices"`
	Connected   int           `json:"connected"`
	ConnectTime time.Duration `json:"connect_time_ns"`
	Rate        float64       `json:"rate_per_device"`
	Duration    time.Duration `json:"duration_ns"`

	// Offered is records generated; Acked records the devices saw
	// acknowledged; Stored records the server counted as stored (delta of
	// edgefleet_telemetry_records_total); Lost = Offered − Acked after the
	// drain; Duplicates the redelivered records the server recognised;
	// DuplicatesStored = Stored − Offered when positive.
	Offered, Acked, Stored, Lost, Resent, Duplicates, DuplicatesStored uint64
	AckTimeouts, BadAcks, Overflow                                     uint64
	OfferedRate, StoredRate                                            float64

	// Published is device→server publishes the broker acknowledged;
	// Received what the server handled (edgefleet_mqtt_messages_total
	// delta); BrokerDrops = Published − Received when positive.
	Published, Received, BrokerDrops, PublishFailed uint64
	// DeliveryDropped is messages to devices the embedded broker dropped;
	// RateLimited device publishes it refused over the device's rate.
	DeliveryDropped, RateLimited uint64
	// SubscriptionsRefused counts device subscriptions the broker refused
	// (the device then gets no acks or jobs on that topic).
	SubscriptionsRefused uint64

	// JobUpdates is job updates the broker acknowledged to the devices;
	// JobUpdatesReceived those the server handled; JobUpdatesLost =
	// JobUpdates − JobUpdatesReceived when positive.
	JobUpdates, JobUpdatesReceived, JobUpdatesLost uint64
	JobsSucceeded, JobsFailed                      uint64
	DownloadedBytes                                uint64
	RolloutID                                      string        `json:"rollout_id,omitempty"`
	RolloutPhase                                   string        `json:"rollout_phase,omitempty"`
	RolloutTime                                    time.Duration `json:"rollout_time_ns,omitempty"`
	RolloutCreateLatency                           time.Duration `json:"rollout_create_latency_ns,omitempty"`
	RolloutJobsAcked                               int           `json:"rollout_jobs_acked,omitempty"`

	ServerRSS, ServerPeakRSS uint64
	// OtherPeakRSS is the peak RSS of Config.OtherPIDs by name.
	OtherPeakRSS map[string]uint64 `json:",omitempty"`
	// LoadBefore and LoadAfter are the machine's load averages (1, 5, 15
	// minutes) when the run started and ended.
	LoadBefore, LoadAfter string `json:",omitempty"`
}

// Run enrolls and connects the devices, generates telemetry for
// cfg.Duration (driving the rollout, if any), drains, and reports.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := checkFileLimit(cfg.Devices); err != nil {
		return nil, err
	}
	api := client.New(cfg.ServerURL, cfg.AdminToken)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg.TLS
	tr.MaxIdleConnsPerHost = cfg.DownloadParallel + cfg.ConnectParallel
	hc := &http.Client{Transport: agentFeatures{tr}, Timeout: 5 * time.Minute}
	api.HTTP = hc
	apis := []*client.Client{api}
	for _, u := range cfg.PeerURLs {
		p := client.New(u, cfg.AdminToken)
		p.HTTP = hc
		apis = append(apis, p)
	}
	before, err := scrapeAll(ctx, apis)
	if err != nil {
		return nil, err
	}
	sum := &counters{}
	res := &Result{Devices: cfg.Devices, Rate: cfg.Rate, Duration: cfg.Duration, LoadBefore: loadAverage()}
	dl := make(chan struct{}, cfg.DownloadParallel)

	// Enroll and connect.
	start := time.Now()
	devs := make([]*device, cfg.Devices)
	var (
		wg     sync.WaitGroup
		errMu  sync.Mutex
		first  error
		failed int
	)
	sem := make(chan struct{}, cfg.ConnectParallel)
	for i := range devs {
		id := fmt.Sprintf("%s-%06d", cfg.IDPrefix, i)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d, err := enrollAndConnect(ctx, &cfg, api, hc, id, sum, dl)
			if err != nil {
				errMu.Lock()
				failed++
				if first == nil {
					first = err
				}
				errMu.Unlock()
				return
			}
			devs[i] = d
		}()
	}
	wg.Wait()
	res.ConnectTime = time.Since(start)
	res.Connected = int(sum.connected.Load())
	defer func() {
		for _, d := range devs {
			if d != nil {
				d.c.Disconnect(0)
			}
		}
	}()
	if failed > 0 {
		return res, fmt.Errorf("simulate: %d of %d devices failed to enroll or connect; first: %w", failed, cfg.Devices, first)
	}
	cfg.Log.Info("devices connected", "n", res.Connected, "time", res.ConnectTime)

	// Load.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	stopC := stop
	var tw, jw sync.WaitGroup
	for _, d := range devs {
		tw.Add(1)
		jw.Add(1)
		go func() { defer tw.Done(); d.telemetryLoop(runCtx, stopC) }()
		go func() { defer jw.Done(); d.jobLoop(runCtx) }()
	}
	var peak uint64
	sample := func() {
		if rss, hwm, err := serverRSS(ctx, cfg.ServerPID, api); err == nil {
			res.ServerRSS = rss
			peak = max(peak, rss, hwm)
		}
		for name, pid := range cfg.OtherPIDs {
			if rss, hwm, err := serverRSS(ctx, pid, nil); err == nil {
				if res.OtherPeakRSS == nil {
					res.OtherPeakRSS = map[string]uint64{}
				}
				res.OtherPeakRSS[name] = max(res.OtherPeakRSS[name], rss, hwm)
			}
		}
	}
	progress := time.NewTicker(cfg.ProgressEvery)
	defer progress.Stop()
	loadStart := time.Now()
	var rolloutDone chan struct{}
	rolloutAt := time.After(cfg.RolloutAfter)
	if cfg.Rollout == nil {
		rolloutAt = nil
	}
	// Devices keep reporting until Duration has passed and the rollout (if
	// any) has ended: its gates need the new version's telemetry.
	timeUp := time.After(cfg.Duration)
	var genTime time.Duration
	for stop != nil {
		if timeUp == nil && rolloutDone == nil && rolloutAt == nil {
			close(stop)
			stop = nil
			genTime = time.Since(loadStart)
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-timeUp:
			timeUp = nil
		case <-rolloutAt:
			rolloutAt = nil
			rolloutDone = make(chan struct{})
			go func() {
				defer close(rolloutDone)
				driveRollout(ctx, &cfg, api, res)
			}()
		case <-rolloutDone:
			rolloutDone = nil
		case <-progress.C:
			sample()
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "  t=%-5s offered=%d acked=%d resent=%d jobs_ok=%d rss=%dMB\n",
					time.Since(loadStart).Round(time.Second), sum.offered.Load(), sum.acked.Load(), sum.resent.Load(),
					sum.jobsSucceeded.Load(), res.ServerRSS>>20)
			}
		}
	}

	// Drain: every device's buffer acknowledged.
	drained := make(chan struct{})
	go func() { tw.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(cfg.DrainTimeout):
		cfg.Log.Warn("drain timed out: some records were never acknowledged")
	case <-ctx.Done():
		return res, ctx.Err()
	}
	cancel()
	jw.Wait()
	// Let the last job updates and status reach the server before counting.
	waitQuiet(ctx, apis, sum)
	sample()
	after, err := scrapeAll(ctx, apis)
	if err != nil {
		return res, err
	}
	res.Offered, res.Acked, res.Resent = sum.offered.Load(), sum.acked.Load(), sum.resent.Load()
	res.AckTimeouts, res.BadAcks, res.Overflow = sum.ackTimeouts.Load(), sum.badAcks.Load(), sum.overflow.Load()
	if res.Offered > res.Acked {
		res.Lost = res.Offered - res.Acked
	}
	res.Stored = after.stored - before.stored
	res.Duplicates = after.duplicates - before.duplicates
	if res.Stored > res.Offered {
		res.DuplicatesStored = res.Stored - res.Offered
	}
	res.Duration = genTime
	res.OfferedRate = float64(res.Offered) / genTime.Seconds()
	res.StoredRate = float64(res.Stored) / genTime.Seconds()
	res.Published, res.PublishFailed = sum.published.Load(), sum.publishFailed.Load()
	res.Received = after.received - before.received
	if res.Published > res.Received {
		res.BrokerDrops = res.Published - res.Received
	}
	res.JobUpdates, res.JobsSucceeded, res.JobsFailed = sum.jobUpdates.Load(), sum.jobsSucceeded.Load(), sum.jobsFailed.Load()
	res.JobUpdatesReceived = after.jobUpdates - before.jobUpdates
	if res.JobUpdates > res.JobUpdatesReceived {
		res.JobUpdatesLost = res.JobUpdates - res.JobUpdatesReceived
	}
	res.DeliveryDropped = after.deliveryDropped - before.deliveryDropped
	res.RateLimited = after.rateLimited - before.rateLimited
	res.DownloadedBytes = sum.downloadedBytes.Load()
	res.SubscriptionsRefused = sum.subRefused.Load()
	res.ServerPeakRSS = peak
	res.LoadAfter = loadAverage()
	return res, nil
}

// waitQuiet waits (up to 30 s) until the server has handled as many
// messages as the broker acknowledged to the devices.
func waitQuiet(ctx context.Context, apis []*client.Client, sum *counters) {
	deadline := time.Now().Add(30 * time.Second)
	base, _ := scrapeAll(ctx, apis)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		m, err := scrapeAll(ctx, apis)
		if err == nil && m.received-base.received >= 0 {
			time.Sleep(2 * time.Second)
			m2, err := scrapeAll(ctx, apis)
			if err == nil && m2.received == m.received {
				return
			}
			continue
		}
		time.Sleep(time.Second)
	}
}

// agentFeatures lists, like the agent, the optional enrollment answer
// fields the simulated devices understand (wire.FeaturesHeader).
type agentFeatures struct{ next http.RoundTripper }

func (a agentFeatures) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/api/v1/enroll" {
		r = r.Clone(r.Context())
		r.Header.Set(wire.FeaturesHeader, wire.FeatureSubscribeQoS)
	}
	return a.next.RoundTrip(r)
}

func enrollAndConnect(ctx context.Context, cfg *Config, api *client.Client, hc *http.Client, id string, sum *counters, dl chan struct{}) (*device, error) {
	// The device key is generated here and only the CSR is sent, like the
	// agent; the answer's certificate and CA give the mTLS session.
	_, keyPEM, csrPEM, err := pki.NewDeviceKey(id)
	if err != nil {
		return nil, fmt.Errorf("enroll %s: %w", id, err)
	}
	req := wire.EnrollRequest{V: wire.Version, Token: cfg.EnrollToken, DeviceID: id, AgentVersion: "simulate",
		Hardware: wire.Hardware{Arch: "arm64", OS: "linux", CPUs: 4},
		Labels:   map[string]string{"sim": "1"},
		Models:   []wire.ModelStatus{{ID: cfg.ModelID, Active: cfg.BaseVersion, Installed: []string{cfg.BaseVersion}}},
		CSR:      string(csrPEM)}
	var resp wire.EnrollResponse
	deadline := time.Now().Add(10 * time.Minute)
	for attempt := 1; ; attempt++ {
		if err = api.Do(ctx, http.MethodPost, "/api/v1/enroll", req, &resp); err == nil {
			break
		}
		var ae *client.APIError
		if errors.As(err, &ae) && ae.Status < 500 && ae.Status != http.StatusTooManyRequests || time.Now().After(deadline) {
			break
		}
		select {
		case <-time.After(time.Duration(min(attempt, 5)) * time.Second):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("enroll %s: %w", id, err)
	}
	if err := resp.Validate(); err != nil {
		return nil, fmt.Errorf("enroll %s: answer: %w", id, err)
	}
	tlsCfg := cfg.TLS
	if resp.Certificate != "" {
		cert, err := tls.X509KeyPair([]byte(resp.Certificate), keyPEM)
		if err != nil {
			return nil, fmt.Errorf("enroll %s: certificate: %w", id, err)
		}
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if cfg.TLS != nil {
			tlsCfg.RootCAs = cfg.TLS.RootCAs
		}
		if resp.CA != "" {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM([]byte(resp.CA)) {
				return nil, fmt.Errorf("enroll %s: answer's CA is not PEM", id)
			}
			tlsCfg.RootCAs = pool // pinned from now on, like the agent
		}
	}
	d := newDevice(id, cfg, sum, resp, hc, dl)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := d.connect(cctx, tlsCfg); err != nil {
		return nil, fmt.Errorf("connect %s: %w", id, err)
	}
	return d, nil
}

// driveRollout creates the rollout and polls it until it is final.
func driveRollout(ctx context.Context, cfg *Config, api *client.Client, res *Result) {
	start := time.Now()
	r, err := api.CreateRollout(ctx, *cfg.Rollout)
	res.RolloutCreateLatency = time.Since(start)
	if err != nil {
		res.RolloutPhase = "create failed: " + err.Error()
		return
	}
	res.RolloutID = r.Spec.ID
	deadline := start.Add(cfg.RolloutTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		r, err = api.Rollout(ctx, res.RolloutID)
		if err != nil {
			cfg.Log.Warn("poll rollout", "err", err)
			continue
		}
		res.RolloutPhase = string(r.Phase)
		if r.Phase.Final() {
			res.RolloutTime = time.Since(start)
			res.RolloutJobsAcked = countAcked(r)
			return
		}
	}
	res.RolloutPhase = fmt.Sprintf("%s (not finished within %s)", r.Phase, cfg.RolloutTimeout)
}

func countAcked(r *rollout.Rollout) int {
	n := 0
	for _, d := range r.Devices {
		if d.JobState.Terminal() {
			n++
		}
	}
	return n
}

// Table renders the result as the table row plus details.
func (r *Result) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| devices | server RSS (peak) | telemetry offered → stored | lost | duplicates | broker drops | job updates lost | rollout 1,10,50,100 %% |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|\n")
	ro := "—"
	if r.RolloutID != "" {
		ro = fmt.Sprintf("%s in %s (POST %s)", r.RolloutPhase, r.RolloutTime.Round(time.Second), r.RolloutCreateLatency.Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "| %d | %d MB (%d MB) | %.0f → %.0f rec/s | %d | %d recognised, %d stored | %d | %d of %d | %s |\n",
		r.Devices, r.ServerRSS>>20, r.ServerPeakRSS>>20, r.OfferedRate, r.StoredRate, r.Lost, r.Duplicates, r.DuplicatesStored, r.BrokerDrops,
		r.JobUpdatesLost, r.JobUpdates, ro)
	lines := []string{
		fmt.Sprintf("connected %d/%d in %s (subscriptions refused %d); load average %s at start, %s at end", r.Connected, r.Devices, r.ConnectTime.Round(time.Millisecond), r.SubscriptionsRefused, r.LoadBefore, r.LoadAfter),
		fmt.Sprintf("telemetry: offered %d, acked %d, stored %d, lost %d, resent %d, ack timeouts %d, forged acks %d, device overflow %d", r.Offered, r.Acked, r.Stored, r.Lost, r.Resent, r.AckTimeouts, r.BadAcks, r.Overflow),
		fmt.Sprintf("mqtt to server: published %d, received %d, dropped %d, publish failures %d, rate limited %d; to devices: dropped %d", r.Published, r.Received, r.BrokerDrops, r.PublishFailed, r.RateLimited, r.DeliveryDropped),
		fmt.Sprintf("jobs: succeeded %d, failed %d, job updates published %d, received %d, lost %d, downloaded %d MB", r.JobsSucceeded, r.JobsFailed, r.JobUpdates, r.JobUpdatesReceived, r.JobUpdatesLost, r.DownloadedBytes>>20),
	}
	if len(r.OtherPeakRSS) > 0 {
		names := make([]string, 0, len(r.OtherPeakRSS))
		for n := range r.OtherPeakRSS {
			names = append(names, n)
		}
		sort.Strings(names)
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s %d MB", n, r.OtherPeakRSS[n]>>20))
		}
		lines = append(lines, "peak RSS of the other processes: "+strings.Join(parts, ", "))
	}
	if r.RolloutID != "" {
		lines = append(lines, fmt.Sprintf("rollout %s: %s after %s, %d device jobs acknowledged", r.RolloutID, r.RolloutPhase, r.RolloutTime.Round(time.Second), r.RolloutJobsAcked))
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}
