package release

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/ota"
)

func initRepo(t *testing.T, opts KeyOptions) (keys, repo string) {
	t.Helper()
	dir := t.TempDir()
	keys, repo = filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
	if err := NewRepo(keys, repo).Init(opts); err != nil {
		t.Fatalf("InitKeys: %v", err)
	}
	return keys, repo
}

func writeFile(t *testing.T, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInitKeysLayout checks which key files exist where, that they are
// private, that the root carries the requested thresholds, and that a second
// init is refused.
func TestInitKeysLayout(t *testing.T) {
	keys, repo := initRepo(t, KeyOptions{RootKeys: 2, RootThreshold: 2, TargetsKeys: 2, TargetsThreshold: 1})
	for _, p := range []string{"root/root-1.key", "root/root-2.key", "targets/targets-1.key", "targets/targets-2.key", "online/snapshot-1.key", "online/timestamp-1.key", "policy.json"} {
		st, err := os.Stat(filepath.Join(keys, p))
		if err != nil {
			t.Fatalf("missing %s: %v", p, err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no group/other access", p, st.Mode())
		}
	}
	root, err := metadata.Root().FromFile(filepath.Join(repo, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := root.Signed.Roles[metadata.ROOT]; got.Threshold != 2 || len(got.KeyIDs) != 2 {
		t.Errorf("root role = %+v", got)
	}
	if got := root.Signed.Roles[metadata.TARGETS]; got.Threshold != 1 || len(got.KeyIDs) != 2 {
		t.Errorf("targets role = %+v", got)
	}
	if len(root.Signatures) != 2 {
		t.Errorf("root has %d signatures, want 2", len(root.Signatures))
	}
	for _, n := range []string{"timestamp.json", "1.snapshot.json", "1.targets.json"} {
		if _, err := os.Stat(filepath.Join(repo, "metadata", n)); err != nil {
			t.Errorf("missing %s", n)
		}
	}
	if err := NewRepo(keys, repo).Init(KeyOptions{}); !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("second InitKeys: %v", err)
	}
	if err := NewRepo(filepath.Join(t.TempDir(), "k"), filepath.Join(t.TempDir(), "r")).Init(KeyOptions{RootKeys: 1, RootThreshold: 2}); err == nil {
		t.Fatal("threshold above key count accepted")
	}
}

// TestReleasesAreImmutable: same bytes again is a no-op, different bytes
// under a released version is refused, bad names are refused.
func TestReleasesAreImmutable(t *testing.T) {
	keys, repo := initRepo(t, KeyOptions{})
	ctx := context.Background()
	m := ModelRelease{ID: "cam", Version: "1.0", Hardware: "cpu"}
	info, err := NewRepo(keys, repo).AddModel(ctx, writeFile(t, "model v1"), m)
	if err != nil {
		t.Fatal(err)
	}
	if info.Path != ota.ModelTargetPath("cam", "1.0") || info.Length != 8 {
		t.Fatalf("info = %+v", info)
	}
	if _, err := NewRepo(keys, repo).AddModel(ctx, writeFile(t, "model v1"), m); err != nil {
		t.Fatalf("same bytes again: %v", err)
	}
	if _, err := NewRepo(keys, repo).AddModel(ctx, writeFile(t, "model v1 EVIL"), m); !errors.Is(err, ErrVersionExists) {
		t.Fatalf("different bytes: %v", err)
	}
	if _, err := NewRepo(keys, repo).AddModel(ctx, writeFile(t, "x"), ModelRelease{ID: "../x", Version: "1"}); !errors.Is(err, ota.ErrBadMetadata) {
		t.Fatalf("bad id: %v", err)
	}
	if _, err := NewRepo(keys, repo).AddModel(ctx, writeFile(t, "x"), ModelRelease{ID: "cam", Version: "2", DeltaBaseVersion: "1.0", DeltaBasePath: writeFile(t, "not v1")}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("delta from wrong base file: %v", err)
	}
	a := AgentRelease{Version: "1.2.3", GOOS: "linux", GOARCH: "arm", GOARM: "7"}
	ai, err := NewRepo(keys, repo).AddAgentBinary(ctx, writeFile(t, "ELF..."), a)
	if err != nil || ai.Path != "agent/linux-arm-v7/1.2.3/edge-agent" {
		t.Fatalf("AddAgentBinary: %+v %v", ai, err)
	}
	if _, err := NewRepo(filepath.Join(t.TempDir(), "none"), repo).AddModel(ctx, writeFile(t, "x"), ModelRelease{ID: "a", Version: "1"}); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("missing keys: %v", err)
	}
}

// TestHandler serves metadata and targets with Range support and nothing else.
func TestHandler(t *testing.T) {
	keys, repo := initRepo(t, KeyOptions{})
	info, err := NewRepo(keys, repo).AddModel(context.Background(), writeFile(t, "0123456789"), ModelRelease{ID: "cam", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(repo, "secret"), []byte("x"), 0o644)
	ts := httptest.NewServer(NewRepo("", repo).Handler())
	defer ts.Close()
	get := func(path, rng string) (int, string) {
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	target := "/targets/models/cam/1/" + info.SHA256 + ".model.tflite"
	cases := []struct {
		path, rng  string
		code       int
		bodyPrefix string
	}{
		{"/metadata/timestamp.json", "", 200, "{"},
		{"/metadata/1.root.json", "", 200, "{"},
		{target, "", 200, "0123456789"},
		{target, "bytes=4-", 206, "456789"},
		{"/secret", "", 404, ""},
		{"/metadata/../secret", "", 404, ""},
		{"/targets/models/cam/1/", "", 404, ""},
		{"/metadata/.tmp-x", "", 404, ""},
	}
	for _, tc := range cases {
		code, body := get(tc.path, tc.rng)
		if code != tc.code || !strings.HasPrefix(body, tc.bodyPrefix) {
			t.Errorf("GET %s (Range %q) = %d %q; want %d %q…", tc.path, tc.rng, code, body, tc.code, tc.bodyPrefix)
		}
	}
}

// TestRefreshBumpsTimestamp: Refresh re-signs the timestamp with a later
// expiry and a higher version; the snapshot only when it nears expiry.
func TestRefreshBumpsTimestamp(t *testing.T) {
	keys, repo := initRepo(t, KeyOptions{TimestampExpiry: time.Hour, SnapshotExpiry: 10 * time.Hour})
	load := func() (*metadata.Metadata[metadata.TimestampType], *metadata.Metadata[metadata.SnapshotType]) {
		ts, err := metadata.Timestamp().FromFile(filepath.Join(repo, "metadata", "timestamp.json"))
		if err != nil {
			t.Fatal(err)
		}
		sn, err := metadata.Snapshot().FromFile(filepath.Join(repo, "metadata", "snapshot.json"))
		if err != nil {
			t.Fatal(err)
		}
		return ts, sn
	}
	ts0, sn0 := load()
	now := time.Now().Add(2 * time.Hour)
	if err := NewRepo(keys, repo).Refresh(now); err != nil {
		t.Fatal(err)
	}
	ts1, sn1 := load()
	if ts1.Signed.Version != ts0.Signed.Version+1 || !ts1.Signed.Expires.Equal(now.UTC().Add(time.Hour)) {
		t.Errorf("timestamp v%d exp %v → v%d exp %v", ts0.Signed.Version, ts0.Signed.Expires, ts1.Signed.Version, ts1.Signed.Expires)
	}
	if sn1.Signed.Version != sn0.Signed.Version {
		t.Errorf("snapshot re-signed too early")
	}
	if err := NewRepo(keys, repo).Refresh(time.Now().Add(6 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, sn2 := load(); sn2.Signed.Version != sn0.Signed.Version+1 {
		t.Errorf("snapshot not re-signed near expiry: v%d", sn2.Signed.Version)
	}
}

// TestRepoClock: metadata signed by Init, AddModel and RotateOnlineKeys
// expires relative to the repository's clock (WithClock), not the system
// clock; the control is a repository on the system clock.
func TestRepoClock(t *testing.T) {
	t0 := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	opts := KeyOptions{TimestampExpiry: time.Hour, SnapshotExpiry: 10 * time.Hour, TargetsExpiry: 100 * time.Hour}
	expiries := func(t *testing.T, repo string) (ts, sn, tg time.Time) {
		t.Helper()
		tsm, err := metadata.Timestamp().FromFile(filepath.Join(repo, "metadata", "timestamp.json"))
		if err != nil {
			t.Fatal(err)
		}
		snm, err := metadata.Snapshot().FromFile(filepath.Join(repo, "metadata", "snapshot.json"))
		if err != nil {
			t.Fatal(err)
		}
		tgm, err := metadata.Targets().FromFile(filepath.Join(repo, "metadata", "targets.json"))
		if err != nil {
			t.Fatal(err)
		}
		return tsm.Signed.Expires, snm.Signed.Expires, tgm.Signed.Expires
	}
	for _, tc := range []struct {
		name string
		fake bool
	}{{"fake clock", true}, {"system clock (control)", false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			keys, repoDir := filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
			fc := clock.NewFake(t0)
			var ropts []Option
			if tc.fake {
				ropts = append(ropts, WithClock(fc))
			}
			rp := NewRepo(keys, repoDir, ropts...)
			before := time.Now()
			if err := rp.Init(opts); err != nil {
				t.Fatal(err)
			}
			fc.Advance(time.Minute)
			if _, err := rp.AddModel(context.Background(), writeFile(t, "model bytes"), ModelRelease{ID: "m", Version: "1.0.0"}); err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			ts, sn, tg := expiries(t, repoDir)
			want := t0.Add(time.Minute)
			if !tc.fake {
				if lo, hi := before.Add(time.Hour).Truncate(time.Second), after.Add(time.Hour); ts.Before(lo) || ts.After(hi) {
					t.Fatalf("timestamp expiry %v, want within [%v, %v]", ts, lo, hi)
				}
				return
			}
			if !ts.Equal(want.Add(time.Hour)) || !sn.Equal(want.Add(10*time.Hour)) || !tg.Equal(want.Add(100*time.Hour)) {
				t.Fatalf("expiries timestamp %v snapshot %v targets %v; want %v + 1h, 10h, 100h", ts, sn, tg, want)
			}
			fc.Advance(time.Minute)
			if err := rp.RotateOnlineKeys(); err != nil {
				t.Fatal(err)
			}
			if ts, _, _ := expiries(t, repoDir); !ts.Equal(t0.Add(2*time.Minute + time.Hour)) {
				t.Fatalf("after rotation: timestamp expiry %v, want %v", ts, t0.Add(2*time.Minute+time.Hour))
			}
			if _, err := os.Stat(filepath.Join(keys, "online", "retired", t0.Add(2*time.Minute).Format("20060102T150405.000000000"))); err != nil {
				t.Fatalf("retired keys not named after the repository clock: %v", err)
			}
		})
	}
}
