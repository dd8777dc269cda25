package modelstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/otatest"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestModelStoreConformance(t *testing.T) {
	otatest.RunModelStoreSuite(t, func(t *testing.T) ota.ModelStore { return open(t, t.TempDir()) })
}

func TestInstallRefusesHashMismatchAndKeepsNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	p, info := otatest.WriteArtifact(t, t.TempDir(), "m", []byte("bytes"))
	info.SHA256 = "00" + info.SHA256[2:]
	err := s.Install(ctx, "m", "1", p, info)
	if err == nil {
		t.Fatal("install with wrong sha256 succeeded")
	}
	if _, err := s.ModelPath(ctx, "m", "1"); !errors.Is(err, ota.ErrNotFound) {
		t.Errorf("version recorded after failed install: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "models", "m", "1", "*"))
	if len(files) != 0 {
		t.Errorf("files left after failed install: %v", files)
	}
}

func TestInstallComputesHashAndRecordsMetadata(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	s, err := Open(t.TempDir(), WithClock(clock.NewFake(now)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, want := otatest.WriteArtifact(t, t.TempDir(), "m", []byte("model"))
	var changed []string
	s.OnChange(func(id string) { changed = append(changed, id) })
	if err := s.Install(ctx, "m", "1", p, ota.ArtifactInfo{Source: "cli", Custom: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	m, err := s.Get(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	v, ok := m.Version("1")
	if !ok || v.SHA256 != want.SHA256 || v.Size != want.Size || v.Source != "cli" || v.Custom["k"] != "v" || !v.InstalledAt.Equal(now) {
		t.Fatalf("recorded %+v, want sha %s size %d", v, want.SHA256, want.Size)
	}
	if err := s.Verify(ctx, "m", "1"); err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || changed[0] != "m" {
		t.Errorf("OnChange calls = %v", changed)
	}
	if err := s.Install(ctx, "bad/id", "1", p, ota.ArtifactInfo{}); err == nil {
		t.Error("id with a slash accepted")
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != "m" {
		t.Fatalf("List = %+v, %v", list, err)
	}
}

func TestVerifyDetectsCorruption(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	p, info := otatest.WriteArtifact(t, t.TempDir(), "m", []byte("model bytes"))
	if err := s.Install(ctx, "m", "1", p, info); err != nil {
		t.Fatal(err)
	}
	mp, _ := s.ModelPath(ctx, "m", "1")
	if err := os.WriteFile(mp, []byte("model bytez"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx, "m", "1"); err == nil {
		t.Fatal("Verify accepted a corrupted file")
	}
}

func TestSecondOpenFailsClearly(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	_, err := Open(dir)
	if err == nil {
		t.Fatal("second Open of a locked store succeeded")
	}
	if want := "locked by another process"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

const crashEnv = "MODELSTORE_CRASH_CHILD_DIR"

// TestCrashChild is the child process of TestKillDuringInstall: it installs
// and activates new versions in a loop until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("child process of TestKillDuringInstall only")
	}
	ctx := context.Background()
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// Not t.TempDir: a killed child never cleans up, so its scratch files
	// live in the parent's temp dir.
	seed, _ := strconv.Atoi(os.Getenv("MODELSTORE_CRASH_SEED"))
	src := filepath.Join(dir, fmt.Sprintf("src-%d", seed))
	if err := os.MkdirAll(src, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	progress, err := os.OpenFile(filepath.Join(dir, "progress"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		v := fmt.Sprintf("%d.%d", seed, i)
		data := make([]byte, 64<<10+i)
		for j := range data {
			data[j] = byte(i + j + seed)
		}
		p, info := otatest.WriteArtifact(t, src, v, data)
		if err := s.Install(ctx, "m", v, p, info); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		if err := s.Activate(ctx, "m", v); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
		os.Remove(p)
		progress.Write([]byte{'.'}) // one byte per activated version
	}
}

// activated counts the versions the crash children activated.
func activated(dir string) int {
	st, err := os.Stat(filepath.Join(dir, "progress"))
	if err != nil {
		return 0
	}
	return int(st.Size())
}

// TestKillDuringInstall kills a child process that installs and activates
// versions in a loop at random points (SIGKILL) many times; after every kill
// the store opens, a version is active and its file verifies.
func TestKillDuringInstall(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in child")
	}
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	p, info := otatest.WriteArtifact(t, t.TempDir(), "v0", []byte("initial model"))
	if err := s.Install(ctx, "m", "0", p, info); err != nil {
		t.Fatal(err)
	}
	if err := s.Activate(ctx, "m", "0"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	kills := 60
	if testing.Short() {
		kills = 15
	}
	rng := rand.New(rand.NewPCG(1, 2))
	progressed := 0
	for i := 0; i < kills; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir, "MODELSTORE_CRASH_SEED="+strconv.Itoa(i+1))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Progress-driven kill point: after 1..4 more activated versions
		// (seeded), plus a seeded extra delay of 0..2 ms so kills also land
		// mid-install; never a bare timer the machine's speed decides.
		target := activated(dir) + 1 + rng.IntN(4)
		extra := time.Duration(rng.IntN(2000)) * time.Microsecond
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		deadline := time.Now().Add(time.Minute)
		for activated(dir) < target {
			select {
			case err := <-done:
				t.Fatalf("kill %d: child exited on its own: %v", i, err)
			default:
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("kill %d: child activated nothing for a minute", i)
			}
			time.Sleep(time.Millisecond) // polling interval
		}
		time.Sleep(extra)
		cmd.Process.Kill()
		<-done

		s, err := Open(dir)
		if err != nil {
			t.Fatalf("kill %d: store does not open: %v", i, err)
		}
		v, err := s.ActiveVersion(ctx, "m")
		if err != nil {
			s.Close()
			t.Fatalf("kill %d: no active version: %v", i, err)
		}
		if err := s.Verify(ctx, "m", v); err != nil {
			s.Close()
			t.Fatalf("kill %d: active version %s does not verify: %v", i, v, err)
		}
		if v != "0" {
			progressed++
		}
		m, _ := s.Get(ctx, "m")
		files, _ := filepath.Glob(filepath.Join(dir, "models", "m", "*", "*"))
		if len(files) != len(m.Versions) {
			s.Close()
			t.Fatalf("kill %d: %d files for %d recorded versions (orphans or temp files left): %v", i, len(files), len(m.Versions), files)
		}
		for _, ver := range m.Versions {
			if err := s.Verify(ctx, "m", ver.Version); err != nil {
				s.Close()
				t.Fatalf("kill %d: recorded version %s does not verify: %v", i, ver.Version, err)
			}
		}
		s.Close()
	}
	if progressed == 0 {
		t.Fatal("the child never activated a version before being killed: the test proves nothing")
	}
	t.Logf("%d kills, %d left a newer version active", kills, progressed)
}

// dirBytes sums the sizes of the files under dir.
func dirBytes(t *testing.T, dir string) (int64, int) {
	t.Helper()
	var n int64
	files := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			st, err := d.Info()
			if err != nil {
				return err
			}
			n += st.Size()
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, files
}

// TestRetentionBoundsDisk installs and activates 100 versions of 64 KiB:
// the store keeps DefaultKeep of them (records and files), the disk use
// stays bounded, and the rollback target survives every prune.
func TestRetentionBoundsDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(dir, WithClock(clock.Func(func() time.Time { clk = clk.Add(time.Second); return clk })))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src := t.TempDir()
	const size = 64 << 10
	for i := 0; i < 100; i++ {
		v := fmt.Sprintf("1.%d", i)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i*7 + j)
		}
		p, info := otatest.WriteArtifact(t, src, v, data)
		if err := s.Install(ctx, "m", v, p, info); err != nil {
			t.Fatal(err)
		}
		if err := s.Activate(ctx, "m", v); err != nil {
			t.Fatal(err)
		}
		os.Remove(p)
	}
	m, err := s.Get(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Versions) != DefaultKeep {
		t.Fatalf("%d versions recorded after 100 installs, want %d: %+v", len(m.Versions), DefaultKeep, m.Versions)
	}
	if m.Active != "1.99" || m.Previous != "1.98" {
		t.Fatalf("active %q previous %q, want 1.99 and 1.98", m.Active, m.Previous)
	}
	if got, want := m.Versions[0].Version, "1.97"; got != want {
		t.Fatalf("oldest kept version %s, want %s", got, want)
	}
	bytes, files := dirBytes(t, filepath.Join(dir, "models"))
	if files != DefaultKeep || bytes != DefaultKeep*size {
		t.Fatalf("models dir holds %d files, %d bytes after 100 installs; want %d files, %d bytes", files, bytes, DefaultKeep, DefaultKeep*size)
	}
	if dirs, _ := filepath.Glob(filepath.Join(dir, "models", "m", "*")); len(dirs) != DefaultKeep {
		t.Fatalf("%d version directories left, want %d: %v", len(dirs), DefaultKeep, dirs)
	}
	if prev, err := s.Rollback(ctx, "m"); err != nil || prev != "1.98" {
		t.Fatalf("rollback after pruning: %q %v", prev, err)
	}
	if err := s.Verify(ctx, "m", "1.98"); err != nil {
		t.Fatal(err)
	}
}

// TestRetentionKeepsActiveAndPrevious: with keep 1 the active version and
// the rollback target are both kept; an installed, not yet active version
// is kept too until the next activation.
func TestRetentionKeepsActiveAndPrevious(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(dir, WithKeep(1), WithClock(clock.Func(func() time.Time { clk = clk.Add(time.Second); return clk })))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src := t.TempDir()
	install := func(v string) {
		t.Helper()
		p, info := otatest.WriteArtifact(t, src, v, []byte("model "+v))
		if err := s.Install(ctx, "m", v, p, info); err != nil {
			t.Fatal(err)
		}
	}
	versions := func() []string {
		m, err := s.Get(ctx, "m")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range m.Versions {
			out = append(out, v.Version)
		}
		return out
	}
	install("a")
	s.Activate(ctx, "m", "a")
	install("b")
	s.Activate(ctx, "m", "b")
	install("c") // candidate: active b, previous a, new c all kept
	if got := strings.Join(versions(), ","); got != "a,b,c" {
		t.Fatalf("versions %s, want a,b,c", got)
	}
	if err := s.Activate(ctx, "m", "c"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(versions(), ","); got != "b,c" {
		t.Fatalf("after activating c: versions %s, want b,c (a pruned)", got)
	}
	if _, err := s.ModelPath(ctx, "m", "a"); !errors.Is(err, ota.ErrNotFound) {
		t.Fatalf("pruned version a still resolvable: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "models", "m", "a")); !os.IsNotExist(err) {
		t.Fatalf("pruned version directory still there: %v", err)
	}
	// A pruned version can be installed again.
	install("a")
	if err := s.Verify(ctx, "m", "a"); err != nil {
		t.Fatal(err)
	}
}
