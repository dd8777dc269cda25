package drift

import (
	"math"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// Histogram is a chartable histogram: bucket i is [Bounds[i], Bounds[i+1]).
type Histogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
}

// FeatureView is a feature's summary as the API shows it.
type FeatureView struct {
	Index     int       `json:"index"`
	Count     uint64    `json:"count"`
	Mean      float64   `json:"mean"`
	Std       float64   `json:"std"`
	Min       float64   `json:"min"`
	Max       float64   `json:"max"`
	P50       float64   `json:"p50"`
	P90       float64   `json:"p90"`
	P99       float64   `json:"p99"`
	Histogram Histogram `json:"histogram"`
}

// ResourcesView are merged resources as the API shows them.
type ResourcesView struct {
	Samples                    uint64  `json:"samples"`
	ProcessRSSBytesAvg         float64 `json:"process_rss_bytes_avg"`
	ProcessRSSBytesMax         uint64  `json:"process_rss_bytes_max"`
	ProcessCPUSeconds          float64 `json:"process_cpu_seconds"`
	DeviceMemTotalBytes        uint64  `json:"device_mem_total_bytes"`
	DeviceMemAvailableBytesMin uint64  `json:"device_mem_available_bytes_min"`
	DeviceCPUPercentAvg        float64 `json:"device_cpu_percent_avg"`
	Load1Avg                   float64 `json:"load1_avg"`
}

// View is a Dist as the API shows it (docs/monitoring.md).
type View struct {
	Records     uint64            `json:"records"`
	Predictions uint64            `json:"predictions"`
	Classes     []wire.ClassCount `json:"classes"`
	ClassOther  uint64            `json:"class_other"`
	Confidence  *Histogram        `json:"confidence,omitempty"`
	Features    []FeatureView     `json:"features"`
	Resources   *ResourcesView    `json:"resources,omitempty"`
}

// View returns d as the API shows it.
func (d *Dist) View() View {
	v := View{Classes: []wire.ClassCount{}, Features: []FeatureView{}}
	if d == nil {
		return v
	}
	v.Records, v.Predictions, v.ClassOther = d.Records, d.Predictions, d.ClassOther
	v.Classes = append(v.Classes, d.Classes...)
	if len(d.Confidence) > 0 {
		h := &Histogram{Counts: append([]uint64(nil), d.Confidence...)}
		for i := 0; i <= len(d.Confidence); i++ {
			h.Bounds = append(h.Bounds, float64(i)/float64(len(d.Confidence)))
		}
		v.Confidence = h
	}
	for _, f := range d.Features {
		fv := FeatureView{Index: f.Index, Count: f.Count, Mean: f.Mean, Min: f.Min, Max: f.Max,
			Histogram: Histogram{Bounds: []float64{}, Counts: []uint64{}}}
		if f.Count > 0 {
			fv.Std = math.Sqrt(max(0, f.M2/float64(f.Count)))
		}
		if len(f.Sketch.Counts) > 0 {
			fv.Histogram = Histogram{Bounds: f.Sketch.Bounds(), Counts: append([]uint64(nil), f.Sketch.Counts...)}
			fv.P50, fv.P90, fv.P99 = f.Sketch.Quantile(0.5, f.Min, f.Max), f.Sketch.Quantile(0.9, f.Min, f.Max), f.Sketch.Quantile(0.99, f.Min, f.Max)
		}
		v.Features = append(v.Features, fv)
	}
	if r := d.Resources; r != nil && r.Samples > 0 {
		n := float64(r.Samples)
		v.Resources = &ResourcesView{Samples: r.Samples, ProcessRSSBytesAvg: r.RSSSum / n, ProcessRSSBytesMax: r.RSSMax,
			ProcessCPUSeconds: r.CPUSeconds, DeviceMemTotalBytes: r.MemTotal, DeviceMemAvailableBytesMin: r.MemAvailMin,
			DeviceCPUPercentAvg: r.CPUPctSum / n, Load1Avg: r.Load1Sum / n}
	}
	return v
}
