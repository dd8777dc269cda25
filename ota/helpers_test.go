package ota_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/download"
	"github.com/edgefleet/edgefleet/ota/release"
)

// fixture is an operator repository served over loopback HTTP. The served
// handler can be swapped to play a malicious or broken mirror.
type fixture struct {
	t         *testing.T
	keys      string
	repo      string
	srv       *httptest.Server
	handler   atomic.Pointer[http.Handler]
	enrolled  []byte // 1.root.json, as flashed onto devices
	modelsDir string
}

func newFixture(t *testing.T, opts release.KeyOptions) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, keys: filepath.Join(dir, "keys"), repo: filepath.Join(dir, "repo"), modelsDir: filepath.Join(dir, "models")}
	if err := release.NewRepo(f.keys, f.repo).Init(opts); err != nil {
		t.Fatalf("InitKeys: %v", err)
	}
	root, err := os.ReadFile(filepath.Join(f.repo, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.enrolled = root
	f.serve(release.NewRepo("", f.repo).Handler())
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*f.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	os.MkdirAll(f.modelsDir, 0o755)
	return f
}

// serve replaces what the mirror serves.
func (f *fixture) serve(h http.Handler) { f.handler.Store(&h) }

// honest restores the honest repository handler.
func (f *fixture) honest() { f.serve(release.NewRepo("", f.repo).Handler()) }

// device returns an Updater with its own data dir and the given clock.
func (f *fixture) device(dataDir string, clk clock.Clock) *ota.Updater {
	f.t.Helper()
	u, err := ota.NewUpdater(ota.UpdaterConfig{
		DataDir: dataDir, RepoURL: f.srv.URL, TrustedRoot: f.enrolled, Clock: clk,
		Download: download.Options{Attempts: 2, BaseDelay: time.Millisecond},
	})
	if err != nil {
		f.t.Fatalf("NewUpdater: %v", err)
	}
	return u
}

// modelBytes returns deterministic pseudo-random "model" bytes.
func modelBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 99))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// goldenOf is the stand-in runtime's output hash: sha256(model || inputs...).
// goldenRuntime (below) computes the same thing from the installed file, so a
// release whose golden hash was computed from other bytes fails the check.
func goldenOf(model []byte, inputs [][]byte) string {
	h := sha256.New()
	h.Write(model)
	for _, in := range inputs {
		h.Write(in)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// goldenRuntime is a GoldenCheck that "runs" a model by hashing its file with
// the golden inputs, reading the installed file from disk like a runtime would.
func goldenRuntime(ctx context.Context, modelPath string, g ota.Golden) error {
	b, err := os.ReadFile(modelPath)
	if err != nil {
		return err
	}
	if got := goldenOf(b, g.Inputs); got != g.OutputSHA256 {
		return &goldenMismatch{got: got, want: g.OutputSHA256}
	}
	return nil
}

type goldenMismatch struct{ got, want string }

func (g *goldenMismatch) Error() string {
	return "output sha256 " + g.got[:12] + "… want " + g.want[:12] + "…"
}

// releaseModel writes data as a model file and releases it as id@version.
// A non-empty deltaFrom also publishes a delta from that version (whose bytes
// are base).
func (f *fixture) releaseModel(id, version string, data []byte, goodGolden bool, deltaFrom string, base []byte) release.TargetInfo {
	f.t.Helper()
	p := filepath.Join(f.modelsDir, id+"-"+version+".tflite")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		f.t.Fatal(err)
	}
	inputs := [][]byte{[]byte("golden input " + version)}
	golden := goldenOf(data, inputs)
	if !goodGolden {
		golden = goldenOf([]byte("some other model"), inputs)
	}
	m := release.ModelRelease{ID: id, Version: version, RequiredOps: []string{"CONV_2D", "SOFTMAX"}, Hardware: "cpu",
		GoldenInputs: inputs, GoldenOutputSHA256: golden}
	if deltaFrom != "" {
		bp := filepath.Join(f.modelsDir, id+"-"+deltaFrom+".tflite")
		if err := os.WriteFile(bp, base, 0o644); err != nil {
			f.t.Fatal(err)
		}
		m.DeltaBaseVersion, m.DeltaBasePath = deltaFrom, bp
	}
	info, err := release.NewRepo(f.keys, f.repo).AddModel(context.Background(), p, m)
	if err != nil {
		f.t.Fatalf("AddModel %s@%s: %v", id, version, err)
	}
	return info
}
