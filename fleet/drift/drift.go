// Package drift merges the monitoring distributions devices report
// (wire.Monitoring) into bounded fleet-side distributions and compares a
// model version's distribution with a reference: PSI over the class,
// confidence and feature histograms, KS over the confidence distribution
// (docs/monitoring.md).
package drift

import (
	"math"
	"sort"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// Bounds of a Dist.
const (
	// MaxClasses bounds Dist.Classes: the most frequent classes are kept,
	// the rest count in ClassOther.
	MaxClasses = 64
	// MaxFeatures bounds Dist.Features (the lowest feature indexes are kept).
	MaxFeatures = wire.MaxFeatures
	// Epsilon floors empty bucket proportions in PSI.
	Epsilon = 1e-4
)

// Dist is a merged distribution of one model version over some records.
// Its size is bounded (MaxClasses, ConfidenceBuckets, MaxFeatures ×
// SketchBins) whatever it merges. The short JSON names keep the per-minute
// rollups on disk small.
type Dist struct {
	Records     uint64            `json:"n,omitempty"`
	Predictions uint64            `json:"p,omitempty"`
	Classes     []wire.ClassCount `json:"c,omitempty"`
	ClassOther  uint64            `json:"co,omitempty"`
	Confidence  []uint64          `json:"cf,omitempty"`
	Features    []Feature         `json:"f,omitempty"`
	Resources   *Resources        `json:"r,omitempty"`
}

// Feature is a merged feature summary (M2 is the sum of squared
// deviations: Chan et al.'s parallel variance).
type Feature struct {
	Index  int         `json:"i"`
	Count  uint64      `json:"n"`
	Mean   float64     `json:"m"`
	M2     float64     `json:"m2"`
	Min    float64     `json:"lo"`
	Max    float64     `json:"hi"`
	Sketch wire.Sketch `json:"s"`
}

// Resources are merged device resources: sums for averages, extremes.
type Resources struct {
	Samples     uint64  `json:"n"`
	RSSSum      float64 `json:"rss"`
	RSSMax      uint64  `json:"rssmax"`
	CPUSeconds  float64 `json:"cpu"`
	MemTotal    uint64  `json:"mt"`
	MemAvailMin uint64  `json:"mamin"`
	CPUPctSum   float64 `json:"pct"`
	Load1Sum    float64 `json:"load"`
}

// fin saturates a float: sums of huge device values stay encodable
// (JSON has no Inf or NaN).
func fin(v float64) float64 {
	switch {
	case math.IsNaN(v):
		return 0
	case v > math.MaxFloat64:
		return math.MaxFloat64
	case v < -math.MaxFloat64:
		return -math.MaxFloat64
	}
	return v
}

func satAdd(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}

// Empty reports whether d has no predictions and no features.
func (d *Dist) Empty() bool {
	return d == nil || (d.Predictions == 0 && len(d.Classes) == 0 && d.ClassOther == 0 && len(d.Confidence) == 0 && len(d.Features) == 0)
}

// Add merges one record's (validated) monitoring.
func (d *Dist) Add(m *wire.Monitoring) {
	if m == nil {
		return
	}
	o := Dist{Records: 1, Predictions: m.Predictions, Classes: m.Classes, ClassOther: m.ClassOther, Confidence: m.Confidence}
	for _, f := range m.Features {
		o.Features = append(o.Features, Feature{Index: f.Index, Count: f.Count, Mean: f.Mean, M2: fin(f.Std * f.Std * float64(f.Count)),
			Min: f.Min, Max: f.Max, Sketch: f.Sketch})
	}
	if r := m.Resources; r != nil {
		o.Resources = &Resources{Samples: 1, RSSSum: float64(r.ProcessRSSBytes), RSSMax: r.ProcessRSSBytes, CPUSeconds: r.ProcessCPUSeconds,
			MemTotal: r.DeviceMemTotalBytes, MemAvailMin: r.DeviceMemAvailableBytes, CPUPctSum: r.DeviceCPUPercent, Load1Sum: r.Load1}
	}
	d.Merge(&o)
}

// Merge adds o to d (o is not modified; d shares nothing with it).
func (d *Dist) Merge(o *Dist) {
	if o == nil {
		return
	}
	d.Records = satAdd(d.Records, o.Records)
	d.Predictions = satAdd(d.Predictions, o.Predictions)
	d.ClassOther = satAdd(d.ClassOther, o.ClassOther)
	d.mergeClasses(o.Classes)
	if len(o.Confidence) > 0 {
		if len(d.Confidence) != len(o.Confidence) {
			d.Confidence = make([]uint64, len(o.Confidence))
		}
		for i, c := range o.Confidence {
			d.Confidence[i] = satAdd(d.Confidence[i], c)
		}
	}
	for i := range o.Features {
		d.mergeFeature(&o.Features[i])
	}
	if r := o.Resources; r != nil {
		if d.Resources == nil {
			d.Resources = &Resources{MemAvailMin: math.MaxUint64}
		}
		x := d.Resources
		x.Samples = satAdd(x.Samples, r.Samples)
		x.RSSSum = fin(x.RSSSum + r.RSSSum)
		x.RSSMax = max(x.RSSMax, r.RSSMax)
		x.CPUSeconds = fin(x.CPUSeconds + r.CPUSeconds)
		x.MemTotal = max(x.MemTotal, r.MemTotal)
		x.MemAvailMin = min(x.MemAvailMin, r.MemAvailMin)
		x.CPUPctSum = fin(x.CPUPctSum + r.CPUPctSum)
		x.Load1Sum = fin(x.Load1Sum + r.Load1Sum)
	}
}

func (d *Dist) mergeClasses(cs []wire.ClassCount) {
	if len(cs) == 0 {
		return
	}
	out := make([]wire.ClassCount, 0, len(d.Classes)+len(cs))
	i, j := 0, 0
	for i < len(d.Classes) || j < len(cs) {
		switch {
		case j == len(cs) || i < len(d.Classes) && d.Classes[i].Class < cs[j].Class:
			out = append(out, d.Classes[i])
			i++
		case i == len(d.Classes) || cs[j].Class < d.Classes[i].Class:
			out = append(out, cs[j])
			j++
		default:
			out = append(out, wire.ClassCount{Class: cs[j].Class, Count: satAdd(d.Classes[i].Count, cs[j].Count)})
			i++
			j++
		}
	}
	if len(out) > MaxClasses {
		sort.Slice(out, func(a, b int) bool {
			if out[a].Count != out[b].Count {
				return out[a].Count > out[b].Count
			}
			return out[a].Class < out[b].Class
		})
		for _, c := range out[MaxClasses:] {
			d.ClassOther = satAdd(d.ClassOther, c.Count)
		}
		out = out[:MaxClasses]
		sort.Slice(out, func(a, b int) bool { return out[a].Class < out[b].Class })
	}
	d.Classes = out
}

func (d *Dist) mergeFeature(f *Feature) {
	k := sort.Search(len(d.Features), func(i int) bool { return d.Features[i].Index >= f.Index })
	if k < len(d.Features) && d.Features[k].Index == f.Index {
		a := &d.Features[k]
		switch {
		case f.Count == 0:
		case a.Count == 0:
			sk := a.Sketch
			*a = *f
			a.Sketch = sk
		default:
			n := float64(a.Count) + float64(f.Count)
			delta := f.Mean - a.Mean
			a.Mean = fin(a.Mean + fin(delta)*(float64(f.Count)/n))
			a.M2 = fin(a.M2 + f.M2 + fin(delta*delta)*(float64(a.Count)/n)*float64(f.Count))
			a.Min, a.Max = min(a.Min, f.Min), max(a.Max, f.Max)
			a.Count = satAdd(a.Count, f.Count)
		}
		a.Sketch.Merge(&f.Sketch)
		return
	}
	if len(d.Features) >= MaxFeatures && k >= MaxFeatures {
		return // beyond the bound: only the lowest indexes are kept
	}
	nf := *f
	nf.Sketch = wire.Sketch{}
	nf.Sketch.Merge(&f.Sketch)
	d.Features = append(d.Features, Feature{})
	copy(d.Features[k+1:], d.Features[k:])
	d.Features[k] = nf
	if len(d.Features) > MaxFeatures {
		d.Features = d.Features[:MaxFeatures]
	}
}

// Clone returns a deep copy of d.
func (d *Dist) Clone() *Dist {
	var c Dist
	c.Merge(d)
	return &c
}
