package kerneltest

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
)

var updateGoldens = flag.Bool("update-goldens", false, "regenerate golden outputs with the real TensorFlow Lite (needs node and the tflite-reference runner)")

// ReferenceDir is where the TensorFlow Lite reference runner (run.mjs, with
// its node_modules installed) lives: where `make tflite-reference`
// (build/tflite-reference.sh) installs it, in the user's cache directory;
// EDGEFLEET_TFLITE_REFERENCE overrides it.
func ReferenceDir() string {
	if d := os.Getenv("EDGEFLEET_TFLITE_REFERENCE"); d != "" {
		return d
	}
	if d := os.Getenv("TFLITE_REFERENCE_WORK"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "edgefleet", "tflite-reference")
}

// Golden returns TensorFlow Lite's outputs for model on inputs, stored in
// testdata/golden/<name>/expected_<i>.bin of the calling package. With
// -update-goldens it first runs the real TensorFlow Lite (builtin kernels,
// XNNPACK off) and stores the model, the inputs and the outputs there.
func Golden(t *testing.T, name string, model []byte, inputs [][]byte) [][]byte {
	t.Helper()
	dir := filepath.Join("testdata", "golden", name)
	if *updateGoldens {
		// Checked before anything is removed: a missing runner must not
		// cost the stored goldens.
		if _, err := os.Stat(filepath.Join(ReferenceDir(), "node_modules")); err != nil {
			t.Fatalf("-update-goldens needs the TensorFlow Lite reference runner in %s: run `make tflite-reference` first (%v)", ReferenceDir(), err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		old, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
		for _, f := range old {
			os.Remove(f)
		}
		modelPath := filepath.Join(dir, "model.tflite")
		if err := os.WriteFile(modelPath, model, 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{filepath.Join(ReferenceDir(), "run.mjs"), "--model", modelPath, "--xnnpack", "off", "--repeat", "1", "--warmup", "0"}
		for i, in := range inputs {
			p := filepath.Join(dir, fmt.Sprintf("input_%d.bin", i))
			if err := os.WriteFile(p, in, 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--input", p)
		}
		out := t.TempDir()
		args = append(args, "--outdir", out)
		cmd := exec.Command("node", args...)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("reference TensorFlow Lite failed on %s: %v\n%s", name, err, msg)
		}
		outs, _ := filepath.Glob(filepath.Join(out, "out*.bin"))
		sort.Strings(outs)
		for i := range outs {
			b, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("out%d.bin", i)))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("expected_%d.bin", i)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var res [][]byte
	for i := 0; ; i++ {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("expected_%d.bin", i)))
		if os.IsNotExist(err) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, b)
	}
	if len(res) == 0 {
		t.Fatalf("no golden outputs in %s: run the test with -args -update-goldens", dir)
	}
	return res
}
