package daemon

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/ota"
)

// TestJobsAndStoreSettings: the webhook, job purge and model store settings
// come from the file, EDGE_* and flags (flags win) and reach jobs.Options
// and the store options; bad values are clear errors.
func TestJobsAndStoreSettings(t *testing.T) {
	d := Defaults()
	if d.Jobs.WebhookTimeout != 10*time.Second || d.Jobs.WebhookConcurrency != 8 || d.Jobs.PurgeInterval != 0 || d.Store.Keep != modelstore.DefaultKeep {
		t.Fatalf("defaults: jobs %+v store %+v", d.Jobs, d.Store)
	}
	file := filepath.Join(t.TempDir(), "agent.yaml")
	os.WriteFile(file, []byte(`jobs:
  webhook_allow_hosts: ["hooks.example.com", "*.lan"]
  webhook_concurrency: 3
  webhook_timeout: 4s
  retention: 2h
  purge_interval: 5m
model_store:
  keep: 7
`), 0o644)
	cfg := Defaults()
	if err := cfg.LoadFile(file); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"EDGE_WEBHOOK_TIMEOUT": "6s", "EDGE_JOBS_PURGE_INTERVAL": "30s", "EDGE_MODEL_KEEP": "5", "EDGE_WEBHOOK_CONCURRENCY": "4"}
	if err := cfg.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	flagged := Defaults()
	BindFlags(fs, &flagged)
	if err := fs.Parse([]string{"--webhook-allow-host", "a.example,b.example", "--webhook-allow-host", "10.0.0.5", "--model-keep", "2", "--jobs-retention", "3h"}); err != nil {
		t.Fatal(err)
	}
	ApplyFlags(&cfg, &flagged, fs.Changed)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	o := JobsOptions(cfg.Jobs, nil)
	if !slices.Equal(o.WebhookAllowHosts, []string{"a.example", "b.example", "10.0.0.5"}) || o.WebhookConcurrency != 4 || o.WebhookTimeout != 6*time.Second ||
		o.Retention != 3*time.Hour || o.PurgeInterval != 30*time.Second || o.Workers != 1 || o.WebhookAttempts != 8 || o.MaxPending != 10000 {
		t.Fatalf("jobs options %+v", o)
	}
	if cfg.Store.Keep != 2 || len(StoreOptions(cfg.Store)) != 1 {
		t.Fatalf("store %+v", cfg.Store)
	}
	// The file alone (no env, no flags) reaches the options too.
	fileOnly := Defaults()
	fileOnly.LoadFile(file)
	if o := JobsOptions(fileOnly.Jobs, nil); !slices.Equal(o.WebhookAllowHosts, []string{"hooks.example.com", "*.lan"}) || o.WebhookTimeout != 4*time.Second ||
		o.WebhookConcurrency != 3 || o.Retention != 2*time.Hour || o.PurgeInterval != 5*time.Minute || fileOnly.Store.Keep != 7 {
		t.Fatalf("file only: %+v keep %d", o, fileOnly.Store.Keep)
	}
	e := map[string]string{"EDGE_WEBHOOK_TIMEOUT": "soon", "EDGE_MODEL_KEEP": "all", "EDGE_WEBHOOK_ALLOW_HOSTS": " x.example , ,y.example"}
	bad := Defaults()
	err := bad.ApplyEnv(func(k string) string { return e[k] })
	if err == nil || !strings.Contains(err.Error(), "EDGE_WEBHOOK_TIMEOUT") || !strings.Contains(err.Error(), "EDGE_MODEL_KEEP") {
		t.Fatalf("bad env: %v", err)
	}
	if !slices.Equal(bad.Jobs.WebhookAllowHosts, []string{"x.example", "y.example"}) {
		t.Fatalf("EDGE_WEBHOOK_ALLOW_HOSTS parsed as %q", bad.Jobs.WebhookAllowHosts)
	}
	for _, c := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.Jobs.WebhookAllowHosts = []string{"https://hooks.example.com/x"} }, "webhook_allow_hosts[0]"},
		{func(c *Config) { c.Jobs.WebhookAllowHosts = []string{"hooks.example.com:8443"} }, "no scheme, port or path"},
		{func(c *Config) { c.Jobs.WebhookTimeout = -time.Second }, "webhook_timeout"},
		{func(c *Config) { c.Jobs.PurgeInterval = -time.Second }, "purge_interval"},
		{func(c *Config) { c.Store.Keep = -1 }, "model_store.keep"},
	} {
		v := Defaults()
		c.mut(&v)
		if err := v.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error naming %s, got %v", c.want, err)
		}
	}
	ok := Defaults()
	ok.Jobs.WebhookAllowHosts = []string{"hooks.example.com", "*.lan", "10.0.0.5", "fd00::1"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("control: valid allow-list refused: %v", err)
	}
}

// TestSettingsReachDaemonComponents runs the daemon with a webhook
// allow-list and model_store.keep 2: a job whose webhook host is not listed
// is refused (400) while a listed one is accepted, and the store the
// daemon opened keeps only 2 versions (the default would keep 3).
func TestSettingsReachDaemonComponents(t *testing.T) {
	cfg := testConfig(t)
	cfg.Jobs.WebhookAllowHosts = []string{"hooks.example.invalid"}
	cfg.Store.Keep = 2
	cfg.Fleet.Enabled = true
	addModel(t, cfg.DataDir, "iris.tflite", "iris", "1")
	stores := make(chan *modelstore.Store, 1)
	link := func(ctx context.Context, deps FleetDeps) error {
		stores <- deps.Store
		<-ctx.Done()
		return nil
	}
	url, stop := runDaemon(t, cfg, Options{Version: "t", FleetLink: link})
	defer stop()
	c := &http.Client{Timeout: 30 * time.Second}
	job := func(hook string) int {
		st, body := post(t, c, url+"/api/v1/models/iris/jobs", `{"instances":[[5.1,3.5,1.4,0.2]],"parameters":{"webhook":"`+hook+`"}}`)
		if st == 400 && !strings.Contains(string(body), "allow-list") {
			t.Errorf("webhook %s: 400 without the reason: %s", hook, body)
		}
		return st
	}
	if st := job("http://127.0.0.1:9/hook"); st != http.StatusBadRequest {
		t.Fatalf("webhook to a host outside the allow-list: %d, want 400", st)
	}
	if st := job("http://hooks.example.invalid/done"); st != http.StatusAccepted {
		t.Fatalf("control: allow-listed webhook host: %d, want 202", st)
	}

	var s *modelstore.Store
	select {
	case s = <-stores:
	case <-time.After(20 * time.Second):
		t.Fatal("fleet link not started")
	}
	ctx := context.Background()
	for _, v := range []string{"2", "3"} {
		if err := s.Install(ctx, "iris", v, filepath.Join(models, "iris.tflite"), ota.ArtifactInfo{Source: "test"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Activate(ctx, "iris", v); err != nil {
			t.Fatal(err)
		}
	}
	m, err := s.Get(ctx, "iris")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range m.Versions {
		got = append(got, v.Version)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"2", "3"}) || m.Active != "3" {
		t.Fatalf("store with model_store.keep 2 holds %v (active %s), want [2 3]", got, m.Active)
	}
}
