package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/ota/release"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage TUF signing keys"}
	var keysDir, repoDir string
	var opts release.KeyOptions
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create root, targets and online keys and an empty signed repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := release.NewRepo(keysDir, repoDir).Init(opts); err != nil {
				return err
			}
			fmt.Printf("keys in %s (keep root/ and targets/ offline), repository in %s\n", keysDir, repoDir)
			return nil
		},
	}
	initCmd.Flags().StringVar(&keysDir, "keys-dir", "./fleet-keys", "where the keys go")
	initCmd.Flags().StringVar(&repoDir, "repo-dir", "./fleet-data/repo", "the repository fleet-server serves (its --repo-dir)")
	initCmd.Flags().IntVar(&opts.RootKeys, "root-keys", 1, "number of root keys")
	initCmd.Flags().IntVar(&opts.RootThreshold, "root-threshold", 0, "root signatures required (default all)")
	initCmd.Flags().IntVar(&opts.TargetsKeys, "targets-keys", 1, "number of targets keys")
	initCmd.Flags().IntVar(&opts.TargetsThreshold, "targets-threshold", 0, "targets signatures required (default all)")
	rotate := &cobra.Command{
		Use:   "rotate-online",
		Short: "Rotate the snapshot and timestamp keys (devices follow without re-flashing)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return release.NewRepo(keysDir, repoDir).RotateOnlineKeys()
		},
	}
	rotate.Flags().StringVar(&keysDir, "keys-dir", "./fleet-keys", "keys dir")
	rotate.Flags().StringVar(&repoDir, "repo-dir", "./fleet-data/repo", "repository dir")
	cmd.AddCommand(initCmd, rotate)
	return cmd
}
