package update_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/agent/update"
	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/release"
	"github.com/edgefleet/edgefleet/ota/selfupdate"
)

// buildDir caches the edge-agent builds of one test run.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edge-agent-builds-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type buildKey struct{ version, mode string }

type buildResult struct {
	once sync.Once
	path string
	err  error
}

var (
	buildMu sync.Mutex
	builds  = map[buildKey]*buildResult{}
)

// build returns a real edge-agent binary built from ./cmd/edge-agent
// (CGO-free, as shipped) with -X main.version=version and, for mode
// "crash", the test-only crash switch (-tags edgeagent_crashswitch). Each build is made once per
// test run and cached in buildDir.
func build(k buildKey) (string, error) {
	buildMu.Lock()
	r, ok := builds[k]
	if !ok {
		r = &buildResult{path: filepath.Join(buildDir, "edge-agent-"+k.version+"-"+k.mode)}
		builds[k] = r
	}
	buildMu.Unlock()
	r.once.Do(func() {
		args := []string{"build", "-o", r.path, "-ldflags", "-X main.version=" + k.version}
		if k.mode == "crash" {
			args = append(args, "-tags", "edgeagent_crashswitch")
		}
		cmd := exec.Command(goTool(), append(args, "../../cmd/edge-agent")...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			r.err = fmt.Errorf("build edge-agent %s %s: %v\n%s", k.version, k.mode, err, b)
		}
	})
	return r.path, r.err
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// agentBuilds builds several binaries concurrently (only the link differs).
func agentBuilds(t *testing.T, specs ...buildKey) []string {
	t.Helper()
	start := time.Now()
	out := make([]string, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = build(s)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("edge-agent builds ready in %v", time.Since(start).Round(time.Millisecond))
	return out
}

// repoFixture is an operator repository (release.InitKeys) served by
// release.Handler on loopback.
type repoFixture struct {
	keys, repo, url, root string
}

func newRepo(t *testing.T) *repoFixture {
	t.Helper()
	dir := t.TempDir()
	f := &repoFixture{keys: filepath.Join(dir, "keys"), repo: filepath.Join(dir, "repo")}
	if err := release.NewRepo(f.keys, f.repo).Init(release.KeyOptions{}); err != nil {
		t.Fatalf("InitKeys: %v", err)
	}
	f.root = filepath.Join(f.repo, "metadata", "1.root.json") // as enrolled on devices
	srv := httptest.NewServer(release.NewRepo("", f.repo).Handler())
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *repoFixture) releaseAgent(t *testing.T, bin, version string) {
	t.Helper()
	goos, goarch, goarm := update.Platform()
	if _, err := release.NewRepo(f.keys, f.repo).AddAgentBinary(context.Background(), bin, release.AgentRelease{Version: version, GOOS: goos, GOARCH: goarch, GOARM: goarm}); err != nil {
		t.Fatalf("release agent %s: %v", version, err)
	}
}

// device is an installed edge-agent binary and its data dir.
type device struct {
	bin, data string
}

func newDevice(t *testing.T, installed string) device {
	t.Helper()
	dir := t.TempDir()
	d := device{bin: filepath.Join(dir, "bin", "edge-agent"), data: filepath.Join(dir, "data")}
	os.MkdirAll(filepath.Dir(d.bin), 0o755)
	b, err := os.ReadFile(installed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// run runs the installed binary with args; it returns stdout, stderr and
// the exit error.
func (d device) run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// cleanEnv drops EDGE_* settings and any health marker of an outer probe.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "EDGE_") || strings.HasPrefix(kv, selfupdate.HealthMarkerEnv+"=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func binVersion(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	return strings.TrimSpace(string(out))
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

func noFile(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s should not exist (stat: %v)", p, err)
	}
}

// TestUpdateAgent updates real edge-agent builds through the CLI
// (`edge-agent update agent`, run by the installed binary itself) from a TUF
// repository on loopback: 1.0 is installed; 1.1 differs only in its version
// string; 1.2 is built with the test-only crash switch and exits at start.
func TestUpdateAgent(t *testing.T) {
	bins := agentBuilds(t, buildKey{"1.0", ""}, buildKey{"1.1", ""}, buildKey{"1.2", "crash"})
	v10, v11, v12 := bins[0], bins[1], bins[2]
	f := newRepo(t)
	f.releaseAgent(t, v11, "1.1")
	f.releaseAgent(t, v12, "1.2")
	updateArgs := func(d device, extra ...string) []string {
		return append([]string{"update", "agent", "--repo", f.url, "--root", f.root, "--data-dir", d.data, "--health-timeout", "90s"}, extra...)
	}

	t.Run("version string only: applied, healthy, old kept", func(t *testing.T) {
		d := newDevice(t, v10)
		start := time.Now()
		stdout, stderr, err := d.run(t, updateArgs(d, "--version", "1.1")...)
		t.Logf("update took %v", time.Since(start).Round(time.Millisecond))
		if err != nil {
			t.Fatalf("update agent: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
		if !strings.Contains(stdout, "edge-agent updated 1.0 -> 1.1: 1.1 reported healthy") {
			t.Errorf("stdout does not report the healthy update:\n%s", stdout)
		}
		if !strings.Contains(stderr, "edge-agent 1.1") || !strings.Contains(stderr, "100%") {
			t.Errorf("no download progress bar on stderr:\n%s", stderr)
		}
		if v := binVersion(t, d.bin); v != "edge-agent version 1.1" {
			t.Errorf("installed binary reports %q, want 1.1", v)
		}
		if !sameFile(t, d.bin, v11) {
			t.Error("installed binary is not the released 1.1 build")
		}
		if v := binVersion(t, d.bin+".old"); v != "edge-agent version 1.0" {
			t.Errorf("kept binary reports %q, want 1.0", v)
		}
		if !sameFile(t, d.bin+".old", v10) {
			t.Error("kept .old binary is not the 1.0 build byte for byte")
		}
		noFile(t, filepath.Join(d.data, "selfupdate.json")) // committed: nothing for Recover
		noFile(t, filepath.Join(d.data, "health-1.1"))
		// Running the same command again is a no-op.
		stdout, _, err = d.run(t, updateArgs(d, "--version", "1.1")...)
		if err != nil || !strings.Contains(stdout, "already installed") {
			t.Errorf("second update: %v\n%s", err, stdout)
		}
	})

	t.Run("exits at start: rolled back byte for byte", func(t *testing.T) {
		d := newDevice(t, v10)
		stdout, stderr, err := d.run(t, updateArgs(d, "--version", "1.2")...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("update agent to a crashing build: %v, want exit status 1\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
		for _, want := range []string{
			"self-update 1.2", selfupdate.ErrUnhealthy.Error(), "exited before reporting healthy: exit status 3",
			"simulated start-up failure", "previous binary restored",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("error does not say %q:\n%s", want, stderr)
			}
		}
		if !sameFile(t, d.bin, v10) {
			t.Fatal("installed binary is not the old 1.0 build byte for byte")
		}
		if v := binVersion(t, d.bin); v != "edge-agent version 1.0" {
			t.Errorf("binary reports %q after rollback", v)
		}
		noFile(t, d.bin+".old")
		noFile(t, filepath.Join(d.data, "selfupdate.json"))
	})

	t.Run("no --version picks the newest release", func(t *testing.T) {
		d := newDevice(t, v10)
		_, stderr, err := d.run(t, updateArgs(d)...)
		if err == nil || !strings.Contains(stderr, "self-update 1.2") || !strings.Contains(stderr, "previous binary restored") {
			t.Fatalf("update to newest (1.2, crashing): %v\n%s", err, stderr)
		}
		if !sameFile(t, d.bin, v10) {
			t.Fatal("binary changed")
		}
	})

	t.Run("unreleased version is refused", func(t *testing.T) {
		d := newDevice(t, v10)
		_, stderr, err := d.run(t, updateArgs(d, "--version", "9.9")...)
		if err == nil || !strings.Contains(stderr, ota.ErrTargetNotFound.Error()) {
			t.Fatalf("update to 9.9: %v\n%s", err, stderr)
		}
		if !sameFile(t, d.bin, v10) {
			t.Fatal("binary changed")
		}
	})

	t.Run("crash between apply and probe: next run restores and execs the old binary", func(t *testing.T) {
		d := newDevice(t, v10)
		// Do what `update agent` does up to Apply, then "lose power".
		u, err := ota.NewUpdater(ota.UpdaterConfig{DataDir: filepath.Join(d.data, "ota"), RepoURL: f.url, TrustedRoot: mustRead(t, f.root)})
		if err != nil {
			t.Fatal(err)
		}
		goos, goarch, goarm := update.Platform()
		tgt, err := u.ResolveAgent(context.Background(), "1.1", goos, goarch, goarm)
		if err != nil {
			t.Fatal(err)
		}
		staged := filepath.Join(d.data, "ota", "staging", "agent")
		if err := u.Fetch(context.Background(), tgt, staged); err != nil {
			t.Fatal(err)
		}
		su := &selfupdate.Updater{TargetPath: d.bin, StateDir: d.data}
		if err := su.Apply(context.Background(), ota.Artifact{Target: tgt, Path: staged}); err != nil {
			t.Fatal(err)
		}
		if !sameFile(t, d.bin, v11) {
			t.Fatal("Apply did not install 1.1")
		}
		// The service manager restarts the (unconfirmed 1.1) binary.
		port := freePort(t)
		cmd := exec.Command(d.bin, "run", "--data-dir", d.data, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
		cmd.Env = cleanEnv()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		got := waitStatusVersion(t, port)
		if got != "1.0" {
			t.Errorf("agent serving after recovery reports %q, want 1.0 (the restored binary)", got)
		}
		if !sameFile(t, d.bin, v10) {
			t.Error("binary on disk is not the 1.0 build after recovery")
		}
		noFile(t, filepath.Join(d.data, "selfupdate.json"))
		if !strings.Contains(stderr.String(), "never confirmed healthy; restored the previous binary") {
			t.Errorf("recovery not reported on stderr:\n%s", stderr.String())
		}
	})

	t.Run("daemon running: refused before touching the binary", func(t *testing.T) {
		d := newDevice(t, v10)
		port := freePort(t)
		cmd := exec.Command(d.bin, "run", "--data-dir", d.data, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
		cmd.Env = cleanEnv()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		waitStatusVersion(t, port)
		_, stderr, err := d.run(t, updateArgs(d, "--version", "1.1")...)
		if err == nil || !strings.Contains(stderr, "stop it first") {
			t.Fatalf("update with the daemon running: %v\n%s", err, stderr)
		}
		if !sameFile(t, d.bin, v10) {
			t.Fatal("binary changed")
		}
		noFile(t, d.bin+".old")
	})
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitStatusVersion polls /api/v1/status until the agent answers and
// returns the agent_version it reports.
func waitStatusVersion(t *testing.T, port int) string {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/api/v1/status", port)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			var st struct {
				Version string `json:"agent_version"`
			}
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				return st.Version
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("agent on port %d never answered", port)
	return ""
}

// goldenSHA runs the model's golden inputs on the native backend (what the
// daemon's golden check runs) and hashes the outputs.
func goldenSHA(t *testing.T, model string, inputs [][]byte) string {
	t.Helper()
	ctx := context.Background()
	m, err := engine.Native{}.Load(ctx, mustRead(t, model))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := m.NewSession(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(ctx, 0, inputs)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, o := range out {
		h.Write(o.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestUpdateModel installs model releases into the agent's model store with
// `edge-agent update model` (real binary, real TUF repository, the daemon's
// golden check on the native backend): 1.0 and 2.0 pass their golden check
// and are activated in turn; 3.0's signed golden output does not match what
// the model computes, so it is rolled back to 2.0 with the reason.
func TestUpdateModel(t *testing.T) {
	bin := agentBuilds(t, buildKey{"1.0", ""})[0]
	const models = "../../testdata/models"
	int8Model, floatModel := filepath.Join(models, "hello_world_int8.tflite"), filepath.Join(models, "hello_world_float.tflite")
	int8In := [][]byte{{42}}
	floatIn := [][]byte{binary.LittleEndian.AppendUint32(nil, math.Float32bits(1.5))}
	f := newRepo(t)
	rel := func(file, version string, in [][]byte, sum string) {
		t.Helper()
		if _, err := release.NewRepo(f.keys, f.repo).AddModel(context.Background(), file, release.ModelRelease{
			ID: "hello", Version: version, Hardware: "cpu", GoldenInputs: in, GoldenOutputSHA256: sum,
		}); err != nil {
			t.Fatalf("release hello@%s: %v", version, err)
		}
	}
	rel(int8Model, "1.0", int8In, goldenSHA(t, int8Model, int8In))
	rel(floatModel, "2.0", floatIn, goldenSHA(t, floatModel, floatIn))
	wrong := sha256.Sum256([]byte("not what the model computes"))
	rel(int8Model, "3.0", int8In, hex.EncodeToString(wrong[:]))

	d := newDevice(t, bin)
	updateModel := func(version string) (string, string, error) {
		return d.run(t, "update", "model", "--repo", f.url, "--root", f.root, "--data-dir", d.data, "--id", "hello", "--version", version)
	}
	state := func() modelstore.Model {
		t.Helper()
		s, err := modelstore.Open(d.data)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		m, err := s.Get(context.Background(), "hello")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	stdout, stderr, err := updateModel("1.0")
	if err != nil || !strings.Contains(stdout, "hello@1.0 installed, golden check passed, active") {
		t.Fatalf("update model 1.0: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	if m := state(); m.Active != "1.0" {
		t.Fatalf("active %q after 1.0, want 1.0", m.Active)
	}

	stdout, stderr, err = updateModel("2.0")
	if err != nil || !strings.Contains(stdout, "hello@2.0 installed, golden check passed, active; previous 1.0") {
		t.Fatalf("update model 2.0: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	m := state()
	if m.Active != "2.0" || m.Previous != "1.0" {
		t.Fatalf("after 2.0: active %q previous %q", m.Active, m.Previous)
	}
	if v, _ := m.Version("2.0"); v.SHA256 != fileSHA(t, floatModel) {
		t.Errorf("stored 2.0 has sha256 %s, want the released file's", v.SHA256)
	}

	stdout, stderr, err = updateModel("3.0")
	if err == nil {
		t.Fatalf("update model 3.0 with a wrong golden output succeeded:\n%s", stdout)
	}
	for _, want := range []string{"install hello@3.0 failed", "golden check: output sha256", "rolled back to 2.0"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("error does not say %q:\n%s", want, stderr)
		}
	}
	if m := state(); m.Active != "2.0" {
		t.Fatalf("active %q after the failed 3.0, want 2.0", m.Active)
	}
	// The installer remembers the failure (what the fleet link reports too).
	in, err := ota.OpenInstaller(filepath.Join(d.data, "ota-install.db"), nil, nil, ota.InstallerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := in.Status("hello")
	in.Close()
	if err != nil || rec.State != ota.StateFailed || rec.Version != "3.0" || rec.RolledBackTo != "2.0" {
		t.Fatalf("install record: %+v, %v", rec, err)
	}

	// The daemon serves the version the update left active.
	port := freePort(t)
	cmd := exec.Command(d.bin, "run", "--data-dir", d.data, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Env = cleanEnv()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitStatusVersion(t, port)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/models/hello/health", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md struct {
		Version string `json:"version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil || md.Version != "2.0" {
		t.Errorf("daemon serves hello version %q (%v), want 2.0", md.Version, err)
	}
}

func fileSHA(t *testing.T, p string) string {
	s := sha256.Sum256(mustRead(t, p))
	return hex.EncodeToString(s[:])
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "1.1", -1},
		{"1.10", "1.9", 1},
		{"1.2", "1.2.1", -1},
		{"2.0", "10.0", -1},
		{"1.0-rc1", "1.0-rc2", -1},
		{"1.0.1", "1.0-rc1", 1},
		{"v2", "v10", 1}, // non-numeric parts compare as strings
	} {
		if got := update.CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := update.CompareVersions(c.b, c.a); got != -c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
	if got := update.Newest([]string{"1.9", "1.10", "1.2"}); got != "1.10" {
		t.Errorf("Newest = %q, want 1.10", got)
	}
	if got := update.Newest(nil); got != "" {
		t.Errorf("Newest(nil) = %q", got)
	}
}
