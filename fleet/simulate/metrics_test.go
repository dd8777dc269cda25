package simulate

import "testing"

func TestParseMetrics(t *testing.T) {
	body := []byte(`# HELP edgefleet_telemetry_records_total Telemetry records stored.
# TYPE edgefleet_telemetry_records_total counter
edgefleet_telemetry_records_total{model="a",version="1"} 10
edgefleet_telemetry_records_total{model="a",version="2"} 5
edgefleet_telemetry_duplicates_total 3
edgefleet_mqtt_messages_total{kind="status"} 7
edgefleet_mqtt_messages_total{kind="telemetry"} 15
edgefleet_mqtt_messages_total{kind="jobs/update"} 4
edgefleet_mqtt_delivery_dropped_total 2
edgefleet_mqtt_rate_limited_total 1
process_resident_memory_bytes 1.048576e+06
edgefleet_mqtt_messages_total{kind="x"} -4
garbage line without value
`)
	m := parseMetrics(body)
	if m.stored != 15 || m.duplicates != 3 || m.received != 26 || m.jobUpdates != 4 || m.deliveryDropped != 2 || m.rateLimited != 1 || m.rss != 1<<20 {
		t.Fatalf("parsed %+v, want stored 15, duplicates 3, received 26, job updates 4, delivery dropped 2, rate limited 1, rss 1 MiB", m)
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add([]byte("edgefleet_telemetry_records_total 1\n"))
	f.Add([]byte("a{b=\"c d\"} NaN\n# x\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) { parseMetrics(b) })
}
