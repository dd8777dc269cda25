package simulate

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// counters are the fleet-wide tallies every device adds to.
type counters struct {
	connected       atomic.Int64
	offered         atomic.Uint64 // records generated
	acked           atomic.Uint64 // records acknowledged by the server
	resent          atomic.Uint64 // records sent again after an ack timeout
	ackTimeouts     atomic.Uint64
	badAcks         atomic.Uint64 // acks beyond what was sent
	overflow        atomic.Uint64 // records discarded from a full device buffer
	published       atomic.Uint64 // device→server publishes PUBACKed by the broker
	publishFailed   atomic.Uint64
	jobUpdates      atomic.Uint64 // job updates PUBACKed by the broker
	jobsSucceeded   atomic.Uint64
	jobsFailed      atomic.Uint64
	downloadedBytes atomic.Uint64
	subRefused      atomic.Uint64 // subscriptions the broker refused (SUBACK 0x80) or never answered
}

// device is one simulated edge-agent: an MQTT session with the agent's
// persistent-session settings, a bounded telemetry buffer uploaded one batch
// at a time with cumulative acks, and a job runner that downloads targets.
type device struct {
	id   string
	cfg  *Config
	sum  *counters
	enr  wire.EnrollResponse
	c    paho.Client
	http *http.Client
	dl   chan struct{} // download concurrency limit shared by all devices

	acks   chan uint64
	notify chan wire.JobNotify

	epoch string // sequence epoch, as an agent picks at first start

	mu      sync.Mutex
	seq     uint64
	buf     []wire.TelemetryRecord // unacknowledged, oldest first
	sent    uint64                 // highest seq ever sent (acks above it are forged)
	active  string
	journal map[string]wire.JobUpdate
}

const maxBuffer = 10000 // the agent's default ring size

func newDevice(id string, cfg *Config, sum *counters, enr wire.EnrollResponse, hc *http.Client, dl chan struct{}) *device {
	return &device{id: id, cfg: cfg, sum: sum, enr: enr, http: hc, dl: dl, epoch: fmt.Sprintf("e%016x", rand.Uint64()),
		acks: make(chan uint64, 4), notify: make(chan wire.JobNotify, 1),
		active: cfg.BaseVersion, journal: map[string]wire.JobUpdate{}}
}

// connect opens the MQTT session and waits until it is up and subscribed.
func (d *device) connect(ctx context.Context, tlsCfg *tls.Config) error {
	url := d.enr.BrokerURL
	if d.cfg.BrokerURL != "" {
		url = d.cfg.BrokerURL
	}
	addr, err := wire.BrokerAddress(url)
	if err != nil {
		return err
	}
	offline, _ := wire.Encode(wire.Status{V: wire.Version, DeviceID: d.id, State: wire.Offline})
	up := make(chan struct{}, 1)
	opts := paho.NewClientOptions().AddBroker(addr).SetClientID(d.id).
		SetUsername(d.enr.Username).SetPassword(d.enr.Password).
		SetCleanSession(false).SetOrderMatters(false).
		SetKeepAlive(60*time.Second).
		SetBinaryWill(wire.StatusTopic(d.id), offline, 1, true).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).SetConnectTimeout(30 * time.Second).
		SetWriteTimeout(30 * time.Second).
		SetOnConnectHandler(func(c paho.Client) {
			// QoS 1 unless the fleet asked for 0 at enrollment (a NATS
			// cluster), like the agent (agent/fleetlink).
			qos := byte(1)
			if q := d.enr.SubscribeQoS; q != nil && *q == 0 {
				qos = 0
			}
			subs := map[string]byte{wire.JobsNotifyTopic(d.id): qos, wire.TelemetryAckTopic(d.id): qos}
			tok := c.SubscribeMultiple(subs, d.onMessage)
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				d.sum.subRefused.Add(uint64(len(subs)))
			} else if st, ok := tok.(*paho.SubscribeToken); ok {
				for _, code := range st.Result() {
					if code == 0x80 {
						d.sum.subRefused.Add(1)
					}
				}
			}
			select {
			case up <- struct{}{}:
			default:
			}
			go func() {
				d.publishStatus()
				get, _ := wire.Encode(wire.JobsGet{V: wire.Version, DeviceID: d.id})
				d.publish(wire.JobsGetTopic(d.id), false, get, false)
			}()
		})
	if tlsCfg != nil {
		opts.SetTLSConfig(tlsCfg)
	}
	d.c = paho.NewClient(opts)
	d.c.Connect()
	select {
	case <-up:
		d.sum.connected.Add(1)
		return nil
	case <-ctx.Done():
		d.c.Disconnect(0)
		return ctx.Err()
	}
}

func (d *device) publish(topic string, retain bool, payload []byte, job bool) {
	tok := d.c.Publish(topic, 1, retain, payload)
	go func() {
		if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
			d.sum.publishFailed.Add(1)
			return
		}
		d.sum.published.Add(1)
		if job {
			d.sum.jobUpdates.Add(1)
		}
	}()
}

func (d *device) publishStatus() {
	d.mu.Lock()
	active := d.active
	d.mu.Unlock()
	st := wire.Status{V: wire.Version, DeviceID: d.id, State: wire.Online, Time: time.Now().UTC(), AgentVersion: "simulate",
		Hardware: &wire.Hardware{Arch: "arm64", OS: "linux", CPUs: 4},
		Models:   []wire.ModelStatus{{ID: d.cfg.ModelID, Active: active, Installed: []string{active}}}}
	b, _ := wire.Encode(st)
	d.publish(wire.StatusTopic(d.id), true, b, false)
}

func (d *device) onMessage(_ paho.Client, m paho.Message) {
	t, err := wire.ParseTopic(m.Topic())
	if err != nil || t.DeviceID != d.id {
		return
	}
	switch t.Kind {
	case wire.KindTelemetryAck:
		a, err := wire.DecodeTelemetryAck(m.Payload())
		if err != nil || a.Epoch != "" && a.Epoch != d.epoch {
			return
		}
		select {
		case d.acks <- a.Seq:
		default: // acks are cumulative; a newer one follows
		}
	case wire.KindJobsNotify:
		n, err := wire.DecodeJobNotify(m.Payload())
		if err != nil {
			return
		}
		for {
			select {
			case d.notify <- *n:
				return
			default:
				select {
				case <-d.notify:
				default:
				}
			}
		}
	}
}

// record appends one telemetry record for the active version.
func (d *device) record(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	d.sum.offered.Add(1)
	r := wire.TelemetryRecord{Seq: d.seq, Time: now.UTC(), ModelID: d.cfg.ModelID, Version: d.active, Role: wire.RolePrimary,
		Requests: 20, LatencyP50Ms: 4 + rand.Float64(), LatencyP95Ms: 8 + rand.Float64(), LatencyP99Ms: 10 + rand.Float64()}
	if len(d.buf) >= maxBuffer {
		d.buf = d.buf[1:]
		d.sum.overflow.Add(1)
	}
	d.buf = append(d.buf, r)
}

// telemetryLoop generates records at the configured rate until stop closes,
// then keeps uploading until everything is acknowledged or ctx ends.
func (d *device) telemetryLoop(ctx context.Context, stop <-chan struct{}) {
	every := time.Duration(float64(time.Second) / d.cfg.Rate)
	gen := time.NewTimer(time.Duration(rand.Int64N(int64(every)) + 1)) // spread devices over the period
	defer gen.Stop()
	var inflight uint64 // last seq of the batch awaiting its ack (0: none)
	ackTimer := time.NewTimer(time.Hour)
	ackTimer.Stop()
	ackWait := d.cfg.AckTimeout
	retry := time.NewTicker(2 * time.Second) // the agent's upload interval
	defer retry.Stop()
	stopped := false
	send := func(resend bool) {
		d.mu.Lock()
		n := len(d.buf)
		if n == 0 {
			d.mu.Unlock()
			inflight = 0
			return
		}
		if n > wire.MaxBatchRecords {
			n = wire.MaxBatchRecords
		}
		recs := append([]wire.TelemetryRecord(nil), d.buf[:n]...)
		if last := recs[n-1].Seq; last > d.sent {
			d.sent = last
		}
		d.mu.Unlock()
		if resend {
			d.sum.resent.Add(uint64(n))
		}
		b, _ := wire.Encode(wire.TelemetryBatch{V: wire.Version, DeviceID: d.id, Records: recs, Epoch: d.epoch})
		inflight = recs[n-1].Seq
		d.publish(wire.TelemetryTopic(d.id), false, b, false)
		ackTimer.Reset(ackWait)
	}
	for {
		var genC <-chan time.Time
		if !stopped {
			genC = gen.C
		}
		select {
		case <-ctx.Done():
			return
		case <-stop:
			stop = nil
			stopped = true
			d.mu.Lock()
			empty := len(d.buf) == 0
			d.mu.Unlock()
			if empty {
				return
			}
		case now := <-genC:
			gen.Reset(every)
			d.record(now)
			if inflight == 0 && d.c.IsConnectionOpen() {
				send(false)
			}
		case seq := <-d.acks:
			d.mu.Lock()
			if seq > d.sent {
				d.sum.badAcks.Add(1) // never accept an ack beyond what was sent
				d.mu.Unlock()
				continue
			}
			i := 0
			for i < len(d.buf) && d.buf[i].Seq <= seq {
				i++
			}
			d.sum.acked.Add(uint64(i))
			d.buf = d.buf[i:]
			empty := len(d.buf) == 0
			d.mu.Unlock()
			if inflight != 0 && seq >= inflight {
				ackTimer.Stop()
				inflight = 0
				ackWait = d.cfg.AckTimeout
				if !empty && d.c.IsConnectionOpen() {
					send(false)
				}
			}
			if empty && stopped {
				return
			}
		case <-ackTimer.C:
			d.sum.ackTimeouts.Add(1)
			inflight = 0
			ackWait = min(2*ackWait, d.cfg.MaxAckTimeout) // like the agent (fleetlink.NextAckWait)
			if d.c.IsConnectionOpen() {
				send(true)
			}
		case <-retry.C:
			if inflight == 0 && d.c.IsConnectionOpen() {
				send(false)
			}
		}
	}
}

// jobLoop runs the jobs of the newest notify, one at a time, like the agent.
func (d *device) jobLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-d.notify:
			for _, j := range n.Jobs {
				if ctx.Err() != nil {
					return
				}
				d.runJob(ctx, j)
			}
		}
	}
}

func (d *device) sendUpdate(u wire.JobUpdate) {
	u.V, u.DeviceID, u.Time = wire.Version, d.id, time.Now().UTC()
	b, _ := wire.Encode(u)
	d.publish(wire.JobUpdateTopic(d.id, u.JobID), false, b, true)
}

func (d *device) runJob(ctx context.Context, j wire.Job) {
	d.mu.Lock()
	done, finished := d.journal[j.JobID]
	d.mu.Unlock()
	if finished {
		d.sendUpdate(done) // the server has not seen the final update yet
		return
	}
	d.sendUpdate(wire.JobUpdate{JobID: j.JobID, State: wire.JobInProgress})
	u := wire.JobUpdate{JobID: j.JobID, State: wire.JobSucceeded, Progress: 100}
	if j.Target != nil {
		if err := d.download(ctx, j); err != nil {
			if ctx.Err() != nil {
				return
			}
			u = wire.JobUpdate{JobID: j.JobID, State: wire.JobFailed, Reason: err.Error()}
		}
	}
	if u.State == wire.JobSucceeded {
		d.sum.jobsSucceeded.Add(1)
	} else {
		d.sum.jobsFailed.Add(1)
	}
	d.mu.Lock()
	d.journal[j.JobID] = u
	if u.State == wire.JobSucceeded && (j.Kind == wire.JobInstall || j.Kind == wire.JobRollback) {
		d.active = j.Version
	}
	d.mu.Unlock()
	d.sendUpdate(u)
	d.publishStatus()
}

// download fetches the job's target from the update repository (consistent
// snapshot path targets/<dir>/<sha256>.<name>) and checks length and hash.
func (d *device) download(ctx context.Context, j wire.Job) error {
	select {
	case d.dl <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-d.dl }()
	repo := j.RepoURL
	if repo == "" {
		repo = d.enr.RepoURL
	}
	t := j.Target
	url := strings.TrimRight(repo, "/") + "/targets/" + path.Dir(t.Name) + "/" + t.SHA256 + "." + path.Base(t.Name)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("download %s: %w", t.Name, err)
		}
		resp, err := d.http.Do(req)
		if err != nil {
			lastErr = fmt.Errorf("download %s: %w", t.Name, err)
			continue
		}
		h := sha256.New()
		n, err := io.Copy(h, io.LimitReader(resp.Body, t.Length+1))
		resp.Body.Close()
		d.sum.downloadedBytes.Add(uint64(n))
		switch {
		case err != nil:
			lastErr = fmt.Errorf("download %s: %w", t.Name, err)
			continue
		case resp.StatusCode != http.StatusOK:
			return fmt.Errorf("download %s: HTTP %d", url, resp.StatusCode)
		case n != t.Length:
			return fmt.Errorf("download %s: %d bytes, want %d", t.Name, n, t.Length)
		case hex.EncodeToString(h.Sum(nil)) != t.SHA256:
			return fmt.Errorf("download %s: sha256 mismatch", t.Name)
		}
		return nil
	}
	return lastErr
}
