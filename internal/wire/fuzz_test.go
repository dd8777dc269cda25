package wire

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to every payload decoder: none may panic,
// and anything accepted must re-encode and decode to an accepted value.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/payloads/*.json")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(name string, v any, err error, again func([]byte) error) {
			if err != nil {
				return
			}
			out, err := Encode(v)
			if err != nil {
				t.Fatalf("%s: accepted value does not encode: %v", name, err)
			}
			if err := again(out); err != nil {
				t.Fatalf("%s: re-encoded value rejected: %v\n%s", name, err, out)
			}
		}
		s, err := DecodeStatus(b)
		check("Status", s, err, func(b []byte) error { _, err := DecodeStatus(b); return err })
		tb, err := DecodeTelemetryBatch(b)
		check("TelemetryBatch", tb, err, func(b []byte) error { _, err := DecodeTelemetryBatch(b); return err })
		ta, err := DecodeTelemetryAck(b)
		check("TelemetryAck", ta, err, func(b []byte) error { _, err := DecodeTelemetryAck(b); return err })
		jn, err := DecodeJobNotify(b)
		check("JobNotify", jn, err, func(b []byte) error { _, err := DecodeJobNotify(b); return err })
		jg, err := DecodeJobsGet(b)
		check("JobsGet", jg, err, func(b []byte) error { _, err := DecodeJobsGet(b); return err })
		ju, err := DecodeJobUpdate(b)
		check("JobUpdate", ju, err, func(b []byte) error { _, err := DecodeJobUpdate(b); return err })
		er, err := DecodeEnrollRequest(b)
		check("EnrollRequest", er, err, func(b []byte) error { _, err := DecodeEnrollRequest(b); return err })
		es, err := DecodeEnrollResponse(b)
		check("EnrollResponse", es, err, func(b []byte) error { _, err := DecodeEnrollResponse(b); return err })
		pq, err := DecodePredictRequest(b)
		check("PredictRequest", pq, err, func(b []byte) error { _, err := DecodePredictRequest(b); return err })
		pr, err := DecodePredictResponse(b)
		check("PredictResponse", pr, err, func(b []byte) error { _, err := DecodePredictResponse(b); return err })
		mo, err := DecodeMonitoring(b)
		check("Monitoring", mo, err, func(b []byte) error { _, err := DecodeMonitoring(b); return err })
		_, _ = ParseTopic(string(b))
	})
}

// TestSeedCorpusDecodes proves every seed in testdata/payloads is a valid
// payload of the type its file name starts with.
func TestSeedCorpusDecodes(t *testing.T) {
	decoders := map[string]func([]byte) error{
		"status":          func(b []byte) error { _, err := DecodeStatus(b); return err },
		"telemetry":       func(b []byte) error { _, err := DecodeTelemetryBatch(b); return err },
		"telemetryack":    func(b []byte) error { _, err := DecodeTelemetryAck(b); return err },
		"jobnotify":       func(b []byte) error { _, err := DecodeJobNotify(b); return err },
		"jobsget":         func(b []byte) error { _, err := DecodeJobsGet(b); return err },
		"jobupdate":       func(b []byte) error { _, err := DecodeJobUpdate(b); return err },
		"enrollrequest":   func(b []byte) error { _, err := DecodeEnrollRequest(b); return err },
		"enrollresponse":  func(b []byte) error { _, err := DecodeEnrollResponse(b); return err },
		"predictrequest":  func(b []byte) error { _, err := DecodePredictRequest(b); return err },
		"predictresponse": func(b []byte) error { _, err := DecodePredictResponse(b); return err },
	}
	seeds, _ := filepath.Glob("testdata/payloads/*.json")
	if len(seeds) < len(decoders) {
		t.Fatalf("want a seed per payload type, found %d files", len(seeds))
	}
	for _, s := range seeds {
		name := filepath.Base(s)
		kind := name[:len(name)-len(filepath.Ext(name))]
		if i := len(kind) - 1; i > 0 && kind[i] >= '0' && kind[i] <= '9' {
			kind = kind[:i]
		}
		dec, ok := decoders[kind]
		if !ok {
			t.Errorf("%s: no decoder for %q", name, kind)
			continue
		}
		b, _ := os.ReadFile(s)
		if err := dec(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
