package fleetlink

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/agent/daemon"
	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/agent/serving"
	"github.com/edgefleet/edgefleet/agent/telemetry"
	"github.com/edgefleet/edgefleet/hardware"
	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/wire"
	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/release"
)

// edgeTPUModel is a one-node model whose node is edgetpu-custom-op, as
// edgetpu_compiler writes them.
func edgeTPUModel(t *testing.T) []byte {
	t.Helper()
	b := modelbuilder.New()
	x := b.AddTensor(modelbuilder.Tensor{Name: "x", Type: tensor.Uint8, Shape: []int{1, 4}})
	y := b.AddTensor(modelbuilder.Tensor{Name: "y", Type: tensor.Uint8, Shape: []int{1, 4}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpCustom, Custom: inference.EdgeTPUCustomOp, Inputs: []int{x}, Outputs: []int{y}})
	b.SetIO([]int{x}, []int{y})
	data, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestJobsInstallTheDeviceVariant releases cam@2 as a cpu file (with a
// golden vector) plus an Edge TPU file (without one), and runs the agent's
// real job handler (TUF updater over loopback HTTP, installer, bbolt
// store) on a Coral board and on a plain board: each installs its own file,
// the Coral's variant is never checked against the primary's golden, and a
// release with only an Edge TPU file is rejected on the plain board.
func TestJobsInstallTheDeviceVariant(t *testing.T) {
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

	cpuFile := filepath.Join("..", "..", "testdata", "models", "hello_world_int8.tflite")
	cpuBytes, err := os.ReadFile(cpuFile)
	if err != nil {
		t.Fatal(err)
	}
	tpuBytes := edgeTPUModel(t)
	tpuFile := filepath.Join(dir, "model_edgetpu.tflite")
	if err := os.WriteFile(tpuFile, tpuBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	golden := strings.Repeat("ab", 32)
	if _, err := release.NewRepo(keys, repo).AddModel(ctx, cpuFile, release.ModelRelease{ID: "cam", Version: "2", Hardware: "cpu",
		GoldenInputs: [][]byte{{1, 2, 3, 4}}, GoldenOutputSHA256: golden}); err != nil {
		t.Fatal(err)
	}
	if _, err := release.NewRepo(keys, repo).AddModelVariant(ctx, tpuFile, release.ModelRelease{ID: "cam", Version: "2", Hardware: "edgetpu",
		RequiredOps: []string{inference.EdgeTPUCustomOp}}); err != nil {
		t.Fatal(err)
	}
	// tpu@1 exists only as an Edge TPU file.
	if _, err := release.NewRepo(keys, repo).AddModel(ctx, tpuFile, release.ModelRelease{ID: "tpu", Version: "1", Hardware: "edgetpu"}); err != nil {
		t.Fatal(err)
	}

	coral := hardware.DetectRoot("../../hardware/testdata/rpi").Variants(true)
	plain := hardware.DetectRoot(t.TempDir()).Variants(true)
	if coral[0] != "edgetpu" || !reflect.DeepEqual(plain, []string{"cpu"}) {
		t.Fatalf("fixture boards: coral %v, plain %v", coral, plain)
	}
	for _, c := range []struct {
		name       string
		runnable   []string
		want       []byte
		wantGolden string
	}{{"coral", coral, tpuBytes, ""}, {"plain", plain, cpuBytes, golden}} {
		t.Run(c.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "device")
			store, err := modelstore.Open(data)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			mgr := serving.NewManager(engine.Native{}, store, telemetry.NewCollector(nil), serving.Config{}, quietLog())
			h := &otaJobs{deps: daemon.FleetDeps{DataDir: data, Store: store, Manager: mgr, Log: quietLog()}, link: &Link{},
				variants: func() []string { return c.runnable }}
			h.up, err = ota.NewUpdater(ota.UpdaterConfig{DataDir: filepath.Join(data, "ota"), RepoURL: srv.URL, TrustedRoot: root})
			if err != nil {
				t.Fatal(err)
			}
			var checked []ota.Golden
			check := func(_ context.Context, p string, g ota.Golden) error {
				checked = append(checked, g)
				return nil
			}
			h.pipe, err = ota.OpenPipeline(data, store, check)
			if err != nil {
				t.Fatal(err)
			}
			defer h.pipe.Close()
			job := func(id, version string) error {
				return h.HandleJob(ctx, wire.Job{JobID: "j-" + id, Kind: wire.JobInstall, ModelID: id, Version: version, State: wire.JobQueued,
					Created: time.Now(), Deadline: time.Now().Add(time.Hour)}, func(int) {})
			}
			if err := job("cam", "2"); err != nil {
				t.Fatal(err)
			}
			p, err := store.ModelPath(ctx, "cam", "2")
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, c.want) {
				t.Errorf("installed %d bytes, want the %d-byte %s file", len(got), len(c.want), c.name)
			}
			if len(checked) != 1 || checked[0].OutputSHA256 != c.wantGolden || (c.wantGolden == "") != (len(checked[0].Inputs) == 0) {
				t.Errorf("golden checks %+v, want one with output sha256 %q", checked, c.wantGolden)
			}

			err = job("tpu", "1")
			var je *wire.JobError
			if c.name == "coral" {
				if err != nil {
					t.Errorf("edgetpu-only release on the coral: %v", err)
				}
			} else if !errors.As(err, &je) || je.State != wire.JobRejected || !strings.Contains(je.Reason, "cpu") {
				t.Errorf("edgetpu-only release on a plain board: %v, want rejected naming the device's variants", err)
			}
			if err := job("cam", "9"); !errors.As(err, &je) || je.State != wire.JobRejected {
				t.Errorf("unreleased version: %v, want rejected", err)
			}
		})
	}
}

// TestDeviceHardware: what the device reports at enrollment and in its
// status carries the engine's capabilities, and a Coral board's report
// names the Edge TPU and the variants best first.
func TestDeviceHardware(t *testing.T) {
	v, b := engine.DeviceCapabilities()
	got := DeviceHardware()
	if !reflect.DeepEqual(got.ModelVariants, v) || !reflect.DeepEqual(got.Backends, b) || !slices.Contains(got.ModelVariants, hardware.VariantCPU) ||
		!slices.Contains(got.Backends, "native") || got.Arch == "" {
		t.Errorf("DeviceHardware = %+v, engine capabilities %v %v", got, v, b)
	}
	if err := got.Validate(); err != nil {
		t.Error(err)
	}
	info := hardware.DetectRoot("../../hardware/testdata/rpi")
	rv, rb := engine.Capabilities(info)
	r := hardwareReport(info, rv, rb)
	if !slices.Contains(r.Accelerators, "edgetpu/usb") || !reflect.DeepEqual(r.ModelVariants, rv) || !reflect.DeepEqual(r.Backends, rb) {
		t.Errorf("coral report %+v", r)
	}
}
