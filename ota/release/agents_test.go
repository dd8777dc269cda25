package release

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	if _, err := Agents(repo); err == nil {
		t.Fatal("Agents of a missing repository: no error")
	}
	if err := InitKeys(keys, repo, KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	if as, err := Agents(repo); err != nil || len(as) != 0 {
		t.Fatalf("empty repository: %v %v", as, err)
	}
	bin := filepath.Join(dir, "bin")
	os.WriteFile(bin, []byte("ELF agent"), 0o755)
	for _, a := range []AgentRelease{{Version: "2", GOOS: "linux", GOARCH: "arm64"}, {Version: "2", GOOS: "linux", GOARCH: "arm", GOARM: "7"}, {Version: "1", GOOS: "linux", GOARCH: "amd64"}} {
		if _, err := AddAgentBinary(context.Background(), keys, repo, bin, a); err != nil {
			t.Fatal(err)
		}
	}
	model := filepath.Join(dir, "m.tflite")
	os.WriteFile(model, []byte("model"), 0o644)
	if _, err := AddModel(context.Background(), keys, repo, model, ModelRelease{ID: "m", Version: "1"}); err != nil {
		t.Fatal(err)
	}
	as, err := Agents(repo)
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
