package simulate

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/edgefleet/edgefleet/fleet/client"
)

// serverMetrics are the fleet-server counters the report needs.
type serverMetrics struct {
	stored, duplicates, received uint64
	jobUpdates                   uint64 // job updates the server received
	deliveryDropped, rateLimited uint64 // embedded broker drops towards devices, device publishes over the rate
	rss                          uint64
}

// scrape reads the server's /metrics and sums the counters by name (over
// every label set). It parses only "name{labels} value" lines: the text
// exposition format's sample lines.
func scrape(ctx context.Context, api *client.Client) (serverMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api.Base+"/metrics", nil)
	if err != nil {
		return serverMetrics{}, err
	}
	if api.Token != "" {
		req.Header.Set("Authorization", "Bearer "+api.Token)
	}
	resp, err := api.HTTP.Do(req)
	if err != nil {
		return serverMetrics{}, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return serverMetrics{}, fmt.Errorf("scrape metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return serverMetrics{}, fmt.Errorf("scrape metrics: HTTP %d", resp.StatusCode)
	}
	return parseMetrics(body), nil
}

// scrapeAll sums the counters of several replicas (the first one's RSS).
func scrapeAll(ctx context.Context, apis []*client.Client) (serverMetrics, error) {
	var sum serverMetrics
	for i, api := range apis {
		m, err := scrape(ctx, api)
		if err != nil {
			return sum, err
		}
		if i == 0 {
			sum.rss = m.rss
		}
		sum.stored += m.stored
		sum.duplicates += m.duplicates
		sum.received += m.received
		sum.jobUpdates += m.jobUpdates
		sum.deliveryDropped += m.deliveryDropped
		sum.rateLimited += m.rateLimited
	}
	return sum, nil
}

func parseMetrics(body []byte) serverMetrics {
	var m serverMetrics
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		name := line[:sp]
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil || v < 0 {
			continue
		}
		switch name {
		case "edgefleet_telemetry_records_total":
			m.stored += uint64(v)
		case "edgefleet_telemetry_duplicates_total":
			m.duplicates += uint64(v)
		case "edgefleet_mqtt_messages_total":
			m.received += uint64(v)
			if strings.Contains(line[:sp], `kind="jobs/update"`) {
				m.jobUpdates += uint64(v)
			}
		case "edgefleet_mqtt_delivery_dropped_total":
			m.deliveryDropped += uint64(v)
		case "edgefleet_mqtt_rate_limited_total":
			m.rateLimited += uint64(v)
		case "process_resident_memory_bytes":
			m.rss = uint64(v)
		}
	}
	return m
}

// serverRSS returns the server's resident and peak resident set size: from
// /proc/PID/status when pid is set, else the process collector's metric.
func serverRSS(ctx context.Context, pid int, api *client.Client) (rss, hwm uint64, err error) {
	if pid == 0 {
		m, err := scrape(ctx, api)
		return m.rss, 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("server RSS: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseUint(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return rss, hwm, nil
}
