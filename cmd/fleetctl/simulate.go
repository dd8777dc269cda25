package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/simulate"
)

func newSimulateCmd(g *globals) *cobra.Command {
	var (
		cfg                       simulate.Config
		spawnBin, model, version  string
		stages                    []int
		soak, deadline            string
		noRollout, jsonOut, debug bool
		keepDir                   string
		serverArgs, serverEnv     []string
		nodeArgs, nodeEnv         []string
		spawnNATS                 bool
		replicas                  int
		storeURL                  string
	)
	cmd := &cobra.Command{
		Use:   "simulate --devices N --rate R --duration D",
		Short: "Load-test a fleet-server with N simulated devices (real MQTT sessions, the agent's protocol)",
		Long: `simulate enrolls N devices through the enrollment API, connects each with its own
MQTT session, uploads telemetry at --rate records/s per device with acks and
resends like the agent, runs install jobs (downloading the signed target over
HTTP), optionally drives a canary rollout, and prints connect time, telemetry
offered/stored/lost/duplicated, broker drops, rollout time and server RSS.

With --spawn-server BIN it starts its own fleet-server (fresh keys, the model
released into a temp repository) so the run is self-contained:

  fleetctl simulate --spawn-server bin/fleet-server --devices 1000 --rate 0.1 --duration 2m

Each device holds one connection (one file descriptor) in this process and
one in the server: for 10,000 devices both need a limit above 10,500 open
files (the Go runtime raises the soft limit to the hard one; raise the hard
limit with ulimit -Hn as root or LimitNOFILE= in systemd). simulate checks
and says so before connecting.

With --spawn-nats it starts the multi-node path instead: a throwaway
PostgreSQL (or --store), one fleet-server nats-node and --replicas replicas:

  fleetctl simulate --spawn-server bin/fleet-server --spawn-nats --replicas 2 --devices 1000 --rate 0.1 --duration 2m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg.Progress = os.Stderr
			cfg.ServerURL, cfg.AdminToken = g.server, g.token
			if g.caPEM != nil {
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(g.caPEM) {
					return fmt.Errorf("simulate: --ca-file %s: no PEM certificates", g.caFile)
				}
				cfg.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			}
			if spawnNATS {
				if spawnBin == "" {
					return fmt.Errorf("simulate: --spawn-nats needs --spawn-server (the fleet-server binary)")
				}
				fmt.Fprintf(os.Stderr, "starting a NATS node and %d replica(s) of %s with model %s as %s@%s ...\n", replicas, spawnBin, model, cfg.ModelID, version)
				cl, err := simulate.SpawnCluster(ctx, simulate.ClusterConfig{Replicas: replicas, StoreURL: storeURL, NodeArgs: nodeArgs, NodeEnv: nodeEnv,
					SpawnConfig: simulate.SpawnConfig{ServerBin: spawnBin, Dir: keepDir, ModelPath: model, ModelID: cfg.ModelID, Version: version, Args: serverArgs, Env: serverEnv}})
				if err != nil {
					return err
				}
				defer cl.Close()
				cfg.ServerURL, cfg.AdminToken, cfg.EnrollToken, cfg.TLS = cl.URL, cl.AdminToken, cl.EnrollToken, cl.TLS
				cfg.PeerURLs, cfg.ServerPID = cl.PeerURLs, cl.PIDs["replica-1"]
				cfg.OtherPIDs = map[string]int{}
				for name, pid := range cl.PIDs {
					if name != "replica-1" {
						cfg.OtherPIDs[name] = pid
					}
				}
				fmt.Fprintf(os.Stderr, "replicas %s %v, processes %v (logs in %s)\n", cl.URL, cl.PeerURLs, cl.PIDs, cl.Dir)
			} else if spawnBin != "" {
				fmt.Fprintf(os.Stderr, "starting %s with model %s as %s@%s ...\n", spawnBin, model, cfg.ModelID, version)
				sp, err := simulate.Spawn(ctx, simulate.SpawnConfig{ServerBin: spawnBin, Dir: keepDir, ModelPath: model, ModelID: cfg.ModelID, Version: version, Args: serverArgs, Env: serverEnv})
				if err != nil {
					return err
				}
				defer sp.Close()
				cfg.ServerURL, cfg.AdminToken, cfg.EnrollToken, cfg.ServerPID = sp.URL, sp.AdminToken, sp.EnrollToken, sp.PID
				if sp.TLS != nil {
					cfg.TLS = sp.TLS
				}
				fmt.Fprintf(os.Stderr, "fleet-server pid %d at %s (log %s/server.log)\n", sp.PID, sp.URL, sp.Dir)
			}
			if !noRollout {
				cfg.Rollout = &apitype.RolloutRequest{ModelID: cfg.ModelID, Version: version, Strategy: "canary", Stages: stages,
					Soak: soak, DeviceDeadline: deadline}
			}
			res, err := simulate.Run(ctx, cfg)
			if res != nil {
				if jsonOut || g.jsonOut {
					g.jsonOut = true
					g.print(res, nil)
				} else {
					fmt.Print(res.Table())
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Devices, "devices", 100, "simulated devices")
	f.Float64Var(&cfg.Rate, "rate", 0.1, "telemetry records per second per device (0.1 = one per 10 s)")
	f.DurationVar(&cfg.Duration, "duration", time.Minute, "how long telemetry is generated")
	f.StringVar(&cfg.EnrollToken, "enroll-token", os.Getenv("EDGEFLEET_ENROLL_TOKEN"), "enrollment token secret (or EDGEFLEET_ENROLL_TOKEN)")
	f.StringVar(&cfg.BrokerURL, "broker", "", "broker URL override (default: from the enrollment answer)")
	f.StringVar(&cfg.IDPrefix, "id-prefix", "sim", "device id prefix")
	f.DurationVar(&cfg.AckTimeout, "ack-timeout", 10*time.Second, "telemetry ack timeout before a resend (agent default)")
	f.DurationVar(&cfg.MaxAckTimeout, "max-ack-timeout", 2*time.Minute, "the ack timeout doubles after each consecutive timeout up to this (agent default)")
	f.IntVar(&cfg.ConnectParallel, "connect-parallel", 64, "concurrent enrollments/connects")
	f.IntVar(&cfg.DownloadParallel, "download-parallel", 32, "concurrent model downloads")
	f.StringVar(&cfg.ModelID, "model", "bench", "model id the devices run")
	f.StringVar(&cfg.BaseVersion, "base-version", "1", "version the devices run before the rollout")
	f.StringVar(&version, "version", "2", "version to roll out")
	f.BoolVar(&noRollout, "no-rollout", false, "telemetry only")
	f.IntSliceVar(&stages, "stages", []int{1, 10, 50, 100}, "canary stages")
	f.StringVar(&soak, "soak", "10s", "soak per stage")
	f.StringVar(&deadline, "device-deadline", "10m", "per-device job deadline")
	f.DurationVar(&cfg.RolloutAfter, "rollout-after", 20*time.Second, "start the rollout this long after every device connected")
	f.DurationVar(&cfg.RolloutTimeout, "rollout-timeout", 10*time.Minute, "give up following the rollout after this")
	f.DurationVar(&cfg.DrainTimeout, "drain-timeout", 2*time.Minute, "wait at most this for outstanding acks at the end")
	f.IntVar(&cfg.ServerPID, "server-pid", 0, "fleet-server pid for RSS from /proc (default: process_resident_memory_bytes from /metrics)")
	f.StringVar(&spawnBin, "spawn-server", "", "start this fleet-server binary with fresh keys and the model released (self-contained run)")
	f.StringVar(&model, "model-file", "testdata/conformance/tf2_mobilenet_v2_1.0_224_ptq/model.tflite", "model released with --spawn-server (4 MB)")
	f.StringVar(&keepDir, "spawn-dir", "", "directory for the spawned server's keys/data/log (default: a temp dir, removed)")
	f.StringSliceVar(&serverArgs, "server-arg", nil, "extra flag for the spawned fleet-server (repeatable)")
	f.StringArrayVar(&serverEnv, "server-env", nil, "KEY=VALUE environment variable for the spawned fleet-server only, e.g. GOMEMLIMIT=900MiB (repeatable)")
	f.BoolVar(&spawnNATS, "spawn-nats", false, "with --spawn-server: run the multi-node path instead (PostgreSQL, one fleet-server nats-node, --replicas replicas consuming from it)")
	f.StringSliceVar(&nodeArgs, "nats-arg", nil, "extra flag for the spawned nats-node, e.g. --nats-arg=--pprof-listen=127.0.0.1:6060 (repeatable)")
	f.StringArrayVar(&nodeEnv, "nats-env", nil, "KEY=VALUE environment variable for the spawned nats-node only (--server-env is the replicas'; repeatable)")
	f.IntVar(&replicas, "replicas", 1, "fleet-server replicas with --spawn-nats")
	f.StringVar(&storeURL, "store", "", "PostgreSQL database for --spawn-nats (default: a throwaway server from Debian's postgresql package in the spawn dir)")
	f.BoolVar(&jsonOut, "json-result", false, "print the result as JSON")
	f.BoolVar(&debug, "debug", false, "debug logging")
	return cmd
}
