package fleetlink

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/agent/daemon"
	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/agent/serving"
	"github.com/edgefleet/edgefleet/agent/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/release"
)

// TestReinstallAfterFleetRollback runs the agent's real fleet job handler
// (TUF-signed repository over loopback HTTP, ota updater and installer,
// bbolt model store, serving manager with the native engine) through
// install 1 → install 2 → fleet rollback to 1 → install 2 again, and
// checks after each job what the device serves and what its final job
// update would report. Before the fix the second install of 2 "succeeded"
// while the device kept serving 1.
func TestReinstallAfterFleetRollback(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keys, repo := filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
	if err := release.NewRepo(keys, repo).Init(release.KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(filepath.Join(repo, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(release.NewRepo("", repo).Handler())
	defer srv.Close()
	for v, file := range map[string]string{"1": "hello_world_int8.tflite", "2": "hello_world_float.tflite"} {
		if _, err := release.NewRepo(keys, repo).AddModel(ctx, filepath.Join("..", "..", "testdata", "models", file), release.ModelRelease{ID: "sine", Version: v, Hardware: "cpu"}); err != nil {
			t.Fatal(err)
		}
	}

	data := filepath.Join(dir, "device")
	store, err := modelstore.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr := serving.NewManager(engine.Native{}, store, telemetry.NewCollector(nil), serving.Config{}, quiet)
	h := &otaJobs{deps: daemon.FleetDeps{DataDir: data, Store: store, Manager: mgr, Log: quiet}, link: &Link{}}
	h.up, err = ota.NewUpdater(ota.UpdaterConfig{DataDir: filepath.Join(data, "ota"), RepoURL: srv.URL, TrustedRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	h.pipe, err = ota.OpenPipeline(data, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.pipe.Close()
	l := &Link{cfg: Config{Status: StatusFunc(func(ctx context.Context) wire.Status {
		return wire.Status{Models: daemon.WireModels(ctx, mgr)}
	})}}

	n := 0
	run := func(kind wire.JobKind, version string) {
		t.Helper()
		n++
		j := wire.Job{JobID: "r1-" + string(rune('0'+n)), Kind: kind, ModelID: "sine", Version: version, State: wire.JobQueued,
			Created: time.Now(), Deadline: time.Now().Add(time.Hour)}
		if err := h.HandleJob(ctx, j, func(int) {}); err != nil {
			t.Fatalf("job %d %s %s: %v", n, kind, version, err)
		}
		active, err := store.ActiveVersion(ctx, "sine")
		if err != nil || active != version {
			t.Fatalf("after job %d (%s %s) the store's active version is %q (%v)", n, kind, version, active, err)
		}
		if s := l.serving(ctx, "sine"); s == nil || s.Active != version {
			t.Fatalf("after job %d (%s %s) the job update would report serving %+v", n, kind, version, s)
		}
		// the serving side answers with the version it claims
		pm, err := mgr.Get(ctx, "sine", "")
		if err != nil {
			t.Fatal(err)
		}
		if pm.Version != version {
			t.Fatalf("after job %d (%s %s) the serving manager serves %s", n, kind, version, pm.Version)
		}
	}
	run(wire.JobInstall, "1")
	run(wire.JobInstall, "2")
	run(wire.JobRollback, "1")
	run(wire.JobInstall, "2") // the re-install the fleet retries after a rollback
}
