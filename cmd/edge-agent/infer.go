package main

import (
	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/inference/runner"
)

// imagePreparer decodes images for --image; set by imageprep wiring.
var imagePreparer runner.ImagePreparer

func init() { rootCmd.AddCommand(newInferCmd()) }

func newInferCmd() *cobra.Command {
	var (
		req runner.Request
		bf  backendFlags
	)
	cmd := &cobra.Command{
		Use:   "infer --model M.tflite (--input in0.bin ... | --image cat.jpg) [--output-dir D]",
		Short: "Run one inference from raw tensor files or an image",
		Long: `Runs the model once. Inputs are raw little-endian row-major bytes in each
model input's dtype, in the model's input order; outputs are written to
D/output_0.bin, D/output_1.bin, ... in the same format. --image decodes a
JPEG/PNG/BMP, resizes and normalizes it (from the model's metadata or its
input quantization); --top-k prints the best classes with labels.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if bf.set() {
				if req.Image != "" || req.TopK != 0 || req.JSON {
					return errBackendOnly
				}
				return inferBackend(cmd.Context(), &bf, req.ModelPath, req.InputFiles, req.OutputDir, req.Threads, cmd.OutOrStdout())
			}
			return runner.Run(cmd.Context(), req, imagePreparer, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.ModelPath, "model", "", "model file (.tflite)")
	f.StringArrayVar(&req.InputFiles, "input", nil, "raw input tensor file, once per model input in order")
	f.StringVar(&req.Image, "image", "", "image file (JPEG, PNG or BMP) for input 0")
	f.StringVar(&req.OutputDir, "output-dir", "", "directory for output_N.bin files")
	f.IntVar(&req.TopK, "top-k", 0, "print the k best classes of each output")
	f.BoolVar(&req.JSON, "json", false, "print outputs as JSON")
	f.IntVar(&req.Threads, "threads", 1, "goroutines for kernels")
	f.BoolVar(&req.ReferenceRounding, "reference-rounding", false, "round like TensorFlow Lite Micro (double rounding everywhere)")
	f.StringVar(&bf.backend, "backend", "", "run through the agent's engine: native, tflite or auto (tflite builds; with --delegate, --tflite-lib, --fallback as for run)")
	bf.accel.bind(f)
	_ = cmd.MarkFlagRequired("model")
	return cmd
}
