package main

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/fleet/broker/mosquitto"
	"github.com/edgefleet/edgefleet/fleet/broker/natscluster"
	"github.com/edgefleet/edgefleet/fleet/brokerauth"
	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/fleet/store/postgres"
)

// newNATSNodeCmd runs one node of the clustered message plane (see
// docs/scale-out.md): a NATS server with JetStream, routes to the other
// nodes and an MQTT listener, authenticating devices and replicas against
// the registry in the shared PostgreSQL store.
func newNATSNodeCmd() *cobra.Command {
	var name, dataDir, storeURL, listen, mqtt, clusterListen, routes, pprofAddr string
	var insecure bool
	var hosts []string
	cmd := &cobra.Command{
		Use:   "nats-node",
		Short: "Run one node of a NATS cluster as the message plane of fleet-server replicas (devices speak MQTT to it)",
		Long: `Runs an embedded NATS server node: JetStream (files under --data-dir), an MQTT 3.1.1
listener for devices (TLS with a certificate from the fleet CA in the shared store), the
NATS listener the fleet-server replicas consume from (--nats on fleet-server), and routes
to the other nodes. Logins are checked against the device registry in the PostgreSQL
store; the fleet-server account's password comes from EDGEFLEET_BROKER_PASSWORD and the
route password from EDGEFLEET_ROUTE_PASSWORD.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			if storeURL == "" || name == "" {
				return errors.New("--store and --name are required")
			}
			pw := os.Getenv("EDGEFLEET_BROKER_PASSWORD")
			if len(pw) < 16 {
				return errors.New("EDGEFLEET_BROKER_PASSWORD must hold the fleet-server replicas' broker password (at least 16 characters)")
			}
			routePW := os.Getenv("EDGEFLEET_ROUTE_PASSWORD")
			if clusterListen != "" && routePW == "" && !insecure {
				return errors.New("EDGEFLEET_ROUTE_PASSWORD must hold the password the nodes' routes share")
			}
			st, err := postgres.Open(ctx, storeURL)
			if err != nil {
				return err
			}
			defer st.Close()
			hash, err := mosquitto.HashPassword(pw)
			if err != nil {
				return err
			}
			reg := registry.New(st, nil)
			cfg := natscluster.NodeConfig{Name: name, StoreDir: filepath.Join(dataDir, "jetstream"), ClientAddr: listen, MQTTAddr: mqtt,
				RouteAddr: clusterListen, RouteUser: "route", RoutePassword: routePW, InsecurePlaintext: insecure,
				Logger: log}
			if routes != "" {
				cfg.Routes = strings.Split(routes, ",")
			}
			var ca *pki.CA // nil with --insecure-plaintext
			if !insecure {
				// The fleet CA from the shared store: wait for the first replica.
				for {
					c, err := server.LoadSharedCA(ctx, st, filepath.Join(dataDir, "pki"))
					if err == nil {
						ca = c
						break
					}
					if !errors.Is(err, server.ErrNoSharedCA) {
						return err
					}
					log.Info("waiting for a fleet-server replica to store the fleet CA", "store", "postgres")
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(2 * time.Second):
					}
				}
				if len(hosts) == 0 {
					hosts = []string{"localhost", "127.0.0.1", "::1"}
					for _, a := range append([]string{listen, mqtt, clusterListen}, cfg.Routes...) {
						if h, _, err := net.SplitHostPort(a); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
							hosts = append(hosts, h)
						}
					}
				}
				cert, err := ca.IssueServer(hosts)
				if err != nil {
					return err
				}
				// Devices may log in with their client certificate (checked
				// by the registry) or their MQTT password.
				cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
					ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool()}
			}
			cfg.Auth = brokerauth.New(reg.Devices, ca, hash)
			if pprofAddr != "" {
				if _, err := servePprof(ctx, pprofAddr, log); err != nil {
					return err
				}
			}
			node, err := natscluster.Start(cfg)
			if err != nil {
				return err
			}
			log.Info("NATS node running", "name", name, "nats", node.ClientURL(), "mqtt", node.MQTTURL(), "routes", cfg.Routes)
			<-ctx.Done()
			node.Close()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "this node's unique name in the cluster")
	f.StringVar(&dataDir, "data-dir", "./nats-data", "directory for the node's JetStream files")
	f.StringVar(&storeURL, "store", "", "the replicas' PostgreSQL store (postgres://...): device logins and the fleet CA")
	f.StringVar(&listen, "listen", "127.0.0.1:4222", "NATS listener for the fleet-server replicas (their --nats)")
	f.StringVar(&mqtt, "mqtt-listen", "127.0.0.1:8883", "MQTT listener for devices and the replicas' --broker")
	f.StringVar(&clusterListen, "cluster-listen", "", "route listener for the other nodes (empty: a single node)")
	f.StringVar(&routes, "routes", "", "the other nodes' --cluster-listen addresses, comma-separated")
	f.StringSliceVar(&hosts, "tls-host", nil, "DNS name or IP in the node's certificate (repeatable; default localhost, 127.0.0.1, ::1 and the listen hosts)")
	f.StringVar(&pprofAddr, "pprof-listen", "", "serve Go's /debug/pprof/ on this loopback address (e.g. 127.0.0.1:6060) to profile the node; unauthenticated, so loopback only")
	f.BoolVar(&insecure, "insecure-plaintext", false, "listen without TLS (INSECURE: trusted test networks only)")
	return cmd
}
