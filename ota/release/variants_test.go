package release

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgefleet/edgefleet/hardware"
	"github.com/edgefleet/edgefleet/ota"
)

func TestVariantTargetPath(t *testing.T) {
	for hw, want := range map[string]string{
		"":        "models/cam/2/model.tflite",
		"cpu":     "models/cam/2/model.tflite",
		"edgetpu": "models/cam/2/model_edgetpu.tflite",
	} {
		if got := VariantTargetPath("cam", "2", hw); got != want {
			t.Errorf("VariantTargetPath(%q) = %s, want %s", hw, got, want)
		}
	}
}

// TestModelVariantsRoundTrip releases a cpu and an Edge TPU file of one
// version, serves the signed repository over HTTP, and has a real TUF
// updater on a Coral and on a plain board each pick and download its file.
func TestModelVariantsRoundTrip(t *testing.T) {
	ctx := context.Background()
	keys, repo := initRepo(t, KeyOptions{})
	cpuFile, tpuFile := writeFile(t, "cpu model bytes"), writeFile(t, "edge tpu model bytes")
	if _, err := NewRepo(keys, repo).AddModelVariant(ctx, tpuFile, ModelRelease{ID: "cam", Version: "2", Hardware: "edgetpu"}); err == nil {
		t.Fatal("variant of an unreleased version accepted")
	}
	if _, err := NewRepo(keys, repo).AddModel(ctx, cpuFile, ModelRelease{ID: "cam", Version: "2", Hardware: "cpu"}); err != nil {
		t.Fatal(err)
	}
	info, err := NewRepo(keys, repo).AddModelVariant(ctx, tpuFile, ModelRelease{ID: "cam", Version: "2", Hardware: "edgetpu", RequiredOps: []string{"edgetpu-custom-op"}})
	if err != nil {
		t.Fatal(err)
	}
	if info.Path != "models/cam/2/model_edgetpu.tflite" || info.Custom.Hardware != "edgetpu" {
		t.Errorf("variant target = %+v", info)
	}
	// Same bytes again: no-op; other bytes: refused (versions are immutable).
	if _, err := NewRepo(keys, repo).AddModelVariant(ctx, tpuFile, ModelRelease{ID: "cam", Version: "2", Hardware: "edgetpu"}); err != nil {
		t.Errorf("re-release of the same variant: %v", err)
	}
	if _, err := NewRepo(keys, repo).AddModelVariant(ctx, cpuFile, ModelRelease{ID: "cam", Version: "2", Hardware: "edgetpu"}); !errors.Is(err, ErrVersionExists) {
		t.Errorf("different bytes for a released variant: %v", err)
	}
	for _, bad := range []ModelRelease{{ID: "cam", Version: "2", Hardware: "cpu"}, {ID: "cam", Version: "2", Hardware: "edgetpu", DeltaBaseVersion: "1"}} {
		if _, err := NewRepo(keys, repo).AddModelVariant(ctx, tpuFile, bad); err == nil {
			t.Errorf("AddModelVariant(%+v) accepted", bad)
		}
	}

	ts := httptest.NewServer(NewRepo("", repo).Handler())
	defer ts.Close()
	root, err := os.ReadFile(filepath.Join(repo, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	coral := hardware.DetectRoot("../../hardware/testdata/rpi").Variants(true)
	plain := hardware.DetectRoot(t.TempDir()).Variants(true)
	for _, c := range []struct {
		name     string
		runnable []string
		want     string
	}{{"coral", coral, "edge tpu model bytes"}, {"plain", plain, "cpu model bytes"}} {
		u, err := ota.NewUpdater(ota.UpdaterConfig{DataDir: t.TempDir(), RepoURL: ts.URL, TrustedRoot: root})
		if err != nil {
			t.Fatal(err)
		}
		if err := u.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		targets, err := u.Targets(ctx, ota.KindModel)
		if err != nil {
			t.Fatal(err)
		}
		if vs := Variants(targets, "cam", "2"); len(vs) != 2 {
			t.Fatalf("%s: variants = %v", c.name, vs)
		}
		tgt, err := PickVariant(targets, "cam", "2", c.runnable)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		dest := filepath.Join(t.TempDir(), "model.tflite")
		if err := u.Fetch(ctx, tgt, dest); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(dest); string(b) != c.want {
			t.Errorf("%s installed %q, want %q", c.name, b, c.want)
		}
		if _, err := PickVariant(targets, "cam", "3", c.runnable); !errors.Is(err, ota.ErrTargetNotFound) {
			t.Errorf("%s: unreleased version: %v", c.name, err)
		}
	}
}

func TestPickVariantNoFit(t *testing.T) {
	targets := []ota.Target{
		{Path: "models/cam/2/model.tflite", Custom: ota.TargetCustom{Kind: ota.KindModel, ID: "cam", Version: "2", Hardware: "edgetpu"}},
		// A target whose path does not match its hardware field is ignored.
		{Path: "models/cam/2/model_gpu.tflite", Custom: ota.TargetCustom{Kind: ota.KindModel, ID: "cam", Version: "2", Hardware: "cpu"}},
	}
	if _, err := PickVariant(targets, "cam", "2", []string{"cpu"}); !errors.Is(err, hardware.ErrNoVariant) {
		t.Errorf("edgetpu-only release on a plain board: %v", err)
	}
	got, err := PickVariant(targets, "cam", "2", []string{"edgetpu", "cpu"})
	if err != nil || got.Path != "models/cam/2/model.tflite" {
		t.Errorf("coral: %+v, %v", got, err)
	}
}
