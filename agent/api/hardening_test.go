package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
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
	"github.com/edgefleet/edgefleet/agent/serving/servingtest"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/ota"
)

// installGenerated installs model bytes as id@1 and activates it.
func installGenerated(t testing.TB, s *modelstore.Store, id string, build func() ([]byte, error)) {
	t.Helper()
	data, err := build()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), id+".tflite")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Install(context.Background(), id, "1", p, ota.ArtifactInfo{Source: p}); err != nil {
		t.Fatal(err)
	}
	if err := s.Activate(context.Background(), id, "1"); err != nil {
		t.Fatal(err)
	}
}

// heapPeak runs fn while sampling the heap and returns the peak growth
// over the heap in use before it.
func heapPeak(fn func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	<-done
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// speechBody is a batch-predict body of about size bytes for the
// micro_speech model (int8 [1,49,40,1] input), numbers as nested arrays.
func speechBody(size int) []byte {
	var inst bytes.Buffer
	inst.WriteString("[")
	for i := 0; i < 49; i++ {
		if i > 0 {
			inst.WriteString(",")
		}
		inst.WriteString("[")
		for j := 0; j < 40; j++ {
			if j > 0 {
				inst.WriteString(",")
			}
			fmt.Fprintf(&inst, "[%d.5]", (i*40+j)%200-100)
		}
		inst.WriteString("]")
	}
	inst.WriteString("]")
	var b bytes.Buffer
	b.WriteString(`{"instances":[`)
	for n := 0; b.Len()+inst.Len()+2 < size; n++ {
		if n > 0 {
			b.WriteString(",")
		}
		b.Write(inst.Bytes())
	}
	b.WriteString("]}")
	return b.Bytes()
}

func post(t testing.TB, url string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestBigBodyHeap: a 16 MiB body is decoded straight into typed buffers:
// the heap grows by at most BodyMemoryFactor × the body (it grew ~40×
// through `any`), and a 16 MiB body of tiny instances is refused (413)
// without being expanded.
func TestBigBodyHeap(t *testing.T) {
	e := start(t, opts{speech: true, limits: serving.Limits{Pool: 2, MaxBatch: 8, MaxDelay: time.Millisecond, Queue: 1024}})
	body := speechBody(16 << 20)
	var code int
	var resp []byte
	growth := heapPeak(func() { code, resp = post(t, e.url+"/api/v1/models/speech/batch-predict", body) })
	if code != 200 {
		t.Fatalf("status %d: %.300s", code, resp)
	}
	var pr predict.Response
	json.Unmarshal(resp, &pr)
	t.Logf("16 MiB body (%d instances of 1960 values): heap grew %.1f MiB (%.2f× the body)", len(pr.Predictions), float64(growth)/(1<<20), float64(growth)/float64(len(body)))
	if limit := uint64(api.BodyMemoryFactor * len(body)); growth > limit {
		t.Fatalf("heap grew %d bytes for a %d-byte body, more than %d", growth, len(body), limit)
	}

	// v2: 16 MiB of flat data for a batch of speech inputs (as many as
	// the queue takes).
	rows := 1000
	var v2 bytes.Buffer
	fmt.Fprintf(&v2, `{"inputs":[{"name":"Reshape_1","shape":[%d,1960],"datatype":"INT8","data":[`, rows)
	v2.WriteString(strings.TrimSuffix(strings.Repeat("-100.00,", rows*1960), ","))
	v2.WriteString("]}]}")
	growth = heapPeak(func() { code, resp = post(t, e.url+"/v2/models/speech/infer", v2.Bytes()) })
	t.Logf("16 MiB v2 body (%d rows): %d, heap grew %.1f MiB (%.2f× the body)", rows, code, float64(growth)/(1<<20), float64(growth)/float64(v2.Len()))
	if code != 200 {
		t.Fatalf("v2: %d %.300s", code, resp)
	}
	if limit := uint64(api.BodyMemoryFactor * v2.Len()); growth > limit {
		t.Fatalf("v2: heap grew %d bytes for a %d-byte body", growth, v2.Len())
	}

	var iris bytes.Buffer
	iris.WriteString(`{"instances":[`)
	for iris.Len() < 16<<20-64 {
		iris.WriteString("[5.1,3.5,1.4,0.2],")
	}
	iris.WriteString("[1,1,1,1]]}")
	growth = heapPeak(func() { code, resp = post(t, e.url+"/api/v1/models/iris/batch-predict", iris.Bytes()) })
	t.Logf("16 MiB body of iris rows: %d, heap grew %.1f MiB", code, float64(growth)/(1<<20))
	if code != 413 || !strings.Contains(string(resp), "at most 10000 (max_batch_instances)") {
		t.Fatalf("status %d: %.300s", code, resp)
	}
	if limit := uint64(api.BodyMemoryFactor * iris.Len()); growth > limit {
		t.Fatalf("heap grew %d bytes for a refused %d-byte body", growth, iris.Len())
	}
}

// TestConcurrentBigBodiesHeap: four concurrent 16 MiB bodies stay within
// the request memory (they took 2.8 GB).
func TestConcurrentBigBodiesHeap(t *testing.T) {
	e := start(t, opts{speech: true, limits: serving.Limits{Pool: 2, MaxBatch: 8, MaxDelay: time.Millisecond, Queue: 1024}})
	body := speechBody(16 << 20)
	var ok, shed atomic.Int32
	growth := heapPeak(func() {
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch code, b := post(t, e.url+"/api/v1/models/speech/batch-predict", body); code {
				case 200:
					ok.Add(1)
				case 429:
					shed.Add(1)
				default:
					t.Errorf("status %d: %.200s", code, b)
				}
			}()
		}
		wg.Wait()
	})
	budget := uint64(4 * api.BodyMemoryFactor * (16 << 20)) // the default request memory
	t.Logf("4 × 16 MiB bodies: %d answered, %d shed, heap grew %.1f MiB (budget %d MiB)", ok.Load(), shed.Load(), float64(growth)/(1<<20), budget>>20)
	if ok.Load() == 0 || growth > budget {
		t.Fatalf("%d answered; heap grew %d, budget %d", ok.Load(), growth, budget)
	}
}

// TestRequestMemoryBudget: bodies in flight hold request memory; beyond it
// a big request gets 429 with a message, a small one still passes, and
// the big one passes once memory is free again.
func TestRequestMemoryBudget(t *testing.T) {
	e := start(t, opts{maxBody: 1 << 20, api: func(c *api.Config) { c.RequestMemory = 6 << 20 }})
	host := strings.TrimPrefix(e.url, "http://")
	// openSlow starts a batch request that declares 1 MiB and sends only
	// its first bytes: it holds 4 MiB of the 6 MiB for as long as it runs.
	openSlow := func() net.Conn {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /api/v1/models/iris/batch-predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{\"instances\":[", 1<<20)
		return c
	}
	slow := openSlow()
	defer func() { slow.Close() }()
	big := []byte(`{"instances":[[5.1,3.5,1.4,0.2]]` + strings.Repeat(" ", 1<<19) + `}`)
	deadline := time.Now().Add(20 * time.Second)
	var code int
	var body []byte
	for { // until the slow request holds its reservation
		code, body = post(t, e.url+"/api/v1/models/iris/batch-predict", big)
		if code == 429 || time.Now().After(deadline) {
			break
		}
		// A big body that got in first can make the slow request the
		// one refused (an answer on its connection): start it again.
		slow.SetReadDeadline(time.Now().Add(time.Millisecond))
		if n, _ := slow.Read(make([]byte, 1)); n > 0 {
			slow.Close()
			slow = openSlow()
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code != 429 || !strings.Contains(string(body), "request memory") {
		t.Fatalf("big body while memory is held: %d %s", code, body)
	}
	if code, body := post(t, e.url+"/api/v1/models/iris/predict", []byte(`{"instances":[[5.1,3.5,1.4,0.2]]}`)); code != 200 {
		t.Fatalf("small body: %d %s", code, body)
	}
	slow.Close()
	deadline = time.Now().Add(20 * time.Second)
	for {
		code, body = post(t, e.url+"/api/v1/models/iris/batch-predict", big)
		if code == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code != 200 {
		t.Fatalf("big body after release: %d %s", code, body)
	}
	if code, body := post(t, e.url+"/api/v1/models/iris/predict", bytes.Repeat([]byte(" "), 2<<20)); code != 413 {
		t.Fatalf("2 MiB body: %d %s", code, body)
	}
}

// TestRateLimit: one client beyond its bucket gets 429 with Retry-After;
// another client is unaffected; the first is served again after the
// refill (fake clock: nothing depends on timing).
func TestRateLimit(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Unix(1000, 0).UnixNano())
	e := start(t, opts{api: func(c *api.Config) {
		c.RateLimit = api.RateLimit{PerSecond: 2, Burst: 3}
		c.Clock = clock.Func(func() time.Time { return time.Unix(0, now.Load()) })
	}})
	h := e.srv.Handler()
	get := func(addr string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/api/v1/models", nil)
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := range 3 {
		if rec := get("10.0.0.1:5000"); rec.Code != 200 {
			t.Fatalf("request %d within the burst: %d", i, rec.Code)
		}
	}
	var shed int
	for range 50 { // the attack
		if rec := get("10.0.0.1:5001"); rec.Code == 429 {
			shed++
			if rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), "rate_limited") {
				t.Fatalf("429 without Retry-After or code: %v %s", rec.Header(), rec.Body)
			}
		}
	}
	if shed != 50 {
		t.Fatalf("%d of 50 requests beyond the burst shed", shed)
	}
	if rec := get("10.0.0.2:5000"); rec.Code != 200 { // control: another client
		t.Fatalf("other client: %d", rec.Code)
	}
	if rec := get("10.0.0.1:5000"); rec.Code != 429 {
		t.Fatal("attacker served again without a refill")
	}
	now.Add(int64(time.Second))
	if rec := get("10.0.0.1:5000"); rec.Code != 200 {
		t.Fatalf("after 1 s: %d", rec.Code)
	}
	if rec := get("10.0.0.1:5000"); rec.Code != 200 {
		t.Fatalf("second token after 1 s: %d", rec.Code)
	}
	if rec := get("10.0.0.1:5000"); rec.Code != 429 {
		t.Fatal("a third token after 1 s at 2/s")
	}
}

// TestNonFiniteOutputs: an input that drives the model to NaN/Inf gets a
// 200 with the values as strings (it was a 200 with an empty body), the
// stream goes on, and the job succeeds (it failed as internal).
func TestNonFiniteOutputs(t *testing.T) {
	e := start(t, opts{})
	// 1e39 overflows float32 to +Inf on input, so +Inf and -Inf terms
	// meet in the first layer's sums in any summation order (SIMD or
	// not): NaN deterministically. A finite 3e38 overflows or not
	// depending on the order of the sums.
	huge := `[1e39,1e39,1e39,1e39]`
	r := e.do(t, "POST", "/api/v1/models/iris/predict", `{"instances":[`+huge+`,[5.1,3.5,1.4,0.2]]}`)
	if r.status != 200 || !strings.Contains(string(r.body), `["NaN","NaN","NaN"]`) {
		t.Fatalf("predict: %d %s", r.status, r.body)
	}
	var pr struct{ Predictions []json.RawMessage }
	r.json(t, &pr)
	if len(pr.Predictions) != 2 || strings.Contains(string(pr.Predictions[1]), "NaN") {
		t.Fatalf("predictions %s", r.body)
	}
	r = e.do(t, "POST", "/v2/models/iris/infer", `{"inputs":[{"name":"dense_input","shape":[1,4],"datatype":"FP32","data":`+huge+`}]}`)
	if r.status != 200 || !strings.Contains(string(r.body), `"data":["NaN","NaN","NaN"]`) {
		t.Fatalf("v2: %d %s", r.status, r.body)
	}
	r = e.do(t, "POST", "/api/v1/models/iris/stream", huge+"\n[5.1,3.5,1.4,0.2]\n")
	lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
	if r.status != 200 || len(lines) != 2 || !strings.Contains(lines[0], "NaN") || !strings.Contains(lines[1], `"line":2,"prediction":[`) {
		t.Fatalf("stream: %d %q", r.status, lines)
	}
	r = e.do(t, "POST", "/api/v1/models/iris/jobs", `{"instances":[`+huge+`]}`)
	var acc api.JobAccepted
	r.json(t, &acc)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var j jobs.Job
		e.do(t, "GET", "/api/v1/jobs/"+acc.JobID, nil).json(t, &j)
		if j.Status == jobs.Succeeded && strings.Contains(string(j.Result), "NaN") {
			break
		}
		if j.Status == jobs.Failed || time.Now().After(deadline) {
			t.Fatalf("job %+v", j)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestV2BadRequests: a model without inputs runs (it panicked); a wrong
// input name, an unknown output and raw values outside the type are 400s
// with the reason (they were ignored, null, or clamped).
func TestV2BadRequests(t *testing.T) {
	e := start(t, opts{mobile: true, extra: func(s *modelstore.Store) { installGenerated(t, s, "const", servingtest.ConstModel) }})
	pixels := func(bad string) string {
		v := make([]string, 128*128*3)
		for i := range v {
			v[i] = fmt.Sprint(i % 256)
		}
		if bad != "" {
			v[1234] = bad
		}
		return `{"inputs":[{"name":"input","shape":[1,128,128,3],"datatype":"UINT8","data":[` + strings.Join(v, ",") + `]}]}`
	}
	var md api.V2ModelMetadata
	e.do(t, "GET", "/v2/models/mobilenet", nil).json(t, &md)
	name := md.Inputs[0].Name
	tests := []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"no inputs", "/v2/models/const/infer", `{"inputs":[]}`, 200, `"data":[11,22]`},
		{"no inputs, none given", "/v2/models/const/infer", `{}`, 200, `"data":[11,22]`},
		{"inputs to a model without", "/v2/models/const/infer", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, 422, "the model has 0"},
		{"wrong input name", "/v2/models/iris/infer", `{"inputs":[{"name":"petals","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`, 400, `unknown input \"petals\": the model's inputs are \"dense_input\"`},
		{"unknown output", "/v2/models/iris/infer", `{"inputs":[{"name":"dense_input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"outputs":[{"name":"nope"}]}`, 400, `unknown output \"nope\"`},
		{"uint8 300", "/v2/models/mobilenet/infer", strings.Replace(pixels("300"), `"input"`, `"`+name+`"`, 1), 400, "data[1234] = 300: UINT8 takes integers 0..255"},
		{"uint8 -1", "/v2/models/mobilenet/infer", strings.Replace(pixels("-1"), `"input"`, `"`+name+`"`, 1), 400, "data[1234] = -1"},
		{"uint8 fraction", "/v2/models/mobilenet/infer", strings.Replace(pixels("2.5"), `"input"`, `"`+name+`"`, 1), 400, "data[1234] = 2.5"},
		{"uint8 valid", "/v2/models/mobilenet/infer", strings.Replace(pixels(""), `"input"`, `"`+name+`"`, 1), 200, `"datatype":"FP32"`},
		{"int8 200", "/v2/models/sine/infer", `{"inputs":[{"name":"serving_default_dense_input:0","shape":[1,1],"datatype":"INT8","data":[200]}]}`, 400, "INT8 takes integers -128..127"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "POST", tc.path, tc.body)
			if r.status != tc.status || !strings.Contains(string(r.body), tc.want) {
				t.Fatalf("status %d, want %d with %q: %.400s", r.status, tc.status, tc.want, r.body)
			}
		})
	}
}

// TestLoadShedding: with the only interpreter busy, a burst of 64 clients
// gets 429 with Retry-After at once beyond the latency-derived queue bound
// (they used to wait in a 1024-deep queue), the queued one is served, and
// a request's deadline cancels its never-ending invocation (504).
func TestLoadShedding(t *testing.T) {
	gate := newGate()
	e := start(t, opts{
		backend: gatedBackend{engine.Native{}, gate},
		limits:  serving.Limits{Pool: 1, MaxBatch: 1, Queue: 1024, LatencyBudget: time.Nanosecond},
		extra: func(s *modelstore.Store) {
			installGenerated(t, s, "loop", func() ([]byte, error) { return servingtest.WhileModel(5) })
		},
		api: func(c *api.Config) { c.RequestTimeout = 2 * time.Second },
	})
	l, err := e.mgr.Get(context.Background(), "loop", "")
	if err != nil {
		t.Fatal(err)
	}
	// The one worker is held inside a run (the gate) for as long as the
	// test needs, whatever the machine's speed: of 64 more requests, one
	// may queue within the 1 ns latency budget, 63 are shed at once.
	gate.arm()
	held := make(chan response, 1)
	go func() { held <- e.do(t, "POST", "/api/v1/models/loop/predict", `{"instances":[[0]]}`) }()
	<-gate.entered
	var wg sync.WaitGroup
	codes := make(chan response, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- e.do(t, "POST", "/api/v1/models/loop/predict", `{"instances":[[0]]}`)
		}()
	}
	n := map[int]int{}
	for range 63 {
		r := <-codes
		n[r.status]++
		if r.status != 429 || r.header.Get("Retry-After") == "" || r.errCode(t) != "overloaded" {
			t.Fatalf("want 429 overloaded with Retry-After while the worker is busy, got %d %v %s", r.status, r.header, r.body)
		}
	}
	if q := l.QueueLen(); q != 1 {
		t.Fatalf("%d requests queued, want the one within the budget", q)
	}
	gate.release()
	wg.Wait()
	close(codes)
	for r := range codes {
		n[r.status]++
	}
	if r := <-held; r.status != 200 {
		t.Fatalf("held request: %d %s", r.status, r.body)
	}
	if n[429] != 63 || n[200] != 1 {
		t.Fatalf("statuses %v, want 63×429 and the one queued request served", n)
	}
	// A run that never ends is cut at the request deadline: 504.
	if r := e.do(t, "POST", "/api/v1/models/loop/predict", `{"instances":[[6]]}`); r.status != 504 || r.errCode(t) != "timeout" {
		t.Fatalf("never-ending request: %d %s", r.status, r.body)
	}
	if r := e.do(t, "POST", "/api/v1/models/loop/predict", `{"instances":[[0],[1]]}`); r.status != 413 || !strings.Contains(string(r.body), "at most 1") {
		t.Fatalf("batch beyond the bound: %d %s", r.status, r.body)
	}
}

// TestModelUnavailable: a model that fails to load answers 503 with the
// reason, every time, without re-parsing the file.
func TestModelUnavailable(t *testing.T) {
	e := start(t, opts{extra: func(s *modelstore.Store) {
		installGenerated(t, s, "broken", func() ([]byte, error) { return []byte("not a model"), nil })
	}})
	for range 3 {
		r := e.do(t, "POST", "/api/v1/models/broken/predict", `{"instances":[[1]]}`)
		if r.status != 503 || r.errCode(t) != "model_unavailable" || !strings.Contains(string(r.body), "broken@1") || r.header.Get("Retry-After") == "" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	if n := e.mgr.Loads(); n != 1 {
		t.Fatalf("parsed %d times", n)
	}
}
