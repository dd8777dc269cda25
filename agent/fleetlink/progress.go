package fleetlink

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// downloadLog logs the progress of the fleet's downloads (models, deltas,
// agent binaries) as bytes/total, percent and rate: a line when the
// download starts, at every further 10%, at least every progressEvery while
// bytes arrive, and when it completes. It is the ota updater's
// download.Progress callback; begin names the next download.
type downloadLog struct {
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	label   string
	started time.Time
	first   int64 // bytes already there when this download started (resume)
	seen    bool
	lastPct int
	lastLog time.Time
}

// progressEvery bounds the time between two progress lines of one download.
const progressEvery = 5 * time.Second

func newDownloadLog(log *slog.Logger) *downloadLog {
	if log == nil {
		log = slog.Default()
	}
	return &downloadLog{log: log, now: time.Now}
}

// begin starts the log of a new download named label.
func (d *downloadLog) begin(label string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.label, d.started, d.seen, d.lastPct, d.first = label, d.now(), false, -1, 0
}

// progress is the download.Progress callback: done bytes of total so far.
func (d *downloadLog) progress(done, total int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if !d.seen {
		d.seen, d.first, d.lastLog = true, done, now
		if d.started.IsZero() {
			d.started = now
		}
		d.log.Info("download started", "what", d.label, "bytes", done, "total", total, "progress", fmtBytes(done, total))
	}
	pct := 100
	if total > 0 {
		pct = int(done * 100 / total)
	}
	complete := total > 0 && done >= total
	if !complete && pct/10 <= d.lastPct/10 && now.Sub(d.lastLog) < progressEvery {
		return
	}
	if complete && d.lastPct == 100 {
		return
	}
	d.lastPct, d.lastLog = pct, now
	msg := "download progress"
	if complete {
		msg = "download complete"
	}
	d.log.Info(msg, "what", d.label, "bytes", done, "total", total, "progress", fmtBytes(done, total),
		"percent", pct, "rate", fmtRate(done-d.first, now.Sub(d.started)))
}

// fmtBytes is "3.2/40.0 MiB".
func fmtBytes(done, total int64) string {
	const mib = 1 << 20
	if total < mib {
		return fmt.Sprintf("%d/%d B", done, total)
	}
	return fmt.Sprintf("%.1f/%.1f MiB", float64(done)/mib, float64(total)/mib)
}

// fmtRate is bytes per second over elapsed, as "1.5 MiB/s" or "300 KiB/s".
func fmtRate(bytes int64, elapsed time.Duration) string {
	if elapsed <= 0 {
		return "-"
	}
	bps := float64(bytes) / elapsed.Seconds()
	switch {
	case bps >= 1<<20:
		return fmt.Sprintf("%.1f MiB/s", bps/(1<<20))
	case bps >= 1<<10:
		return fmt.Sprintf("%.0f KiB/s", bps/(1<<10))
	}
	return fmt.Sprintf("%.0f B/s", bps)
}
