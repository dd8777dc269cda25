package modelrel_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/fleet/modelrel"
	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/release"
)

func model(t *testing.T) string {
	p := filepath.Join("..", "..", "testdata", "models", "hello_world_int8.tflite")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("test model missing: %v", err)
	}
	return p
}

// TestPushSignsIntoRepo: a real model is inspected, golden-tested twice
// with the same result, and signed into a fresh TUF repository; the
// corrupt-golden option changes the hash.
func TestPushSignsIntoRepo(t *testing.T) {
	ctx := context.Background()
	p := model(t)
	_, h1, err := modelrel.Golden(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	_, h2, _ := modelrel.Golden(ctx, p)
	if h1 != h2 || len(h1) != 64 {
		t.Fatalf("golden not deterministic: %s %s", h1, h2)
	}
	dir := t.TempDir()
	keys, repo := filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
	if err := release.NewRepo(keys, repo).Init(release.KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	var steps []string
	m, ins, err := modelrel.Push(ctx, p, modelrel.Options{ID: "hello", Version: "1", KeysDir: keys, RepoDir: repo,
		Progress: func(step string) { steps = append(steps, step) }})
	if err != nil {
		t.Fatal(err)
	}
	// Progress names every step, in order.
	if len(steps) != 3 || !strings.HasPrefix(steps[0], "inspecting ") || !strings.HasPrefix(steps[1], "golden check") ||
		!strings.HasPrefix(steps[2], "signing hello@1 ") {
		t.Fatalf("progress steps %q", steps)
	}
	if len(ins.Ops) == 0 || ins.Quantization != "int8" {
		t.Fatalf("inspection %+v", ins)
	}
	hashed := filepath.Join(repo, "targets", filepath.Dir(m.Target.Name), m.Target.SHA256+"."+filepath.Base(m.Target.Name))
	if _, err := os.Stat(hashed); err != nil {
		t.Fatalf("target not in repo: %v", err)
	}
	if _, _, err := modelrel.Push(ctx, p, modelrel.Options{ID: "bad/id", Version: "1", KeysDir: keys, RepoDir: repo}); err == nil {
		t.Fatal("bad id accepted")
	}
}

// edgeTPUModel writes a one-node model whose node is edgetpu-custom-op, as
// edgetpu_compiler writes them.
func edgeTPUModel(t *testing.T) string {
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
	p := filepath.Join(t.TempDir(), "model_edgetpu.tflite")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPushVariant: an Edge TPU-compiled model (which the runtime cannot
// run) is accepted as the edgetpu variant of a released version, without a
// golden vector, and signed next to the primary file; the mistakes are
// refused with what to do instead.
func TestPushVariant(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keys, repo := filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
	if err := release.NewRepo(keys, repo).Init(release.KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	tpu, cpu := edgeTPUModel(t), model(t)
	opts := func(hw string) modelrel.Options {
		return modelrel.Options{ID: "cam", Version: "2", KeysDir: keys, RepoDir: repo, Hardware: hw}
	}
	// No primary yet: refused, saying what is needed.
	if _, _, err := modelrel.Push(ctx, tpu, opts("edgetpu")); err == nil || !strings.Contains(err.Error(), "push the primary file of cam@2 first") {
		t.Fatalf("variant before its primary: %v", err)
	}
	// An Edge TPU model as the primary: refused with the way to do it.
	if _, _, err := modelrel.Push(ctx, tpu, opts("")); err == nil || !strings.Contains(err.Error(), "--hardware edgetpu") {
		t.Fatalf("edge tpu model as primary: %v", err)
	}
	if _, _, err := modelrel.Push(ctx, cpu, opts("")); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		path string
		o    modelrel.Options
		want string
	}{
		"uncompiled as edgetpu":    {cpu, opts("edgetpu"), "edgetpu_compiler"},
		"edgetpu model as gpu":     {tpu, opts("gpu"), "--hardware edgetpu"},
		"golden for a variant":     {tpu, modelrel.Options{ID: "cam", Version: "2", KeysDir: keys, RepoDir: repo, Hardware: "edgetpu", GoldenOutputSHA256: strings.Repeat("0", 64)}, "golden"},
		"bad hardware name":        {tpu, opts("edge tpu"), "hardware"},
		"variant of other version": {tpu, modelrel.Options{ID: "cam", Version: "3", KeysDir: keys, RepoDir: repo, Hardware: "edgetpu"}, "cam@3"},
	} {
		if _, _, err := modelrel.Push(ctx, c.path, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error mentioning %q", name, err, c.want)
		}
	}
	m, ins, err := modelrel.Push(ctx, tpu, opts("edgetpu"))
	if err != nil {
		t.Fatal(err)
	}
	if !ins.EdgeTPU || m.Target.Name != "models/cam/2/model_edgetpu.tflite" || len(m.Target.SHA256) != 64 {
		t.Fatalf("variant %+v, inspection %+v", m, ins)
	}
	hashed := filepath.Join(repo, "targets", filepath.Dir(m.Target.Name), m.Target.SHA256+"."+filepath.Base(m.Target.Name))
	if _, err := os.Stat(hashed); err != nil {
		t.Fatalf("variant not in repo: %v", err)
	}
	// Read back through the signed metadata: hardware and ops, no golden.
	var targets struct {
		Signed struct {
			Targets map[string]struct {
				Custom ota.TargetCustom `json:"custom"`
			} `json:"targets"`
		} `json:"signed"`
	}
	b, err := os.ReadFile(filepath.Join(repo, "metadata", "targets.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &targets); err != nil {
		t.Fatal(err)
	}
	c := targets.Signed.Targets[m.Target.Name].Custom
	if c.Hardware != "edgetpu" || c.Golden != nil || !slices.Contains(c.RequiredOps, inference.EdgeTPUCustomOp) {
		t.Errorf("signed custom metadata of the variant: %+v", c)
	}
	if p := targets.Signed.Targets["models/cam/2/model.tflite"].Custom; p.Golden == nil {
		t.Errorf("primary lost its golden vector: %+v", p)
	}
}
