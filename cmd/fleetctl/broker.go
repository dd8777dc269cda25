package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/fleet/broker/mosquitto"
)

func newBrokerCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "broker", Short: "External broker configuration"}
	var out, listen, dir, serverPassword string
	mosq := &cobra.Command{
		Use:   "mosquitto-config --out DIR --server-password P",
		Short: "Write Mosquitto passwd, acl and mosquitto.conf for the enrolled devices",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if serverPassword == "" {
				serverPassword = os.Getenv("EDGEFLEET_BROKER_PASSWORD")
			}
			if serverPassword == "" {
				return fmt.Errorf("--server-password (or EDGEFLEET_BROKER_PASSWORD) is required: it is fleet-server's --broker-password")
			}
			hash, err := mosquitto.HashPassword(serverPassword)
			if err != nil {
				return err
			}
			if dir == "" {
				if dir, err = filepath.Abs(out); err != nil {
					return err
				}
			}
			q := url.Values{"listen": {listen}, "dir": {dir}, "server_password_hash": {hash}}
			var files map[string]string
			if err := g.client().Do(cmd.Context(), "GET", "/api/v1/broker/mosquitto?"+q.Encode(), nil, &files); err != nil {
				return err
			}
			f := mosquitto.Files{Passwd: files["passwd"], ACL: files["acl"], Conf: files["mosquitto.conf"]}
			if err := f.Write(out); err != nil {
				return err
			}
			fmt.Printf("wrote %s/{passwd,acl,mosquitto.conf}; run: mosquitto -c %s/mosquitto.conf\n", out, out)
			return nil
		},
	}
	mosq.Flags().StringVar(&out, "out", "./mosquitto", "output directory")
	mosq.Flags().StringVar(&dir, "dir", "", "directory the broker will read the files from (default: --out, absolute)")
	mosq.Flags().StringVar(&listen, "listen", "127.0.0.1:1883", "listener host:port")
	mosq.Flags().StringVar(&serverPassword, "server-password", "", "fleet-server's broker password")
	cmd.AddCommand(mosq)
	return cmd
}
