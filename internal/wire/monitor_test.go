package wire

import (
	"math"
	"os"
	"strings"
	"testing"
)

// TestTelemetryMonitoringValidation rejects out-of-bounds monitoring with a
// clear error and accepts the seed (control) and records without it (old
// agents).
func TestTelemetryMonitoringValidation(t *testing.T) {
	seed, err := os.ReadFile("testdata/payloads/telemetry2.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeTelemetryBatch(seed)
	if err != nil {
		t.Fatalf("control: %v", err)
	}
	if m := b.Records[0].Monitoring; m == nil || len(m.Features) != 2 || m.Resources == nil || m.Resources.Load1 != 0.3 {
		t.Fatalf("monitoring not decoded: %+v", m)
	}
	old, err := os.ReadFile("testdata/payloads/telemetry.json")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := DecodeTelemetryBatch(old); err != nil || b.Records[0].Monitoring != nil {
		t.Fatalf("record without monitoring: %v %+v", err, b)
	}
	s := string(seed)
	tests := []struct{ name, from, to, want string }{
		{"confidence length", `"confidence":[0,0,`, `"confidence":[0,`, "buckets, want 20"},
		{"classes order", `{"class":2,"count":45}`, `{"class":0,"count":45}`, "strictly increasing classes"},
		{"negative class", `{"class":0,"count":70}`, `{"class":-1,"count":70}`, "class -1"},
		{"negative count", `"class_other":5`, `"class_other":-5`, "class_other"},
		{"feature order", `{"index":1,`, `{"index":0,`, "strictly increasing indexes"},
		{"std negative", `"std":0.8`, `"std":-0.8`, "std -0.8"},
		{"min > max", `"min":4.3`, `"min":9.3`, "min 9.3 > max"},
		{"overflowing float", `"mean":5.8`, `"mean":1e400`, "mean"},
		{"sketch length", `"counts":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,3`, `"counts":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,3`, "31 counts, want 32"},
		{"sketch exp", `"exp":3,`, `"exp":400,`, "exp 400"},
		{"cpu percent", `"device_cpu_percent":12.5`, `"device_cpu_percent":250`, "cpu percent"},
		{"unknown field", `"predictions":120`, `"predictions":120,"bogus":1`, "bogus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(s, tc.from) {
				t.Fatalf("seed lacks %q", tc.from)
			}
			_, err := DecodeTelemetryBatch([]byte(strings.Replace(s, tc.from, tc.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// Too many classes and features.
	m := Monitoring{}
	for i := 0; i <= MaxClasses; i++ {
		m.Classes = append(m.Classes, ClassCount{Class: i, Count: 1})
	}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "at most 32") {
		t.Fatalf("too many classes: %v", err)
	}
	m = Monitoring{}
	for i := 0; i <= MaxFeatures; i++ {
		m.Features = append(m.Features, FeatureSummary{Index: i})
	}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "at most 16") {
		t.Fatalf("too many features: %v", err)
	}
	m = Monitoring{Features: []FeatureSummary{{Mean: math.NaN()}}}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "finite") {
		t.Fatalf("NaN mean: %v", err)
	}
}

func TestConfidenceBucket(t *testing.T) {
	for _, tc := range []struct {
		score float64
		want  int
		ok    bool
	}{{0, 0, true}, {0.049, 0, true}, {0.05, 1, true}, {0.5, 10, true}, {0.96, 19, true}, {1, 19, true}, {-3, 0, true}, {7, 19, true}, {math.NaN(), 0, false}, {math.Inf(1), 0, false}} {
		got, ok := ConfidenceBucket(tc.score)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ConfidenceBucket(%v) = %d, %v; want %d, %v", tc.score, got, ok, tc.want, tc.ok)
		}
	}
}

// TestSketchMergeIsExact: merging sketches built from two halves of the
// data gives the sketch of all the data once both are at the same range.
func TestSketchMergeIsExact(t *testing.T) {
	data := []float64{0.01, 0.2, 0.3, 0.7, 1.5, 3, -0.4, 6.5, 0, 0.999, 2.5, -7.9}
	for split := 0; split <= len(data); split++ {
		var all, a, b Sketch
		for i, v := range data {
			all.Add(v)
			if i < split {
				a.Add(v)
			} else {
				b.Add(v)
			}
		}
		a.Merge(&b)
		if a.Exp != all.Exp || a.Signed != all.Signed {
			t.Fatalf("split %d: range exp %d signed %v, want %d %v", split, a.Exp, a.Signed, all.Exp, all.Signed)
		}
		for i := range all.Counts {
			if a.Counts[i] != all.Counts[i] {
				t.Fatalf("split %d: counts %v, want %v", split, a.Counts, all.Counts)
			}
		}
	}
}

func TestSketchRangeAndQuantile(t *testing.T) {
	var s Sketch
	for i := 0; i < 100; i++ {
		s.Add(float64(i) / 100) // 0 .. 0.99 uniform
	}
	if lo, hi := s.Range(); lo != 0 || hi != 1 {
		t.Fatalf("range [%v,%v), want [0,1)", lo, hi)
	}
	var total uint64
	for _, c := range s.Counts {
		total += c
	}
	if total != 100 {
		t.Fatalf("total %d", total)
	}
	if q := s.Quantile(0.5, 0, 0.99); math.Abs(q-0.5) > 1.0/SketchBins {
		t.Fatalf("median %v, want ~0.5", q)
	}
	if q := s.Quantile(1, 0, 0.99); q != 0.99 {
		t.Fatalf("max quantile %v, want clamped to 0.99", q)
	}
	s.Add(-1)
	if lo, hi := s.Range(); lo != -1 || hi != 1 || !s.Signed {
		t.Fatalf("after a negative value: [%v,%v) signed %v", lo, hi, s.Signed)
	}
	s.Add(math.NaN())
	s.Add(math.Inf(1))
	if s.Exp != 0 {
		t.Fatalf("non-finite values changed the range: exp %d", s.Exp)
	}
	var big Sketch
	big.Add(math.MaxFloat64)
	if big.Exp != MaxSketchExp || big.Counts[SketchBins-1] != 1 {
		t.Fatalf("huge value: exp %d counts %v", big.Exp, big.Counts)
	}
}

// FuzzSketch adds arbitrary float64 values (from the bytes) to two
// sketches and merges them: nothing panics, counts are conserved, and the
// result stays valid.
func FuzzSketch(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0xf0, 0xbf})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xef, 0x7f, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var a, c Sketch
		var n uint64
		for i := 0; i+8 <= len(b); i += 8 {
			var u uint64
			for j := 0; j < 8; j++ {
				u |= uint64(b[i+j]) << (8 * j)
			}
			v := math.Float64frombits(u)
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				n++
			}
			if i%16 == 0 {
				a.Add(v)
			} else {
				c.Add(v)
			}
		}
		a.Merge(&c)
		var total uint64
		for _, x := range a.Counts {
			total += x
		}
		if total != n {
			t.Fatalf("merged %d values, counted %d", n, total)
		}
		if err := a.Validate(); err != nil {
			t.Fatal(err)
		}
		_ = a.Quantile(0.5, -1, 1)
	})
}
