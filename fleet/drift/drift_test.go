package drift

import (
	"math"
	"testing"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestPSIAndKSKnownValues checks PSI and KS against values computed by hand.
func TestPSIAndKSKnownValues(t *testing.T) {
	tests := []struct {
		name    string
		p, q    []float64
		psi, ks float64
	}{
		// 0.1·ln(0.5/0.4) + (−0.1)·ln(0.5/0.6) = 0.1·0.223144 + 0.1·0.182322
		{"two buckets", []float64{50, 50}, []float64{40, 60}, 0.1*math.Log(1.25) - 0.1*math.Log(5.0/6), 0.1},
		// (0.25−0.5)·ln(0.5) + 0 + (0.5−0.25)·ln(2) = 0.5·ln 2; CDFs .25/.5/1 vs .5/.75/1
		{"three buckets", []float64{1, 1, 2}, []float64{2, 1, 1}, 0.5 * math.Ln2, 0.25},
		// the empty bucket is floored at 1e-4: 0.5·ln 2 + (1e-4−0.5)·ln(2e-4)
		{"empty bucket", []float64{10, 0}, []float64{5, 5}, 0.5*math.Ln2 + (1e-4-0.5)*math.Log(2e-4), 0.5},
		{"identical", []float64{3, 4, 5}, []float64{30, 40, 50}, 0, 0},
		{"empty side", []float64{0, 0}, []float64{1, 1}, 0, 0},
	}
	for _, tc := range tests {
		if got := PSI(tc.p, tc.q); math.Abs(got-tc.psi) > 1e-12 {
			t.Errorf("%s: PSI = %.12f, want %.12f", tc.name, got, tc.psi)
		}
		if got := KS(tc.p, tc.q); math.Abs(got-tc.ks) > 1e-12 {
			t.Errorf("%s: KS = %.12f, want %.12f", tc.name, got, tc.ks)
		}
	}
	if got := PSI([]float64{1, 1, 2}, []float64{2, 1, 1}); math.Abs(got-0.34657359027997264) > 1e-12 {
		t.Errorf("PSI = %v, want 0.346574", got)
	}
}

func conf(peak int, n uint64) []uint64 {
	c := make([]uint64, wire.ConfidenceBuckets)
	c[peak] = n
	c[max(0, peak-1)] += n / 2
	return c
}

// TestCompareShiftedConfidence: a collapsed confidence distribution drifts
// far beyond 0.25, the same distribution does not (control).
func TestCompareShiftedConfidence(t *testing.T) {
	var ref, same, shifted Dist
	ref.Add(&wire.Monitoring{Predictions: 150, Classes: []wire.ClassCount{{Class: 0, Count: 100}, {Class: 1, Count: 50}}, Confidence: conf(19, 100)})
	same.Add(&wire.Monitoring{Predictions: 15, Classes: []wire.ClassCount{{Class: 0, Count: 10}, {Class: 1, Count: 5}}, Confidence: conf(19, 10)})
	shifted.Add(&wire.Monitoring{Predictions: 15, Classes: []wire.ClassCount{{Class: 0, Count: 10}, {Class: 1, Count: 5}}, Confidence: conf(8, 10)})
	r := Compare(&same, &ref)
	if !r.Evaluated || r.Drift > 1e-9 || *r.KSConfidence > 1e-9 {
		t.Fatalf("unshifted: %+v", r)
	}
	r = Compare(&shifted, &ref)
	if !r.Evaluated || r.Drift < 1 || *r.PSI.Confidence != r.Drift || *r.PSI.Classes > 1e-9 || math.Abs(*r.KSConfidence-1) > 1e-9 {
		t.Fatalf("shifted: %+v", r)
	}
	if r := Compare(&Dist{}, &ref); r.Evaluated || r.Reason == "" {
		t.Fatalf("empty current: %+v", r)
	}
	if r := Compare(&same, nil); r.Evaluated || r.Reason == "" {
		t.Fatalf("no reference: %+v", r)
	}
}

// TestDistMergeBoundsAndStats: classes stay bounded with the rest in
// other, and merged feature statistics equal those of all the values.
func TestDistMergeBoundsAndStats(t *testing.T) {
	var d Dist
	for i := 0; i < 200; i++ {
		d.Add(&wire.Monitoring{Predictions: uint64(i + 1), Classes: []wire.ClassCount{{Class: i, Count: uint64(i + 1)}}})
	}
	if len(d.Classes) != MaxClasses {
		t.Fatalf("%d classes, want %d", len(d.Classes), MaxClasses)
	}
	var total uint64 = d.ClassOther
	for i, c := range d.Classes {
		total += c.Count
		if c.Class < 200-MaxClasses || (i > 0 && c.Class <= d.Classes[i-1].Class) {
			t.Fatalf("classes kept: %v", d.Classes)
		}
	}
	if total != 200*201/2 || d.Predictions != total {
		t.Fatalf("counts not conserved: %d of %d", total, 200*201/2)
	}

	vals := [][]float64{{1, 2, 3}, {10, 20}, {-4}}
	var all []float64
	var m Dist
	for _, vs := range vals {
		var s wire.Sketch
		var mean, m2 float64
		lo, hi := math.Inf(1), math.Inf(-1)
		for i, v := range vs {
			d := v - mean
			mean += d / float64(i+1)
			m2 += d * (v - mean)
			lo, hi = min(lo, v), max(hi, v)
			s.Add(v)
			all = append(all, v)
		}
		m.Add(&wire.Monitoring{Features: []wire.FeatureSummary{{Index: 3, Count: uint64(len(vs)), Mean: mean, Std: math.Sqrt(m2 / float64(len(vs))), Min: lo, Max: hi, Sketch: s}}})
	}
	var mean, sq float64
	for _, v := range all {
		mean += v / float64(len(all))
	}
	for _, v := range all {
		sq += (v - mean) * (v - mean)
	}
	f := m.View().Features[0]
	if f.Count != 6 || math.Abs(f.Mean-mean) > 1e-9 || math.Abs(f.Std-math.Sqrt(sq/6)) > 1e-9 || f.Min != -4 || f.Max != 20 {
		t.Fatalf("merged feature %+v, want mean %v std %v", f, mean, math.Sqrt(sq/6))
	}
	if len(f.Histogram.Bounds) != wire.SketchBins+1 || f.Histogram.Bounds[0] != -32 || f.P50 < -4 || f.P99 > 20 {
		t.Fatalf("histogram %+v", f)
	}
	// Feature count stays bounded.
	var b Dist
	for i := 0; i < 40; i++ {
		b.Add(&wire.Monitoring{Features: []wire.FeatureSummary{{Index: 40 - i, Count: 1}}})
	}
	if len(b.Features) != MaxFeatures || b.Features[0].Index != 1 || b.Features[MaxFeatures-1].Index != MaxFeatures {
		t.Fatalf("features kept: %d, first %d", len(b.Features), b.Features[0].Index)
	}
}
