package ota_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/otatest"
	"github.com/edgefleet/edgefleet/ota/release"
)

type device struct {
	u     *ota.Updater
	store *otatest.DirStore
	inst  *ota.Installer
	data  string
}

func newDevice(t *testing.T, f *fixture, check ota.GoldenCheck, opts ota.InstallerOptions) *device {
	t.Helper()
	data := t.TempDir()
	store, err := otatest.OpenDirStore(filepath.Join(data, "models"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	inst, err := ota.OpenInstaller(filepath.Join(data, "ota.db"), store, check, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close() })
	return &device{u: f.device(data, nil), store: store, inst: inst, data: data}
}

func (d *device) update(t *testing.T, id, version string) (ota.Artifact, ota.Record, error) {
	t.Helper()
	if err := d.u.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	a, err := d.u.FetchModel(context.Background(), id, version, d.store)
	if err != nil {
		t.Fatalf("FetchModel %s@%s: %v", id, version, err)
	}
	rec, err := d.inst.Install(context.Background(), a)
	return a, rec, err
}

func (d *device) mustActive(t *testing.T, id, want string, wantBytes []byte) {
	t.Helper()
	got, err := d.store.ActiveVersion(context.Background(), id)
	if err != nil || got != want {
		t.Fatalf("active %s = %q, %v; want %q", id, got, err, want)
	}
	p, err := d.store.ModelPath(context.Background(), id, got)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != string(wantBytes) {
		t.Fatalf("active file of %s@%s has wrong bytes", id, got)
	}
}

// TestInstallWithDelta: v1 arrives whole; v2 is rebuilt from a delta against
// the installed v1 and verified against v2's signed hash; both commit.
func TestInstallWithDelta(t *testing.T) {
	f := newFixture(t, release.KeyOptions{})
	v1 := modelBytes(1, 64<<10)
	v2 := append(append([]byte{}, v1[:30000]...), modelBytes(2, 500)...)
	v2 = append(v2, v1[30000:]...)
	f.releaseModel("cam", "1.0", v1, true, "", nil)
	info2 := f.releaseModel("cam", "2.0", v2, true, "1.0", v1)
	if len(info2.Deltas) != 1 || info2.Deltas[0].Length > 2048 {
		t.Fatalf("delta info = %+v, want one small delta", info2.Deltas)
	}
	d := newDevice(t, f, goldenRuntime, ota.InstallerOptions{})
	for kind, want := range map[string]int{ota.KindModel: 2, ota.KindDelta: 1, ota.KindAgent: 0, "": 3} {
		if ts, err := d.u.Targets(context.Background(), kind); err != nil || len(ts) != want {
			t.Fatalf("Targets(%q) = %d targets, %v; want %d", kind, len(ts), err, want)
		}
	}
	a1, rec, err := d.update(t, "cam", "1.0")
	if err != nil || rec.State != ota.StateCommitted || a1.ViaDelta {
		t.Fatalf("install 1.0: %+v %v (via delta %v)", rec, err, a1.ViaDelta)
	}
	a2, rec, err := d.update(t, "cam", "2.0")
	if err != nil || rec.State != ota.StateCommitted {
		t.Fatalf("install 2.0: %+v %v", rec, err)
	}
	if !a2.ViaDelta {
		t.Fatal("2.0 was not rebuilt from the delta")
	}
	if rec.Previous != "1.0" || rec.Attempts != 1 {
		t.Errorf("record = %+v, want previous 1.0 and 1 attempt", rec)
	}
	d.mustActive(t, "cam", "2.0", v2)
	if _, err := os.Stat(a2.Path); !os.IsNotExist(err) {
		t.Errorf("staged file kept after commit: %v", err)
	}
	// a fresh device without 1.0 fetches 2.0 whole
	d2 := newDevice(t, f, goldenRuntime, ota.InstallerOptions{})
	a, _, err := d2.update(t, "cam", "2.0")
	if err != nil || a.ViaDelta {
		t.Fatalf("fresh device: via delta %v, %v", a.ViaDelta, err)
	}
	// installing again is a no-op
	if rec, err := d.inst.Install(context.Background(), a2); err != nil || rec.State != ota.StateCommitted || rec.Attempts != 1 {
		t.Fatalf("re-install: %+v %v", rec, err)
	}
}

// TestDeltaCorruptFallsBack: a delta that rebuilds the wrong bytes is never
// installed; the device falls back to the full, signed artifact.
func TestDeltaCorruptFallsBack(t *testing.T) {
	f := newFixture(t, release.KeyOptions{})
	v1 := modelBytes(1, 8<<10)
	v2 := append(append([]byte{}, v1...), []byte("tail")...)
	f.releaseModel("cam", "1.0", v1, true, "", nil)
	d := newDevice(t, f, goldenRuntime, ota.InstallerOptions{})
	if _, _, err := d.update(t, "cam", "1.0"); err != nil {
		t.Fatal(err)
	}
	f.releaseModel("cam", "2.0", v2, true, "1.0", v1)
	// corrupt the device's copy of 1.0 so the delta rebuilds wrong bytes
	p, _ := d.store.ModelPath(context.Background(), "cam", "1.0")
	b, _ := os.ReadFile(p)
	b[10] ^= 1
	os.WriteFile(p, b, 0o644)
	a, rec, err := d.update(t, "cam", "2.0")
	if err != nil || a.ViaDelta || rec.State != ota.StateCommitted {
		t.Fatalf("got via delta %v, %+v, %v; want full download committed", a.ViaDelta, rec, err)
	}
	d.mustActive(t, "cam", "2.0", v2)
}

// TestGoldenCheckRollback: a release whose golden output does not match what
// the runtime computes is activated, fails the check, and the previous
// version is active again with the reason recorded.
func TestGoldenCheckRollback(t *testing.T) {
	f := newFixture(t, release.KeyOptions{})
	v1, v2 := modelBytes(1, 4096), modelBytes(2, 4096)
	f.releaseModel("cam", "1.0", v1, true, "", nil)
	f.releaseModel("cam", "2.0", v2, false, "", nil)
	d := newDevice(t, f, goldenRuntime, ota.InstallerOptions{})
	if _, _, err := d.update(t, "cam", "1.0"); err != nil {
		t.Fatal(err)
	}
	_, _, err := d.update(t, "cam", "2.0")
	var ie *ota.InstallError
	if !errors.As(err, &ie) || !errors.Is(err, ota.ErrGoldenCheck) {
		t.Fatalf("err = %v, want *InstallError wrapping ErrGoldenCheck", err)
	}
	if ie.RolledBackTo != "1.0" || !strings.Contains(ie.Reason, "output sha256") {
		t.Fatalf("InstallError = %+v", ie)
	}
	d.mustActive(t, "cam", "1.0", v1)
	rec, err := d.inst.Status("cam")
	if err != nil || rec.State != ota.StateFailed || rec.RolledBackTo != "1.0" || !strings.Contains(rec.Reason, "golden check") {
		t.Fatalf("status = %+v, %v", rec, err)
	}
	t.Run("load failure on first install", func(t *testing.T) {
		d := newDevice(t, f, func(context.Context, string, ota.Golden) error { return errors.New("unsupported op CUSTOM") }, ota.InstallerOptions{})
		_, _, err := d.update(t, "cam", "1.0")
		if !errors.Is(err, ota.ErrGoldenCheck) || !strings.Contains(err.Error(), "no previous version") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestLoopGuard: an install interrupted at the golden check again and again
// (as a crash loop would) stops after MaxAttempts, rolls back and says why.
func TestLoopGuard(t *testing.T) {
	f := newFixture(t, release.KeyOptions{})
	v1, v2 := modelBytes(1, 2048), modelBytes(2, 2048)
	f.releaseModel("cam", "1.0", v1, true, "", nil)
	f.releaseModel("cam", "2.0", v2, true, "", nil)
	hang := false
	var stop context.CancelFunc
	check := func(ctx context.Context, p string, g ota.Golden) error {
		if hang {
			stop()       // the process is stopped while the runtime runs the model
			<-ctx.Done() // the runtime hangs until the process is stopped
			return ctx.Err()
		}
		return goldenRuntime(ctx, p, g)
	}
	d := newDevice(t, f, check, ota.InstallerOptions{MaxAttempts: 3})
	if _, _, err := d.update(t, "cam", "1.0"); err != nil {
		t.Fatal(err)
	}
	hang = true
	a, err := d.u.FetchModel(context.Background(), "cam", "2.0", d.store)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	stop = cancel
	if _, err := d.inst.Install(cctx, a); err == nil || isInstallErr(err) {
		t.Fatalf("interrupted install: %v", err)
	}
	for i := 2; i <= 3; i++ {
		cctx, cancel := context.WithCancel(context.Background())
		stop = cancel
		d.inst.Resume(cctx)
		rec, _ := d.inst.Status("cam")
		if rec.State != ota.StateActivated || rec.Attempts != i {
			t.Fatalf("after resume %d: %+v", i, rec)
		}
	}
	stop, hang = func() {}, false
	_, err = d.inst.Resume(context.Background())
	if !errors.Is(err, ota.ErrMaxAttempts) {
		t.Fatalf("4th run: %v, want ErrMaxAttempts", err)
	}
	rec, _ := d.inst.Status("cam")
	if rec.State != ota.StateFailed || rec.RolledBackTo != "1.0" || !strings.Contains(rec.Reason, "gave up after 3 attempts") {
		t.Fatalf("record = %+v", rec)
	}
	d.mustActive(t, "cam", "1.0", v1)
	// asking again does not start a 4th attempt
	if _, err := d.inst.Install(context.Background(), a); !errors.Is(err, ota.ErrMaxAttempts) {
		t.Fatalf("re-install after give-up: %v", err)
	}
}

func isInstallErr(err error) bool {
	var ie *ota.InstallError
	return errors.As(err, &ie)
}

// TestCorruptStaged: a staged file altered after download is refused before
// it reaches the store.
func TestCorruptStaged(t *testing.T) {
	f := newFixture(t, release.KeyOptions{})
	f.releaseModel("cam", "1.0", modelBytes(1, 2048), true, "", nil)
	d := newDevice(t, f, goldenRuntime, ota.InstallerOptions{})
	a, err := d.u.FetchModel(context.Background(), "cam", "1.0", d.store)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(a.Path, []byte("swapped after verification"), 0o644)
	if _, err := d.inst.Install(context.Background(), a); !errors.Is(err, ota.ErrCorruptStaged) {
		t.Fatalf("err = %v, want ErrCorruptStaged", err)
	}
	if _, err := d.store.ModelPath(context.Background(), "cam", "1.0"); !errors.Is(err, ota.ErrNotFound) {
		t.Fatalf("corrupt file reached the store: %v", err)
	}
}

// TestFetchModelResumesAfterCut: the mirror drops the connection halfway
// through the model; the updater resumes with a Range request and the
// install proceeds with verified bytes.
func TestFetchModelResumesAfterCut(t *testing.T) {
	f := newFixture(t, release.KeyOptions{})
	data := modelBytes(7, 256<<10)
	f.releaseModel("cam", "1.0", data, true, "", nil)
	honest := release.NewRepo("", f.repo).Handler()
	var (
		mu     sync.Mutex
		ranges []string
	)
	cut := true
	f.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/targets/") {
			honest.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		ranges = append(ranges, r.Header.Get("Range"))
		if cut {
			cut = false
			conn, bw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(data))
			bw.Write(data[:100_000])
			bw.Flush()
			conn.Close()
			return
		}
		honest.ServeHTTP(w, r)
	}))
	d := newDevice(t, f, goldenRuntime, ota.InstallerOptions{})
	if _, rec, err := d.update(t, "cam", "1.0"); err != nil || rec.State != ota.StateCommitted {
		t.Fatalf("install: %+v %v", rec, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ranges) != 2 || ranges[0] != "" || ranges[1] != "bytes=100000-" {
		t.Fatalf("target requests' Range = %q", ranges)
	}
	d.mustActive(t, "cam", "1.0", data)
}

// TestReinstallAfterRollback: v2 is installed and committed, the fleet
// rolls the device back to v1 (ModelStore.Activate, as the rollback job
// does), then v2 is installed again: it must really be activated (and
// golden-checked) again, not skipped because an old record says
// "committed". Re-installing the active release stays a no-op.
func TestReinstallAfterRollback(t *testing.T) {
	f := newFixture(t, release.KeyOptions{})
	v1, v2 := modelBytes(1, 4096), modelBytes(2, 4096)
	f.releaseModel("cam", "1.0", v1, true, "", nil)
	f.releaseModel("cam", "2.0", v2, true, "", nil)
	var checks int
	check := func(ctx context.Context, p string, g ota.Golden) error { checks++; return goldenRuntime(ctx, p, g) }
	d := newDevice(t, f, check, ota.InstallerOptions{})
	ctx := context.Background()
	for _, v := range []string{"1.0", "2.0"} {
		if _, rec, err := d.update(t, "cam", v); err != nil || rec.State != ota.StateCommitted {
			t.Fatalf("install %s: %+v %v", v, rec, err)
		}
	}
	d.mustActive(t, "cam", "2.0", v2)
	if err := d.store.Activate(ctx, "cam", "1.0"); err != nil { // the fleet's rollback job
		t.Fatal(err)
	}
	d.mustActive(t, "cam", "1.0", v1)
	before := checks
	_, rec, err := d.update(t, "cam", "2.0")
	if err != nil || rec.State != ota.StateCommitted {
		t.Fatalf("re-install 2.0: %+v %v", rec, err)
	}
	d.mustActive(t, "cam", "2.0", v2)
	if checks != before+1 {
		t.Fatalf("golden check ran %d times for the re-install, want 1", checks-before)
	}
	if rec.Previous != "1.0" || rec.Attempts != 1 {
		t.Fatalf("re-install record: previous %q attempts %d, want 1.0 and 1", rec.Previous, rec.Attempts)
	}
	// control: installing the active release again does nothing
	before = checks
	if _, rec, err := d.update(t, "cam", "2.0"); err != nil || rec.State != ota.StateCommitted || checks != before {
		t.Fatalf("install of the active release: %+v %v, %d golden checks", rec, err, checks-before)
	}
	// a rollback through the store's own Rollback, then again
	if _, err := d.store.Rollback(ctx, "cam"); err != nil {
		t.Fatal(err)
	}
	d.mustActive(t, "cam", "1.0", v1)
	if _, _, err := d.update(t, "cam", "2.0"); err != nil {
		t.Fatal(err)
	}
	d.mustActive(t, "cam", "2.0", v2)
}
