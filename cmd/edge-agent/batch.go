package main

import (
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/agent/daemon"
)

func init() { rootCmd.AddCommand(newBatchCmd()) }

func newBatchCmd() *cobra.Command {
	o := daemon.BatchOptions{Serving: daemon.Defaults().Serving}
	var quiet bool
	cmd := &cobra.Command{
		Use:   "batch --model ID --input DIR|FILE.ndjson --output results.ndjson",
		Short: "Predict every input of a directory or NDJSON file; resumable",
		Long: `Runs batch prediction. --input is an NDJSON file (one instance per line) or a
directory (.json instances, .jpg/.png/.bmp images, .bin raw tensors, by
name). Results go to --output, one line per input in input order. Progress
is checkpointed: after an interruption the same command resumes without
losing or duplicating a record. Without --server the models are loaded from
--data-dir in this process (stop the daemon first); with --server the batch
is sent to the running agent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			if !quiet {
				var bar *progressbar.ProgressBar
				o.Spec.Progress = func(done, total int) {
					if bar == nil {
						bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(cmd.ErrOrStderr()),
							progressbar.OptionSetDescription("predicting"), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
					}
					bar.Set(done)
				}
			}
			return daemon.RunBatch(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Spec.Model, "model", "", "model id (id@version pins a version)")
	f.StringVar(&o.Spec.Input, "input", "", "input directory or NDJSON file")
	f.StringVar(&o.Spec.Output, "output", "results.ndjson", "output NDJSON file")
	f.IntVar(&o.Spec.Chunk, "chunk", 32, "records per request and checkpoint")
	f.StringVar(&o.DataDir, "data-dir", "./edge-data", "agent data directory (in-process mode)")
	f.StringVar(&o.Server, "server", "", "URL of a running agent, e.g. http://127.0.0.1:8080")
	f.StringVar(&o.Token, "token", "", "bearer token for --server")
	f.BoolVar(&quiet, "quiet", false, "no progress bar")
	f.StringVar(&o.ReferenceStats, "reference-stats", "", "also write the distributions of this run's predictions (classes, confidence, input features) to this JSON file: the --reference-stats of fleetctl models push (in-process mode)")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("input")
	return cmd
}
