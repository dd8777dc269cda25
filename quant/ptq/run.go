package ptq

import (
	"errors"
	"fmt"
	"os"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// Config is one quantization run from files, as `edge-agent quantize`
// does it.
type Config struct {
	// ModelPath is the float32 .tflite model.
	ModelPath string
	// Calibration is a directory or NDJSON file of representative inputs
	// (see LoadCalibration); empty when Random is used.
	Calibration string
	// Random, when > 0, calibrates on that many random samples drawn from
	// each input's declared range (see RandomSamples).
	Random int
	// Seed seeds Random.
	Seed uint64
	// OutputPath receives the int8 model.
	OutputPath string
	// IO is "int8" (default), "uint8" or "float32".
	IO string
	// PerTensor quantizes weights per tensor instead of per channel.
	PerTensor bool
}

// Result summarizes a run.
type Result struct {
	// Samples is the number of calibration samples used.
	Samples int
	// Tensors is the number of calibrated activation tensors.
	Tensors int
	// Bytes is the size of the written model.
	Bytes int
}

// ParseIOType parses the --io flag value.
func ParseIOType(s string) (tensor.DType, error) {
	switch s {
	case "", "int8":
		return tensor.Int8, nil
	case "uint8":
		return tensor.Uint8, nil
	case "float32":
		return tensor.Float32, nil
	}
	return 0, fmt.Errorf("input/output type %q: expected int8, uint8 or float32", s)
}

// Run calibrates and quantizes cfg.ModelPath and writes cfg.OutputPath.
func Run(cfg Config) (Result, error) {
	io, err := ParseIOType(cfg.IO)
	if err != nil {
		return Result{}, err
	}
	if cfg.OutputPath == "" {
		return Result{}, errors.New("quantize: no output path")
	}
	if (cfg.Calibration == "") == (cfg.Random <= 0) {
		return Result{}, errors.New("quantize: give exactly one of a calibration path or a number of random samples")
	}
	data, err := os.ReadFile(cfg.ModelPath)
	if err != nil {
		return Result{}, fmt.Errorf("quantize: %w", err)
	}
	m, err := inference.Load(data)
	if err != nil {
		return Result{}, fmt.Errorf("quantize: load %s: %w", cfg.ModelPath, err)
	}
	var samples []Sample
	if cfg.Random > 0 {
		samples = RandomSamples(m.Inputs(), m.Metadata(), cfg.Random, cfg.Seed)
	} else if samples, err = LoadCalibration(cfg.Calibration, m.Inputs()); err != nil {
		return Result{}, fmt.Errorf("quantize: %w", err)
	}
	ranges, err := Calibrate(data, samples)
	if err != nil {
		return Result{}, fmt.Errorf("quantize %s: %w", cfg.ModelPath, err)
	}
	out, err := Quantize(data, ranges, Options{IO: io, PerTensor: cfg.PerTensor})
	if err != nil {
		return Result{}, fmt.Errorf("quantize %s: %w", cfg.ModelPath, err)
	}
	if err := os.WriteFile(cfg.OutputPath, out, 0o644); err != nil {
		return Result{}, fmt.Errorf("quantize: %w", err)
	}
	return Result{Samples: len(samples), Tensors: len(ranges), Bytes: len(out)}, nil
}
