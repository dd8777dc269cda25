package selfupdate_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/download"
	"github.com/edgefleet/edgefleet/ota/release"
	"github.com/edgefleet/edgefleet/ota/selfupdate"
)

// repoFixture is a real TUF repository served over HTTP, which devices
// (ota.Updater) trust from its first root.
type repoFixture struct {
	repo *release.Repo
	url  string
	root []byte
}

func newRepoFixture(t *testing.T) *repoFixture {
	t.Helper()
	dir := t.TempDir()
	rp := release.NewRepo(filepath.Join(dir, "keys"), filepath.Join(dir, "repo"))
	if err := rp.Init(release.KeyOptions{}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	root, err := os.ReadFile(filepath.Join(rp.Dir(), "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(release.NewRepo("", rp.Dir()).Handler())
	t.Cleanup(srv.Close)
	return &repoFixture{repo: rp, url: srv.URL, root: root}
}

// device returns a device's updater with its own data dir.
func (f *repoFixture) device(t *testing.T, dataDir string) *ota.Updater {
	t.Helper()
	u, err := ota.NewUpdater(ota.UpdaterConfig{DataDir: dataDir, RepoURL: f.url, TrustedRoot: f.root,
		Download: download.Options{Attempts: 2, BaseDelay: time.Millisecond}})
	if err != nil {
		t.Fatalf("NewUpdater: %v", err)
	}
	return u
}

// agentPkg is the agent main package the self-update test builds. It must
// print its version with --version, take -X main.version and -X main.mode
// (mode "crash" exits at start) and call selfupdate.ReportHealthy once started.
const agentPkg = "./testdata/fakeagent"

// buildFakeAgent builds agentPkg with the given version and
// mode ("ok" or "crash") into dir.
func buildFakeAgent(t *testing.T, dir, version, mode string) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Fatalf("go toolchain needed to build the fake agent: %v", err)
		}
	}
	out := filepath.Join(dir, "fakeagent-"+version+"-"+mode)
	cmd := exec.Command(goBin, "build", "-o", out, "-ldflags", "-X main.version="+version+" -X main.mode="+mode, agentPkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build fake agent %s: %v\n%s", version, err, b)
	}
	return out
}

func agentVersion(t *testing.T, bin string) string {
	t.Helper()
	b, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	return strings.TrimSpace(string(b))
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestSelfUpdate builds real agent binaries: 1.0 (installed), 2.0 (differs
// only in its version string) and 3.0 (exits at start). 2.0 is installed via
// TUF + Install (apply, probe) and reports healthy; 3.0 is applied, never
// reports, and the 1.0 binary is restored byte for byte; a swapped file is
// refused before anything is applied.
func TestSelfUpdate(t *testing.T) {
	bins := t.TempDir()
	var v1, v2, v3 string
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); v1 = buildFakeAgent(t, bins, "1.0", "ok") }()
	go func() { defer wg.Done(); v2 = buildFakeAgent(t, bins, "2.0", "ok") }()
	go func() { defer wg.Done(); v3 = buildFakeAgent(t, bins, "3.0", "crash") }()
	wg.Wait()
	if t.Failed() {
		return
	}
	f := newRepoFixture(t)
	goarm := ""
	if runtime.GOARCH == "arm" {
		goarm = "7"
	}
	for v, p := range map[string]string{"2.0": v2, "3.0": v3} {
		if _, err := f.repo.AddAgentBinary(context.Background(), p, release.AgentRelease{Version: v, GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, GOARM: goarm}); err != nil {
			t.Fatalf("AddAgentBinary %s: %v", v, err)
		}
	}
	orig, _ := os.ReadFile(v1)
	setup := func(t *testing.T, version string) (*selfupdate.Updater, string, ota.Artifact) {
		dev := t.TempDir()
		agent := filepath.Join(dev, "edge-agent")
		copyFile(t, v1, agent)
		u := f.device(t, filepath.Join(dev, "data"))
		tgt, err := u.ResolveAgent(context.Background(), version, runtime.GOOS, runtime.GOARCH, goarm)
		if err != nil {
			t.Fatalf("ResolveAgent: %v", err)
		}
		staged := filepath.Join(dev, "data", "staging", "edge-agent-"+version)
		if err := u.Fetch(context.Background(), tgt, staged); err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		return &selfupdate.Updater{TargetPath: agent, StateDir: filepath.Join(dev, "data"), HealthTimeout: 10 * time.Second}, agent, ota.Artifact{Target: tgt, Path: staged}
	}
	t.Run("healthy update", func(t *testing.T) {
		su, agent, a := setup(t, "2.0")
		if applied, err := su.Install(context.Background(), a); err != nil || !applied {
			t.Fatalf("Install: applied %v, %v", applied, err)
		}
		if v := agentVersion(t, agent); v != "2.0" {
			t.Fatalf("agent reports %q, want 2.0", v)
		}
		if v := agentVersion(t, agent+".old"); v != "1.0" {
			t.Fatalf("kept old binary reports %q, want 1.0", v)
		}
		if restored, err := su.Recover(); err != nil || restored {
			t.Fatalf("Recover after commit: %v %v, want nothing to do", restored, err)
		}
	})
	t.Run("crashing update is rolled back", func(t *testing.T) {
		su, agent, a := setup(t, "3.0")
		applied, err := su.Install(context.Background(), a)
		if !applied || !errors.Is(err, selfupdate.ErrUnhealthy) || !strings.Contains(err.Error(), "simulated start-up failure") {
			t.Fatalf("Install: applied %v, %v; want applied and ErrUnhealthy with the child's stderr", applied, err)
		}
		if b, _ := os.ReadFile(agent); string(b) != string(orig) {
			t.Fatal("old binary not restored byte for byte")
		}
		if v := agentVersion(t, agent); v != "1.0" {
			t.Fatalf("agent reports %q after rollback", v)
		}
	})
	t.Run("crash between apply and probe", func(t *testing.T) {
		su, agent, a := setup(t, "2.0")
		if err := su.Apply(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		// the process dies here; at next start-up:
		if restored, err := su.Recover(); err != nil || !restored {
			t.Fatalf("Recover: %v %v", restored, err)
		}
		if v := agentVersion(t, agent); v != "1.0" {
			t.Fatalf("agent reports %q after Recover", v)
		}
	})
	t.Run("file swapped after verification", func(t *testing.T) {
		su, agent, a := setup(t, "2.0")
		copyFile(t, v3, a.Path)
		if applied, err := su.Install(context.Background(), a); applied || !errors.Is(err, download.ErrHashMismatch) {
			t.Fatalf("Install of swapped file: applied %v, %v; want not applied, ErrHashMismatch", applied, err)
		}
		if v := agentVersion(t, agent); v != "1.0" {
			t.Fatalf("agent changed to %q", v)
		}
	})
}
