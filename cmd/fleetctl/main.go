// Command fleetctl is the operator CLI of edgefleet: signing keys, model
// releases, devices, enrollment tokens, groups, rollouts, telemetry and
// broker configuration, against fleet-server's REST API.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/fleet/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "fleetctl:", err)
		stop()
		os.Exit(1)
	}
}

type globals struct {
	server, token string
	tokenFile     string
	caFile        string
	jsonOut       bool
	caPEM         []byte
}

// resolve picks the API token (--token, FLEET_TOKEN, EDGEFLEET_TOKEN,
// --token-file, FLEET_TOKEN_FILE, in that order) and reads the CA file.
func (g *globals) resolve() error {
	if g.token == "" {
		g.token = os.Getenv("FLEET_TOKEN")
	}
	if g.token == "" {
		g.token = os.Getenv("EDGEFLEET_TOKEN")
	}
	if g.tokenFile == "" {
		g.tokenFile = os.Getenv("FLEET_TOKEN_FILE")
	}
	if g.token == "" && g.tokenFile != "" {
		tok, err := client.ReadTokenFile(g.tokenFile)
		if err != nil {
			return err
		}
		g.token = tok
	}
	if g.caFile == "" {
		g.caFile = os.Getenv("FLEET_CA_FILE")
	}
	if g.caFile != "" {
		b, err := os.ReadFile(g.caFile)
		if err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
		g.caPEM = b
	}
	return nil
}

func (g *globals) client() *client.Client {
	c := client.New(g.server, g.token)
	if g.caPEM != nil {
		if err := c.UseCA(g.caPEM); err != nil {
			fmt.Fprintln(os.Stderr, "fleetctl: --ca-file "+g.caFile+":", err)
			os.Exit(1)
		}
	}
	return c
}

func (g *globals) print(v any, text func()) error {
	if g.jsonOut || text == nil {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text()
	return nil
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "fleetctl",
		Short:         "Operate an edgefleet fleet: keys, models, devices, rollouts, telemetry",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := os.Getenv("EDGEFLEET_SERVER")
	if def == "" {
		def = "https://127.0.0.1:8070" // fleet-server's default --listen
	}
	root.PersistentFlags().StringVar(&g.server, "server", def, "fleet-server URL (or EDGEFLEET_SERVER)")
	root.PersistentFlags().StringVar(&g.token, "token", "", "API token, sent as \"Authorization: Bearer <token>\" (or FLEET_TOKEN)")
	root.PersistentFlags().StringVar(&g.tokenFile, "token-file", "", "file holding the API token, e.g. <data-dir>/admin.token (or FLEET_TOKEN_FILE)")
	root.PersistentFlags().StringVar(&g.caFile, "ca-file", "", "fleet CA certificate for an https:// server, e.g. <data-dir>/pki/ca.pem (or FLEET_CA_FILE)")
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return g.resolve() }
	root.PersistentFlags().BoolVar(&g.jsonOut, "json", false, "print JSON")
	root.AddCommand(newKeysCmd(), newModelsCmd(g), newDevicesCmd(g), newTokensCmd(g), newEnrollTokensCmd(g), newAuditCmd(g), newGroupsCmd(g), newRolloutCmd(g), newAgentsCmd(g), newTelemetryCmd(g), newBrokerCmd(g), newSimulateCmd(g))
	return root
}
