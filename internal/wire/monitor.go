package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
)

// Bounds of Monitoring (docs/monitoring.md).
const (
	// MaxClasses bounds Monitoring.Classes; other classes count in ClassOther.
	MaxClasses = 32
	// ConfidenceBuckets is the length of Monitoring.Confidence: buckets of
	// width 1/ConfidenceBuckets over [0,1].
	ConfidenceBuckets = 20
	// MaxFeatures bounds Monitoring.Features.
	MaxFeatures = 16
	// SketchBins is the length of Sketch.Counts.
	SketchBins = 32
	// MinSketchExp and MaxSketchExp bound Sketch.Exp.
	MinSketchExp = -30
	MaxSketchExp = 127
	// MaxIndex bounds class indexes and FeatureSummary.Index.
	MaxIndex = 1 << 24
)

// Monitoring is the distribution part of a telemetry record: what the model
// version predicted and saw over the record's interval, and the device's
// resources. Every part is bounded and mergeable (docs/monitoring.md).
type Monitoring struct {
	// Predictions counts instances whose top-1 class was recorded.
	Predictions uint64 `json:"predictions,omitempty"`
	// Classes are top-1 class counts, strictly increasing by class.
	Classes []ClassCount `json:"classes,omitempty"`
	// ClassOther counts top-1 predictions of classes not in Classes.
	ClassOther uint64 `json:"class_other,omitempty"`
	// Confidence is the top-1 score histogram: ConfidenceBuckets buckets
	// over [0,1] (see ConfidenceBucket), or empty.
	Confidence []uint64 `json:"confidence,omitempty"`
	// Features summarize the first input's real values, one per feature
	// index, strictly increasing by index.
	Features []FeatureSummary `json:"features,omitempty"`
	// Resources are the agent process's and the device's CPU and memory.
	Resources *Resources `json:"resources,omitempty"`
}

// ClassCount is how often one class was the top-1 prediction.
type ClassCount struct {
	Class int    `json:"class"`
	Count uint64 `json:"count"`
}

// FeatureSummary summarizes one input feature over an interval.
type FeatureSummary struct {
	Index int     `json:"index"`
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	// Std is the population standard deviation.
	Std    float64 `json:"std"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Sketch Sketch  `json:"sketch"`
}

// Resources are process and device CPU and memory when a record was taken.
type Resources struct {
	// ProcessRSSBytes is the agent's resident set size.
	ProcessRSSBytes uint64 `json:"process_rss_bytes"`
	// ProcessCPUSeconds is the CPU time the agent used in the interval.
	ProcessCPUSeconds float64 `json:"process_cpu_seconds"`
	// DeviceMemTotalBytes and DeviceMemAvailableBytes are MemTotal and
	// MemAvailable of /proc/meminfo.
	DeviceMemTotalBytes     uint64 `json:"device_mem_total_bytes"`
	DeviceMemAvailableBytes uint64 `json:"device_mem_available_bytes"`
	// DeviceCPUPercent is the busy share of all CPUs over the interval
	// (0..100, from /proc/stat).
	DeviceCPUPercent float64 `json:"device_cpu_percent"`
	// Load1 is the one-minute load average.
	Load1 float64 `json:"load1"`
}

// ConfidenceBucket returns the Confidence bucket of a top-1 score: bucket
// i is [i/n, (i+1)/n), the last includes 1, scores out of [0,1] clamp.
// ok is false for NaN and infinities (not counted).
func ConfidenceBucket(score float64) (i int, ok bool) {
	if math.IsNaN(score) || math.IsInf(score, 0) {
		return 0, false
	}
	f := score * ConfidenceBuckets
	switch {
	case f < 0:
		return 0, true
	case f >= ConfidenceBuckets-1:
		return ConfidenceBuckets - 1, true
	}
	return int(f), true
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Validate checks the bounds of a decoded Monitoring (docs/monitoring.md).
func (m *Monitoring) Validate() error {
	if len(m.Classes) > MaxClasses {
		return fmt.Errorf("monitoring.classes has %d entries, want at most %d", len(m.Classes), MaxClasses)
	}
	for i, c := range m.Classes {
		if c.Class < 0 || c.Class > MaxIndex {
			return fmt.Errorf("monitoring.classes[%d].class %d: want 0..%d", i, c.Class, MaxIndex)
		}
		if i > 0 && c.Class <= m.Classes[i-1].Class {
			return fmt.Errorf("monitoring.classes[%d].class %d: want strictly increasing classes", i, c.Class)
		}
	}
	if n := len(m.Confidence); n != 0 && n != ConfidenceBuckets {
		return fmt.Errorf("monitoring.confidence has %d buckets, want %d", n, ConfidenceBuckets)
	}
	if len(m.Features) > MaxFeatures {
		return fmt.Errorf("monitoring.features has %d entries, want at most %d", len(m.Features), MaxFeatures)
	}
	for i := range m.Features {
		f := &m.Features[i]
		if f.Index < 0 || f.Index > MaxIndex {
			return fmt.Errorf("monitoring.features[%d].index %d: want 0..%d", i, f.Index, MaxIndex)
		}
		if i > 0 && f.Index <= m.Features[i-1].Index {
			return fmt.Errorf("monitoring.features[%d].index %d: want strictly increasing indexes", i, f.Index)
		}
		if !finite(f.Mean) || !finite(f.Std) || !finite(f.Min) || !finite(f.Max) {
			return fmt.Errorf("monitoring.features[%d]: mean, std, min and max must be finite", i)
		}
		if f.Std < 0 {
			return fmt.Errorf("monitoring.features[%d].std %v: want >= 0", i, f.Std)
		}
		if f.Count > 0 && f.Min > f.Max {
			return fmt.Errorf("monitoring.features[%d]: min %v > max %v", i, f.Min, f.Max)
		}
		if err := f.Sketch.Validate(); err != nil {
			return fmt.Errorf("monitoring.features[%d].sketch: %w", i, err)
		}
	}
	if r := m.Resources; r != nil {
		if !finite(r.ProcessCPUSeconds) || r.ProcessCPUSeconds < 0 || !finite(r.Load1) || r.Load1 < 0 ||
			!finite(r.DeviceCPUPercent) || r.DeviceCPUPercent < 0 || r.DeviceCPUPercent > 100 {
			return fmt.Errorf("monitoring.resources: cpu seconds and load must be finite and >= 0, cpu percent 0..100")
		}
	}
	return nil
}

// Sketch is a mergeable fixed-size histogram over a power-of-two range:
// [0, 2^Exp) or, when Signed, [-2^Exp, 2^Exp), in SketchBins equal
// buckets (docs/monitoring.md). Values outside the range clamp to the end
// buckets.
type Sketch struct {
	Exp    int      `json:"exp"`
	Signed bool     `json:"signed,omitempty"`
	Counts []uint64 `json:"counts,omitempty"`
}

// Validate checks a Sketch's bounds.
func (s *Sketch) Validate() error {
	if s.Exp < MinSketchExp || s.Exp > MaxSketchExp {
		return fmt.Errorf("exp %d: want %d..%d", s.Exp, MinSketchExp, MaxSketchExp)
	}
	if n := len(s.Counts); n != 0 && n != SketchBins {
		return fmt.Errorf("%d counts, want %d", n, SketchBins)
	}
	return nil
}

// Range returns the sketch's [lo, hi).
func (s *Sketch) Range() (lo, hi float64) {
	hi = math.Ldexp(1, s.Exp)
	if s.Signed {
		return -hi, hi
	}
	return 0, hi
}

// Bounds returns the SketchBins+1 bucket edges.
func (s *Sketch) Bounds() []float64 {
	lo, hi := s.Range()
	out := make([]float64, SketchBins+1)
	w := (hi - lo) / SketchBins
	for i := range out {
		out[i] = lo + float64(i)*w
	}
	return out
}

// Fit widens the sketch (without losing counts) until v is inside its
// range; an empty sketch is first placed at the smallest range holding v.
// NaN and infinities are ignored.
func (s *Sketch) Fit(v float64) {
	if !finite(v) {
		return
	}
	if len(s.Counts) == 0 {
		s.Counts = make([]uint64, SketchBins)
		s.Exp, s.Signed = MinSketchExp, v < 0
	}
	if v < 0 && !s.Signed {
		s.toSigned()
	}
	for s.Exp < MaxSketchExp && (v >= math.Ldexp(1, s.Exp) || v < -math.Ldexp(1, s.Exp)) {
		s.widen()
	}
}

// Add counts v (widening the range to hold it).
func (s *Sketch) Add(v float64) {
	if !finite(v) {
		return
	}
	s.Fit(v)
	s.Counts[s.bin(v)]++
}

func (s *Sketch) bin(v float64) int {
	lo, hi := s.Range()
	f := (v - lo) / (hi - lo) * SketchBins
	if !(f >= 0) { // also NaN
		return 0
	}
	if f >= SketchBins-1 {
		return SketchBins - 1
	}
	return int(f)
}

// toSigned turns [0,2^e) into [-2^e,2^e): buckets double in width and
// move to the upper half.
func (s *Sketch) toSigned() {
	var n [SketchBins]uint64
	for i, c := range s.Counts {
		n[SketchBins/2+i/2] += c
	}
	copy(s.Counts, n[:])
	s.Signed = true
}

// widen doubles the range.
func (s *Sketch) widen() {
	var n [SketchBins]uint64
	for i, c := range s.Counts {
		if s.Signed {
			n[SketchBins/4+i/2] += c
		} else {
			n[i/2] += c
		}
	}
	copy(s.Counts, n[:])
	s.Exp++
}

// Merge adds o's counts, widening whichever range is smaller: the result
// is exact up to the coarser range. Counts saturate.
func (s *Sketch) Merge(o *Sketch) {
	if len(o.Counts) == 0 {
		return
	}
	if len(s.Counts) == 0 {
		s.Exp, s.Signed, s.Counts = o.Exp, o.Signed, append([]uint64(nil), o.Counts...)
		return
	}
	oc := *o
	oc.Counts = append([]uint64(nil), o.Counts...)
	Align(s, &oc)
	for i, c := range oc.Counts {
		s.Counts[i] = satAdd(s.Counts[i], c)
	}
}

// Align widens a and b (both non-empty) to the same range so that their
// buckets line up.
func Align(a, b *Sketch) {
	if a.Signed != b.Signed {
		if !a.Signed {
			a.toSigned()
		} else {
			b.toSigned()
		}
	}
	for a.Exp < b.Exp {
		a.widen()
	}
	for b.Exp < a.Exp {
		b.widen()
	}
}

// Quantile estimates the q-quantile (0..1) from the buckets, linear inside
// a bucket, clamped to [lo, hi] (the observed min and max).
func (s *Sketch) Quantile(q, lo, hi float64) float64 {
	var total uint64
	for _, c := range s.Counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	b := s.Bounds()
	var acc float64
	for i, c := range s.Counts {
		if c == 0 {
			continue
		}
		if acc+float64(c) >= rank {
			v := b[i] + (b[i+1]-b[i])*(rank-acc)/float64(c)
			return max(lo, min(hi, v))
		}
		acc += float64(c)
	}
	return hi
}

func satAdd(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}

// DecodeMonitoring strictly decodes a Monitoring object (reference stats,
// docs/monitoring.md): unknown fields, trailing data and out-of-bounds
// values are errors.
func DecodeMonitoring(b []byte) (*Monitoring, error) {
	if len(b) > MaxPayload {
		return nil, &DecodeError{"Monitoring", fmt.Errorf("payload is %d bytes, want at most %d", len(b), MaxPayload)}
	}
	var m Monitoring
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return nil, &DecodeError{"Monitoring", describeJSON(err)}
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, &DecodeError{"Monitoring", fmt.Errorf("trailing data after the JSON object")}
	}
	if err := m.Validate(); err != nil {
		return nil, &DecodeError{"Monitoring", err}
	}
	return &m, nil
}
