// Package modelrel prepares a model release on the operator's machine: it
// inspects the .tflite file with the runtime (ops and whether the runtime
// supports them, size, quantization), computes the golden vector the device
// checks before committing an install (deterministic input bytes, sha256 of
// the runtime's output), and signs the release into the TUF repository with
// ota/release.
package modelrel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/hardware"
	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/inspect"
	"github.com/edgefleet/edgefleet/internal/wire"
	"github.com/edgefleet/edgefleet/ota/release"
)

// Options configures Push.
type Options struct {
	ID, Version string
	// KeysDir and RepoDir are the TUF keys (from fleetctl keys init) and the
	// repository fleet-server serves.
	KeysDir, RepoDir string
	// Hardware is the variant ("cpu" default: the primary file of the
	// version). Any other value ("edgetpu", "gpu", ...) adds a variant next
	// to the already released primary file (PushVariant).
	Hardware string
	// GoldenOutputSHA256 overrides the computed golden hash (e.g. a value
	// from a reference runtime).
	GoldenOutputSHA256 string
	// CorruptGolden deliberately publishes a wrong golden hash so devices
	// reject the release (demos and drills of the rollback path).
	CorruptGolden bool
	Notes         string
	// Progress, when set, is told each step of a push as it starts
	// (inspect, golden check, sign) so a CLI can say what it is doing.
	Progress func(step string)
}

func (o Options) step(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, args...))
	}
}

// Inspection is what the runtime says about a model file.
type Inspection struct {
	Size         int      `json:"size_bytes"`
	Ops          []string `json:"ops"`
	Unsupported  []string `json:"unsupported,omitempty"`
	Quantization string   `json:"quantization"`
	Inputs       []string `json:"inputs"`
	Outputs      []string `json:"outputs"`
	// EdgeTPU: the model was compiled by edgetpu_compiler (it holds
	// edgetpu-custom-op nodes) and runs only with an Edge TPU.
	EdgeTPU bool `json:"edgetpu,omitempty"`
}

// Inspect reads the model with the runtime's inspector.
func Inspect(data []byte) (Inspection, error) {
	r, err := inspect.File(data)
	if err != nil {
		return Inspection{}, fmt.Errorf("inspect model: %w", err)
	}
	in := Inspection{Size: r.SizeBytes, EdgeTPU: r.EdgeTPUOps > 0}
	for _, op := range r.Ops {
		if op.Count == 0 {
			continue
		}
		in.Ops = append(in.Ops, op.Name)
		if !op.Supported {
			in.Unsupported = append(in.Unsupported, op.Name)
		}
	}
	sort.Strings(in.Ops)
	dtypes := map[string]bool{}
	for _, t := range r.Tensors {
		if !t.Constant {
			continue
		}
		dtypes[strings.ToLower(t.DType)] = true
	}
	switch {
	case dtypes["int8"] && !dtypes["float32"]:
		in.Quantization = "int8"
	case dtypes["uint8"] && !dtypes["float32"]:
		in.Quantization = "uint8"
	case dtypes["int8"] || dtypes["uint8"]:
		in.Quantization = "mixed"
	default:
		in.Quantization = "float"
	}
	for _, t := range r.Inputs {
		in.Inputs = append(in.Inputs, fmt.Sprintf("%s %s%v", t.Name, t.DType, t.Shape))
	}
	for _, t := range r.Outputs {
		in.Outputs = append(in.Outputs, fmt.Sprintf("%s %s%v", t.Name, t.DType, t.Shape))
	}
	return in, nil
}

// GoldenInput returns the deterministic bytes used as golden input n of
// the given size.
func GoldenInput(n, size int) []byte {
	b := make([]byte, size)
	x := uint32(2166136261) + uint32(n)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// Golden runs the model on GoldenInput bytes and returns the inputs and the
// sha256 hex of the concatenated outputs. Float inputs get bytes that may
// decode to NaN; the hash is still deterministic for a bit-exact runtime,
// but zeros are used for float inputs to keep outputs finite.
func Golden(ctx context.Context, path string) ([][]byte, string, error) {
	m, err := inference.LoadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("golden: load %s: %w", path, err)
	}
	ip, err := inference.NewInterpreter(m)
	if err != nil {
		return nil, "", fmt.Errorf("golden: %w", err)
	}
	if err := ip.AllocateTensors(); err != nil {
		return nil, "", fmt.Errorf("golden: allocate: %w", err)
	}
	var inputs [][]byte
	for i := 0; i < ip.NumInputs(); i++ {
		t := ip.Input(i)
		b := GoldenInput(i, len(t.Data))
		if strings.Contains(strings.ToLower(fmt.Sprint(t.Type)), "float") {
			b = make([]byte, len(t.Data))
		}
		copy(t.Data, b)
		inputs = append(inputs, b)
	}
	if err := ip.InvokeContext(ctx); err != nil {
		return nil, "", fmt.Errorf("golden: invoke: %w", err)
	}
	h := sha256.New()
	for i := 0; i < ip.NumOutputs(); i++ {
		h.Write(ip.Output(i).Data)
	}
	return inputs, hex.EncodeToString(h.Sum(nil)), nil
}

// Push inspects, golden-tests and signs the model at path into the
// repository and returns the registry record to register with fleet-server.
// With a Hardware other than "cpu" it is PushVariant.
func Push(ctx context.Context, path string, o Options) (registry.Model, Inspection, error) {
	if o.Hardware != "" && o.Hardware != hardware.VariantCPU {
		return PushVariant(ctx, path, o)
	}
	if err := wire.ValidateID("model id", o.ID); err != nil {
		return registry.Model{}, Inspection{}, err
	}
	if err := wire.ValidateID("version", o.Version); err != nil {
		return registry.Model{}, Inspection{}, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return registry.Model{}, Inspection{}, fmt.Errorf("push %s: %w", path, err)
	}
	o.step("inspecting %s (%d bytes)", path, len(data))
	ins, err := Inspect(data)
	if err != nil {
		return registry.Model{}, Inspection{}, fmt.Errorf("push %s: %w", path, err)
	}
	if ins.EdgeTPU {
		return registry.Model{}, ins, fmt.Errorf("push %s: compiled for the Edge TPU (%s): push the uncompiled model as the primary file, then this one with --hardware edgetpu (docs/acceleration.md)",
			path, inference.EdgeTPUCustomOp)
	}
	if len(ins.Unsupported) > 0 {
		return registry.Model{}, ins, fmt.Errorf("push %s: ops not supported by the runtime: %s", path, strings.Join(ins.Unsupported, ", "))
	}
	o.step("golden check: running %d ops on the pure-Go runtime", len(ins.Ops))
	inputs, sum, err := Golden(ctx, path)
	if err != nil {
		return registry.Model{}, ins, fmt.Errorf("push %s: %w", path, err)
	}
	if o.GoldenOutputSHA256 != "" {
		sum = o.GoldenOutputSHA256
	}
	if o.CorruptGolden {
		s := sha256.Sum256([]byte("corrupt:" + sum))
		sum = hex.EncodeToString(s[:])
	}
	if o.Hardware == "" {
		o.Hardware = "cpu"
	}
	o.step("signing %s@%s into the TUF repository %s", o.ID, o.Version, o.RepoDir)
	ti, err := release.NewRepo(o.KeysDir, o.RepoDir).AddModel(ctx, path, release.ModelRelease{ID: o.ID, Version: o.Version,
		RequiredOps: ins.Ops, Hardware: o.Hardware, GoldenInputs: inputs, GoldenOutputSHA256: sum})
	if err != nil {
		return registry.Model{}, ins, err
	}
	return registry.Model{ID: o.ID, Version: o.Version, Target: wire.Target{Name: ti.Path, Length: ti.Length, SHA256: ti.SHA256},
		Ops: ins.Ops, Quantization: ins.Quantization, Notes: o.Notes}, ins, nil
}

// PushVariant signs the model at path into the repository as the
// o.Hardware variant of o.ID@o.Version (docs/acceleration.md), next to the
// primary file Push released before. A variant runs on TensorFlow Lite
// with a delegate, not on the pure-Go runtime, so it is inspected but
// neither required to use only the runtime's ops nor run: it is released
// without a golden vector and devices verify it by its signed sha256 (and
// by loading it). A model compiled for the Edge TPU must be the "edgetpu"
// variant, and the "edgetpu" variant must be compiled for it.
func PushVariant(ctx context.Context, path string, o Options) (registry.Model, Inspection, error) {
	for _, f := range []struct{ what, v string }{{"model id", o.ID}, {"version", o.Version}, {"hardware", o.Hardware}} {
		if err := wire.ValidateID(f.what, f.v); err != nil {
			return registry.Model{}, Inspection{}, err
		}
	}
	if o.Hardware == hardware.VariantCPU {
		return registry.Model{}, Inspection{}, fmt.Errorf("push %s: the %s variant is the primary file: push it without --hardware", path, o.Hardware)
	}
	if o.GoldenOutputSHA256 != "" || o.CorruptGolden {
		return registry.Model{}, Inspection{}, fmt.Errorf("push %s: the %s variant is released without a golden vector (devices verify it by its signed sha256); drop --golden-output-sha256 / --corrupt-golden", path, o.Hardware)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return registry.Model{}, Inspection{}, fmt.Errorf("push %s: %w", path, err)
	}
	ins, err := Inspect(data)
	if err != nil {
		return registry.Model{}, Inspection{}, fmt.Errorf("push %s: %w", path, err)
	}
	switch {
	case ins.EdgeTPU && o.Hardware != hardware.VariantEdgeTPU:
		return registry.Model{}, ins, fmt.Errorf("push %s: compiled for the Edge TPU (%s): push it with --hardware %s, not %s",
			path, inference.EdgeTPUCustomOp, hardware.VariantEdgeTPU, o.Hardware)
	case !ins.EdgeTPU && o.Hardware == hardware.VariantEdgeTPU:
		return registry.Model{}, ins, fmt.Errorf("push %s: --hardware %s needs a model compiled with edgetpu_compiler (no %s node found)",
			path, hardware.VariantEdgeTPU, inference.EdgeTPUCustomOp)
	}
	ti, err := release.NewRepo(o.KeysDir, o.RepoDir).AddModelVariant(ctx, path, release.ModelRelease{ID: o.ID, Version: o.Version,
		RequiredOps: ins.Ops, Hardware: o.Hardware})
	if err != nil && strings.Contains(err.Error(), "is not released") {
		return registry.Model{}, ins, fmt.Errorf("%w (a variant is added to a released version: push the primary file of %s@%s first, without --hardware)", err, o.ID, o.Version)
	}
	if err != nil {
		return registry.Model{}, ins, err
	}
	return registry.Model{ID: o.ID, Version: o.Version, Target: wire.Target{Name: ti.Path, Length: ti.Length, SHA256: ti.SHA256},
		Ops: ins.Ops, Quantization: ins.Quantization, Notes: o.Notes}, ins, nil
}
