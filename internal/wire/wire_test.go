package wire

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseTopic(t *testing.T) {
	tests := []struct {
		topic   string
		want    Topic
		wantErr string
	}{
		{StatusTopic("dev-1"), Topic{DeviceID: "dev-1", Kind: KindStatus}, ""},
		{TelemetryTopic("a"), Topic{DeviceID: "a", Kind: KindTelemetry}, ""},
		{TelemetryAckTopic("a"), Topic{DeviceID: "a", Kind: KindTelemetryAck}, ""},
		{JobsNotifyTopic("a"), Topic{DeviceID: "a", Kind: KindJobsNotify}, ""},
		{JobsGetTopic("a"), Topic{DeviceID: "a", Kind: KindJobsGet}, ""},
		{JobUpdateTopic("a", "j1"), Topic{DeviceID: "a", Kind: KindJobUpdate, JobID: "j1"}, ""},
		{PredictRequestTopic("a"), Topic{DeviceID: "a", Kind: KindPredictRequest}, ""},
		{PredictResponseTopic("a"), Topic{DeviceID: "a", Kind: KindPredictResponse}, ""},
		{TopicRoot + "/a/predict/other", Topic{}, "unknown kind"},
		{"other/v1/devices/a/status", Topic{}, "want prefix"},
		{TopicRoot + "/a", Topic{}, "missing kind"},
		{TopicRoot + "/+/status", Topic{}, "not allowed"},
		{TopicRoot + "/a/jobs/x/y/update", Topic{}, "not allowed"},
		{TopicRoot + "/a/nope", Topic{}, "unknown kind"},
	}
	for _, tt := range tests {
		got, err := ParseTopic(tt.topic)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseTopic(%q) error = %v, want containing %q", tt.topic, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTopic(%q) = %+v, %v; want %+v", tt.topic, got, err, tt.want)
		}
	}
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "dev-01", "v1.2.3", "A_b", strings.Repeat("x", 64)} {
		if err := ValidateID("id", ok); err != nil {
			t.Errorf("ValidateID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", ".a", "a/b", "a+b", "a#", "a b", strings.Repeat("x", 65), "é"} {
		if err := ValidateID("id", bad); err == nil {
			t.Errorf("ValidateID(%q) = nil, want error", bad)
		}
	}
}

func TestJobTransitions(t *testing.T) {
	allowed := map[[2]JobState]bool{
		{JobQueued, JobInProgress}: true, {JobQueued, JobRejected}: true, {JobQueued, JobTimedOut}: true, {JobQueued, JobFailed}: true,
		{JobInProgress, JobInProgress}: true, {JobInProgress, JobSucceeded}: true, {JobInProgress, JobFailed}: true,
		{JobInProgress, JobRolledBack}: true, {JobInProgress, JobTimedOut}: true,
	}
	all := []JobState{JobQueued, JobInProgress, JobSucceeded, JobFailed, JobRejected, JobRolledBack, JobTimedOut}
	for _, from := range all {
		for _, to := range all {
			err := from.Transition(to)
			if allowed[[2]JobState{from, to}] != (err == nil) {
				t.Errorf("%s → %s: err = %v, want allowed=%v", from, to, err, allowed[[2]JobState{from, to}])
			}
			if err != nil && !errors.Is(err, ErrBadTransition) {
				t.Errorf("%s → %s: error %v does not wrap ErrBadTransition", from, to, err)
			}
		}
	}
	for _, s := range []JobState{JobSucceeded, JobFailed, JobRejected, JobRolledBack, JobTimedOut} {
		if !s.Terminal() {
			t.Errorf("%s should be terminal", s)
		}
	}
	if JobState("bogus").Transition(JobQueued) == nil {
		t.Error("unknown state accepted")
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		decode  func([]byte) error
		in      string
		wantErr string
	}{
		{"ok status", func(b []byte) error { _, err := DecodeStatus(b); return err }, `{"v":1,"device_id":"d","state":"online"}`, ""},
		{"bad version", func(b []byte) error { _, err := DecodeStatus(b); return err }, `{"v":2,"device_id":"d","state":"online"}`, `"v" is 2, want 1`},
		{"no version", func(b []byte) error { _, err := DecodeStatus(b); return err }, `{"device_id":"d","state":"online"}`, `"v" is 0`},
		{"unknown field", func(b []byte) error { _, err := DecodeStatus(b); return err }, `{"v":1,"device_id":"d","state":"online","x":1}`, `unknown field "x"`},
		{"trailing", func(b []byte) error { _, err := DecodeStatus(b); return err }, `{"v":1,"device_id":"d","state":"online"} {}`, "trailing data"},
		{"empty", func(b []byte) error { _, err := DecodeStatus(b); return err }, ``, "empty payload"},
		{"syntax", func(b []byte) error { _, err := DecodeStatus(b); return err }, `{"v":1,`, "JSON"},
		{"type", func(b []byte) error { _, err := DecodeStatus(b); return err }, `{"v":"1"}`, `field "v"`},
		{"bad state", func(b []byte) error { _, err := DecodeStatus(b); return err }, `{"v":1,"device_id":"d","state":"zzz"}`, `state "zzz"`},
		{"seq order", func(b []byte) error { _, err := DecodeTelemetryBatch(b); return err },
			`{"v":1,"device_id":"d","records":[{"seq":2,"time":"2026-01-01T00:00:00Z","model_id":"m","version":"1","requests":1,"errors":0,"latency_p50_ms":1,"latency_p95_ms":1,"latency_p99_ms":1},{"seq":2,"time":"2026-01-01T00:00:00Z","model_id":"m","version":"1","requests":1,"errors":0,"latency_p50_ms":1,"latency_p95_ms":1,"latency_p99_ms":1}]}`,
			"records[1].seq 2"},
		{"errors>requests", func(b []byte) error { _, err := DecodeTelemetryBatch(b); return err },
			`{"v":1,"device_id":"d","records":[{"seq":1,"time":"2026-01-01T00:00:00Z","model_id":"m","version":"1","requests":1,"errors":2,"latency_p50_ms":1,"latency_p95_ms":1,"latency_p99_ms":1}]}`,
			"errors 2 > requests 1"},
		{"update queued", func(b []byte) error { _, err := DecodeJobUpdate(b); return err }, `{"v":1,"device_id":"d","job_id":"j","state":"queued"}`, "want in_progress"},
		{"job no target", func(b []byte) error { _, err := DecodeJobNotify(b); return err },
			`{"v":1,"device_id":"d","jobs":[{"job_id":"j","kind":"install","model_id":"m","version":"1","state":"queued","created":"2026-01-01T00:00:00Z"}]}`, "needs a target"},
		{"enroll long token", func(b []byte) error { _, err := DecodeEnrollRequest(b); return err }, `{"v":1,"token":"` + strings.Repeat("t", 300) + `","device_id":"d","hardware":{"arch":"amd64"}}`, "at most 256"},
		{"predict ok", func(b []byte) error { _, err := DecodePredictRequest(b); return err }, `{"v":1,"id":"r1","model":"m@2","body":{"instances":[[1]]}}`, ""},
		{"predict no id", func(b []byte) error { _, err := DecodePredictRequest(b); return err }, `{"v":1,"model":"m","body":{}}`, "id is empty"},
		{"predict bad model", func(b []byte) error { _, err := DecodePredictRequest(b); return err }, `{"v":1,"id":"r","model":"m@","body":{}}`, "model version"},
		{"predict body not object", func(b []byte) error { _, err := DecodePredictRequest(b); return err }, `{"v":1,"id":"r","model":"m","body":[1]}`, "body: want a JSON object"},
		{"predict no body", func(b []byte) error { _, err := DecodePredictRequest(b); return err }, `{"v":1,"id":"r","model":"m"}`, "body: want a JSON object"},
		{"predict unknown field", func(b []byte) error { _, err := DecodePredictRequest(b); return err }, `{"v":1,"id":"r","model":"m","body":{},"x":1}`, `unknown field "x"`},
		{"response error ok", func(b []byte) error { _, err := DecodePredictResponse(b); return err }, `{"v":1,"id":"r","status":404,"error":{"code":"model_not_found","message":"no"}}`, ""},
		{"response 200 no body", func(b []byte) error { _, err := DecodePredictResponse(b); return err }, `{"v":1,"id":"r","status":200}`, "body: want a JSON object"},
		{"response 4xx no error", func(b []byte) error { _, err := DecodePredictResponse(b); return err }, `{"v":1,"id":"r","status":400,"body":{}}`, "error is missing"},
		{"response both", func(b []byte) error { _, err := DecodePredictResponse(b); return err }, `{"v":1,"id":"r","status":400,"body":{},"error":{"code":"x","message":""}}`, "want error only"},
		{"response bad status", func(b []byte) error { _, err := DecodePredictResponse(b); return err }, `{"v":1,"id":"r","status":99,"body":{}}`, "want 200..599"},
		{"response no code", func(b []byte) error { _, err := DecodePredictResponse(b); return err }, `{"v":1,"id":"r","status":500,"error":{"code":"","message":"m"}}`, "error.code"},
		{"too big", func(b []byte) error { _, err := DecodeJobsGet(b); return err }, `"` + strings.Repeat("a", MaxPayload) + `"`, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var de *DecodeError
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &de) {
				t.Fatalf("error = %v, want DecodeError containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n := JobNotify{V: 1, DeviceID: "d", Jobs: []Job{{JobID: "j1", Kind: JobInstall, ModelID: "m", Version: "2",
		Target: &Target{Name: "models/m/2/model.tflite", Length: 10, SHA256: "ab"}, State: JobQueued, Created: now, Deadline: now.Add(time.Minute)}}}
	b, err := Encode(n)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeJobNotify(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Jobs[0].Target.Name != n.Jobs[0].Target.Name || !got.Jobs[0].Deadline.Equal(n.Jobs[0].Deadline) {
		t.Fatalf("round trip mismatch: %+v", got)
	}
	pq := PredictRequest{V: 1, ID: "r-1", Model: "sine@1", Body: []byte(`{"instances":[[1.5]]}`)}
	if b, err = Encode(pq); err != nil {
		t.Fatal(err)
	}
	gq, err := DecodePredictRequest(b)
	if err != nil || gq.ID != pq.ID || gq.Model != pq.Model || string(gq.Body) != string(pq.Body) {
		t.Fatalf("predict request round trip: %+v %v", gq, err)
	}
	for _, pr := range []PredictResponse{
		{V: 1, ID: "r-1", Model: "sine@1", Status: 200, Body: []byte(`{"predictions":[[0.9]],"model_version":"1"}`)},
		{V: 1, ID: "r-2", Status: 422, Error: &PredictError{Code: "invalid_input", Message: "expected [1], given [2]"}},
	} {
		if b, err = Encode(pr); err != nil {
			t.Fatal(err)
		}
		gr, err := DecodePredictResponse(b)
		if err != nil || gr.ID != pr.ID || gr.Status != pr.Status || string(gr.Body) != string(pr.Body) || (pr.Error != nil && *gr.Error != *pr.Error) {
			t.Fatalf("predict response round trip: %+v %v (%s)", gr, err, b)
		}
	}
	if _, err := Encode(TelemetryRecord{LatencyP50Ms: nan()}); err == nil {
		t.Fatal("Encode(NaN) succeeded")
	}
}

func nan() float64 { var z float64; return z / z }

// TestEnrollResponseSubscribeQoS: subscribe_qos is optional (absent: the
// devices subscribe at QoS 1), 0 and 1 decode, anything else is refused.
func TestEnrollResponseSubscribeQoS(t *testing.T) {
	base := `{"v":1,"device_id":"d1","username":"d1","password":"p","broker_url":"mqtts://b:8883"`
	for _, tc := range []struct {
		extra   string
		want    int // -1: absent
		wantErr string
	}{
		{"", -1, ""},
		{`,"subscribe_qos":0`, 0, ""},
		{`,"subscribe_qos":1`, 1, ""},
		{`,"subscribe_qos":2`, 0, "subscribe_qos is 2, want 0 or 1"},
		{`,"subscribe_qos":-1`, 0, "subscribe_qos is -1, want 0 or 1"},
		{`,"subscribe_qos":"0"`, 0, "subscribe_qos"},
	} {
		r, err := DecodeEnrollResponse([]byte(base + tc.extra + "}"))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want containing %q", tc.extra, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.extra, err)
		}
		switch {
		case tc.want < 0 && r.SubscribeQoS != nil:
			t.Errorf("%s: subscribe_qos %d, want absent", tc.extra, *r.SubscribeQoS)
		case tc.want >= 0 && (r.SubscribeQoS == nil || *r.SubscribeQoS != tc.want):
			t.Errorf("%s: subscribe_qos %v, want %d", tc.extra, r.SubscribeQoS, tc.want)
		}
	}
}

func TestHasFeature(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{FeatureSubscribeQoS, true},
		{"other, " + FeatureSubscribeQoS, true},
		{" " + FeatureSubscribeQoS + " ,x", true},
		{"subscribe_qos_v2", false},
		{"x,y", false},
	} {
		if got := HasFeature(tc.header, FeatureSubscribeQoS); got != tc.want {
			t.Errorf("HasFeature(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}
