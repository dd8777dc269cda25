// Package runner runs one inference from files, the engine behind
// `edge-agent infer`: raw little-endian input tensors (or an image) in,
// raw output tensors, JSON and top-k labels out.
package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

// Request describes one run.
type Request struct {
	ModelPath string
	// InputFiles hold raw little-endian row-major bytes, one per model
	// input, in the model's input order.
	InputFiles []string
	// Image, when set, is decoded, resized and normalized into input 0.
	Image string
	// OutputDir receives output_0.bin, output_1.bin, ... (optional).
	OutputDir string
	TopK      int
	JSON      bool
	Threads   int
	// ReferenceRounding uses TFLite Micro's rounding (double everywhere).
	ReferenceRounding bool
}

// ImagePreparer turns an encoded image into input tensor bytes.
type ImagePreparer func(image []byte, input tensor.Info, meta *inference.TensorMetadata) ([]byte, error)

// Output is one output in the JSON report.
type Output struct {
	Name   string    `json:"name"`
	DType  string    `json:"dtype"`
	Shape  []int     `json:"shape"`
	Values []float64 `json:"values"`
	TopK   []Class   `json:"top_k,omitempty"`
}

// Class is one top-k entry.
type Class struct {
	Index int     `json:"index"`
	Label string  `json:"label,omitempty"`
	Score float64 `json:"score"`
}

// Run loads the model, feeds the inputs, invokes once and writes results.
func Run(ctx context.Context, req Request, prep ImagePreparer, stdout io.Writer) error {
	m, err := inference.LoadFile(req.ModelPath)
	if err != nil {
		return err
	}
	opts := []inference.Option{inference.WithThreads(req.Threads)}
	if req.ReferenceRounding {
		opts = append(opts, inference.WithReferenceRounding())
	}
	ip, err := inference.NewInterpreter(m, opts...)
	if err != nil {
		return err
	}
	defer ip.Close()
	switch {
	case req.Image != "":
		if prep == nil {
			return fmt.Errorf("--image: image preprocessing is not available in this build")
		}
		img, err := os.ReadFile(req.Image)
		if err != nil {
			return fmt.Errorf("read image: %w", err)
		}
		var meta *inference.TensorMetadata
		if md := m.Metadata(); md != nil && len(md.Inputs) > 0 {
			meta = &md.Inputs[0]
		}
		b, err := prep(img, ip.Input(0).Info(), meta)
		if err != nil {
			return fmt.Errorf("image %s: %w", req.Image, err)
		}
		if err := ip.SetInput(0, b); err != nil {
			return err
		}
	default:
		if len(req.InputFiles) != ip.NumInputs() {
			return fmt.Errorf("the model has %d inputs, %d --input files given", ip.NumInputs(), len(req.InputFiles))
		}
		for i, p := range req.InputFiles {
			b, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("read input %d: %w", i, err)
			}
			if err := ip.SetInput(i, b); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	if err := ip.InvokeContext(ctx); err != nil {
		return err
	}
	if req.OutputDir != "" {
		if err := os.MkdirAll(req.OutputDir, 0o755); err != nil {
			return err
		}
		for i := 0; i < ip.NumOutputs(); i++ {
			p := filepath.Join(req.OutputDir, fmt.Sprintf("output_%d.bin", i))
			if err := os.WriteFile(p, ip.Output(i).Data, 0o644); err != nil {
				return fmt.Errorf("write output %d: %w", i, err)
			}
		}
	}
	var outs []Output
	for i := 0; i < ip.NumOutputs(); i++ {
		t := ip.Output(i)
		vals, err := t.Real()
		if err != nil {
			return err
		}
		o := Output{Name: t.Name, DType: t.Type.String(), Shape: t.Shape, Values: vals}
		if req.TopK > 0 {
			var labels []string
			if md := m.Metadata(); md != nil && i < len(md.Outputs) {
				labels = md.Outputs[i].Labels
			}
			o.TopK = TopK(vals, req.TopK, labels)
		}
		outs = append(outs, o)
	}
	if req.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"outputs": outs})
	}
	for i, o := range outs {
		if len(o.TopK) > 0 {
			fmt.Fprintf(stdout, "output %d (%s):\n", i, o.Name)
			for _, c := range o.TopK {
				fmt.Fprintf(stdout, "  %6.4f  %d %s\n", c.Score, c.Index, c.Label)
			}
			continue
		}
		v := o.Values
		more := ""
		if len(v) > 16 {
			v, more = v[:16], fmt.Sprintf(" ... (%d values)", len(o.Values))
		}
		fmt.Fprintf(stdout, "output %d (%s) %s%s: %v%s\n", i, o.Name, o.DType, tensor.ShapeString(o.Shape), v, more)
	}
	return nil
}

// TopK returns the k highest scores (ties by lower index) with labels.
func TopK(scores []float64, k int, labels []string) []Class {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	k = min(k, len(idx))
	out := make([]Class, k)
	for i := 0; i < k; i++ {
		out[i] = Class{Index: idx[i], Score: scores[idx[i]]}
		if idx[i] < len(labels) {
			out[i].Label = labels[idx[i]]
		}
	}
	return out
}
