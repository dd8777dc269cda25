package main

import (
	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/agent/daemon"
	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/agent/serving"
)

func init() { rootCmd.AddCommand(newModelsCmd()) }

func newModelsCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "models",
		Short: "Manage the device's model store (with the daemon stopped)",
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "./edge-data", "agent data directory")

	var add daemon.AddOptions
	addCmd := &cobra.Command{
		Use:   "add MODEL.tflite --id ID --version V",
		Short: "Install a model file and make it the active version",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			add.DataDir, add.File, add.Out = dataDir, args[0], cmd.OutOrStdout()
			return daemon.ModelsAdd(cmd.Context(), add)
		},
	}
	addCmd.Flags().StringVar(&add.ID, "id", "", "model id")
	addCmd.Flags().StringVar(&add.Version, "version", "", "model version")
	addCmd.Flags().StringVar(&add.Backend, "check-backend", "native", `backend that must load the model before it is installed ("none" skips the check)`)
	addCmd.Flags().BoolVar(&add.NoActivate, "no-activate", false, "install without activating")
	addCmd.Flags().IntVar(&add.Keep, "keep", modelstore.DefaultKeep, "versions of the model kept in the store (set it like the daemon's model_store.keep); the active and rollback versions always are")
	addCmd.Flags().DurationVar(&add.ProbeTimeout, "probe-timeout", serving.DefaultProbeTimeout, "time limit of the check invocation; a model that runs longer (e.g. a never-ending loop) is refused")
	_ = addCmd.MarkFlagRequired("id")
	_ = addCmd.MarkFlagRequired("version")

	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List installed models and versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return daemon.ModelsList(cmd.Context(), dataDir, cmd.OutOrStdout())
		},
	}
	activateCmd := &cobra.Command{
		Use:   "activate ID VERSION",
		Short: "Make an installed version active",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return daemon.ModelsActivate(cmd.Context(), dataDir, args[0], args[1], cmd.OutOrStdout())
		},
	}
	rollbackCmd := &cobra.Command{
		Use:   "rollback ID",
		Short: "Re-activate the previous version",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return daemon.ModelsRollback(cmd.Context(), dataDir, args[0], cmd.OutOrStdout())
		},
	}
	cmd.AddCommand(addCmd, listCmd, activateCmd, rollbackCmd)
	return cmd
}
