// Package telemetry stores and aggregates the health records devices upload:
// exactly-once ingestion by device sequence number (records, per-minute
// rollups and the device's high-water mark are written in one store
// transaction, so a redelivered batch is recognised and only acknowledged
// again), one high-water mark per sequence epoch (a re-flashed device
// restarting at seq 1 is stored, not dropped), a bounded seq advance (a
// device cannot poison its mark with seq 2^64−1), saturating counters,
// aggregation per device / model version / role / rollout stage for the
// rollout gates, time series for the console, retention and Prometheus
// metrics. Records live on disk; memory holds only a bounded hot window of
// raw records plus per-minute rollups per model version and role.
package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgefleet/edgefleet/fleet/drift"
	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// RecordsBucket is the store bucket of the raw records; their keys start
// with the record time as 20-digit unix nanoseconds (time-ordered).
const RecordsBucket = "telemetry"

// PartitionedStore is a store.Store that keeps RecordsBucket in time
// partitions (fleet/store/postgres) and applies retention by dropping whole
// partitions: Prune then leaves the records to DropRecordsBefore and deletes
// only the rollups.
type PartitionedStore interface {
	store.Store
	// DropRecordsBefore drops the partitions of bucket that end at or
	// before cut and returns how many it dropped.
	DropRecordsBefore(ctx context.Context, bucket string, cut time.Time) (int, error)
}

const (
	bucketRecords = RecordsBucket
	bucketSeq     = "telemetry-seq"
	bucketRollup  = "telemetry-rollup"
	bucketRef     = "telemetry-reference"
)

// Record is a stored record with the device and the rollout stage it was
// attributed to at ingestion ("" outside rollouts, else "rollout/stage").
type Record struct {
	wire.TelemetryRecord
	DeviceID string `json:"device_id"`
	Stage    string `json:"stage,omitempty"`
}

// Query selects records for Health.
type Query struct {
	ModelID string
	// Version selects one version; with ExcludeVersion it selects every
	// other version (the baseline).
	Version        string
	ExcludeVersion bool
	// Roles limits the roles (empty: any role; records without a role count
	// as primary).
	Roles []wire.Role
	// Devices limits the devices (nil: all).
	Devices map[string]bool
	// Since and Until bound the record time (zero: unbounded).
	Since, Until time.Time
}

// Health is an aggregate over the records a Query selects.
type Health struct {
	Records   int     `json:"records"`
	Devices   int     `json:"devices"`
	Requests  uint64  `json:"requests"`
	Errors    uint64  `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	// P50, P95 and P99 are request-weighted means of the per-record
	// percentiles: devices report percentiles, not raw samples, so exact
	// fleet-wide percentiles are not available.
	P50             float64 `json:"p50_ms"`
	P95             float64 `json:"p95_ms"`
	P99             float64 `json:"p99_ms"`
	Crashes         uint64  `json:"crashes"`
	Rollbacks       uint64  `json:"rollbacks"`
	InstallFailures uint64  `json:"install_failures"`
	ShadowCompared  uint64  `json:"shadow_compared"`
	ShadowAgreed    uint64  `json:"shadow_agreed"`
	// ShadowAgreement is agreed/compared, or 1 with no comparisons.
	ShadowAgreement float64 `json:"shadow_agreement"`
}

// Point is one time bucket of a Series.
type Point struct {
	Time      time.Time `json:"time"`
	Requests  uint64    `json:"requests"`
	ErrorRate float64   `json:"error_rate"`
	P50       float64   `json:"p50_ms"`
	P95       float64   `json:"p95_ms"`
	P99       float64   `json:"p99_ms"`
}

// Options configures OpenWith.
type Options struct {
	// Retention bounds stored telemetry (0: keep forever).
	Retention time.Duration
	// HotWindow is how much recent telemetry is kept in memory as raw
	// records (default 15 min): queries that filter by device, Records, and
	// queries entirely inside the window use them. Older telemetry is on
	// disk and in per-minute rollups (per model, version and role).
	HotWindow time.Duration
	// MaxHot bounds the raw records in memory (default 1,000,000); beyond
	// it the oldest leave memory early (queries that start before the
	// oldest record kept are then answered from the rollups). Each takes
	// HotRecordBytes, plus one copy of each distinct device id, stage and
	// model/version/role string the window references.
	MaxHot int
	// MaxSeqAdvance is how far above a device's high-water mark a record's
	// seq may be (default 1<<24): a device cannot poison its mark with
	// seq 2^64−1; records beyond are rejected and not acknowledged.
	MaxSeqAdvance uint64
	// MaxEpochs is how many sequence epochs are remembered per device
	// (default 8).
	MaxEpochs int
	// DistWindow is how long per-minute rollups keep their monitoring
	// distributions in memory (default 24 h; on disk they are kept for the
	// retention). Drift queries see the distributions of this window.
	DistWindow time.Duration
	// Clock supplies the time (the system clock if nil).
	Clock clock.Clock
	// Registry receives the metrics (nil: not registered).
	Registry prometheus.Registerer
}

func (o *Options) defaults() {
	if o.HotWindow <= 0 {
		o.HotWindow = 15 * time.Minute
	}
	if o.MaxHot <= 0 {
		o.MaxHot = 1_000_000
	}
	if o.MaxSeqAdvance == 0 {
		o.MaxSeqAdvance = 1 << 24
	}
	if o.MaxEpochs <= 0 {
		o.MaxEpochs = 8
	}
	if o.DistWindow <= 0 {
		o.DistWindow = 24 * time.Hour
	}
	o.Clock = clock.Or(o.Clock)
}

// Store ingests and aggregates telemetry. Records are kept in the store
// (time-ordered keys, so retention deletes a prefix); memory holds only the
// hot window of raw records and per-minute rollups, both bounded.
type Store struct {
	s   store.Store
	opt Options
	now func() time.Time

	mu sync.RWMutex
	// hot is the hot window, compact (hot.go), sorted by time; complete
	// from hotFrom on. strs (device ids, stage tags) and keys (model,
	// version, role) hold the strings its records reference.
	hot     hotWindow
	hotFrom time.Time
	strs    symtab[string]
	keys    symtab[hotKey]
	rollups map[cellKey]*cell
	// dcells are the rollups holding distributions in memory (the last
	// DistWindow): drift queries scan only them.
	dcells map[cellKey]*cell
	intern map[string]string
	// known holds the records in memory within the sync lookback, once
	// SyncShared is used (nil before): records other replicas wrote are
	// merged once.
	known map[recID]struct{}

	ingested   *prometheus.CounterVec
	duplicates prometheus.Counter
	rejected   prometheus.Counter
	dropped    prometheus.Counter
	requests   *prometheus.CounterVec
	errors     *prometheus.CounterVec
	p95        *prometheus.GaugeVec
}

// Open is OpenWith with the given retention, clock and registry.
func Open(ctx context.Context, s store.Store, retention time.Duration, c clock.Clock, reg prometheus.Registerer) (*Store, error) {
	return OpenWith(ctx, s, Options{Retention: retention, Clock: c, Registry: reg})
}

// OpenWith loads the rollups and the hot window from the store and
// registers metrics on o.Registry (nil: not registered).
func OpenWith(ctx context.Context, s store.Store, o Options) (*Store, error) {
	o.defaults()
	t := &Store{s: s, opt: o, now: o.Clock.Now, rollups: map[cellKey]*cell{}, dcells: map[cellKey]*cell{}, intern: map[string]string{},
		strs: newSymtab[string](), keys: newSymtab[hotKey](),
		ingested:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgefleet_telemetry_records_total", Help: "Telemetry records stored, by model and version."}, []string{"model", "version"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgefleet_telemetry_duplicates_total", Help: "Redelivered telemetry records recognised and skipped."}),
		rejected:   prometheus.NewCounter(prometheus.CounterOpts{Name: "edgefleet_telemetry_rejected_total", Help: "Telemetry records rejected: seq too far above the device's high-water mark."}),
		dropped:    prometheus.NewCounter(prometheus.CounterOpts{Name: "edgefleet_telemetry_device_dropped_total", Help: "Records devices reported dropping from their bounded buffers."}),
		requests:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgefleet_model_requests_total", Help: "Prediction requests reported by devices."}, []string{"model", "version", "role"}),
		errors:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgefleet_model_errors_total", Help: "Prediction errors reported by devices."}, []string{"model", "version", "role"}),
		p95:        prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "edgefleet_model_latency_p95_ms", Help: "Latest reported p95 latency per model version."}, []string{"model", "version", "role"}),
	}
	if o.Registry != nil {
		for _, c := range []prometheus.Collector{t.ingested, t.duplicates, t.rejected, t.dropped, t.requests, t.errors, t.p95, driftCollector{t}} {
			if err := o.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("register telemetry metrics: %w", err)
			}
		}
	}
	now := t.now()
	t.hotFrom = now.Add(-o.HotWindow)
	cut := time.Time{}
	if o.Retention > 0 {
		cut = now.Add(-o.Retention)
	}
	distCut := now.Add(-o.DistWindow).Unix() / 60
	var hot []hotRec
	err := s.View(ctx, func(tx store.Tx) error {
		if err := tx.List(bucketRollup, "", func(k string, v []byte) error {
			var c cell
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode telemetry rollup %s: %w", k, err)
			}
			key, err := parseCellKey(k)
			if err != nil {
				return err
			}
			if cut.IsZero() || !time.Unix(key.Minute*60, 0).Before(cut.Truncate(time.Minute)) {
				ik := t.internKey(key)
				if key.Minute < distCut {
					c.D = nil // distributions stay on disk only
				}
				cur := t.rollups[ik]
				if cur != nil {
					cur.merge(&c) // another shard of the same cell
				} else {
					cur = &c
					t.rollups[ik] = cur
				}
				if cur.D != nil {
					t.dcells[ik] = cur
				}
			}
			return nil
		}); err != nil {
			return err
		}
		// Only the hot window is read back as raw records; keys are
		// time-ordered, so everything older is skipped in key order.
		from := recPrefix(t.hotFrom)
		return tx.List(bucketRecords, "", func(k string, v []byte) error {
			if k < from {
				return nil
			}
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode telemetry %s: %w", k, err)
			}
			hot = append(hot, t.compactLocked(&r)) // monitoring: on disk and in the rollups only
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load telemetry: %w", err)
	}
	sort.SliceStable(hot, func(i, j int) bool { return hot[i].before(&hot[j]) })
	t.hot.fill(hot)
	return t, nil
}

// recPrefix is the time part of a record key: records are stored under
// <unix nanoseconds, 20 digits>/<device>/<epoch>/<seq> so that the store's
// key order is time order (retention deletes a prefix, the hot window is a
// suffix).
func recPrefix(at time.Time) string {
	ns := at.UnixNano()
	if ns < 0 {
		ns = 0
	}
	return fmt.Sprintf("%020d", ns)
}

func recKey(r *Record, epoch string) string {
	return fmt.Sprintf("%s/%s/%s/%020d", recPrefix(r.Time), r.DeviceID, epoch, r.Seq)
}

// seqState is a device's high-water marks, one per epoch, newest last.
type seqState struct {
	Epochs []epochMark `json:"epochs"`
}

type epochMark struct {
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

func loadSeq(tx store.Tx, device string) (seqState, error) {
	var st seqState
	v, err := tx.Get(bucketSeq, device)
	if errors.Is(err, store.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if len(v) > 0 && v[0] == '{' {
		if err := json.Unmarshal(v, &st); err != nil {
			return st, fmt.Errorf("decode high-water marks of %s: %w", device, err)
		}
		return st, nil
	}
	// Before epochs: the mark alone, as decimal text.
	hw, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		return st, fmt.Errorf("decode high-water mark of %s: %q: %w", device, v, err)
	}
	st.Epochs = []epochMark{{Seq: hw}}
	return st, nil
}

// mark returns the index of epoch in st, adding it (and forgetting the
// oldest beyond max) when new.
func (st *seqState) mark(epoch string, max int) int {
	for i, e := range st.Epochs {
		if e.Epoch == epoch {
			return i
		}
	}
	st.Epochs = append(st.Epochs, epochMark{Epoch: epoch})
	if len(st.Epochs) > max {
		st.Epochs = append(st.Epochs[:0:0], st.Epochs[len(st.Epochs)-max:]...)
	}
	return len(st.Epochs) - 1
}

// alreadyStored reports whether every record of b is at or below the
// high-water mark of its epoch, and that mark. Such a batch is a resend
// (an ack the device did not get): it is acknowledged from a read, with no
// write transaction — under load, when acks come late, most batches are
// resends (at 10,000 devices through NATS: 429,000 resent records against
// 368,000 new ones), and each took a serialized write before.
func (t *Store) alreadyStored(ctx context.Context, b *wire.TelemetryBatch) (uint64, bool, error) {
	if len(b.Records) == 0 {
		return 0, false, nil
	}
	last := b.Records[0].Seq
	for _, r := range b.Records[1:] {
		last = max(last, r.Seq)
	}
	var (
		hw    uint64
		known bool
	)
	err := t.s.View(ctx, func(tx store.Tx) error {
		st, err := loadSeq(tx, b.DeviceID)
		if err != nil {
			return err
		}
		for _, e := range st.Epochs {
			if e.Epoch == b.Epoch {
				hw, known = e.Seq, true
			}
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return hw, known && last <= hw, nil
}

// Ingest stores the batch's records that are new (seq above the high-water
// mark of the batch's epoch, and at most MaxSeqAdvance above it) and
// returns the mark to acknowledge. A batch from a new epoch (a re-flashed
// device restarting at seq 1) starts a new mark instead of being
// acknowledged and dropped. stage attributes a record to a rollout stage
// ("" for none).
func (t *Store) Ingest(ctx context.Context, b *wire.TelemetryBatch, stage func(wire.TelemetryRecord) string) (ack uint64, stored int, err error) {
	if hw, ok, err := t.alreadyStored(ctx, b); err != nil {
		return 0, 0, fmt.Errorf("ingest telemetry from %s: %w", b.DeviceID, err)
	} else if ok {
		t.duplicates.Add(float64(len(b.Records)))
		t.dropped.Add(float64(b.Dropped))
		return hw, 0, nil
	}
	var fresh []Record
	// Attribute stages before the transaction: stage may take other locks.
	tags := make([]string, len(b.Records))
	if stage != nil {
		for i, r := range b.Records {
			tags[i] = stage(r)
		}
	}
	var rejected int
	err = t.s.Update(ctx, func(tx store.Tx) error {
		// fn may run more than once (group commit): start from scratch.
		fresh, rejected = fresh[:0], 0
		st, err := loadSeq(tx, b.DeviceID)
		if err != nil {
			return err
		}
		i := st.mark(b.Epoch, t.opt.MaxEpochs)
		hw := st.Epochs[i].Seq
		cells := map[cellKey]*cell{}
		for j, r := range b.Records {
			if r.Seq <= hw {
				continue
			}
			if r.Seq-hw > t.opt.MaxSeqAdvance {
				rejected = len(b.Records) - j // seqs increase: the rest is out of range too
				break
			}
			rec := Record{TelemetryRecord: r, DeviceID: b.DeviceID, Stage: tags[j]}
			v, err := json.Marshal(rec)
			if err != nil {
				return fmt.Errorf("encode record %d: %w", r.Seq, err)
			}
			if err := tx.Put(bucketRecords, recKey(&rec, b.Epoch), v); err != nil {
				return err
			}
			k := keyOf(&rec)
			if cells[k] == nil {
				cells[k] = &cell{}
			}
			cells[k].add(&rec)
			hw = r.Seq
			fresh = append(fresh, rec)
		}
		for k, c := range cells {
			var old cell
			sk := k.String() + shardSuffix(b.DeviceID)
			if v, err := tx.Get(bucketRollup, sk); err == nil {
				if err := json.Unmarshal(v, &old); err != nil {
					return fmt.Errorf("decode telemetry rollup %s: %w", k, err)
				}
			}
			old.merge(c)
			v, _ := json.Marshal(&old)
			if err := tx.Put(bucketRollup, sk, v); err != nil {
				return err
			}
		}
		st.Epochs[i].Seq = hw
		ack = hw
		v, _ := json.Marshal(st)
		return tx.Put(bucketSeq, b.DeviceID, v)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("ingest telemetry from %s: %w", b.DeviceID, err)
	}
	t.duplicates.Add(float64(len(b.Records) - len(fresh) - rejected))
	t.rejected.Add(float64(rejected))
	t.dropped.Add(float64(b.Dropped))
	t.mu.Lock()
	for i := range fresh {
		r := &fresh[i]
		role := string(r.Role)
		if role == "" {
			role = string(wire.RolePrimary)
		}
		t.ingested.WithLabelValues(r.ModelID, r.Version).Inc()
		t.requests.WithLabelValues(r.ModelID, r.Version, role).Add(float64(r.Requests))
		t.errors.WithLabelValues(r.ModelID, r.Version, role).Add(float64(r.Errors))
		t.p95.WithLabelValues(r.ModelID, r.Version, role).Set(r.LatencyP95Ms)
		if t.known != nil {
			if _, merged := t.known[recID{r.DeviceID, r.Seq, r.Time.UnixNano()}]; merged {
				continue // SyncShared read it from the store first
			}
		}
		t.addLocked(r)
	}
	t.trimHotLocked()
	t.mu.Unlock()
	if rejected > 0 {
		return ack, len(fresh), fmt.Errorf("ingest telemetry from %s: %w: %d records more than %d above the high-water mark %d", b.DeviceID, ErrSeqOutOfRange, rejected, t.opt.MaxSeqAdvance, ack)
	}
	return ack, len(fresh), nil
}

// addLocked merges one stored record into the rollups and the hot window
// (its monitoring distributions go into the rollup only); t.mu held.
func (t *Store) addLocked(r *Record) {
	if t.known != nil {
		t.known[recID{r.DeviceID, r.Seq, r.Time.UnixNano()}] = struct{}{}
	}
	k := t.internKey(keyOf(r))
	c := t.rollups[k]
	if c == nil {
		c = &cell{}
		t.rollups[k] = c
	}
	c.add(r)
	if c.D != nil && k.Minute < t.now().Add(-t.opt.DistWindow).Unix()/60 {
		c.D = nil // a late record: its distribution is on disk only
	} else if c.D != nil {
		t.dcells[k] = c
	}
	if r.Time.Before(t.hotFrom) {
		return // late record: on disk and in the rollups only
	}
	t.insertHotLocked(r) // counters only: hot.go
}

// ErrSeqOutOfRange is wrapped by Ingest when records were rejected for a
// seq too far above the device's high-water mark; the returned ack is
// still valid for the records before them.
var ErrSeqOutOfRange = errors.New("telemetry seq out of range")

// trimHotLocked drops raw records older than the hot window or beyond
// MaxHot from memory (they stay on disk and in the rollups): the oldest
// leave first, and queries that start before the oldest record kept are
// answered from the rollups.
func (t *Store) trimHotLocked() {
	cut := t.now().Add(-t.opt.HotWindow)
	i := 0
	if t.hot.len() > 0 && beforeTime(t.hot.first(), cut) {
		i = t.hot.countBefore(cut)
	}
	if over := t.hot.len() - i - t.opt.MaxHot; over > 0 {
		i += over
	}
	if cut.After(t.hotFrom) {
		t.hotFrom = cut
	}
	if i == 0 {
		return
	}
	t.hot.dropFront(i, t.releaseLocked)
	if t.hot.len() > 0 && t.hot.first().time().After(t.hotFrom) {
		t.hotFrom = t.hot.first().time()
	}
}

func (t *Store) internString(s string) string {
	if v, ok := t.intern[s]; ok {
		return v
	}
	if len(t.intern) > 1_000_000 {
		clear(t.intern)
	}
	t.intern[s] = s
	return s
}

func (t *Store) internKey(k cellKey) cellKey {
	k.Model, k.Version, k.Role = t.internString(k.Model), t.internString(k.Version), t.internString(k.Role)
	return k
}

// HighWater returns the high-water mark of a device's newest epoch.
func (t *Store) HighWater(ctx context.Context, device string) (uint64, error) {
	var hw uint64
	err := t.s.View(ctx, func(tx store.Tx) error {
		st, err := loadSeq(tx, device)
		if err == nil && len(st.Epochs) > 0 {
			hw = st.Epochs[len(st.Epochs)-1].Seq
		}
		return err
	})
	return hw, err
}

// satAdd adds without wrapping: counters from devices saturate at
// MaxUint64 instead of overflowing into small numbers.
func satAdd(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}

// Aggregate folds records into a Health. Counters saturate.
func Aggregate(recs []Record) Health {
	var c cell
	devs := map[string]bool{}
	for i := range recs {
		c.add(&recs[i])
		devs[recs[i].DeviceID] = true
	}
	h := c.health()
	h.Devices = len(devs)
	return h
}

// cellKey names one rollup: one model version and role in one minute.
type cellKey struct {
	Minute               int64 // unix minutes
	Model, Version, Role string
}

func keyOf(r *Record) cellKey {
	role := string(r.Role)
	if role == "" {
		role = string(wire.RolePrimary)
	}
	return cellKey{Minute: r.Time.Unix() / 60, Model: r.ModelID, Version: r.Version, Role: role}
}

// String is the store key: minute first, so retention deletes a prefix.
func (k cellKey) String() string {
	m := k.Minute
	if m < 0 {
		m = 0
	}
	return fmt.Sprintf("%012d/%s/%s/%s", m, k.Model, k.Version, k.Role)
}

// rollupShards spreads each stored rollup cell over rows by device, so that
// concurrent batches of different devices rarely update the same row (on
// PostgreSQL a shared row makes SERIALIZABLE transactions conflict); the
// shards are merged when loaded.
const rollupShards = 16

// shardSuffix is the stored rollup key's shard part for a device.
func shardSuffix(device string) string {
	h := fnv.New32a()
	h.Write([]byte(device))
	return "#" + strconv.Itoa(int(h.Sum32()%rollupShards))
}

func parseCellKey(s string) (cellKey, error) {
	if i := strings.LastIndexByte(s, '#'); i >= 0 {
		s = s[:i] // a shard of the cell (keys written before shards have none)
	}
	parts := strings.Split(s, "/")
	if len(parts) != 4 {
		return cellKey{}, fmt.Errorf("telemetry rollup key %q: want minute/model/version/role", s)
	}
	m, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return cellKey{}, fmt.Errorf("telemetry rollup key %q: %w", s, err)
	}
	return cellKey{Minute: m, Model: parts[1], Version: parts[2], Role: parts[3]}, nil
}

// cell is the rollup of the records of one cellKey: saturating sums and
// request-weighted latency sums.
type cell struct {
	Records         uint64 `json:"n"`
	Requests        uint64 `json:"req"`
	Errors          uint64 `json:"err"`
	Crashes         uint64 `json:"crash,omitempty"`
	Rollbacks       uint64 `json:"rb,omitempty"`
	InstallFailures uint64 `json:"if,omitempty"`
	ShadowCompared  uint64 `json:"sc,omitempty"`
	ShadowAgreed    uint64 `json:"sa,omitempty"`
	// D merges the records' monitoring distributions (nil: none).
	D    *drift.Dist `json:"d,omitempty"`
	W50  float64     `json:"w50"`
	W95  float64     `json:"w95"`
	W99  float64     `json:"w99"`
	WSum float64     `json:"w"`
}

func (c *cell) add(r *Record) {
	k := countersOf(&r.TelemetryRecord)
	c.addCounters(&k)
	if r.Monitoring != nil {
		if c.D == nil {
			c.D = &drift.Dist{}
		}
		c.D.Add(r.Monitoring)
	}
}

// addCounters adds one record's numbers.
func (c *cell) addCounters(r *counters) {
	c.Records = satAdd(c.Records, 1)
	c.Requests = satAdd(c.Requests, r.requests)
	c.Errors = satAdd(c.Errors, r.errors)
	c.Crashes = satAdd(c.Crashes, r.crashes)
	c.Rollbacks = satAdd(c.Rollbacks, r.rollbacks)
	c.InstallFailures = satAdd(c.InstallFailures, r.installFailures)
	c.ShadowCompared = satAdd(c.ShadowCompared, r.shadowCompared)
	c.ShadowAgreed = satAdd(c.ShadowAgreed, r.shadowAgreed)
	w := float64(r.requests)
	c.WSum += w
	c.W50 += w * r.p50
	c.W95 += w * r.p95
	c.W99 += w * r.p99
}

func (c *cell) merge(o *cell) {
	c.Records = satAdd(c.Records, o.Records)
	c.Requests = satAdd(c.Requests, o.Requests)
	c.Errors = satAdd(c.Errors, o.Errors)
	c.Crashes = satAdd(c.Crashes, o.Crashes)
	c.Rollbacks = satAdd(c.Rollbacks, o.Rollbacks)
	c.InstallFailures = satAdd(c.InstallFailures, o.InstallFailures)
	c.ShadowCompared = satAdd(c.ShadowCompared, o.ShadowCompared)
	c.ShadowAgreed = satAdd(c.ShadowAgreed, o.ShadowAgreed)
	c.WSum += o.WSum
	c.W50 += o.W50
	c.W95 += o.W95
	c.W99 += o.W99
	if o.D != nil {
		if c.D == nil {
			c.D = &drift.Dist{}
		}
		c.D.Merge(o.D)
	}
}

func (c *cell) health() Health {
	h := Health{Records: int(min(c.Records, math.MaxInt32)), Requests: c.Requests, Errors: c.Errors, Crashes: c.Crashes,
		Rollbacks: c.Rollbacks, InstallFailures: c.InstallFailures, ShadowCompared: c.ShadowCompared, ShadowAgreed: c.ShadowAgreed}
	if h.Requests > 0 {
		h.ErrorRate = float64(h.Errors) / float64(h.Requests)
	}
	if c.WSum > 0 {
		h.P50, h.P95, h.P99 = c.W50/c.WSum, c.W95/c.WSum, c.W99/c.WSum
	}
	h.ShadowAgreement = 1
	if h.ShadowCompared > 0 {
		h.ShadowAgreement = float64(h.ShadowAgreed) / float64(h.ShadowCompared)
	}
	return h
}

// fromHot reports whether q can be answered from the hot window: it filters
// by device (only raw records know devices) or starts inside the window.
func (t *Store) fromHot(q Query) bool {
	return q.Devices != nil || (!q.Since.IsZero() && !q.Since.Before(t.hotFrom))
}

func (q *Query) matchCell(k cellKey) bool {
	if q.ModelID != "" && k.Model != q.ModelID {
		return false
	}
	if q.Version != "" && (k.Version == q.Version) == q.ExcludeVersion {
		return false
	}
	if len(q.Roles) > 0 {
		ok := false
		for _, x := range q.Roles {
			ok = ok || string(x) == k.Role
		}
		if !ok {
			return false
		}
	}
	start := time.Unix(k.Minute*60, 0)
	if !q.Since.IsZero() && start.Add(time.Minute).Before(q.Since.Add(time.Nanosecond)) {
		return false
	}
	if !q.Until.IsZero() && !start.Before(q.Until) {
		return false
	}
	return true
}

// Health aggregates the records matching q: exactly from the hot window
// when q filters by device or starts inside it, else from the per-minute
// rollups (whole minutes overlapping [Since, Until); Devices is then the
// largest number of records of one minute, a lower bound of the devices).
func (t *Store) Health(q Query) Health {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.fromHot(q) {
		// Aggregated in place: materialising the matches (208 B each) cost
		// a copy of up to the whole hot window per query, several per
		// rollout tick.
		var c cell
		devs := map[uint32]struct{}{}
		t.eachHotLocked(q, func(h *hotRec) {
			c.addCounters(&h.counters)
			devs[h.dev] = struct{}{}
		})
		h := c.health()
		h.Devices = len(devs)
		return h
	}
	var c cell
	perMinute := map[int64]uint64{}
	for k, v := range t.rollups {
		if q.matchCell(k) {
			c.merge(v)
			perMinute[k.Minute] += v.Records
		}
	}
	h := c.health()
	for _, n := range perMinute {
		h.Devices = max(h.Devices, int(min(n, math.MaxInt32)))
	}
	return h
}

// Records returns the raw records of the hot window matching q, oldest
// first (older records are on disk only), with their times in UTC and
// without monitoring (kept on disk and in the rollups).
func (t *Store) Records(q Query) []Record {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.hotLocked(q)
}

func (t *Store) hotLocked(q Query) []Record {
	var out []Record
	t.eachHotLocked(q, func(h *hotRec) { out = append(out, t.recordLocked(h)) })
	return out
}

// Series buckets the telemetry matching q by step (from the rollups,
// steps rounded up to whole minutes, unless q is answered from the hot
// window).
func (t *Store) Series(q Query, step time.Duration) []Point {
	if step <= 0 {
		step = time.Minute
	}
	t.mu.RLock()
	groups := map[int64]*cell{}
	if t.fromHot(q) {
		t.eachHotLocked(q, func(h *hotRec) {
			k := h.time().Truncate(step).Unix()
			if groups[k] == nil {
				groups[k] = &cell{}
			}
			groups[k].addCounters(&h.counters)
		})
	} else {
		if step < time.Minute {
			step = time.Minute
		}
		for k, v := range t.rollups {
			if q.matchCell(k) {
				b := time.Unix(k.Minute*60, 0).Truncate(step).Unix()
				if groups[b] == nil {
					groups[b] = &cell{}
				}
				groups[b].merge(v)
			}
		}
	}
	t.mu.RUnlock()
	var out []Point
	for k, c := range groups {
		h := c.health()
		out = append(out, Point{Time: time.Unix(k, 0).UTC(), Requests: h.Requests, ErrorRate: h.ErrorRate, P50: round(h.P50), P95: round(h.P95), P99: round(h.P99)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

func round(f float64) float64 { return math.Round(f*1000) / 1000 }

// Versions lists "model@version" keys with telemetry matching q.
func (t *Store) Versions(q Query) []string {
	seen := map[string]bool{}
	t.mu.RLock()
	if t.fromHot(q) {
		t.eachHotLocked(q, func(h *hotRec) {
			k := &t.keys.vals[h.key]
			seen[k.model+"@"+k.version] = true
		})
	} else {
		for k := range t.rollups {
			if q.matchCell(k) {
				seen[k.Model+"@"+k.Version] = true
			}
		}
	}
	t.mu.RUnlock()
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pruneChunk bounds the deletes of one retention transaction.
const pruneChunk = 10000

// Prune drops distributions older than DistWindow from memory and
// deletes records and rollups older than the retention from the store (a
// key-prefix range: keys are time-ordered) and memory.
func (t *Store) Prune(ctx context.Context) (int, error) {
	t.mu.Lock()
	distCut := t.now().Add(-t.opt.DistWindow).Unix() / 60
	for k, c := range t.dcells {
		if k.Minute < distCut {
			c.D = nil // older distributions are on disk only
			delete(t.dcells, k)
		}
	}
	t.mu.Unlock()
	if t.opt.Retention == 0 {
		return 0, nil
	}
	cut := t.now().Add(-t.opt.Retention)
	t.mu.Lock()
	t.trimHotLocked()
	for k := range t.rollups {
		if k.Minute < cut.Unix()/60 { // the whole minute is before cut
			delete(t.rollups, k)
			delete(t.dcells, k)
		}
	}
	t.mu.Unlock()
	recCut := recPrefix(cut)
	cellCut := cellKey{Minute: cut.Unix() / 60}.String()
	total := 0
	if ps, ok := t.s.(PartitionedStore); ok {
		n, err := ps.DropRecordsBefore(ctx, bucketRecords, cut)
		if err != nil {
			return 0, fmt.Errorf("prune telemetry: %w", err)
		}
		total = n
		recCut = "" // records: the partitions' business
	}
	for {
		var keys, cells []string
		err := t.s.View(ctx, func(tx store.Tx) error {
			keys, cells = keys[:0], cells[:0]
			stop := errors.New("stop")
			var err error
			if recCut != "" {
				err = tx.List(bucketRecords, "", func(k string, _ []byte) error {
					if k >= recCut || len(keys) >= pruneChunk {
						return stop
					}
					keys = append(keys, k)
					return nil
				})
			}
			if err != nil && err != stop {
				return err
			}
			err = tx.List(bucketRollup, "", func(k string, _ []byte) error {
				if k >= cellCut || len(cells) >= pruneChunk {
					return stop
				}
				cells = append(cells, k)
				return nil
			})
			if err != nil && err != stop {
				return err
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("prune telemetry: %w", err)
		}
		if len(keys) == 0 && len(cells) == 0 {
			return total, nil
		}
		err = t.s.Update(ctx, func(tx store.Tx) error {
			for _, k := range keys {
				if err := tx.Delete(bucketRecords, k); err != nil {
					return err
				}
			}
			for _, k := range cells {
				if err := tx.Delete(bucketRollup, k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("prune telemetry: %w", err)
		}
		total += len(keys)
	}
}

// StageOf returns the stage tag a record was attributed to, split into
// rollout id and stage ("r1/2" → "r1", "2").
func StageOf(tag string) (rollout, stage string) {
	rollout, stage, _ = strings.Cut(tag, "/")
	return rollout, stage
}
