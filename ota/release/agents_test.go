package release

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/ota"
)

func TestParsePlatform(t *testing.T) {
	for _, c := range []struct {
		in, goos, goarch, goarm, err string
	}{
		{in: "linux/amd64", goos: "linux", goarch: "amd64"},
		{in: "linux/arm64", goos: "linux", goarch: "arm64"},
		{in: "linux/arm/v7", goos: "linux", goarch: "arm", goarm: "7"},
		{in: "linux/arm/v6", goos: "linux", goarch: "arm", goarm: "6"},
		{in: "linux/arm", goos: "linux", goarch: "arm", goarm: "7"},
		{in: "linux", err: "want GOOS/GOARCH"},
		{in: "", err: "want GOOS/GOARCH"},
		{in: "linux/arm64/v8", err: "only defined for arm"},
		{in: "linux/arm/v9", err: "want v5, v6 or v7"},
		{in: "linux/", err: "goarch"},
		{in: "../amd64", err: "goos"},
		{in: "li nux/amd64", err: "goos"},
	} {
		goos, goarch, goarm, err := ParsePlatform(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want error containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || goos != c.goos || goarch != c.goarch || goarm != c.goarm {
			t.Errorf("%q: %s %s %s %v", c.in, goos, goarch, goarm, err)
		}
		if err == nil && c.in != "linux/arm" && Platform(customOf(goos, goarch, goarm)) != c.in {
			t.Errorf("%q: Platform gives %q back", c.in, Platform(customOf(goos, goarch, goarm)))
		}
	}
}

func TestAgentsListsReleasedBinaries(t *testing.T) {
	dir := t.TempDir()
	keys, repo := filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
	if _, err := NewRepo("", repo).Agents(); err == nil {
		t.Fatal("Agents of a missing repository: no error")
	}
	if err := NewRepo(keys, repo).Init(KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	if as, err := NewRepo("", repo).Agents(); err != nil || len(as) != 0 {
		t.Fatalf("empty repository: %v %v", as, err)
	}
	bin := filepath.Join(dir, "bin")
	os.WriteFile(bin, []byte("ELF agent"), 0o755)
	for _, a := range []AgentRelease{{Version: "2", GOOS: "linux", GOARCH: "arm64"}, {Version: "2", GOOS: "linux", GOARCH: "arm", GOARM: "7"}, {Version: "1", GOOS: "linux", GOARCH: "amd64"}} {
		if _, err := NewRepo(keys, repo).AddAgentBinary(context.Background(), bin, a); err != nil {
			t.Fatal(err)
		}
	}
	model := filepath.Join(dir, "m.tflite")
	os.WriteFile(model, []byte("model"), 0o644)
	if _, err := NewRepo(keys, repo).AddModel(context.Background(), model, ModelRelease{ID: "m", Version: "1"}); err != nil {
		t.Fatal(err)
	}
	as, err := NewRepo("", repo).Agents()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range as {
		got = append(got, Platform(a.Custom)+"@"+a.Custom.Version)
		if a.Length != 9 || len(a.SHA256) != 64 {
			t.Errorf("%s: length %d sha256 %q", a.Path, a.Length, a.SHA256)
		}
	}
	if strings.Join(got, ",") != "linux/amd64@1,linux/arm/v7@2,linux/arm64@2" {
		t.Fatalf("agents %v (models must not be listed)", got)
	}
}

func customOf(goos, goarch, goarm string) ota.TargetCustom {
	return ota.TargetCustom{GOOS: goos, GOARCH: goarch, GOARM: goarm}
}

// TestConcurrentWritersKeepEveryRelease: releases and refreshes running at
// once (fleet-server signing agent binaries and re-signing its timestamp
// while fleetctl pushes a model) serialize on the repository lock: every
// release is in the final signed targets, and the metadata chain verifies.
func TestConcurrentWritersKeepEveryRelease(t *testing.T) {
	dir := t.TempDir()
	keys, repo := filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
	if err := NewRepo(keys, repo).Init(KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for i := 0; i < n; i++ {
		bin := filepath.Join(dir, fmt.Sprintf("bin%d", i))
		os.WriteFile(bin, []byte(fmt.Sprintf("agent %d", i)), 0o755)
		model := filepath.Join(dir, fmt.Sprintf("m%d.tflite", i))
		os.WriteFile(model, []byte(fmt.Sprintf("model %d", i)), 0o644)
		wg.Add(3)
		go func() {
			defer wg.Done()
			_, err := NewRepo(keys, repo).AddAgentBinary(context.Background(), bin, AgentRelease{Version: fmt.Sprint(i), GOOS: "linux", GOARCH: "arm64"})
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := NewRepo(keys, repo).AddModel(context.Background(), model, ModelRelease{ID: "m", Version: fmt.Sprint(i)})
			errs <- err
		}()
		go func() { defer wg.Done(); errs <- NewRepo(keys, repo).Refresh(time.Now()) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	as, err := NewRepo("", repo).Agents()
	if err != nil || len(as) != n {
		t.Fatalf("%d agent releases after %d concurrent pushes: %v", len(as), n, err)
	}
	r, err := openRepo(repo)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r.targets.Signed.Targets); got != 2*n {
		t.Fatalf("%d targets, want %d", got, 2*n)
	}
	if r.snapshot.Signed.Meta["targets.json"].Version != r.targets.Signed.Version {
		t.Fatalf("snapshot pins targets v%d, targets is v%d", r.snapshot.Signed.Meta["targets.json"].Version, r.targets.Signed.Version)
	}
	if r.timestamp.Signed.Meta["snapshot.json"].Version != r.snapshot.Signed.Version {
		t.Fatalf("timestamp pins snapshot v%d, snapshot is v%d", r.timestamp.Signed.Meta["snapshot.json"].Version, r.snapshot.Signed.Version)
	}
}

// FuzzParsePlatform: any string (an API query parameter) gives a clear
// error or a platform whose parts are valid names that print back to an
// equivalent platform; never a panic.
func FuzzParsePlatform(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/arm/v7", "linux/arm", "", "/", "linux//v7", "a/b/c/d", "linux/arm/v"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		goos, goarch, goarm, err := ParsePlatform(s)
		if err != nil {
			if goos != "" || goarch != "" || goarm != "" {
				t.Fatalf("%q: error %v with parts %q %q %q", s, err, goos, goarch, goarm)
			}
			return
		}
		if ota.ValidateName("goos", goos) != nil || ota.ValidateName("goarch", goarch) != nil || (goarch == "arm") != (goarm != "") {
			t.Fatalf("%q: parts %q %q %q", s, goos, goarch, goarm)
		}
		back := Platform(customOf(goos, goarch, goarm))
		if g2, a2, m2, err := ParsePlatform(back); err != nil || g2 != goos || a2 != goarch || m2 != goarm {
			t.Fatalf("%q -> %q does not parse back: %v", s, back, err)
		}
	})
}
