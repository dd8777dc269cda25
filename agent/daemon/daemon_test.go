package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/edgefleet/edgefleet/agent/jobs"
	"github.com/edgefleet/edgefleet/agent/predict"
	"github.com/edgefleet/edgefleet/agent/telemetry"
	"github.com/edgefleet/edgefleet/ota/selfupdate"
)

const models = "../../testdata/models"

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// runDaemon starts Run in the background and returns its base URL and a
// stop function that waits for a clean shutdown.
func runDaemon(t *testing.T, cfg Config, opt Options) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	opt.Ready = func(addr string) { ready <- addr }
	if opt.Log == nil {
		opt.Log = quiet()
	}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, opt) }()
	select {
	case addr := <-ready:
		return "http://" + addr, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	case err := <-done:
		cancel()
		t.Fatalf("Run exited: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("daemon not ready")
	}
	return "", nil
}

func testConfig(t *testing.T) Config {
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Telemetry.Interval = 50 * time.Millisecond
	return cfg
}

func addModel(t *testing.T, dir, file, id, version string) {
	t.Helper()
	if err := ModelsAdd(context.Background(), AddOptions{DataDir: dir, File: filepath.Join(models, file), ID: id, Version: version}); err != nil {
		t.Fatal(err)
	}
}

func post(t *testing.T, c *http.Client, url, body string) (int, []byte) {
	t.Helper()
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestJobsFinishAfterRestart: a job accepted while the agent was down (or
// cut off by a stop) is persisted and finished by the next agent process,
// on the real model.
func TestJobsFinishAfterRestart(t *testing.T) {
	cfg := testConfig(t)
	addModel(t, cfg.DataDir, "iris.tflite", "iris", "1")
	// Persist a job as the API does, then "crash" before any worker ran it.
	q, err := jobs.Open(cfg.DataDir, nil, jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	j, err := q.Submit("iris", json.RawMessage(`{"instances":[[5.1,3.5,1.4,0.2]]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	q.Close()

	url, stop := runDaemon(t, cfg, Options{Version: "t"})
	defer stop()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/api/v1/jobs/" + j.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got jobs.Job
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if got.Status == jobs.Succeeded {
			var pr predict.Response
			json.Unmarshal(got.Result, &pr)
			if pr.ModelVersion != "1" || len(pr.Predictions) != 1 {
				t.Fatalf("result %s", got.Result)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("job queued before the restart did not finish")
}

// TestServeTCPAndUnixSocket runs the daemon with both listeners and a token,
// predicts on each, and checks that telemetry records reach the ring.
// TestReportsHealthyToUpdateProbe: started as a self-update health probe
// (selfupdate.HealthMarkerEnv set), the daemon writes its version to the marker
// once it serves.
func TestReportsHealthyToUpdateProbe(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "health")
	t.Setenv(selfupdate.HealthMarkerEnv, marker)
	url, stop := runDaemon(t, testConfig(t), Options{Version: "9.9"})
	defer stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(marker)
		if err == nil && string(b) == "9.9" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no health report: %q %v", b, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get(url + "/v2/health/live")
	if err != nil {
		t.Fatalf("reported healthy but not serving: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("reported healthy but live answers %d", resp.StatusCode)
	}
}

func TestServeTCPAndUnixSocket(t *testing.T) {
	cfg := testConfig(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cfg.UnixSocket = sock
	cfg.AuthToken = "tok"
	addModel(t, cfg.DataDir, "hello_world_int8.tflite", "sine", "1")
	var deps FleetDeps
	started := make(chan struct{})
	cfg.Fleet.Broker = "mqtt://127.0.0.1:1"
	url, stop := runDaemon(t, cfg, Options{FleetLink: func(ctx context.Context, d FleetDeps) error {
		deps = d
		close(started)
		<-ctx.Done()
		return nil
	}})
	body := `{"instances":[[1.0]]}`
	req, _ := http.NewRequest("POST", url+"/api/v1/models/sine/predict", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("tcp predict: %v %v", resp, err)
	}
	resp.Body.Close()
	uc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, _ = http.NewRequest("POST", "http://unix/api/v1/models/sine/predict", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer tok")
	resp, err = uc.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("unix predict: %v %v", resp, err)
	}
	resp.Body.Close()
	if code, _ := post(t, uc, "http://unix/api/v1/models/sine/predict", body); code != 401 {
		t.Fatalf("unix socket without token: %d", code)
	}

	// The fleet hook got working dependencies.
	<-started
	out, err := deps.Predict.PredictBody(context.Background(), "sine", []byte(body), deps.PredictLimits)
	if err != nil || !bytes.Contains(out, []byte(`"model_version":"1"`)) {
		t.Fatalf("fleet Predict: %s %v", out, err)
	}
	// The error is refused like the HTTP API would (fleetlink.RefusedError).
	type refused interface {
		ErrorCode() string
		HTTPStatus() int
	}
	if _, err := deps.Predict.PredictBody(context.Background(), "nope", []byte(body), deps.PredictLimits); err == nil || err.(refused).ErrorCode() != "model_not_found" || err.(refused).HTTPStatus() != http.StatusNotFound {
		t.Fatalf("fleet Predict unknown model: %v", err)
	}
	wm := deps.WireModels(context.Background())
	if len(wm) != 1 || wm[0].ID != "sine" || wm[0].Active != "1" {
		t.Fatalf("wire models %+v", wm)
	}
	var recs []telemetry.Record
	deadline := time.Now().Add(5 * time.Second)
	for len(recs) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		recs, _ = deps.Ring.Read(0, 10)
	}
	if len(recs) == 0 || recs[0].ModelID != "sine" || recs[0].Requests < 2 || recs[0].Seq != 1 {
		t.Fatalf("telemetry records %+v", recs)
	}
	st, err := deps.Status(context.Background())
	if err != nil || st.Telemetry == nil || len(st.Models) != 1 {
		t.Fatalf("status %+v %v", st, err)
	}
	stop()
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "agent.yaml")
	os.WriteFile(file, []byte("data_dir: /from/file\nlisten: 127.0.0.1:1111\nserving:\n  max_batch: 4\n  max_delay: 5ms\ncache:\n  entries: 10\nschedules:\n  - name: nightly\n    cron: \"0 3 * * *\"\n    model: m\n    input: in.ndjson\n    output: out.ndjson\n"), 0o644)
	cfg := Defaults()
	if err := cfg.LoadFile(file); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"EDGE_LISTEN": "127.0.0.1:2222", "EDGE_MAX_BATCH": "16", "EDGE_CACHE_TTL": "1m"}
	if err := cfg.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	flagged := Defaults()
	BindFlags(fs, &flagged)
	if err := fs.Parse([]string{"--listen", "3333", "--pool", "3"}); err != nil {
		t.Fatal(err)
	}
	ApplyFlags(&cfg, &flagged, func(n string) bool { return fs.Changed(n) })
	if cfg.DataDir != "/from/file" || cfg.Listen != "127.0.0.1:3333" || cfg.Serving.MaxBatch != 16 || cfg.Serving.Pool != 3 ||
		cfg.Serving.MaxDelay != 5*time.Millisecond || cfg.Cache.Entries != 10 || cfg.Cache.TTL != time.Minute || len(cfg.Schedules) != 1 || cfg.Serving.Threads != 1 {
		t.Fatalf("merged config %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	if d.DataDir != "./edge-data" || d.Listen != "127.0.0.1:8080" {
		t.Fatalf("defaults %+v", d)
	}
	os.WriteFile(file, []byte("listn: x\n"), 0o644)
	if err := d.LoadFile(file); err == nil || !strings.Contains(err.Error(), "listn") {
		t.Fatalf("unknown key: %v", err)
	}
	if err := d.ApplyEnv(func(k string) string {
		if k == "EDGE_POOL" {
			return "many"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "EDGE_POOL") {
		t.Fatalf("bad env: %v", err)
	}
}

func TestModelsCommands(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var out bytes.Buffer
	addModel(t, dir, "iris.tflite", "iris", "1")
	addModel(t, dir, "iris.tflite", "iris", "2")
	if err := ModelsList(ctx, dir, &out); err != nil || !strings.Contains(out.String(), "iris   2        active") {
		t.Fatalf("list: %v\n%s", err, out.String())
	}
	if err := ModelsRollback(ctx, dir, "iris", &out); err != nil || !strings.Contains(out.String(), "rolled back to 1") {
		t.Fatalf("rollback: %v %s", err, out.String())
	}
	if err := ModelsActivate(ctx, dir, "iris", "2", &out); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "bad.tflite")
	os.WriteFile(garbage, []byte("not a model"), 0o644)
	err := ModelsAdd(ctx, AddOptions{DataDir: dir, File: garbage, ID: "bad", Version: "1"})
	if err == nil || !strings.Contains(err.Error(), "cannot run it") {
		t.Fatalf("garbage model accepted: %v", err)
	}
}

// TestScheduledBatchInDaemon: a schedule whose previous run was cut off is
// resumed by the daemon at start, on the real model.
func TestScheduledBatchInDaemon(t *testing.T) {
	cfg := testConfig(t)
	addModel(t, cfg.DataDir, "iris.tflite", "iris", "1")
	in := filepath.Join(t.TempDir(), "in.ndjson")
	out := filepath.Join(t.TempDir(), "out.ndjson")
	os.WriteFile(in, []byte(strings.Repeat("[5.1,3.5,1.4,0.2]\n[6.7,3.0,5.2,2.3]\n", 20)), 0o644)
	abs, _ := filepath.Abs(in)
	os.WriteFile(out+".checkpoint", []byte(`{"model":"iris","input":"`+abs+`","total":40,"done":0,"output_size":0}`), 0o644)
	cfg.Schedules = []Schedule{{Name: "nightly", Cron: "0 3 * * *", Model: "iris", Input: in, Output: out}}
	_, stop := runDaemon(t, cfg, Options{})
	defer stop()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		raw, _ := os.ReadFile(out + ".checkpoint")
		if bytes.Contains(raw, []byte(`"finished":true`)) {
			lines := bytes.Split(bytes.TrimSpace(mustRead(t, out)), []byte("\n"))
			if len(lines) != 40 || !bytes.Contains(lines[39], []byte(`"index":39`)) || !bytes.Contains(lines[0], []byte(`"model_version":"1"`)) {
				t.Fatalf("output: %d lines, last %s", len(lines), lines[len(lines)-1])
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("interrupted schedule not resumed")
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
