// Package daemon is `edge-agent run`: it reads the configuration (YAML file,
// EDGE_* environment variables, flags — flags win), opens the model store,
// jobs and telemetry ring in the data directory, serves the local API on TCP
// and optionally a Unix socket, runs scheduled batch jobs, and starts the
// fleet link when a broker is configured.
package daemon

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/edgefleet/edgefleet/agent/jobs"
	"github.com/edgefleet/edgefleet/agent/modelstore"
	"gopkg.in/yaml.v3"
)

// Config is the agent configuration. Field names are the YAML keys.
type Config struct {
	DataDir      string `yaml:"data_dir"`
	Listen       string `yaml:"listen"`
	UnixSocket   string `yaml:"unix_socket"`
	AuthToken    string `yaml:"auth_token"`
	MaxBodyBytes int64  `yaml:"max_body_bytes"`
	MaxInstances int    `yaml:"max_instances"`
	LogLevel     string `yaml:"log_level"`

	HTTP      HTTPConfig      `yaml:"http"`
	Serving   ServingConfig   `yaml:"serving"`
	Cache     CacheConfig     `yaml:"cache"`
	Telemetry TelemetryConfig `yaml:"telemetry"`
	Jobs      JobsConfig      `yaml:"jobs"`
	Store     StoreConfig     `yaml:"model_store"`
	Schedules []Schedule      `yaml:"schedules"`
	Fleet     FleetConfig     `yaml:"fleet"`
}

// ServingConfig sizes interpreter pools and micro-batching. The default pool
// has one single-threaded interpreter per CPU; with Threads > 1, lower Pool
// so that Pool × Threads stays near the CPU count.
type ServingConfig struct {
	Threads  int           `yaml:"threads"`
	Pool     int           `yaml:"pool"`
	MaxBatch int           `yaml:"max_batch"`
	MaxDelay time.Duration `yaml:"max_delay"`
	Queue    int           `yaml:"queue"`
	// MinPool is the smallest interpreter pool (Pool the largest).
	MinPool int `yaml:"min_pool"`
	// ShrinkAfter releases an interpreter idle that long (beyond MinPool).
	ShrinkAfter time.Duration `yaml:"shrink_after"`
	// LatencyBudget lowers each queue's bound to what the pool runs within
	// it at the measured latency (0: only Queue).
	LatencyBudget time.Duration `yaml:"latency_budget"`
	// MemoryBudget bounds all interpreters' memory in bytes (0: unbounded).
	MemoryBudget int64 `yaml:"memory_budget"`
	// IdleUnload unloads a version idle that long (0: never).
	IdleUnload time.Duration `yaml:"idle_unload"`
	// ProbeTimeout bounds each probe invocation at load.
	ProbeTimeout time.Duration `yaml:"probe_timeout"`
}

// HTTPConfig bounds the API's HTTP server and its requests.
type HTTPConfig struct {
	ReadTimeout    time.Duration `yaml:"read_timeout"`
	WriteTimeout   time.Duration `yaml:"write_timeout"`
	IdleTimeout    time.Duration `yaml:"idle_timeout"`
	MaxHeaderBytes int           `yaml:"max_header_bytes"`
	// MaxConnections caps open connections per listener (keep-alive ones
	// included); further clients wait in the kernel's backlog.
	MaxConnections int `yaml:"max_connections"`
	// RequestTimeout is the deadline of a synchronous prediction.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// RequestMemory bounds the memory of request bodies in flight (each is
	// charged 4× its size; 429 beyond).
	RequestMemory int64 `yaml:"request_memory"`
	// MaxBatchInstances bounds batch-predict, job and v2 batches.
	MaxBatchInstances int `yaml:"max_batch_instances"`
	// RateLimit is requests per second per client address (0: off), with
	// RateBurst the bucket size.
	RateLimit float64 `yaml:"rate_limit"`
	RateBurst int     `yaml:"rate_burst"`
}

// CacheConfig configures the LRU prediction cache (off when Entries is 0).
type CacheConfig struct {
	Entries int           `yaml:"entries"`
	TTL     time.Duration `yaml:"ttl"`
}

// TelemetryConfig configures the periodic records and the ring bound.
type TelemetryConfig struct {
	Interval time.Duration `yaml:"interval"`
	RingSize int           `yaml:"ring_size"`
}

// JobsConfig configures asynchronous jobs.
type JobsConfig struct {
	Workers         int `yaml:"workers"`
	WebhookAttempts int `yaml:"webhook_attempts"`
	// WebhookTimeout bounds one webhook delivery, connection to response.
	WebhookTimeout time.Duration `yaml:"webhook_timeout"`
	// WebhookConcurrency is how many deliveries run at once.
	WebhookConcurrency int `yaml:"webhook_concurrency"`
	// WebhookAllowHosts, if set, is the only hosts webhooks may name
	// ("hooks.example.com", "10.0.0.5", "*.example.com"); others are
	// refused at submit (400 invalid_webhook).
	WebhookAllowHosts []string `yaml:"webhook_allow_hosts"`
	// Retention is how long finished jobs are kept.
	Retention time.Duration `yaml:"retention"`
	// PurgeInterval is how often expired jobs are deleted (0: Retention/4,
	// at most 1 minute).
	PurgeInterval time.Duration `yaml:"purge_interval"`
	MaxPending    int           `yaml:"max_pending"`
}

// StoreConfig configures the model store.
type StoreConfig struct {
	// Keep is how many versions of each model are kept; older ones are
	// removed after an install or activation (the active version and the
	// rollback target are always kept).
	Keep int `yaml:"keep"`
}

// Schedule is a cron-scheduled batch job.
type Schedule struct {
	Name   string `yaml:"name"`
	Cron   string `yaml:"cron"`
	Model  string `yaml:"model"`
	Input  string `yaml:"input"`
	Output string `yaml:"output"`
}

// FleetConfig configures the fleet link; it starts when Broker is set (or
// the device is enrolled and Enabled is true). Fields the fleet link needs
// beyond these go in Extra.
type FleetConfig struct {
	Enabled  bool           `yaml:"enabled"`
	Broker   string         `yaml:"broker"`
	DeviceID string         `yaml:"device_id"`
	Server   string         `yaml:"server"`
	Extra    map[string]any `yaml:",inline"`
}

// Defaults returns the zero-flag configuration.
func Defaults() Config {
	return Config{
		DataDir:      "./edge-data",
		Listen:       "127.0.0.1:8080",
		MaxBodyBytes: 16 << 20,
		MaxInstances: 64,
		LogLevel:     "info",
		HTTP: HTTPConfig{ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 64 << 10,
			MaxConnections: 128, RequestTimeout: 30 * time.Second, RequestMemory: 256 << 20, MaxBatchInstances: 10000, RateLimit: 200, RateBurst: 400},
		Serving: ServingConfig{Threads: 1, Pool: max(1, runtime.NumCPU()), MinPool: 1, ShrinkAfter: 30 * time.Second, MaxBatch: 8, MaxDelay: 2 * time.Millisecond,
			Queue: 1024, LatencyBudget: time.Second, ProbeTimeout: 10 * time.Second},
		Cache:     CacheConfig{TTL: 10 * time.Minute},
		Telemetry: TelemetryConfig{Interval: time.Minute, RingSize: 10000},
		Jobs: JobsConfig{Workers: 1, WebhookAttempts: 8, WebhookTimeout: 10 * time.Second, WebhookConcurrency: 8,
			Retention: 24 * time.Hour, MaxPending: 10000},
		Store: StoreConfig{Keep: modelstore.DefaultKeep},
	}
}

// LoadFile overlays the YAML file at path on c (unknown keys are errors).
func (c *Config) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	c.Listen = ParseListen(c.Listen)
	return nil
}

// EnvVars lists the environment variables ApplyEnv reads.
var EnvVars = []string{"EDGE_DATA_DIR", "EDGE_LISTEN", "EDGE_UNIX_SOCKET", "EDGE_AUTH_TOKEN", "EDGE_LOG_LEVEL",
	"EDGE_THREADS", "EDGE_POOL", "EDGE_MAX_BATCH", "EDGE_MAX_DELAY", "EDGE_QUEUE", "EDGE_CACHE_ENTRIES", "EDGE_CACHE_TTL",
	"EDGE_TELEMETRY_INTERVAL", "EDGE_RING_SIZE", "EDGE_FLEET_BROKER",
	"EDGE_MAX_CONNECTIONS", "EDGE_RATE_LIMIT", "EDGE_REQUEST_TIMEOUT", "EDGE_LATENCY_BUDGET", "EDGE_MIN_POOL", "EDGE_MEMORY_BUDGET", "EDGE_IDLE_UNLOAD",
	"EDGE_WEBHOOK_ALLOW_HOSTS", "EDGE_WEBHOOK_CONCURRENCY", "EDGE_WEBHOOK_TIMEOUT", "EDGE_JOBS_RETENTION", "EDGE_JOBS_PURGE_INTERVAL", "EDGE_MODEL_KEEP"}

// ApplyEnv overlays EDGE_* variables (getenv is os.Getenv in production).
func (c *Config) ApplyEnv(getenv func(string) string) error {
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	var errs []string
	num := func(name string, dst *int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q: want an integer", name, v))
				return
			}
			*dst = n
		}
	}
	dur := func(name string, dst *time.Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q: want a duration such as 2ms", name, v))
				return
			}
			*dst = d
		}
	}
	str("EDGE_DATA_DIR", &c.DataDir)
	str("EDGE_LISTEN", &c.Listen)
	str("EDGE_UNIX_SOCKET", &c.UnixSocket)
	str("EDGE_AUTH_TOKEN", &c.AuthToken)
	str("EDGE_LOG_LEVEL", &c.LogLevel)
	str("EDGE_FLEET_BROKER", &c.Fleet.Broker)
	num("EDGE_THREADS", &c.Serving.Threads)
	num("EDGE_POOL", &c.Serving.Pool)
	num("EDGE_MAX_BATCH", &c.Serving.MaxBatch)
	dur("EDGE_MAX_DELAY", &c.Serving.MaxDelay)
	num("EDGE_QUEUE", &c.Serving.Queue)
	num("EDGE_CACHE_ENTRIES", &c.Cache.Entries)
	dur("EDGE_CACHE_TTL", &c.Cache.TTL)
	dur("EDGE_TELEMETRY_INTERVAL", &c.Telemetry.Interval)
	num("EDGE_RING_SIZE", &c.Telemetry.RingSize)
	num("EDGE_MAX_CONNECTIONS", &c.HTTP.MaxConnections)
	if v := getenv("EDGE_RATE_LIMIT"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			errs = append(errs, fmt.Sprintf("EDGE_RATE_LIMIT=%q: want requests per second such as 50", v))
		} else {
			c.HTTP.RateLimit = f
		}
	}
	dur("EDGE_REQUEST_TIMEOUT", &c.HTTP.RequestTimeout)
	dur("EDGE_LATENCY_BUDGET", &c.Serving.LatencyBudget)
	num("EDGE_MIN_POOL", &c.Serving.MinPool)
	if v := getenv("EDGE_MEMORY_BUDGET"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Sprintf("EDGE_MEMORY_BUDGET=%q: want bytes", v))
		} else {
			c.Serving.MemoryBudget = n
		}
	}
	dur("EDGE_IDLE_UNLOAD", &c.Serving.IdleUnload)
	if v := getenv("EDGE_WEBHOOK_ALLOW_HOSTS"); v != "" {
		c.Jobs.WebhookAllowHosts = splitList(v)
	}
	num("EDGE_WEBHOOK_CONCURRENCY", &c.Jobs.WebhookConcurrency)
	dur("EDGE_WEBHOOK_TIMEOUT", &c.Jobs.WebhookTimeout)
	dur("EDGE_JOBS_RETENTION", &c.Jobs.Retention)
	dur("EDGE_JOBS_PURGE_INTERVAL", &c.Jobs.PurgeInterval)
	num("EDGE_MODEL_KEEP", &c.Store.Keep)
	c.Listen = ParseListen(c.Listen)
	if len(errs) > 0 {
		return fmt.Errorf("environment: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []string
	if c.DataDir == "" {
		errs = append(errs, "data_dir is empty")
	}
	if c.Listen == "" && c.UnixSocket == "" {
		errs = append(errs, "neither listen nor unix_socket is set")
	}
	if c.Listen != "" {
		if _, port, err := net.SplitHostPort(ParseListen(c.Listen)); err != nil {
			errs = append(errs, fmt.Sprintf("listen %q: want HOST:PORT or PORT (%v)", c.Listen, err))
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			errs = append(errs, fmt.Sprintf("listen %q: port %q is not 0..65535", c.Listen, port))
		}
	}
	if c.HTTP.ReadTimeout < 0 || c.HTTP.WriteTimeout < 0 || c.HTTP.IdleTimeout < 0 || c.HTTP.RequestTimeout < 0 || c.HTTP.MaxConnections < 0 || c.HTTP.RateLimit < 0 {
		errs = append(errs, "http timeouts, max_connections and rate_limit must not be negative")
	}
	if c.Serving.MinPool > c.Serving.Pool {
		errs = append(errs, fmt.Sprintf("serving.min_pool %d exceeds serving.pool %d", c.Serving.MinPool, c.Serving.Pool))
	}
	if c.Serving.MaxBatch < 1 || c.Serving.Pool < 1 || c.Serving.Threads < 1 || c.Serving.Queue < 1 {
		errs = append(errs, "serving.threads, pool, max_batch and queue must be at least 1")
	}
	if c.Telemetry.Interval <= 0 || c.Telemetry.RingSize < 1 {
		errs = append(errs, "telemetry.interval and ring_size must be positive")
	}
	if c.Jobs.WebhookConcurrency < 0 || c.Jobs.WebhookTimeout < 0 || c.Jobs.Retention < 0 || c.Jobs.PurgeInterval < 0 {
		errs = append(errs, fmt.Sprintf("jobs.webhook_concurrency (%d), webhook_timeout (%s), retention (%s) and purge_interval (%s) must not be negative (0: the default)",
			c.Jobs.WebhookConcurrency, c.Jobs.WebhookTimeout, c.Jobs.Retention, c.Jobs.PurgeInterval))
	}
	for i, h := range c.Jobs.WebhookAllowHosts {
		if strings.TrimSpace(h) == "" || strings.ContainsAny(h, "/:@ ") && !isIPv6(h) {
			errs = append(errs, fmt.Sprintf("jobs.webhook_allow_hosts[%d] %q: want a host name, an address or *.domain (no scheme, port or path)", i, h))
		}
	}
	if c.Store.Keep < 0 {
		errs = append(errs, fmt.Sprintf("model_store.keep %d must not be negative (0: the default, %d)", c.Store.Keep, modelstore.DefaultKeep))
	}
	for i, s := range c.Schedules {
		if s.Cron == "" || s.Model == "" || s.Input == "" || s.Output == "" {
			errs = append(errs, fmt.Sprintf("schedules[%d] (%s): cron, model, input and output are required", i, s.Name))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration: %s", strings.Join(errs, "; "))
	}
	return nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func isIPv6(h string) bool {
	ip := net.ParseIP(h)
	return ip != nil && ip.To4() == nil
}

// JobsOptions is the job queue's configuration from c.
func JobsOptions(c JobsConfig, log *slog.Logger) jobs.Options {
	return jobs.Options{Workers: c.Workers, WebhookAttempts: c.WebhookAttempts, WebhookTimeout: c.WebhookTimeout,
		WebhookConcurrency: c.WebhookConcurrency, WebhookAllowHosts: c.WebhookAllowHosts,
		Retention: c.Retention, PurgeInterval: c.PurgeInterval, MaxPending: c.MaxPending, Log: log}
}

// StoreOptions are the model store's options from c.
func StoreOptions(c StoreConfig) []modelstore.Option {
	return []modelstore.Option{modelstore.WithKeep(c.Keep)}
}
