package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// backendFlags are infer's and bench's --backend and acceleration flags:
// with --backend the model runs through the agent's engine (the backend
// and delegate chosen as edge-agent run would), not the runtime directly.
type backendFlags struct {
	backend string
	accel   accelFlags
}

func (b *backendFlags) set() bool { return b.backend != "" }

func (b *backendFlags) load() (engine.Backend, error) {
	name, err := b.accel.register(b.backend)
	if err != nil {
		return nil, err
	}
	return engine.Lookup(name)
}

// inferBackend runs one inference through the engine and writes
// output_N.bin files like infer does.
func inferBackend(ctx context.Context, bf *backendFlags, model string, inputFiles []string, outDir string, threads int, stdout io.Writer) error {
	be, err := bf.load()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(model)
	if err != nil {
		return fmt.Errorf("read model: %w", err)
	}
	var inputs [][]byte
	for _, f := range inputFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
		inputs = append(inputs, b)
	}
	out, what, err := engine.RunOnce(ctx, be, data, inputs, threads)
	if err != nil {
		return fmt.Errorf("infer %s: %w", model, err)
	}
	fmt.Fprintf(stdout, "%s: engine=%s\n", model, what)
	for i, o := range out {
		t := &tensor.Tensor{Type: o.Info.Type, Shape: o.Info.Shape, Quant: o.Info.Quant, Data: o.Data}
		line := fmt.Sprintf("output %d %q: %s %v", i, o.Info.Name, o.Info.Type, o.Info.Shape)
		if vals, err := t.Real(); err == nil && len(vals) > 0 {
			best := 0
			for k, v := range vals {
				if v > vals[best] {
					best = k
				}
			}
			line += fmt.Sprintf(" top=%d (%.4g)", best, vals[best])
		}
		fmt.Fprintln(stdout, line)
		if outDir != "" {
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(outDir, fmt.Sprintf("output_%d.bin", i)), o.Data, 0o644); err != nil {
				return fmt.Errorf("write output %d: %w", i, err)
			}
		}
	}
	return nil
}

// benchBackend measures a model through the engine.
func benchBackend(ctx context.Context, bf *backendFlags, model string, threads, warmup, repeat int, asJSON bool, stdout io.Writer) error {
	be, err := bf.load()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(model)
	if err != nil {
		return fmt.Errorf("read model: %w", err)
	}
	r, err := engine.Bench(ctx, be, data, threads, warmup, repeat)
	if err != nil {
		return fmt.Errorf("bench %s: %w", model, err)
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			Model string `json:"model"`
			engine.BenchResult
		}{model, r})
	}
	_, err = fmt.Fprintf(stdout, "%s: engine=%s threads=%d repeat=%d p50=%.3fms p90=%.3fms min=%.3fms\n", model, r.Engine, r.Threads, r.Repeat, r.P50, r.P90, r.Min)
	return err
}

var errBackendOnly = errors.New("--image, --top-k and --json are not available with --backend (raw --input files only)")
