package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/agent/fleetlink"
	"github.com/edgefleet/edgefleet/internal/wire"
)

func init() {
	rootCmd.AddCommand(newEnrollCmd())
	// edge-agent run starts the fleet link when the device is enrolled and
	// a broker is configured (EDGE_FLEET_BROKER / fleet.broker / fleet.enabled).
	fleetLink = fleetlink.Daemon
}

func newEnrollCmd() *cobra.Command {
	var server, token, dataDir, deviceID string
	var labels map[string]string
	var opt enroll.EnrollOptions
	cmd := &cobra.Command{
		Use:   "enroll --server https://HOST:PORT --token T --ca-fingerprint sha256:... [--data-dir D] [--device-id ID] [--label k=v]",
		Short: "Enroll this device with a fleet server: generate its key, get its certificate, pin the fleet CA",
		Long: `Generates the device's private key (it never leaves the device), sends a
certificate signing request with the enrollment token over HTTPS pinned to
the fleet CA (--ca-fingerprint as printed by fleet-server at start, or
--ca-file), and stores the CA, the issued certificate, the key and the
broker address in <data-dir>/fleet. Afterwards 'edge-agent run --data-dir D'
connects to the fleet with no other flag. Enrolling again renews the
certificate (the current one proves the device; no token needed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if deviceID == "" {
				deviceID = defaultDeviceID()
			}
			// the board, its accelerators, and the model variants and backends it runs
			req := wire.EnrollRequest{Token: token, DeviceID: deviceID, AgentVersion: version, Labels: labels,
				Hardware: fleetlink.DeviceHardware()}
			if opt.InsecurePlaintext {
				fmt.Fprintln(os.Stderr, "edge-agent: WARNING: --insecure-plaintext: the server is not authenticated and the update root is trusted on first use")
			}
			e, err := enroll.Enroll(cmd.Context(), server, dataDir, req, opt)
			if err != nil {
				return err
			}
			fmt.Printf("enrolled %s with %s; broker %s; CA %s; credentials in %s/%s\n", e.DeviceID, server, e.BrokerURL, e.CAFingerprint, dataDir, enroll.Dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", os.Getenv("EDGE_FLEET_SERVER"), "fleet-server URL, e.g. https://fleet.example:8070 (fleet-server's default port; or EDGE_FLEET_SERVER)")
	f.StringVar(&opt.CAFingerprint, "ca-fingerprint", os.Getenv("EDGE_FLEET_CA_FINGERPRINT"), "pin the fleet CA by its fingerprint sha256:... (printed by fleet-server; or EDGE_FLEET_CA_FINGERPRINT)")
	f.StringVar(&opt.CAFile, "ca-file", "", "pin the fleet CA by its certificate file (fleet-data/pki/ca.pem)")
	f.BoolVar(&opt.InsecurePlaintext, "insecure-plaintext", false, "allow an http:// server and plain MQTT (nothing authenticated; test networks only)")
	f.StringVar(&token, "token", os.Getenv("EDGE_FLEET_TOKEN"), "enrollment token (or EDGE_FLEET_TOKEN)")
	f.StringVar(&dataDir, "data-dir", "./edge-data", "the agent's data dir")
	f.StringVar(&deviceID, "device-id", "", "device id (default: the host name)")
	f.StringToStringVar(&labels, "label", nil, "device labels k=v (repeatable)")
	cmd.MarkFlagRequired("server")
	return cmd
}

var notID = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func defaultDeviceID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "device"
	}
	h = strings.Trim(notID.ReplaceAllString(h, "-"), ".-")
	if len(h) > wire.MaxIDLen {
		h = h[:wire.MaxIDLen]
	}
	return h
}
