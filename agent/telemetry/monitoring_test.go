package telemetry

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// fakeProc writes a /proc tree: RSS 300 pages, utime+stime ticks, memory,
// load and the cpu line (busy and idle ticks).
func fakeProc(t *testing.T, dir string, procTicks, busy, idle uint64) {
	t.Helper()
	files := map[string]string{
		"self/statm": "1000 300 50 10 0 200 0\n",
		"self/stat":  "42 (edge agent) S 1 42 42 0 -1 4194560 100 0 0 0 " + itoa(procTicks-procTicks/4) + " " + itoa(procTicks/4) + " 0 0 20 0 8 0 100 1000000 300\n",
		"meminfo":    "MemTotal:        2048000 kB\nMemFree:          100000 kB\nMemAvailable:    1024000 kB\n",
		"loadavg":    "0.75 0.50 0.25 1/123 4567\n",
		"stat":       "cpu  " + itoa(busy/2) + " 0 " + itoa(busy-busy/2) + " " + itoa(idle) + " 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestProcSample reads a fake /proc tree: RSS, process CPU seconds and
// device CPU % over the interval between samples, memory and load; a
// malformed file is an error naming it.
func TestProcSample(t *testing.T) {
	dir := t.TempDir()
	fakeProc(t, dir, 200, 1000, 3000)
	p := &Proc{Root: dir, PageSize: 4096}
	r, err := p.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if r.ProcessRSSBytes != 300*4096 || r.ProcessCPUSeconds != 2 || r.DeviceMemTotalBytes != 2048000<<10 || r.DeviceMemAvailableBytes != 1024000<<10 || r.Load1 != 0.75 || r.DeviceCPUPercent != 25 {
		t.Fatalf("first sample %+v", r)
	}
	fakeProc(t, dir, 250, 1600, 3400) // +0.5 s process, +600 busy of +1000 ticks
	if r, err = p.Sample(); err != nil || r.ProcessCPUSeconds != 0.5 || r.DeviceCPUPercent != 60 {
		t.Fatalf("second sample %+v %v", r, err)
	}
	for _, bad := range []struct{ file, body, want string }{
		{"meminfo", "MemTotal: lots kB\n", "meminfo"},
		{"loadavg", "", "loadavg is empty"},
		{"loadavg", "NaN 0 0 1/1 1\n", "want a load average"},
		{"stat", "intr 1 2 3\n", "want the cpu totals"},
		{"self/stat", "42 (x) S 1\n", "self/stat"},
		{"self/statm", "1\n", "self/statm"},
	} {
		fakeProc(t, dir, 1, 1, 1)
		os.WriteFile(filepath.Join(dir, bad.file), []byte(bad.body), 0o644)
		if _, err := p.Sample(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s %q: %v, want an error containing %q", bad.file, bad.body, err, bad.want)
		}
	}
	if _, err := (&Proc{Root: filepath.Join(dir, "missing")}).Sample(); err == nil {
		t.Fatal("missing /proc: no error")
	}
}

// TestCollectorMonitoring: records carry bounded class and confidence
// histograms, feature summaries with sketches and the resources of the
// (fake) /proc, and always pass the fleet's validation — also with more
// classes than the bound and with values that overflow the statistics.
func TestCollectorMonitoring(t *testing.T) {
	dir := t.TempDir()
	fakeProc(t, dir, 100, 100, 300)
	c := NewCollector(clock.NewFake(time.Unix(100, 0)))
	c.SetProcRoot(dir)
	k := Key{Model: "m", Version: "1", Role: wire.RolePrimary}
	c.Request(k, time.Millisecond, 1, "")
	for i := 0; i < 40; i++ { // class i predicted i+1 times
		for j := 0; j <= i; j++ {
			c.Prediction(k, i, 0.9)
		}
	}
	c.Prediction(k, 5, math.NaN())
	c.Prediction(k, 5, 0.02)
	c.Features(k, []float64{1, -2, 3e300, math.Inf(1)})
	c.Features(k, []float64{3, -4, -3e300, 5})
	recs := c.Flush()
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	m := recs[0].Monitoring
	if m == nil {
		t.Fatal("no monitoring")
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if m.Predictions != 40*41/2+2 || len(m.Classes) != wire.MaxClasses || m.Classes[0].Class != 8 || m.Classes[1].Class != 9 {
		t.Fatalf("classes %d predictions %d: %+v", len(m.Classes), m.Predictions, m.Classes)
	}
	var total uint64 = m.ClassOther
	for _, c := range m.Classes {
		total += c.Count
	}
	if total != m.Predictions || m.ClassOther != 1+2+3+4+5+(6+2)+7+8 {
		t.Fatalf("class counts %d other %d, want %d", total, m.ClassOther, m.Predictions)
	}
	if m.Confidence[18] != 40*41/2 || m.Confidence[0] != 1 {
		t.Fatalf("confidence %v", m.Confidence)
	}
	if recs[0].Confidence[9] != 40*41/2 || recs[0].Confidence[0] != 1 {
		t.Fatalf("local confidence %v", recs[0].Confidence)
	}
	// Features 0 and 1 are summarized; 2 overflows (dropped); 3 has one finite value.
	if len(m.Features) != 3 || m.Features[0].Mean != 2 || m.Features[0].Std != 1 || m.Features[0].Min != 1 || m.Features[0].Max != 3 ||
		m.Features[1].Index != 1 || !m.Features[1].Sketch.Signed || m.Features[2].Index != 3 || m.Features[2].Count != 1 {
		t.Fatalf("features %+v", m.Features)
	}
	if r := m.Resources; r == nil || r.Load1 != 0.75 || r.DeviceMemTotalBytes != 2048000<<10 {
		t.Fatalf("resources %+v", r)
	}
	if got := gaugeValue(t, c, "edge_agent_device", "load1"); got != 0.75 {
		t.Fatalf("edge_agent_device{resource=load1} = %v", got)
	}
	// The whole record travels: the fleet decodes it.
	b, err := wire.Encode(wire.TelemetryBatch{V: wire.Version, DeviceID: "d", Records: []wire.TelemetryRecord{{Seq: 1, Time: time.Unix(100, 0), ModelID: "m", Version: "1", Requests: 1, Monitoring: m}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wire.DecodeTelemetryBatch(b); err != nil {
		t.Fatal(err)
	}
	// Without /proc the record goes without resources.
	c.SetProcRoot(filepath.Join(dir, "missing"))
	c.Request(k, time.Millisecond, 1, "")
	c.Prediction(k, 1, 0.5)
	if recs := c.Flush(); recs[0].Monitoring == nil || recs[0].Monitoring.Resources != nil || recs[0].Monitoring.Confidence[10] != 1 {
		t.Fatalf("without /proc: %+v", recs[0].Monitoring)
	}
}

// TestCollectorHotPathDoesNotAllocate: the monitoring part of recording a
// prediction's features allocates nothing once the window exists.
func TestCollectorHotPathDoesNotAllocate(t *testing.T) {
	c := NewCollector(nil)
	k := Key{Model: "m", Version: "1", Role: wire.RolePrimary}
	vals := []float64{0.1, 0.5, -3, 7}
	c.Features(k, vals)
	if n := testing.AllocsPerRun(100, func() { c.Features(k, vals) }); n != 0 {
		t.Fatalf("Features allocates %v times per call", n)
	}
}

func gaugeValue(t *testing.T, c *Collector, name, resource string) float64 {
	t.Helper()
	mfs, err := c.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == resource {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// FuzzProc feeds arbitrary contents to each /proc file: Sample returns
// an error or finite, in-range resources, never panics.
func FuzzProc(f *testing.F) {
	f.Add(uint8(0), []byte("1000 300 50 10 0 200 0\n"))
	f.Add(uint8(1), []byte("42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 8 0\n"))
	f.Add(uint8(2), []byte("MemTotal: 100 kB\nMemAvailable: 50 kB\n"))
	f.Add(uint8(3), []byte("0.75 0.50 0.25 1/123 4567\n"))
	f.Add(uint8(4), []byte("cpu  1 2 3 4 5 6 7 8 9 10\n"))
	names := []string{"self/statm", "self/stat", "meminfo", "loadavg", "stat"}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		dir := t.TempDir()
		fakeProc(t, dir, 100, 100, 300)
		if err := os.WriteFile(filepath.Join(dir, names[int(which)%len(names)]), body, 0o644); err != nil {
			t.Fatal(err)
		}
		p := &Proc{Root: dir}
		for i := 0; i < 2; i++ {
			r, err := p.Sample()
			if err != nil {
				return
			}
			if err := (&wire.Monitoring{Resources: r}).Validate(); err != nil {
				t.Fatalf("resources %+v: %v", r, err)
			}
		}
	})
}
