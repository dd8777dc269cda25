package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/agent/daemon"
	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/agent/fleetlink"
	"github.com/edgefleet/edgefleet/agent/update"
	"github.com/edgefleet/edgefleet/inference/imageprep"
)

func init() {
	rootCmd.AddCommand(newRunCmd())
	imagePreparer = imageprep.Prepare // `infer --image`
}

// fleetLink starts the device side of the fleet link when the config has
// fleet.broker set (or fleet.enabled with an enrollment in the data dir).
var fleetLink daemon.FleetLink = fleetlink.Daemon

// beforeRun, when set, runs first in `edge-agent run`. Release builds leave
// it nil; only the test build of crashswitch.go sets it.
var beforeRun func()

func newRunCmd() *cobra.Command {
	var configFile, backend string
	var accel accelFlags
	cfg := daemon.Defaults()
	cmd := &cobra.Command{
		Use:   "run [--config agent.yaml] [--data-dir D] [--listen 127.0.0.1:8080] [--unix-socket S] [--token T]",
		Short: "Run the agent daemon: local prediction API, async jobs, scheduled batches, telemetry",
		Long: `Runs the edge-agent daemon. Settings come from the YAML file (--config or
EDGE_CONFIG), then EDGE_* environment variables, then flags (flags win).
Without any, it serves the models in ./edge-data on 127.0.0.1:8080.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if beforeRun != nil {
				beforeRun()
			}
			final := daemon.Defaults()
			if configFile == "" {
				configFile = os.Getenv("EDGE_CONFIG")
			}
			if configFile != "" {
				if err := final.LoadFile(configFile); err != nil {
					return err
				}
			}
			if err := final.ApplyEnv(os.Getenv); err != nil {
				return err
			}
			daemon.ApplyFlags(&final, &cfg, cmd.Flags().Changed)
			// An enrolled device joins its fleet with no other setting: the
			// broker address, CA and certificate come from the enrollment.
			if _, err := enroll.LoadEnrollment(final.DataDir); err == nil {
				final.Fleet.Enabled = true
			}
			if backend == "" {
				backend = os.Getenv("EDGE_BACKEND")
			}
			// Undo an agent update that never reported healthy (execs the
			// restored binary); a failure here must not stop the agent.
			if _, err := update.RecoverAtStartup(final.DataDir); err != nil {
				fmt.Fprintln(os.Stderr, "edge-agent: warning:", err)
			}
			backendName, err := accel.register(backend)
			if err != nil {
				return err
			}
			return daemon.Run(cmd.Context(), final, daemon.Options{Version: version, Backend: backendName, FleetLink: fleetLink})
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML configuration file (also EDGE_CONFIG)")
	f.StringVar(&backend, "backend", "", "inference backend: native (default), or in tflite builds auto (default there: per model, see docs/acceleration.md) or tflite (also EDGE_BACKEND)")
	accel.bind(f)
	daemon.BindFlags(f, &cfg)
	return cmd
}
