package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/agent/api"
	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/jobs"
	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/agent/predict"
	"github.com/edgefleet/edgefleet/agent/serving"
	"github.com/edgefleet/edgefleet/agent/telemetry"
	"github.com/edgefleet/edgefleet/internal/waitfor"
	"github.com/edgefleet/edgefleet/ota"
)

const models = "../../testdata/models"

type env struct {
	url   string
	mgr   *serving.Manager
	srv   *api.Server
	coll  *telemetry.Collector
	token string
}

type opts struct {
	limits  serving.Limits
	cache   int
	token   string
	maxBody int64
	mobile  bool
	speech  bool
	// api adjusts the API configuration; extra installs more models.
	api   func(*api.Config)
	extra func(*modelstore.Store)
	// backend replaces the pure-Go runtime (e.g. a gatedBackend).
	backend engine.Backend
}

// install puts file into the store as id@version and activates it when
// activate is set.
func install(t testing.TB, s *modelstore.Store, file, id, version string, activate bool) {
	t.Helper()
	ctx := context.Background()
	if err := s.Install(ctx, id, version, filepath.Join(models, file), ota.ArtifactInfo{Source: file}); err != nil {
		t.Fatal(err)
	}
	if activate {
		if err := s.Activate(ctx, id, version); err != nil {
			t.Fatal(err)
		}
	}
}

func start(t testing.TB, o opts) *env {
	t.Helper()
	dir := t.TempDir()
	store, err := modelstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	install(t, store, "iris.tflite", "iris", "1", true)
	install(t, store, "hello_world_int8.tflite", "sine", "1", true)
	install(t, store, "hello_world_float.tflite", "sine", "2", false)
	if o.speech {
		install(t, store, "micro_speech_quantized.tflite", "speech", "1", true)
	}
	if o.mobile {
		install(t, store, "mobilenet_v1_0.25_128_quant.tflite", "mobilenet", "1", true)
	}
	if o.extra != nil {
		o.extra(store)
	}
	if o.limits.Pool == 0 {
		o.limits = serving.Limits{Pool: 2, MaxBatch: 8, MaxDelay: time.Millisecond, Queue: 256}
	}
	coll := telemetry.NewCollector(nil)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var backend engine.Backend = engine.Native{}
	if o.backend != nil {
		backend = o.backend
	}
	mgr := serving.NewManager(backend, store, coll, serving.Config{Limits: o.limits, CacheEntries: o.cache, CacheTTL: time.Minute}, quiet)
	acfg := api.Config{Token: o.token, MaxBodyBytes: o.maxBody, Version: "test", Metrics: coll}
	if o.api != nil {
		o.api(&acfg)
	}
	svc := predict.New(mgr, acfg.PredictLimits())
	acfg.Service = svc
	srv := api.New(acfg, mgr, nil, nil, quiet)
	q, err := jobs.Open(dir, jobs.Predictor(svc, 0), jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetJobs(q)
	ctx, cancel := context.WithCancel(context.Background())
	q.Start(ctx)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		cancel()
		q.Close()
		mgr.Close()
		store.Close()
	})
	return &env{url: hs.URL, mgr: mgr, srv: srv, coll: coll, token: o.token}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(t testing.TB, method, path string, body any, hdr ...string) response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, e.url+path, r)
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, raw}
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) errCode(t testing.TB) string {
	var eb predict.ErrorBody
	if err := json.Unmarshal(r.body, &eb); err != nil || eb.Error == nil || eb.Error.Message == "" {
		t.Fatalf("status %d body %s is not an error body", r.status, r.body)
	}
	return eb.Error.Code
}

func predictions(t testing.TB, r response) ([][]float64, predict.Response) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var pr predict.Response
	r.json(t, &pr)
	var out [][]float64
	for _, p := range pr.Predictions {
		raw, _ := json.Marshal(p)
		var v []float64
		json.Unmarshal(raw, &v)
		out = append(out, v)
	}
	return out, pr
}

func f32b64(v ...float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		bits := math.Float32bits(x)
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(bits), byte(bits>>8), byte(bits>>16), byte(bits>>24)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func pngB64(t testing.TB) string {
	img := image.NewRGBA(image.Rect(0, 0, 32, 24))
	for y := 0; y < 24; y++ {
		for x := 0; x < 32; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 8), uint8(y * 10), 90, 255})
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func TestPredict(t *testing.T) {
	e := start(t, opts{mobile: true})
	t.Run("iris numeric", func(t *testing.T) {
		p, pr := predictions(t, e.do(t, "POST", "/api/v1/models/iris/predict", `{"instances":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}`))
		if len(p) != 2 || len(p[0]) != 3 || pr.ModelVersion != "1" || pr.Model != "iris" {
			t.Fatalf("predictions %v, %+v", p, pr)
		}
		if p[0][0] < 0.9 || p[1][2] < 0.9 {
			t.Errorf("setosa/virginica not predicted: %v", p)
		}
	})
	t.Run("iris b64 equals numeric", func(t *testing.T) {
		a, _ := predictions(t, e.do(t, "POST", "/api/v1/models/iris/predict", `{"instances":[[5.9,3.0,4.2,1.5]]}`))
		b, _ := predictions(t, e.do(t, "POST", "/api/v1/models/iris/predict", fmt.Sprintf(`{"instances":[{"b64":%q}]}`, f32b64(5.9, 3.0, 4.2, 1.5))))
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("numeric %v != b64 %v", a, b)
		}
	})
	t.Run("sine int8 quantized in and out", func(t *testing.T) {
		p, _ := predictions(t, e.do(t, "POST", "/api/v1/models/sine/predict", `{"instances":[[0.5],[2.0],[4.5]]}`))
		for i, x := range []float64{0.5, 2.0, 4.5} {
			if math.Abs(p[i][0]-math.Sin(x)) > 0.1 {
				t.Errorf("sine(%v) = %v", x, p[i][0])
			}
		}
	})
	t.Run("version pinned", func(t *testing.T) {
		_, pr := predictions(t, e.do(t, "POST", "/api/v1/models/sine@2/predict", `{"instances":[[1.0]]}`))
		if pr.ModelVersion != "2" {
			t.Fatalf("model_version %q, want 2", pr.ModelVersion)
		}
	})
	t.Run("image", func(t *testing.T) {
		p, _ := predictions(t, e.do(t, "POST", "/api/v1/models/mobilenet/predict", fmt.Sprintf(`{"instances":[{"image_b64":%q}]}`, pngB64(t))))
		var sum float64
		for _, v := range p[0] {
			sum += v
		}
		if len(p[0]) != 1001 || sum < 0.5 || sum > 1.1 { // uint8 softmax: tiny scores quantize to 0
			t.Fatalf("%d scores summing to %v", len(p[0]), sum)
		}
	})
	t.Run("batch-predict partial errors", func(t *testing.T) {
		r := e.do(t, "POST", "/api/v1/models/iris/batch-predict", `{"instances":[[5.1,3.5,1.4,0.2],[1,2],[6.7,3.0,5.2,2.3]]}`)
		var pr predict.Response
		r.json(t, &pr)
		if r.status != 200 || pr.Predictions[0] == nil || pr.Predictions[1] != nil || pr.Predictions[2] == nil ||
			len(pr.Errors) != 3 || pr.Errors[1] == nil || pr.Errors[1].Code != "invalid_input" {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
	})
}

func TestErrors(t *testing.T) {
	e := start(t, opts{maxBody: 2048, limits: serving.Limits{Pool: 1, MaxBatch: 1, Queue: 1}})
	big := `{"instances":[` + strings.Repeat("[5.1,3.5,1.4,0.2],", 200) + `[1,1,1,1]]}`
	many := `{"instances":[` + strings.Repeat("[1,2,3,4],", 64) + `[1,1,1,1]]}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
		want                     string
	}{
		{"malformed json", "POST", "/api/v1/models/iris/predict", `{"instances":[`, 400, "bad_request", "malformed JSON"},
		{"no instances", "POST", "/api/v1/models/iris/predict", `{"instances":[]}`, 400, "bad_request", "instances"},
		{"unknown model", "POST", "/api/v1/models/nope/predict", `{"instances":[[1]]}`, 404, "model_not_found", "nope"},
		{"unknown version", "POST", "/api/v1/models/iris@9/predict", `{"instances":[[1]]}`, 404, "version_not_found", "iris@9"},
		{"wrong shape", "POST", "/api/v1/models/iris/predict", `{"instances":[[1,2,3]]}`, 422, "invalid_input", "expected shape [4] (4 values of float32), given shape [3]"},
		{"ragged", "POST", "/api/v1/models/iris/predict", `{"instances":[[[1,2],[3]]]}`, 422, "invalid_input", "ragged"},
		{"not numbers", "POST", "/api/v1/models/iris/predict", `{"instances":[["a","b","c","d"]]}`, 422, "invalid_input", "expected numbers"},
		{"b64 wrong size", "POST", "/api/v1/models/iris/predict", `{"instances":[{"b64":"AAAA"}]}`, 422, "invalid_input", "expected 16 bytes"},
		{"b64 invalid", "POST", "/api/v1/models/iris/predict", `{"instances":[{"b64":"!!"}]}`, 422, "invalid_input", "base64"},
		{"image into vector", "POST", "/api/v1/models/iris/predict", `{"instances":[{"image_b64":"AAAA"}]}`, 422, "invalid_input", "not an image"},
		{"body too large", "POST", "/api/v1/models/iris/predict", big, 413, "body_too_large", "2048"},
		{"queue full", "POST", "/api/v1/models/iris/batch-predict", `{"instances":[[1,2,3,4],[1,2,3,4],[1,2,3,4]]}`, 200, "", ""},
		{"too many instances", "POST", "/api/v1/models/iris/predict", many, 413, "too_many_instances", "batch-predict"},
		{"unknown endpoint", "GET", "/api/v1/nothing", "", 404, "not_found", "openapi"},
		{"wrong method", "GET", "/api/v1/models/iris/predict", "", 405, "method_not_allowed", "allowed methods: POST"},
		{"unknown job", "GET", "/api/v1/jobs/nope", "", 404, "job_not_found", "nope"},
		{"health unknown", "GET", "/api/v1/models/nope/health", "", 404, "model_not_found", ""},
		{"v2 unknown", "GET", "/v2/models/nope", "", 404, "model_not_found", ""},
		{"v2 wrong shape", "POST", "/v2/models/iris/infer", `{"inputs":[{"name":"dense_input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`, 422, "invalid_input", "expected shape [N,4]"},
		{"v2 wrong dtype", "POST", "/v2/models/iris/infer", `{"inputs":[{"name":"dense_input","shape":[1,4],"datatype":"INT8","data":[1,2,3,4]}]}`, 422, "invalid_input", "datatype INT8"},
		{"v2 count mismatch", "POST", "/v2/models/iris/infer", `{"inputs":[{"name":"dense_input","shape":[1,4],"datatype":"FP32","data":[1,2,3]}]}`, 422, "invalid_input", "holds 4 values"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.code != "" {
				if code := r.errCode(t); code != tc.code {
					t.Fatalf("code %q, want %q: %s", code, tc.code, r.body)
				}
				if !strings.Contains(string(r.body), tc.want) {
					t.Fatalf("body %s does not say %q", r.body, tc.want)
				}
			}
		})
	}
	t.Run("413 batch larger than the queue", func(t *testing.T) {
		// Queue 1: a request of 2 instances can never be queued: 413 with
		// the limit (it was a 429 that no retry could satisfy).
		r := e.do(t, "POST", "/api/v1/models/iris/predict", `{"instances":[[1,2,3,4],[1,2,3,4]]}`)
		if r.status != 413 || r.errCode(t) != "batch_too_large" || !strings.Contains(string(r.body), "at most 1") {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
	})
}

func TestAuth(t *testing.T) {
	e := start(t, opts{token: "s3cret"})
	if r := e.do(t, "GET", "/api/v1/models", nil); r.status != 200 {
		t.Fatalf("with token: %d %s", r.status, r.body)
	}
	e.token = "wrong"
	if r := e.do(t, "GET", "/api/v1/models", nil); r.status != 401 || r.errCode(t) != "unauthorized" {
		t.Fatalf("wrong token: %d %s", r.status, r.body)
	}
	e.token = ""
	if r := e.do(t, "POST", "/api/v1/models/iris/predict", `{"instances":[[1,2,3,4]]}`); r.status != 401 {
		t.Fatalf("no token: %d", r.status)
	}
	for _, p := range []string{"/v2/health/live", "/v2/health/ready"} {
		if r := e.do(t, "GET", p, nil); r.status != 200 {
			t.Fatalf("%s without token: %d", p, r.status)
		}
	}
}

func TestModelEndpoints(t *testing.T) {
	e := start(t, opts{})
	r := e.do(t, "GET", "/api/v1/models", nil)
	var list struct {
		Models []serving.ModelStatus `json:"models"`
	}
	r.json(t, &list)
	if r.status != 200 || len(list.Models) != 2 || list.Models[1].ID != "sine" || len(list.Models[1].Versions) != 2 || list.Models[1].Active != "1" {
		t.Fatalf("models: %s", r.body)
	}
	var h api.ModelHealth
	r = e.do(t, "GET", "/api/v1/models/iris/health", nil)
	r.json(t, &h)
	if r.status != 200 || h.Status != "ready" || h.Version != "1" || !h.Batchable || h.Backend != "native" {
		t.Fatalf("health: %s", r.body)
	}
	var md api.ModelMetadata
	r = e.do(t, "GET", "/api/v1/models/sine/metadata", nil)
	r.json(t, &md)
	if r.status != 200 || md.Inputs[0].DType != "int8" || len(md.Inputs[0].Scale) != 1 || md.Active != "1" || !md.BatchDim {
		t.Fatalf("metadata: %s", r.body)
	}
	r = e.do(t, "GET", "/api/v1/status", nil)
	var st api.Status
	r.json(t, &st)
	if r.status != 200 || st.Version != "test" || len(st.Models) != 2 {
		t.Fatalf("status: %s", r.body)
	}
}

func TestV2(t *testing.T) {
	e := start(t, opts{})
	for _, p := range []string{"/v2/health/live", "/v2/health/ready", "/v2/models/iris/ready", "/v2/models/sine/versions/2/ready"} {
		if r := e.do(t, "GET", p, nil); r.status != 200 {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
	var md api.V2ModelMetadata
	r := e.do(t, "GET", "/v2/models/sine", nil)
	r.json(t, &md)
	if md.Name != "sine" || len(md.Versions) != 2 || md.Inputs[0].Datatype != "INT8" || md.Outputs[0].Datatype != "FP32" || md.Inputs[0].Shape[0] != -1 {
		t.Fatalf("v2 metadata: %s", r.body)
	}
	if r := e.do(t, "GET", "/v2/models/sine/versions/2", nil); r.status != 200 || !strings.Contains(string(r.body), `"FP32"`) {
		t.Fatalf("v2 version metadata: %d %s", r.status, r.body)
	}
	var out api.V2InferResponse
	r = e.do(t, "POST", "/v2/models/iris/infer", `{"id":"r1","inputs":[{"name":"dense_input","shape":[2,4],"datatype":"FP32","data":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}],"outputs":[{"name":"Identity"}]}`)
	r.json(t, &out)
	if r.status != 200 || out.ID != "r1" || out.ModelVersion != "1" || len(out.Outputs) != 1 || fmt.Sprint(out.Outputs[0].Shape) != "[2 3]" {
		t.Fatalf("v2 infer: %s", r.body)
	}
	data := out.Outputs[0].Data.([]any)
	if len(data) != 6 || data[0].(float64) < 0.9 || data[5].(float64) < 0.9 {
		t.Fatalf("v2 data %v", data)
	}
	// Quantized input given as raw INT8 values vs as FP32 real values.
	r1 := e.do(t, "POST", "/v2/models/sine/versions/1/infer", `{"inputs":[{"name":"serving_default_dense_input:0","shape":[1,1],"datatype":"FP32","data":[1.0]}]}`)
	if r1.status != 200 {
		t.Fatalf("v2 infer version: %d %s", r1.status, r1.body)
	}
	var o1 api.V2InferResponse
	r1.json(t, &o1)
	if y := o1.Outputs[0].Data.([]any)[0].(float64); math.Abs(y-math.Sin(1)) > 0.1 {
		t.Fatalf("sine(1) = %v", y)
	}
}

// TestOpenAPICoversRoutes: every endpoint answers, and /openapi.json
// documents every one of them.
func TestOpenAPICoversRoutes(t *testing.T) {
	e := start(t, opts{})
	r := e.do(t, "GET", "/openapi.json", nil)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	r.json(t, &doc)
	src, err := os.ReadFile("server.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`mux\.HandleFunc\("(GET|POST|PUT) ([^"]+)"`)
	n := 0
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		n++
		ops, ok := doc.Paths[m[2]]
		if !ok {
			t.Errorf("route %s %s missing from openapi.json", m[1], m[2])
			continue
		}
		if _, ok := ops[strings.ToLower(m[1])]; !ok {
			t.Errorf("route %s %s: method missing from openapi.json", m[1], m[2])
		}
	}
	if n < 20 || doc.OpenAPI == "" {
		t.Fatalf("found %d routes, openapi %q", n, doc.OpenAPI)
	}
}

func TestMetrics(t *testing.T) {
	e := start(t, opts{cache: 100})
	body := `{"instances":[[5.1,3.5,1.4,0.2]]}`
	for i := 0; i < 2; i++ {
		predictions(t, e.do(t, "POST", "/api/v1/models/iris/predict", body))
	}
	e.do(t, "POST", "/api/v1/models/iris/predict", `{"instances":[[1]]}`)
	r := e.do(t, "GET", "/metrics", nil)
	m := string(r.body)
	for _, want := range []string{
		`edge_agent_requests_total{model="iris",role="primary",version="1"} 3`,
		`edge_agent_errors_total{code="invalid_input",model="iris",role="primary",version="1"} 1`,
		`edge_agent_cache_lookups_total{model="iris",result="hit",version="1"} 1`,
		`edge_agent_cache_lookups_total{model="iris",result="miss",version="1"} 1`,
		`edge_agent_predicted_class_total{class="0",model="iris",role="primary",version="1"} 2`,
		`edge_agent_input_feature_mean{feature="0",model="iris",role="primary",version="1"} 5.09999`,
		`edge_agent_queue_length{model="iris",version="1"} 0`,
		`edge_agent_interpreters{model="iris",version="1"} `,
		`edge_agent_interpreter_memory_bytes{model="iris",version="1"}`,
		`edge_agent_interpreter_memory_budget_used_bytes`,
		`edge_agent_request_duration_seconds_bucket`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestStreamFlushesPerLine writes one line at a time and reads each answer
// before sending the next: the response is flushed per line, in order.
func TestStreamFlushesPerLine(t *testing.T) {
	e := start(t, opts{})
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", e.url+"/api/v1/models/iris/stream", pr)
	req.Header.Set("Content-Type", "application/x-ndjson")
	respc := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			close(respc)
			return
		}
		respc <- resp
	}()
	lines := []string{`[5.1,3.5,1.4,0.2]`, `[1,2]`, `{"b64":"` + f32b64(6.7, 3.0, 5.2, 2.3) + `"}`}
	fmt.Fprintln(pw, lines[0])
	resp := <-respc
	if resp == nil {
		t.FailNow()
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	for i := range lines {
		if i > 0 {
			fmt.Fprintln(pw, lines[i])
		}
		got := make(chan string, 1)
		go func() { s, _ := rd.ReadString('\n'); got <- s }()
		var s string
		select {
		case s = <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("line %d: no answer before the next line was sent (not flushed)", i+1)
		}
		var sl api.StreamLine
		if err := json.Unmarshal([]byte(s), &sl); err != nil || sl.Line != i+1 {
			t.Fatalf("line %d: %q", i+1, s)
		}
		if (i == 1) != (sl.Error != nil) {
			t.Fatalf("line %d: %q", i+1, s)
		}
	}
	pw.Close()
	if rest, _ := io.ReadAll(rd); len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("trailing output %q", rest)
	}
}

func TestJobsEndpoint(t *testing.T) {
	e := start(t, opts{})
	r := e.do(t, "POST", "/api/v1/models/iris/jobs", `{"instances":[[5.1,3.5,1.4,0.2],[1]]}`)
	var acc api.JobAccepted
	r.json(t, &acc)
	if r.status != 202 || acc.JobID == "" || r.header.Get("Location") != "/api/v1/jobs/"+acc.JobID {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	if r := e.do(t, "POST", "/api/v1/models/nope/jobs", `{"instances":[[1]]}`); r.status != 404 {
		t.Fatalf("job for unknown model: %d", r.status)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var j jobs.Job
		e.do(t, "GET", "/api/v1/jobs/"+acc.JobID, nil).json(t, &j)
		if j.Status == jobs.Succeeded {
			var pr predict.Response
			json.Unmarshal(j.Result, &pr)
			if len(pr.Predictions) != 2 || pr.Predictions[0] == nil || pr.Errors[1] == nil {
				t.Fatalf("job result %s", j.Result)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("job did not finish")
}

func TestShadowAndAB(t *testing.T) {
	e := start(t, opts{})
	if r := e.do(t, "PUT", "/api/v1/models/sine/route", `{"shadow":"2"}`); r.status != 200 {
		t.Fatalf("set shadow: %d %s", r.status, r.body)
	}
	if r := e.do(t, "PUT", "/api/v1/models/sine/route", `{"shadow":"9"}`); r.status != 404 {
		t.Fatalf("unknown shadow version: %d %s", r.status, r.body)
	}
	e.do(t, "PUT", "/api/v1/models/sine/route", `{"shadow":"2"}`)
	for i := 0; i < 5; i++ {
		_, pr := predictions(t, e.do(t, "POST", "/api/v1/models/sine/predict", `{"instances":[[1.0],[2.0]]}`))
		if pr.ModelVersion != "1" {
			t.Fatalf("shadow served the request: %+v", pr)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := string(e.do(t, "GET", "/metrics", nil).body)
		if strings.Contains(m, `edge_agent_shadow_comparisons_total{agree="true",model="sine",version="2"} 10`) {
			if !strings.Contains(m, `edge_agent_shadow_max_abs_diff{model="sine",version="2"} 0.0`) {
				t.Fatalf("int8 vs float sine: max abs diff not recorded or too large:\n%s", grep(m, "shadow_max"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shadow comparisons not recorded:\n%s", grep(m, "shadow"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A/B: 30 % to version 2, sticky by key.
	if r := e.do(t, "PUT", "/api/v1/models/sine/route", `{"candidate":"2","candidate_percent":30}`); r.status != 200 {
		t.Fatalf("set a/b: %d %s", r.status, r.body)
	}
	if r := e.do(t, "PUT", "/api/v1/models/sine/route", `{"candidate":"2","candidate_percent":130}`); r.status != 422 {
		t.Fatalf("percent 130: %d %s", r.status, r.body)
	}
	counts := map[string]int{}
	for k := 0; k < 200; k++ {
		key := fmt.Sprintf("user-%d", k)
		var first string
		for rep := 0; rep < 2; rep++ {
			_, pr := predictions(t, e.do(t, "POST", "/api/v1/models/sine/predict", `{"instances":[[1.0]]}`, "X-Request-Key", key))
			if rep == 0 {
				first = pr.ModelVersion
				counts[first]++
			} else if pr.ModelVersion != first {
				t.Fatalf("key %s not sticky: %s then %s", key, first, pr.ModelVersion)
			}
		}
	}
	if counts["2"] < 35 || counts["2"] > 85 {
		t.Fatalf("a/b split %v, want about 30%% on version 2", counts)
	}
	// Pinned requests ignore the split.
	if _, pr := predictions(t, e.do(t, "POST", "/api/v1/models/sine@1/predict", `{"instances":[[1.0]]}`, "X-Request-Key", "user-1")); pr.ModelVersion != "1" {
		t.Fatal("pinned request routed to the candidate")
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestMicroBatching: concurrent single-instance requests are combined into
// batched invocations, and every caller gets its own row (checked against
// an unbatched run of the same input).
func TestMicroBatching(t *testing.T) {
	gate := newGate()
	e := start(t, opts{speech: true, backend: gatedBackend{engine.Native{}, gate}, limits: serving.Limits{Pool: 1, MaxBatch: 8, MaxDelay: 20 * time.Millisecond, Queue: 256}})
	bodies := make([]string, 4)
	want := make([]string, 4)
	for k := range bodies {
		b := make([]byte, 1960)
		for i := range b {
			b[i] = byte(i*(k+3) + k)
		}
		bodies[k] = fmt.Sprintf(`{"instances":[{"b64":%q}]}`, base64.StdEncoding.EncodeToString(b))
		p, _ := predictions(t, e.do(t, "POST", "/api/v1/models/speech/predict", bodies[k]))
		want[k] = fmt.Sprint(p[0])
	}
	l, err := e.mgr.Get(context.Background(), "speech", "")
	if err != nil {
		t.Fatal(err)
	}
	inv0, n0 := l.BatchStats()
	// The one worker is held inside a run while 48 requests queue up
	// (whatever the machine's speed), then released: it must take them
	// in batches of up to 8, not one by one.
	gate.arm()
	var wg sync.WaitGroup
	check := func(i int) {
		defer wg.Done()
		p, _ := predictions(t, e.do(t, "POST", "/api/v1/models/speech/predict", bodies[i%4]))
		if got := fmt.Sprint(p[0]); got != want[i%4] {
			t.Errorf("request %d: batched result %s differs from single %s", i, got, want[i%4])
		}
	}
	wg.Add(1)
	go check(0)
	<-gate.entered
	for i := 1; i <= 48; i++ {
		wg.Add(1)
		go check(i)
	}
	waitfor.Until(t, "48 queued requests", func() bool { return l.QueueLen() == 48 })
	gate.release()
	wg.Wait()
	inv, n := l.BatchStats()
	inv, n = inv-inv0, n-n0
	if n != 49 || inv > 1+48/8 {
		t.Fatalf("%d invocations for %d rows, want 49 rows in at most %d (batches of 8)", inv, n, 1+48/8)
	}
	t.Logf("%d rows in %d invocations", n, inv)
}

// gate holds the first Run after arm until release; entered is closed
// when that run has started.
type gate struct {
	armed    atomic.Bool
	entered  chan struct{}
	released chan struct{}
	once     sync.Once
}

func newGate() *gate { return &gate{entered: make(chan struct{}), released: make(chan struct{})} }

func (g *gate) arm()     { g.armed.Store(true) }
func (g *gate) release() { close(g.released) }

// wait blocks the calling run if the gate is armed and this is its first run.
func (g *gate) wait() {
	if !g.armed.Load() {
		return
	}
	first := false
	g.once.Do(func() { first = true; close(g.entered) })
	if first {
		<-g.released
	}
}

// gatedBackend is a real backend whose sessions stop at a gate: tests use
// it to hold a serving worker busy for as long as they need, instead of
// racing a timer.
type gatedBackend struct {
	engine.Backend
	g *gate
}

func (b gatedBackend) Load(ctx context.Context, data []byte) (engine.Model, error) {
	m, err := b.Backend.Load(ctx, data)
	if err != nil {
		return nil, err
	}
	return gatedModel{m, b.g}, nil
}

type gatedModel struct {
	engine.Model
	g *gate
}

func (m gatedModel) NewSession(ctx context.Context, threads int) (engine.Session, error) {
	s, err := m.Model.NewSession(ctx, threads)
	if err != nil {
		return nil, err
	}
	return gatedSession{s, m.g}, nil
}

type gatedSession struct {
	engine.Session
	g *gate
}

func (s gatedSession) Run(ctx context.Context, batch int, inputs [][]byte) ([]engine.Tensor, error) {
	s.g.wait()
	return s.Session.Run(ctx, batch, inputs)
}
