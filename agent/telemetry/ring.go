// Package telemetry measures the agent's model versions (latency, throughput,
// errors by code, predicted classes, confidence, input feature drift, queue
// length, cache hits, process CPU and RSS), exports them as Prometheus
// metrics, and persists periodic records in a bounded bbolt ring that the
// fleet link reads and acknowledges (store-and-forward).
package telemetry

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// RingFile is the ring's database file inside the data directory.
const RingFile = "telemetry.db"

var (
	bucketRecords = []byte("records")
	bucketMeta    = []byte("meta")
	keyNextSeq    = []byte("next_seq")
	keyDropped    = []byte("dropped")
	keyAcked      = []byte("acked")
	keyCount      = []byte("count")
)

// Record is one persisted telemetry record: the wire record the fleet
// consumes plus the agent's detail fields.
type Record struct {
	wire.TelemetryRecord
	// ErrorsByCode counts failed requests by error code.
	ErrorsByCode map[string]uint64 `json:"errors_by_code,omitempty"`
	// Instances counts predicted instances (a request may carry several).
	Instances uint64 `json:"instances,omitempty"`
	// ThroughputPerSec is instances per second over the period.
	ThroughputPerSec float64 `json:"throughput_per_sec,omitempty"`
	// PeriodSec is the length of the period the record covers.
	PeriodSec float64 `json:"period_sec,omitempty"`
	// Classes counts top-1 predicted classes by class index.
	Classes map[string]uint64 `json:"classes,omitempty"`
	// Confidence counts top-1 scores in ten buckets [0,0.1) ... [0.9,1].
	Confidence []uint64 `json:"confidence,omitempty"`
	// FeatureMean and FeatureStd are per-feature statistics of the first
	// input's real values (the first MaxFeatures features), for drift.
	FeatureMean []float64 `json:"feature_mean,omitempty"`
	FeatureStd  []float64 `json:"feature_std,omitempty"`
	// QueueLength is the request queue length when the record was taken.
	QueueLength int `json:"queue_length,omitempty"`
	// CacheHits and CacheMisses count prediction cache lookups.
	CacheHits   uint64 `json:"cache_hits,omitempty"`
	CacheMisses uint64 `json:"cache_misses,omitempty"`
	// ShadowMaxAbsDiff is the largest output difference seen in shadow.
	ShadowMaxAbsDiff float64 `json:"shadow_max_abs_diff,omitempty"`
	// CPUSeconds is the process CPU time used in the period; RSSBytes the
	// resident set size when the record was taken.
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
	RSSBytes   uint64  `json:"rss_bytes,omitempty"`
	// NonFinite counts NaN and infinite values of the record replaced to
	// make it encodable (NaN → 0, ±Inf → ±MaxFloat64).
	NonFinite uint64 `json:"non_finite,omitempty"`
}

// Ring is a bounded, persistent FIFO of Records with strictly increasing
// sequence numbers. When it is full, Append drops the oldest records and
// counts them; Dropped reports the count so the loss is never silent. It is
// safe for concurrent use.
type Ring struct {
	db    *bolt.DB
	bound int
	mu    sync.Mutex
	wake  chan struct{}
	// lost counts records that could not be stored and are not yet added
	// to the persisted dropped count (the write that failed could not
	// persist it either); the next successful Append does.
	lost atomic.Uint64
}

// CountLost counts n records that could not be stored (Sink): they are
// reported in Dropped at once and persisted with the next Append.
func (r *Ring) CountLost(n uint64) { r.lost.Add(n) }

// sanitize makes every float of rec finite so that the record always
// encodes (JSON has no NaN or Infinity): NaN becomes 0 and ±Inf
// ±math.MaxFloat64; NonFinite counts the replaced values.
func sanitize(rec *Record) {
	fix := func(v *float64) {
		switch {
		case math.IsNaN(*v):
			*v = 0
		case math.IsInf(*v, 1):
			*v = math.MaxFloat64
		case math.IsInf(*v, -1):
			*v = -math.MaxFloat64
		default:
			return
		}
		rec.NonFinite++
	}
	for _, v := range []*float64{&rec.LatencyP50Ms, &rec.LatencyP95Ms, &rec.LatencyP99Ms, &rec.ThroughputPerSec, &rec.PeriodSec, &rec.ShadowMaxAbsDiff, &rec.CPUSeconds} {
		fix(v)
	}
	for i := range rec.FeatureMean {
		fix(&rec.FeatureMean[i])
	}
	for i := range rec.FeatureStd {
		fix(&rec.FeatureStd[i])
	}
}

// OpenRing opens (creating if needed) the ring in dataDir, holding at most
// bound records.
func OpenRing(dataDir string, bound int) (*Ring, error) {
	if bound <= 0 {
		return nil, fmt.Errorf("open telemetry ring: bound %d must be positive", bound)
	}
	p := filepath.Join(dataDir, RingFile)
	db, err := bolt.Open(p, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open telemetry ring %s: %w", p, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketRecords); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(bucketMeta)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open telemetry ring %s: %w", p, err)
	}
	return &Ring{db: db, bound: bound, wake: make(chan struct{})}, nil
}

// Close closes the ring's database.
func (r *Ring) Close() error { return r.db.Close() }

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func key(seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return b[:]
}

// Append stores rec with the next sequence number (rec.Seq is overwritten)
// and returns that number. Records beyond the bound are dropped oldest
// first and counted.
func (r *Ring) Append(rec Record) (uint64, error) {
	var seq uint64
	sanitize(&rec)
	lost := r.lost.Swap(0)
	err := r.db.Update(func(tx *bolt.Tx) error {
		meta, recs := tx.Bucket(bucketMeta), tx.Bucket(bucketRecords)
		seq = u64(meta.Get(keyNextSeq))
		if seq == 0 {
			seq = 1
		}
		rec.Seq = seq
		raw, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := recs.Put(key(seq), raw); err != nil {
			return err
		}
		if err := meta.Put(keyNextSeq, key(seq+1)); err != nil {
			return err
		}
		count := u64(meta.Get(keyCount)) + 1
		if lost > 0 {
			if err := meta.Put(keyDropped, key(u64(meta.Get(keyDropped))+lost)); err != nil {
				return err
			}
		}
		if excess := int(count) - r.bound; excess > 0 {
			dropped := u64(meta.Get(keyDropped))
			c := recs.Cursor()
			for k, _ := c.First(); k != nil && excess > 0; k, _ = c.First() {
				if err := c.Delete(); err != nil {
					return err
				}
				excess--
				dropped++
				count--
			}
			if err := meta.Put(keyDropped, key(dropped)); err != nil {
				return err
			}
		}
		return meta.Put(keyCount, key(count))
	})
	if err != nil {
		r.lost.Add(lost)
		return 0, fmt.Errorf("append telemetry record: %w", err)
	}
	r.mu.Lock()
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
	return seq, nil
}

// Notify returns a channel that is closed at the next Append; fleet links
// use it to forward new records without polling.
func (r *Ring) Notify() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.wake
}

// Read returns up to limit records with sequence numbers greater than after,
// oldest first.
func (r *Ring) Read(after uint64, limit int) ([]Record, error) {
	var out []Record
	err := r.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		for k, v := c.Seek(key(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			var rec Record
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("record %d: %w", u64(k), err)
			}
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read telemetry records after %d: %w", after, err)
	}
	return out, nil
}

// Ack deletes every record with a sequence number <= upTo: the fleet has
// stored them. Acknowledging an old sequence number again is a no-op.
func (r *Ring) Ack(upTo uint64) error {
	err := r.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if u64(meta.Get(keyAcked)) >= upTo {
			return nil
		}
		count := u64(meta.Get(keyCount))
		c := tx.Bucket(bucketRecords).Cursor()
		for k, _ := c.First(); k != nil && u64(k) <= upTo; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
			count--
		}
		if err := meta.Put(keyCount, key(count)); err != nil {
			return err
		}
		return meta.Put(keyAcked, key(upTo))
	})
	if err != nil {
		return fmt.Errorf("ack telemetry records up to %d: %w", upTo, err)
	}
	return nil
}

// RingStats describes the ring's state.
type RingStats struct {
	// Pending is the number of stored, unacknowledged records.
	Pending int `json:"pending"`
	// FirstSeq and LastSeq bound the pending records (0 when empty).
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// Acked is the highest acknowledged sequence number.
	Acked uint64 `json:"acked"`
	// Dropped counts records dropped because the ring was full or lost
	// because they could not be stored, ever.
	Dropped uint64 `json:"dropped"`
	// Bound is the ring's capacity.
	Bound int `json:"bound"`
}

// Stats returns the ring's state.
func (r *Ring) Stats() (RingStats, error) {
	st := RingStats{Bound: r.bound}
	err := r.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		st.Dropped = u64(meta.Get(keyDropped)) + r.lost.Load()
		st.Acked = u64(meta.Get(keyAcked))
		c := tx.Bucket(bucketRecords).Cursor()
		if k, _ := c.First(); k != nil {
			st.FirstSeq = u64(k)
		}
		if k, _ := c.Last(); k != nil {
			st.LastSeq = u64(k)
		}
		st.Pending = int(u64(meta.Get(keyCount)))
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("telemetry ring stats: %w", err)
	}
	return st, nil
}

// Dropped returns the number of records dropped because the ring was full.
func (r *Ring) Dropped() (uint64, error) {
	st, err := r.Stats()
	return st.Dropped, err
}
