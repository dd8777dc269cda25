package api

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgefleet/edgefleet/internal/clock"
	"golang.org/x/time/rate"
)

// BodyMemoryFactor is what a request body is charged against
// Config.RequestMemory: decoding a body (the body, its instances, their
// tensors and the response) takes at most about this many times its size
// (TestBigBodyHeap measures it).
const BodyMemoryFactor = 4

// budget is a counting semaphore over bytes.
type budget struct {
	limit int64
	used  atomic.Int64
}

// take reserves n bytes; false when that would exceed the limit.
func (b *budget) take(n int64) bool {
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *budget) give(n int64) { b.used.Add(-n) }

// limitBodies bounds request bodies: a declared length beyond MaxBodyBytes
// is refused before anything is read (413), and every body is charged
// BodyMemoryFactor times its size (its declared length, or MaxBodyBytes
// when it is sent chunked) against RequestMemory for as long as its
// request runs: beyond it the request gets 429 with Retry-After.
func (s *Server) limitBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > s.cfg.MaxBodyBytes {
			writeError(w, errf(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, s.cfg.MaxBodyBytes)))
			return
		}
		size := r.ContentLength
		if size < 0 {
			size = s.cfg.MaxBodyBytes
		}
		charge := size * BodyMemoryFactor
		if charge > s.mem.limit {
			writeError(w, errf(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body of %d bytes needs %d bytes of request memory, the agent has %d (request_memory)", size, charge, s.mem.limit)))
			return
		}
		if !s.mem.take(charge) {
			s.mgr.CountShed("request_memory")
			writeError(w, errf(http.StatusTooManyRequests, "overloaded", fmt.Sprintf("requests in flight hold %d of %d bytes of request memory; this body needs %d: retry later", s.mem.used.Load(), s.mem.limit, charge)))
			return
		}
		defer s.mem.give(charge)
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// RateLimit configures the per-client token bucket.
type RateLimit struct {
	// PerSecond is the sustained request rate of one client (0: no limit).
	PerSecond float64
	// Burst is the bucket size (default: twice PerSecond, at least 1).
	Burst int
	// MaxClients bounds the clients tracked at once (default 10000); idle
	// buckets are evicted first.
	MaxClients int
}

// limiter keeps one token bucket per client address.
type limiter struct {
	cfg     RateLimit
	now     func() time.Time
	mu      sync.Mutex
	clients map[string]*rate.Limiter
}

func newLimiter(cfg RateLimit, c clock.Clock) *limiter {
	now := clock.Or(c).Now
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(math.Ceil(2*cfg.PerSecond)))
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 10000
	}
	return &limiter{cfg: cfg, now: now, clients: map[string]*rate.Limiter{}}
}

// allow takes a token for client; when there is none it returns how long
// until one is available.
func (l *limiter) allow(client string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.clients[client]
	if lim == nil {
		if len(l.clients) >= l.cfg.MaxClients {
			l.evict(now)
		}
		lim = rate.NewLimiter(rate.Limit(l.cfg.PerSecond), l.cfg.Burst)
		l.clients[client] = lim
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	return false, time.Duration(missing / l.cfg.PerSecond * float64(time.Second))
}

// evict drops the buckets that are full again (their clients are idle: a
// new bucket would be identical); if none is, it drops an arbitrary one
// so the map stays bounded.
func (l *limiter) evict(now time.Time) {
	for k, lim := range l.clients {
		if lim.TokensAt(now) >= float64(l.cfg.Burst) {
			delete(l.clients, k)
		}
	}
	for k := range l.clients {
		if len(l.clients) < l.cfg.MaxClients {
			return
		}
		delete(l.clients, k)
	}
}

// clientAddr is the client's IP address ("local" for Unix sockets).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || host == "" {
		return "local"
	}
	return host
}

// rateLimit answers 429 with Retry-After to a client beyond its rate.
// /v2/health/* is exempt (liveness probes).
func (s *Server) rateLimit(next http.Handler) http.Handler {
	if s.cfg.RateLimit.PerSecond <= 0 {
		return next
	}
	lim := newLimiter(s.cfg.RateLimit, s.cfg.Clock)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2/health/") {
			next.ServeHTTP(w, r)
			return
		}
		ok, wait := lim.allow(clientAddr(r))
		if !ok {
			s.mgr.CountShed("rate_limit")
			secs := max(1, int(math.Ceil(wait.Seconds())))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeJSON(w, http.StatusTooManyRequests, ErrorBody{Error: errf(http.StatusTooManyRequests, "rate_limited",
				fmt.Sprintf("client %s exceeds %g requests/s (burst %d): retry in %d s", clientAddr(r), s.cfg.RateLimit.PerSecond, lim.cfg.Burst, secs))})
			return
		}
		next.ServeHTTP(w, r)
	})
}
