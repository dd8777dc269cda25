package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/quant/ptq"
)

func init() { rootCmd.AddCommand(newQuantizeCmd()) }

func newQuantizeCmd() *cobra.Command {
	var cfg ptq.Config
	cmd := &cobra.Command{
		Use:   "quantize --model float.tflite (--calibration DIR|FILE.ndjson | --random N) --output int8.tflite",
		Short: "Post-training int8 quantization of a float32 model",
		Long: `Calibrates a float32 model on representative inputs and writes a full-integer
int8 model: per-channel int8 weights, int32 biases, per-tensor int8
activations. --calibration takes a directory of sample directories
(input_0.bin, ... raw float32), a directory of .bin files (single-input
models) or an NDJSON file (one sample per line); --random N draws N samples
from each input's range in the model's metadata (else [-1, 1]). --io sets
the model's input/output type (int8, uint8 or float32).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := ptq.Run(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d bytes): %d activation ranges from %d samples\n", cfg.OutputPath, res.Bytes, res.Tensors, res.Samples)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ModelPath, "model", "", "float32 model file (.tflite)")
	f.StringVar(&cfg.Calibration, "calibration", "", "calibration data: directory or .ndjson file")
	f.IntVar(&cfg.Random, "random", 0, "calibrate on N random samples instead")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed for --random")
	f.StringVar(&cfg.OutputPath, "output", "", "output model file")
	f.StringVar(&cfg.IO, "io", "int8", "input/output type: int8, uint8 or float32")
	f.BoolVar(&cfg.PerTensor, "per-tensor", false, "one weight scale per tensor instead of per output channel")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}
