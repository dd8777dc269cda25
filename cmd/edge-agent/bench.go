package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/inference"
	"github.com/edgefleet/edgefleet/inference/benchmark"
)

func init() { rootCmd.AddCommand(newBenchCmd()) }

func newBenchCmd() *cobra.Command {
	var (
		model  string
		opts   benchmark.Options
		asJSON bool
		bf     backendFlags
	)
	cmd := &cobra.Command{
		Use:   "bench --model M.tflite [--threads N] [--repeat N] [--json]",
		Short: "Measure Invoke latency (p50/p90/p99) and allocations per Invoke",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if bf.set() {
				return benchBackend(cmd.Context(), &bf, model, opts.Threads, opts.Warmup, opts.Repeat, asJSON, cmd.OutOrStdout())
			}
			m, err := inference.LoadFile(model)
			if err != nil {
				return err
			}
			r, err := benchmark.Run(cmd.Context(), m, opts)
			if err != nil {
				return err
			}
			r.Model = model
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(r)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: threads=%d repeat=%d p50=%.3fms p90=%.3fms p99=%.3fms min=%.3fms allocs/invoke=%.1f arena=%d bytes\n",
				model, r.Threads, r.Repeat, r.P50, r.P90, r.P99, r.Min, r.AllocsPerInvoke, r.ArenaBytes)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "model file (.tflite)")
	f.IntVar(&opts.Threads, "threads", 1, "goroutines for kernels")
	f.IntVar(&opts.Repeat, "repeat", 50, "timed invokes")
	f.IntVar(&opts.Warmup, "warmup", 3, "untimed invokes first")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	f.StringVar(&bf.backend, "backend", "", "measure through the agent's engine: native, tflite or auto (tflite builds; with --delegate, --tflite-lib, --fallback as for run)")
	bf.accel.bind(f)
	_ = cmd.MarkFlagRequired("model")
	return cmd
}
