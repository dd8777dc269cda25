package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/modelbuilder"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/ota/release"
)

// TestModelsPushVariant: `fleetctl models push --hardware edgetpu` signs an
// Edge TPU-compiled model (which the runtime cannot run) into the
// repository as a variant of a released version, and says what is needed
// when the version has no primary file yet.
func TestModelsPushVariant(t *testing.T) {
	dir := t.TempDir()
	keys, repo := filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
	if err := release.NewRepo(keys, repo).Init(release.KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	b := modelbuilder.New()
	x := b.AddTensor(modelbuilder.Tensor{Name: "x", Type: tensor.Uint8, Shape: []int{1, 4}})
	y := b.AddTensor(modelbuilder.Tensor{Name: "y", Type: tensor.Uint8, Shape: []int{1, 4}})
	b.AddOp(modelbuilder.Op{Builtin: schema.OpCustom, Custom: inference.EdgeTPUCustomOp, Inputs: []int{x}, Outputs: []int{y}})
	b.SetIO([]int{x}, []int{y})
	data, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	tpu := filepath.Join(dir, "cam_edgetpu.tflite")
	if err := os.WriteFile(tpu, data, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"models", "push", "--hardware", "edgetpu", tpu, "--id", "cam", "--version", "2", "--keys-dir", keys, "--repo-dir", repo}
	if out, err := fleetctl(t, args...); err == nil || !strings.Contains(err.Error(), "push the primary file of cam@2 first") {
		t.Fatalf("variant before its primary: %v\n%s", err, out)
	}
	if _, err := release.NewRepo(keys, repo).AddModel(context.Background(), filepath.Join("..", "..", "testdata", "models", "hello_world_int8.tflite"), release.ModelRelease{ID: "cam", Version: "2", Hardware: "cpu"}); err != nil {
		t.Fatal(err)
	}
	out, err := fleetctl(t, args...)
	if err != nil || !strings.Contains(out, "released the edgetpu variant of cam@2") || !strings.Contains(out, "models/cam/2/model_edgetpu.tflite") {
		t.Fatalf("push variant: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(repo, "targets", "models", "cam", "2")); err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(repo, "targets", "models", "cam", "2", "*.model_edgetpu.tflite"))
	if len(matches) != 1 {
		t.Fatalf("variant files in the repository: %v", matches)
	}
}
