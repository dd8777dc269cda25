// Command fleet-server runs the edgefleet fleet server: the embedded MQTT
// broker (or a connection to an external one), the device and model
// registry, staged rollouts, telemetry, the signed update repository and the
// web console.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefleet/edgefleet/fleet/auth"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/ota/release"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "fleet-server:", err)
		stop()
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	var cfg server.Config
	var tokens []string
	var debug bool
	cmd := &cobra.Command{
		Use:           "fleet-server",
		Short:         "Run the edgefleet fleet server (MQTT broker, registry, rollouts, telemetry, console)",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, t := range tokens {
				if err := auth.CheckSecret("--enroll-token", t); err != nil {
					return err
				}
			}
			cfg.Tokens = tokens
			if v := os.Getenv("EDGEFLEET_ADMIN_TOKEN"); v != "" && cfg.AdminToken == "" {
				cfg.AdminToken = v
			}
			if v := os.Getenv("EDGEFLEET_BROKER_PASSWORD"); v != "" && cfg.BrokerPassword == "" {
				cfg.BrokerPassword = v
			}
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			if pct, set := tuneGC(os.Getenv); set {
				cfg.Logger.Info("garbage collector target set (GOGC unset)", "gc_percent", pct)
			}
			return run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "./fleet-data", "directory for fleet.db and the update repository")
	f.StringVar(&cfg.StoreURL, "store", "", "keep fleet state in PostgreSQL (postgres://user:pass@host:port/db) instead of <data-dir>/fleet.db; replicas sharing it elect one rollout leader")
	f.StringVar(&cfg.HTTPAddr, "listen", envOr("EDGEFLEET_LISTEN", defaultListen), "HTTPS address for the API, console, /metrics and /repo (or EDGEFLEET_LISTEN; edge-agent's default is 127.0.0.1:8080, so both fit on one host)")
	f.StringVar(&cfg.PublicURL, "public-url", "", "URL devices use to reach --listen (default https://<listen>)")
	f.StringVar(&cfg.BrokerURL, "broker", "", "external MQTT broker URL (mqtt://host:port or mqtts://host:port); empty runs the embedded broker")
	f.StringVar(&cfg.EmbeddedAddr, "mqtt-listen", os.Getenv("EDGEFLEET_MQTT_LISTEN"), "listen address of the embedded MQTT broker (or EDGEFLEET_MQTT_LISTEN; default 127.0.0.1:8883, MQTT over TLS; 127.0.0.1:1883 with --insecure-plaintext)")
	f.BoolVar(&cfg.InsecurePlaintext, "insecure-plaintext", false, "serve HTTP and plain MQTT without TLS, devices log in with passwords (INSECURE: trusted test networks only)")
	f.BoolVar(&cfg.BrokerPasswordAuth, "broker-password-auth", false, "also issue MQTT passwords at enrollment (for an external broker without client-certificate auth)")
	f.StringVar(&cfg.CACertFile, "ca-cert", "", "operator-provided fleet CA certificate (PEM; default: generated in <data-dir>/pki)")
	f.StringVar(&cfg.CAKeyFile, "ca-key", "", "operator-provided fleet CA private key (PEM)")
	f.StringSliceVar(&cfg.TLSHosts, "tls-host", nil, "DNS name or IP in the server certificate (repeatable; default localhost, 127.0.0.1, ::1, the listen hosts and the --public-url/--public-broker hosts)")
	f.Uint32Var(&cfg.MaxPacketSize, "mqtt-max-packet", 256<<10, "largest MQTT packet the embedded broker reads, in bytes (checked before buffering)")
	f.Float64Var(&cfg.DeviceRate, "mqtt-device-rate", 20, "messages per second a device may publish (sustained; bursts up to 200)")
	f.StringVar(&cfg.BrokerUser, "broker-user", "fleet-server", "username on the external broker")
	f.StringVar(&cfg.BrokerPassword, "broker-password", "", "password on the external broker (or EDGEFLEET_BROKER_PASSWORD)")
	f.StringVar(&cfg.BrokerCAFile, "broker-ca", "", "CA bundle for an mqtts:// broker")
	f.StringVar(&cfg.PublicBrokerURL, "public-broker", "", "broker URL handed to devices (default: the broker URL the server uses)")
	f.StringVar(&cfg.MosquittoDir, "mosquitto-dir", "", "write Mosquitto passwd/acl/mosquitto.conf here after every enrollment (send SIGHUP to Mosquitto to reload)")
	f.StringVar(&cfg.SharedGroup, "shared-group", "", "subscribe via $share/<group>/... so several replicas split device traffic (MQTT v5 brokers)")
	f.StringVar(&cfg.ClientID, "client-id", "", "MQTT client id (default: the broker user; unique per replica)")
	f.StringVar(&cfg.RepoDir, "repo-dir", "", "TUF repository served under /repo (default <data-dir>/repo)")
	f.StringVar(&cfg.KeysDir, "keys-dir", "", "keys dir whose online keys re-sign timestamp metadata before expiry")
	f.StringSliceVar(&tokens, "enroll-token", nil, "enrollment token secret accepted without expiry, at least 32 random characters, e.g. $(openssl rand -hex 16) (repeatable)")
	f.StringVar(&cfg.AdminToken, "admin-token", "", "extra operator-chosen admin API token, at least 32 random characters (or EDGEFLEET_ADMIN_TOKEN); the server also generates one into <data-dir>/admin.token at first start")
	f.StringVar(&cfg.AdminTokenFile, "admin-token-file", "", "where the admin token generated at first start is written (default <data-dir>/admin.token, mode 0600)")
	f.BoolVar(&cfg.InsecureNoAuth, "insecure-no-auth", false, "serve the API and console WITHOUT authentication (only allowed when --listen is a loopback address)")
	f.IntVar(&cfg.AuditMax, "audit-max", 0, "audit log retention in entries (default 100000)")
	f.Float64Var(&cfg.EnrollRate, "enroll-rate", 5, "enrollment calls per second allowed per client address")
	f.IntVar(&cfg.EnrollBurst, "enroll-burst", 20, "enrollment burst per client address")
	f.DurationVar(&cfg.Retention, "retention", 7*24*time.Hour, "how long telemetry records are kept")
	f.DurationVar(&cfg.TickInterval, "tick", time.Second, "rollout controller interval")
	f.BoolVar(&debug, "debug", false, "debug logging")
	f.BoolVar(&cfg.Pprof, "pprof", false, "serve Go runtime profiles under /debug/pprof/ on --listen, to admin tokens only")
	f.DurationVar(&cfg.PredictTimeout, "predict-timeout", 45*time.Second, "how long POST /api/v1/devices/{id}/predict/{model} waits for the device's answer (504 after)")
	f.DurationVar(&cfg.PredictReadyWait, "predict-ready-wait", 5*time.Second, "how long a remote prediction waits for a device connected to the embedded broker to subscribe to prediction requests (409 device_not_ready after, nothing sent; negative: no wait; counts against --predict-timeout)")
	f.StringSliceVar(&cfg.NATSURLs, "nats", nil, "NATS cluster URLs (nats:// or tls://, comma-separated): take device messages from its shared consumer, one replica per message; --broker is then the cluster's MQTT listener (see fleet-server nats-node)")
	f.DurationVar(&cfg.NATSAckWait, "nats-ack-wait", 30*time.Second, "how long a replica may hold a device message before NATS gives it to another replica")
	cmd.AddCommand(newNATSNodeCmd())
	return cmd
}

// defaultGCPercent is fleet-server's garbage collector target when the
// GOGC environment variable is not set. Go's default, 100, lets the heap
// grow by the live heap plus all goroutine stacks before collecting; at
// 10,000 devices the embedded broker's two goroutines per connection
// hold ≈ 300 MB of stacks, so the default doubled a ≈ 550 MB working set
// to over 1 GB. 30 keeps the peak near 1.3× the working set for more
// frequent collections (docs/scale-out.md has the measurements).
const defaultGCPercent = 30

// tuneGC sets defaultGCPercent unless GOGC is set in the environment
// (the operator's choice wins); it reports whether it set it.
func tuneGC(getenv func(string) string) (percent int, set bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	debug.SetGCPercent(defaultGCPercent)
	return defaultGCPercent, true
}

// defaultListen is fleet-server's own port, distinct from edge-agent's
// 127.0.0.1:8080 so that a device and the server run side by side and
// fleetctl's default --server (https://127.0.0.1:8070) reaches the server.
const defaultListen = "127.0.0.1:8070"

func run(ctx context.Context, cfg server.Config) error {
	if err := checkPorts(cfg); err != nil {
		return err
	}
	cfg.RepoHandler = func(repoDir string) http.Handler { return release.NewRepo("", repoDir).Handler() }
	s, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Run(ctx, func(keysDir, repoDir string, now time.Time) error {
		return release.NewRepo(keysDir, repoDir).Refresh(now)
	})
}

// envOr returns the environment variable name, or def when it is empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// checkPorts fails fast, before the broker starts and the server subscribes,
// when an address the server is about to listen on is already taken, naming
// the flag to change.
func checkPorts(cfg server.Config) error {
	type port struct{ flag, addr string }
	ports := []port{{"--listen", cfg.HTTPAddr}}
	if cfg.BrokerURL == "" {
		addr := cfg.EmbeddedAddr
		if addr == "" {
			addr = "127.0.0.1:8883"
			if cfg.InsecurePlaintext {
				addr = "127.0.0.1:1883"
			}
		}
		ports = append(ports, port{"--mqtt-listen", addr})
	}
	for _, p := range ports {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("%s %s is not available (%w): another process (another fleet-server, or an edge-agent) is listening there; stop it or pass another %s", p.flag, p.addr, err, p.flag)
		}
		ln.Close()
	}
	return nil
}
