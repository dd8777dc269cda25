package telemetry

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat and /proc/stat:
// USER_HZ is 100 on every Linux architecture the agent supports (it is
// fixed by the kernel ABI, independent of CONFIG_HZ).
const userHZ = 100

// Proc reads process and device resources from a /proc tree (Root,
// "/proc" on a device, a fake tree in tests). It is not safe for
// concurrent use; the Collector calls it under its lock.
type Proc struct {
	// Root is the /proc directory.
	Root string
	// PageSize is the page size of statm (default os.Getpagesize()).
	PageSize int

	prevBusy, prevTotal float64 // /proc/stat ticks at the previous Sample
	prevCPU             float64 // process CPU seconds at the previous Sample
}

// ProcSample is one reading of Proc.
type ProcSample struct {
	RSSBytes         uint64
	CPUSeconds       float64 // process CPU time since it started
	MemTotalBytes    uint64
	MemAvailBytes    uint64
	Load1            float64
	busyTicks, ticks float64
}

// Read reads the current values; a file that is missing or malformed is
// an error naming it.
func (p *Proc) Read() (ProcSample, error) {
	var s ProcSample
	page := p.PageSize
	if page <= 0 {
		page = os.Getpagesize()
	}
	b, err := os.ReadFile(filepath.Join(p.Root, "self", "statm"))
	if err != nil {
		return s, fmt.Errorf("read process memory: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return s, fmt.Errorf("%s/self/statm: %q: want size and resident pages", p.Root, b)
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return s, fmt.Errorf("%s/self/statm: resident pages: %w", p.Root, err)
	}
	s.RSSBytes = pages * uint64(page)

	if b, err = os.ReadFile(filepath.Join(p.Root, "self", "stat")); err != nil {
		return s, fmt.Errorf("read process CPU time: %w", err)
	}
	// The command name (field 2) is in parentheses and may contain spaces:
	// fields are counted after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return s, fmt.Errorf("%s/self/stat: no command name", p.Root)
	}
	f = strings.Fields(string(b[i+1:]))
	if len(f) < 13 { // state is field 3; utime and stime are fields 14 and 15
		return s, fmt.Errorf("%s/self/stat: %d fields after the command name, want at least 13", p.Root, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("%s/self/stat: utime %q stime %q: want tick counts", p.Root, f[11], f[12])
	}
	s.CPUSeconds = float64(ut+st) / userHZ

	mf, err := os.Open(filepath.Join(p.Root, "meminfo"))
	if err != nil {
		return s, fmt.Errorf("read device memory: %w", err)
	}
	sc := bufio.NewScanner(mf)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "MemTotal" && k != "MemAvailable") {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			mf.Close()
			return s, fmt.Errorf("%s/meminfo: %s %q: %w", p.Root, k, v, err)
		}
		if k == "MemTotal" {
			s.MemTotalBytes = kb << 10
		} else {
			s.MemAvailBytes = kb << 10
		}
	}
	mf.Close()
	if s.MemTotalBytes == 0 {
		return s, fmt.Errorf("%s/meminfo: no MemTotal", p.Root)
	}

	if b, err = os.ReadFile(filepath.Join(p.Root, "loadavg")); err != nil {
		return s, fmt.Errorf("read load average: %w", err)
	}
	if f = strings.Fields(string(b)); len(f) == 0 {
		return s, fmt.Errorf("%s/loadavg is empty", p.Root)
	}
	if s.Load1, err = strconv.ParseFloat(f[0], 64); err != nil || !(s.Load1 >= 0) || math.IsInf(s.Load1, 0) { // also NaN
		return s, fmt.Errorf("%s/loadavg: %q: want a load average", p.Root, f[0])
	}

	sf, err := os.Open(filepath.Join(p.Root, "stat"))
	if err != nil {
		return s, fmt.Errorf("read device CPU time: %w", err)
	}
	defer sf.Close()
	sc = bufio.NewScanner(sf)
	if !sc.Scan() {
		return s, fmt.Errorf("%s/stat is empty", p.Root)
	}
	f = strings.Fields(sc.Text())
	if len(f) < 5 || f[0] != "cpu" {
		return s, fmt.Errorf("%s/stat: first line %q: want the cpu totals", p.Root, sc.Text())
	}
	for j, x := range f[1:] {
		n, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return s, fmt.Errorf("%s/stat: cpu field %d %q: %w", p.Root, j+1, x, err)
		}
		if j >= 7 { // guest and guest_nice are already in user and nice
			break
		}
		s.ticks += float64(n)
		if j != 3 && j != 4 { // idle and iowait
			s.busyTicks += float64(n)
		}
	}
	return s, nil
}

// Sample reads the resources and returns them with the process CPU
// seconds and the device CPU busy share since the previous Sample (the
// first Sample measures from boot and process start).
func (p *Proc) Sample() (*wire.Resources, error) {
	s, err := p.Read()
	if err != nil {
		return nil, err
	}
	r := &wire.Resources{ProcessRSSBytes: s.RSSBytes, DeviceMemTotalBytes: s.MemTotalBytes, DeviceMemAvailableBytes: s.MemAvailBytes, Load1: s.Load1}
	r.ProcessCPUSeconds = max(0, s.CPUSeconds-p.prevCPU)
	if dt := s.ticks - p.prevTotal; dt > 0 {
		r.DeviceCPUPercent = max(0, min(100, 100*(s.busyTicks-p.prevBusy)/dt))
	}
	p.prevCPU, p.prevBusy, p.prevTotal = s.CPUSeconds, s.busyTicks, s.ticks
	return r, nil
}
