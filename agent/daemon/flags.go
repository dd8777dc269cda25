package daemon

import (
	"github.com/spf13/pflag"
)

// BindFlags declares the `edge-agent run` flags on fs, bound to fields of c.
func BindFlags(fs *pflag.FlagSet, c *Config) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data directory: model store, jobs, telemetry (EDGE_DATA_DIR)")
	fs.StringVar(&c.Listen, "listen", c.Listen, "TCP address of the API (EDGE_LISTEN)")
	fs.StringVar(&c.UnixSocket, "unix-socket", c.UnixSocket, "also serve the API on this Unix socket (EDGE_UNIX_SOCKET)")
	fs.StringVar(&c.AuthToken, "token", c.AuthToken, "require Authorization: Bearer TOKEN (EDGE_AUTH_TOKEN)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (EDGE_LOG_LEVEL)")
	fs.IntVar(&c.Serving.Threads, "threads", c.Serving.Threads, "goroutines per interpreter (EDGE_THREADS)")
	fs.IntVar(&c.Serving.Pool, "pool", c.Serving.Pool, "interpreters per model version (EDGE_POOL)")
	fs.IntVar(&c.Serving.MaxBatch, "max-batch", c.Serving.MaxBatch, "largest micro-batch; 1 disables batching (EDGE_MAX_BATCH)")
	fs.DurationVar(&c.Serving.MaxDelay, "max-delay", c.Serving.MaxDelay, "longest wait to fill a micro-batch (EDGE_MAX_DELAY)")
	fs.IntVar(&c.Serving.Queue, "queue", c.Serving.Queue, "bounded queue per model version; 429 beyond (EDGE_QUEUE)")
	fs.IntVar(&c.Cache.Entries, "cache-entries", c.Cache.Entries, "prediction cache size; 0 disables (EDGE_CACHE_ENTRIES)")
	fs.DurationVar(&c.Cache.TTL, "cache-ttl", c.Cache.TTL, "prediction cache TTL (EDGE_CACHE_TTL)")
	fs.DurationVar(&c.Telemetry.Interval, "telemetry-interval", c.Telemetry.Interval, "period of telemetry records (EDGE_TELEMETRY_INTERVAL)")
	fs.IntVar(&c.Telemetry.RingSize, "ring-size", c.Telemetry.RingSize, "telemetry records kept until the fleet acknowledges them (EDGE_RING_SIZE)")
	fs.IntVar(&c.Serving.MinPool, "min-pool", c.Serving.MinPool, "smallest interpreter pool per version; it grows to --pool under load (EDGE_MIN_POOL)")
	fs.DurationVar(&c.Serving.LatencyBudget, "latency-budget", c.Serving.LatencyBudget, "queue bound = what the pool runs within this at the measured latency; 429 beyond; 0 = --queue only (EDGE_LATENCY_BUDGET)")
	fs.Int64Var(&c.Serving.MemoryBudget, "memory-budget", c.Serving.MemoryBudget, "bytes all interpreters may hold; 0 = unbounded (EDGE_MEMORY_BUDGET)")
	fs.DurationVar(&c.Serving.IdleUnload, "idle-unload", c.Serving.IdleUnload, "unload a model version idle this long; 0 = never (EDGE_IDLE_UNLOAD)")
	fs.IntVar(&c.HTTP.MaxConnections, "max-connections", c.HTTP.MaxConnections, "open connections per listener (EDGE_MAX_CONNECTIONS)")
	fs.Float64Var(&c.HTTP.RateLimit, "rate-limit", c.HTTP.RateLimit, "requests per second per client address, 429 beyond; 0 = off (EDGE_RATE_LIMIT)")
	fs.DurationVar(&c.HTTP.RequestTimeout, "request-timeout", c.HTTP.RequestTimeout, "deadline of a synchronous prediction (EDGE_REQUEST_TIMEOUT)")
	fs.StringSliceVar(&c.Jobs.WebhookAllowHosts, "webhook-allow-host", c.Jobs.WebhookAllowHosts, "only hosts job webhooks may name, repeatable or comma-separated (host, address or *.domain); empty = any but link-local/metadata (EDGE_WEBHOOK_ALLOW_HOSTS)")
	fs.IntVar(&c.Jobs.WebhookConcurrency, "webhook-concurrency", c.Jobs.WebhookConcurrency, "webhook deliveries at once (EDGE_WEBHOOK_CONCURRENCY)")
	fs.DurationVar(&c.Jobs.WebhookTimeout, "webhook-timeout", c.Jobs.WebhookTimeout, "time limit of one webhook delivery (EDGE_WEBHOOK_TIMEOUT)")
	fs.DurationVar(&c.Jobs.Retention, "jobs-retention", c.Jobs.Retention, "finished jobs are deleted after this (EDGE_JOBS_RETENTION)")
	fs.DurationVar(&c.Jobs.PurgeInterval, "jobs-purge-interval", c.Jobs.PurgeInterval, "how often expired jobs are deleted; 0 = retention/4, at most 1m (EDGE_JOBS_PURGE_INTERVAL)")
	fs.IntVar(&c.Store.Keep, "model-keep", c.Store.Keep, "versions of each model kept in the store; the active and rollback versions always are (EDGE_MODEL_KEEP)")
	fs.StringVar(&c.Fleet.Broker, "fleet-broker", c.Fleet.Broker, "MQTT broker of the fleet, e.g. mqtt://host:1883 (EDGE_FLEET_BROKER)")
}

// ApplyFlags copies the flags that were set on the command line from
// flagged to c; changed reports whether a flag was set.
func ApplyFlags(c, flagged *Config, changed func(string) bool) {
	set := func(name string, apply func()) {
		if changed(name) {
			apply()
		}
	}
	set("data-dir", func() { c.DataDir = flagged.DataDir })
	set("listen", func() { c.Listen = ParseListen(flagged.Listen) })
	set("unix-socket", func() { c.UnixSocket = flagged.UnixSocket })
	set("token", func() { c.AuthToken = flagged.AuthToken })
	set("log-level", func() { c.LogLevel = flagged.LogLevel })
	set("threads", func() { c.Serving.Threads = flagged.Serving.Threads })
	set("pool", func() { c.Serving.Pool = flagged.Serving.Pool })
	set("max-batch", func() { c.Serving.MaxBatch = flagged.Serving.MaxBatch })
	set("max-delay", func() { c.Serving.MaxDelay = flagged.Serving.MaxDelay })
	set("queue", func() { c.Serving.Queue = flagged.Serving.Queue })
	set("cache-entries", func() { c.Cache.Entries = flagged.Cache.Entries })
	set("cache-ttl", func() { c.Cache.TTL = flagged.Cache.TTL })
	set("telemetry-interval", func() { c.Telemetry.Interval = flagged.Telemetry.Interval })
	set("ring-size", func() { c.Telemetry.RingSize = flagged.Telemetry.RingSize })
	set("fleet-broker", func() { c.Fleet.Broker = flagged.Fleet.Broker })
	set("min-pool", func() { c.Serving.MinPool = flagged.Serving.MinPool })
	set("latency-budget", func() { c.Serving.LatencyBudget = flagged.Serving.LatencyBudget })
	set("memory-budget", func() { c.Serving.MemoryBudget = flagged.Serving.MemoryBudget })
	set("idle-unload", func() { c.Serving.IdleUnload = flagged.Serving.IdleUnload })
	set("max-connections", func() { c.HTTP.MaxConnections = flagged.HTTP.MaxConnections })
	set("rate-limit", func() { c.HTTP.RateLimit = flagged.HTTP.RateLimit })
	set("request-timeout", func() { c.HTTP.RequestTimeout = flagged.HTTP.RequestTimeout })
	set("webhook-allow-host", func() { c.Jobs.WebhookAllowHosts = flagged.Jobs.WebhookAllowHosts })
	set("webhook-concurrency", func() { c.Jobs.WebhookConcurrency = flagged.Jobs.WebhookConcurrency })
	set("webhook-timeout", func() { c.Jobs.WebhookTimeout = flagged.Jobs.WebhookTimeout })
	set("jobs-retention", func() { c.Jobs.Retention = flagged.Jobs.Retention })
	set("jobs-purge-interval", func() { c.Jobs.PurgeInterval = flagged.Jobs.PurgeInterval })
	set("model-keep", func() { c.Store.Keep = flagged.Store.Keep })
}
