package drift

import (
	"math"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// PSI is the population stability index of the current counts p against
// the reference counts q (same buckets): Σ (p_i − q_i)·ln(p_i/q_i) over
// proportions, empty buckets floored at Epsilon. It is 0 when either side
// has no counts.
func PSI(p, q []float64) float64 {
	sp, sq := sum(p), sum(q)
	if sp <= 0 || sq <= 0 || len(p) != len(q) {
		return 0
	}
	var psi float64
	for i := range p {
		a, b := max(p[i]/sp, Epsilon), max(q[i]/sq, Epsilon)
		psi += (a - b) * math.Log(a/b)
	}
	return psi
}

// KS is the Kolmogorov–Smirnov statistic of two binned distributions: the
// largest distance between their cumulative proportions at the bucket
// edges. It is 0 when either side has no counts.
func KS(p, q []float64) float64 {
	sp, sq := sum(p), sum(q)
	if sp <= 0 || sq <= 0 || len(p) != len(q) {
		return 0
	}
	var cp, cq, d float64
	for i := range p {
		cp += p[i] / sp
		cq += q[i] / sq
		d = max(d, math.Abs(cp-cq))
	}
	return d
}

func sum(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s
}

func floats(u []uint64) []float64 {
	out := make([]float64, len(u))
	for i, x := range u {
		out[i] = float64(x)
	}
	return out
}

// FeaturePSI is the PSI of one feature's histogram.
type FeaturePSI struct {
	Index int     `json:"index"`
	PSI   float64 `json:"psi"`
}

// PSIs are the PSI values of a comparison; a nil value was not computed
// (a side lacks the histogram).
type PSIs struct {
	Classes    *float64     `json:"classes,omitempty"`
	Confidence *float64     `json:"confidence,omitempty"`
	Features   []FeaturePSI `json:"features,omitempty"`
}

// Result is the comparison of a current distribution with a reference.
type Result struct {
	// Evaluated is false when a side has nothing to compare (Reason says which).
	Evaluated bool   `json:"evaluated"`
	Reason    string `json:"reason,omitempty"`
	// Drift is the largest PSI computed (the value the rollout gate uses).
	Drift float64 `json:"drift"`
	PSI   PSIs    `json:"psi"`
	// KSConfidence is the KS statistic of the confidence distributions.
	KSConfidence *float64 `json:"ks_confidence,omitempty"`
}

// MaxFeaturePSI returns the largest feature PSI (0 without features).
func (r *Result) MaxFeaturePSI() float64 {
	var m float64
	for _, f := range r.Features() {
		m = max(m, f.PSI)
	}
	return m
}

// Features returns the per-feature PSIs.
func (r *Result) Features() []FeaturePSI { return r.PSI.Features }

// Compare compares cur with ref.
func Compare(cur, ref *Dist) Result {
	var r Result
	switch {
	case cur.Empty():
		r.Reason = "no predictions of the current version in the window"
		return r
	case ref.Empty():
		r.Reason = "no reference distribution"
		return r
	}
	set := func(v float64) *float64 {
		r.Drift = max(r.Drift, v)
		r.Evaluated = true
		return &v
	}
	cp, cq := classVectors(cur, ref)
	if sum(cp) > 0 && sum(cq) > 0 {
		r.PSI.Classes = set(PSI(cp, cq))
	}
	if len(cur.Confidence) == wire.ConfidenceBuckets && len(ref.Confidence) == wire.ConfidenceBuckets {
		p, q := floats(cur.Confidence), floats(ref.Confidence)
		if sum(p) > 0 && sum(q) > 0 {
			r.PSI.Confidence = set(PSI(p, q))
			ks := KS(p, q)
			r.KSConfidence = &ks
		}
	}
	j := 0
	for i := range cur.Features {
		f := &cur.Features[i]
		for j < len(ref.Features) && ref.Features[j].Index < f.Index {
			j++
		}
		if j == len(ref.Features) || ref.Features[j].Index != f.Index || len(f.Sketch.Counts) == 0 || len(ref.Features[j].Sketch.Counts) == 0 {
			continue
		}
		a, b := f.Sketch, ref.Features[j].Sketch
		a.Counts, b.Counts = append([]uint64(nil), a.Counts...), append([]uint64(nil), b.Counts...)
		wire.Align(&a, &b)
		v := PSI(floats(a.Counts), floats(b.Counts))
		set(v)
		r.PSI.Features = append(r.PSI.Features, FeaturePSI{Index: f.Index, PSI: v})
	}
	if !r.Evaluated {
		r.Reason = "no histogram on both sides"
	}
	return r
}

// classVectors aligns the class histograms: the union of listed classes
// plus one "other" bucket.
func classVectors(cur, ref *Dist) (p, q []float64) {
	i, j := 0, 0
	for i < len(cur.Classes) || j < len(ref.Classes) {
		switch {
		case j == len(ref.Classes) || i < len(cur.Classes) && cur.Classes[i].Class < ref.Classes[j].Class:
			p, q = append(p, float64(cur.Classes[i].Count)), append(q, 0)
			i++
		case i == len(cur.Classes) || ref.Classes[j].Class < cur.Classes[i].Class:
			p, q = append(p, 0), append(q, float64(ref.Classes[j].Count))
			j++
		default:
			p, q = append(p, float64(cur.Classes[i].Count)), append(q, float64(ref.Classes[j].Count))
			i++
			j++
		}
	}
	return append(p, float64(cur.ClassOther)), append(q, float64(ref.ClassOther))
}
