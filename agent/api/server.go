package api

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgefleet/edgefleet/agent/jobs"
	"github.com/edgefleet/edgefleet/agent/predict"
	"github.com/edgefleet/edgefleet/agent/serving"
	"github.com/edgefleet/edgefleet/agent/telemetry"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/internal/wire"
	"github.com/edgefleet/edgefleet/ota"
)

// Config configures the API.
type Config struct {
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every endpoint except /v2/health/*.
	Token string
	// MaxBodyBytes bounds request bodies (413 beyond; default 16 MiB) and
	// each NDJSON stream line.
	MaxBodyBytes int64
	// MaxInstances bounds the instances of one predict request (default 64;
	// batch-predict and jobs are not bounded by it).
	MaxInstances int
	// MaxBatchInstances bounds the instances of one batch-predict request,
	// job or v2 infer batch (default 10000).
	MaxBatchInstances int
	// RequestMemory bounds the memory of the request bodies being served:
	// each is charged BodyMemoryFactor times its size; beyond, 429 (default
	// 4 × BodyMemoryFactor × MaxBodyBytes). It also bounds the estimated
	// size of one response.
	RequestMemory int64
	// RequestTimeout is the deadline of a synchronous request (predict,
	// batch-predict, v2 infer, each stream line; default 30 s): its
	// inference is canceled then and the answer is 504.
	RequestTimeout time.Duration
	// StreamIdle is how long a stream waits for its next line and for its
	// answer to be written (default 60 s); it replaces the HTTP server's
	// read and write timeouts for streams.
	StreamIdle time.Duration
	// RateLimit limits requests per client address (off when PerSecond is 0).
	RateLimit RateLimit
	// Clock is the clock of the rate limiter (nil: the system clock).
	Clock clock.Clock
	// Version is the agent version reported by /api/v1/status.
	Version string
	// Metrics, when set, is served at /metrics (Prometheus text format).
	Metrics *telemetry.Collector
	// Service is the prediction service, shared with the agent's other
	// clients of it (nil: one over the manager with PredictLimits).
	Service *predict.Service
}

// PredictLimits are the prediction service's limits of an API with c:
// MaxInstances, MaxBatchInstances and RequestMemory (as the response
// bound), defaults applied.
func (c Config) PredictLimits() predict.Limits {
	c = c.withDefaults()
	return predict.Limits{MaxInstances: c.MaxInstances, MaxBatchInstances: c.MaxBatchInstances, ResponseMemory: c.RequestMemory}
}

// Server serves the API.
type Server struct {
	cfg  Config
	mem  *budget
	mgr  *serving.Manager
	svc  *predict.Service
	jobs *jobs.Queue
	ring *telemetry.Ring
	log  *slog.Logger
	// StatusExtra, if set, adds fields to /api/v1/status (the daemon's
	// fleet state, for example).
	StatusExtra func(ctx context.Context) map[string]any
}

// New creates the API server. jobs and ring may be nil (endpoints answer
// 503).
func New(cfg Config, mgr *serving.Manager, q *jobs.Queue, ring *telemetry.Ring, log *slog.Logger) *Server {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	svc := cfg.Service
	if svc == nil {
		svc = predict.New(mgr, cfg.PredictLimits())
	}
	return &Server{cfg: cfg, mem: &budget{limit: cfg.RequestMemory}, mgr: mgr, svc: svc, jobs: q, ring: ring, log: log}
}

// BodyLimits are the bounds of a request to an API with c (body size and
// request timeout, defaults applied), for predict bodies that arrive by
// other transports (predict.Service.PredictBody).
func (c Config) BodyLimits() predict.BodyLimits {
	c = c.withDefaults()
	return predict.BodyLimits{MaxBytes: c.MaxBodyBytes, Timeout: c.RequestTimeout}
}

// withDefaults is c with the defaults of unset limits.
func (cfg Config) withDefaults() Config {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 16 << 20
	}
	if cfg.MaxInstances <= 0 {
		cfg.MaxInstances = 64
	}
	if cfg.MaxBatchInstances <= 0 {
		cfg.MaxBatchInstances = 10000
	}
	if cfg.RequestMemory <= 0 {
		cfg.RequestMemory = 4 * BodyMemoryFactor * cfg.MaxBodyBytes
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.StreamIdle <= 0 {
		cfg.StreamIdle = time.Minute
	}
	return cfg
}

// Handler returns the HTTP handler of every endpoint.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/models/{model_id}/predict", s.handlePredict(false))
	mux.HandleFunc("POST /api/v1/models/{model_id}/batch-predict", s.handlePredict(true))
	mux.HandleFunc("POST /api/v1/models/{model_id}/stream", s.handleStream)
	mux.HandleFunc("POST /api/v1/models/{model_id}/jobs", s.handleSubmitJob)
	mux.HandleFunc("GET /api/v1/jobs/{id}", s.handleGetJob)
	mux.HandleFunc("GET /api/v1/models/{model_id}/health", s.handleModelHealth)
	mux.HandleFunc("GET /api/v1/models/{model_id}/metadata", s.handleModelMetadata)
	mux.HandleFunc("PUT /api/v1/models/{model_id}/route", s.handleSetRoute)
	mux.HandleFunc("GET /api/v1/models", s.handleListModels)
	mux.HandleFunc("GET /api/v1/status", s.handleStatus)
	mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]bool{"live": true}) })
	mux.HandleFunc("GET /v2/health/ready", s.handleReady)
	mux.HandleFunc("GET /v2/models/{name}", s.handleV2Metadata)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}", s.handleV2Metadata)
	mux.HandleFunc("GET /v2/models/{name}/ready", s.handleV2Ready)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}/ready", s.handleV2Ready)
	mux.HandleFunc("POST /v2/models/{name}/infer", s.handleV2Infer)
	mux.HandleFunc("POST /v2/models/{name}/versions/{version}/infer", s.handleV2Infer)
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	})
	if coll := s.cfg.Metrics; coll != nil {
		h := promhttp.HandlerFor(coll.Registry(), promhttp.HandlerOpts{})
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
			coll.Describe()
			h.ServeHTTP(w, r)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
			if m == r.Method {
				continue
			}
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, errf(http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s %s: allowed methods: %s", r.Method, r.URL.Path, strings.Join(allow, ", "))))
			return
		}
		writeError(w, errf(http.StatusNotFound, "not_found", fmt.Sprintf("no endpoint %s %s (see /openapi.json)", r.Method, r.URL.Path)))
	})
	return s.rateLimit(s.auth(s.limitBodies(mux)))
}

func (s *Server) auth(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := []byte("Bearer " + s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2/health/") {
			next.ServeHTTP(w, r)
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="edge-agent"`)
			writeError(w, errf(http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// StreamLine is one line of a stream response.
type StreamLine struct {
	Line         int            `json:"line"`
	Prediction   any            `json:"prediction,omitempty"`
	TopK         []serving.TopK `json:"top_k,omitempty"`
	ModelVersion string         `json:"model_version,omitempty"`
	Error        *Error         `json:"error,omitempty"`
}

// handleStream reads NDJSON instances (one per line) and writes one
// prediction per line, in order, flushed per line. A bad line gets an error
// line; the stream goes on.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	id, version := predict.SplitModel(r.PathValue("model_id"))
	ctx := r.Context()
	l, role, err := s.mgr.Resolve(ctx, id, version, r.Header.Get("X-Request-Key"))
	if err != nil {
		writeError(w, err)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex()
	// A stream outlives the server's read and write timeouts: each line
	// gets StreamIdle to arrive and its answer StreamIdle to be written.
	extend := func() {
		_ = rc.SetReadDeadline(time.Now().Add(s.cfg.StreamIdle))
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.StreamIdle))
	}
	extend()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc.Flush()
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 64<<10), int(s.cfg.MaxBodyBytes))
	enc := json.NewEncoder(w)
	n := 0
	for sc.Scan() {
		extend()
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		n++
		out := StreamLine{Line: n}
		in, err := serving.DecodeInstance(l, json.RawMessage(line))
		if err != nil {
			if !json.Valid([]byte(line)) {
				out.Error = errf(http.StatusBadRequest, "bad_request", "line is not valid JSON")
			} else {
				out.Error = toError(&serving.InputError{Instance: -1, Msg: err.Error()})
			}
		} else if res, err := s.predictLine(ctx, l, role, in); err != nil {
			out.Error = toError(err)
		} else if p, err := serving.Format(l, res[0], 5); err != nil {
			out.Error = toError(err)
		} else {
			out.Prediction, out.TopK, out.ModelVersion = p.Value, p.TopK, l.Version
		}
		if err := enc.Encode(out); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
	if err := sc.Err(); err != nil {
		msg := err.Error()
		if errors.Is(err, bufio.ErrTooLong) {
			msg = fmt.Sprintf("line %d is longer than %d bytes", n+1, s.cfg.MaxBodyBytes)
		}
		enc.Encode(StreamLine{Line: n + 1, Error: errf(http.StatusRequestEntityTooLarge, "bad_request", msg)})
	}
}

// predictLine runs one stream line with its own deadline.
func (s *Server) predictLine(ctx context.Context, l *serving.Loaded, role wire.Role, in serving.Instance) ([]serving.Result, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	return s.mgr.Predict(ctx, l, role, []serving.Instance{in})
}

// JobAccepted is the 202 body of a job submission.
type JobAccepted struct {
	JobID  string `json:"job_id"`
	Status string `json:"status"`
	URL    string `json:"url"`
}

func (s *Server) handleSubmitJob(w http.ResponseWriter, r *http.Request) {
	if s.jobs == nil {
		writeError(w, errf(http.StatusServiceUnavailable, "unavailable", "jobs are not enabled"))
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req predict.Request
	if err := s.decodeJSON(body, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Instances) == 0 {
		writeError(w, errf(http.StatusBadRequest, "bad_request", `"instances" must be a non-empty array`))
		return
	}
	if len(req.Instances) > s.cfg.MaxBatchInstances {
		writeError(w, errf(http.StatusRequestEntityTooLarge, "too_many_instances", fmt.Sprintf("%d instances, a job takes at most %d (max_batch_instances): split it", len(req.Instances), s.cfg.MaxBatchInstances)))
		return
	}
	model := r.PathValue("model_id")
	id, version := predict.SplitModel(model)
	if _, err := s.mgr.Get(r.Context(), id, version); err != nil {
		writeError(w, err)
		return
	}
	// The body is stored as sent (valid JSON: it decoded), not re-encoded.
	j, err := s.jobs.Submit(model, json.RawMessage(body), req.Parameters.Webhook)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/jobs/"+j.ID)
	writeJSON(w, http.StatusAccepted, JobAccepted{JobID: j.ID, Status: j.Status, URL: "/api/v1/jobs/" + j.ID})
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request) {
	if s.jobs == nil {
		writeError(w, errf(http.StatusServiceUnavailable, "unavailable", "jobs are not enabled"))
		return
	}
	j, err := s.jobs.Get(r.PathValue("id"))
	if err != nil {
		if errors.Is(err, jobs.ErrNotFound) {
			writeError(w, errf(http.StatusNotFound, "job_not_found", err.Error()))
			return
		}
		writeError(w, err)
		return
	}
	j.Request = nil
	writeJSON(w, http.StatusOK, j)
}

// ModelHealth is the body of /api/v1/models/{id}/health.
type ModelHealth struct {
	Model     string `json:"model"`
	Version   string `json:"version"`
	Status    string `json:"status"`
	Backend   string `json:"backend"`
	Batchable bool   `json:"batchable"`
	Queue     int    `json:"queue"`
	Error     string `json:"error,omitempty"`
}

func (s *Server) handleModelHealth(w http.ResponseWriter, r *http.Request) {
	id, version := predict.SplitModel(r.PathValue("model_id"))
	ctx, cancel := context.WithTimeout(r.Context(), healthWait)
	defer cancel()
	l, err := s.mgr.Get(ctx, id, version)
	if err != nil {
		e := toError(err)
		if e.Status == http.StatusNotFound {
			writeError(w, e)
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, ModelHealth{Model: id, Version: version, Status: "unavailable", Backend: s.mgr.BackendName(), Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, ModelHealth{Model: id, Version: l.Version, Status: "ready", Backend: s.mgr.BackendName(), Batchable: l.Batchable, Queue: l.QueueLen()})
}

// TensorDesc describes a tensor in metadata responses.
type TensorDesc struct {
	Name      string    `json:"name"`
	DType     string    `json:"dtype"`
	Shape     []int     `json:"shape"`
	Scale     []float32 `json:"scale,omitempty"`
	ZeroPoint []int64   `json:"zero_point,omitempty"`
	Mean      []float32 `json:"mean,omitempty"`
	Std       []float32 `json:"std,omitempty"`
	Labels    int       `json:"labels,omitempty"`
}

func describe(infos []tensor.Info) []TensorDesc {
	out := make([]TensorDesc, len(infos))
	for i, t := range infos {
		out[i] = TensorDesc{Name: t.Name, DType: t.Type.String(), Shape: t.Shape}
		if t.Quant != nil {
			out[i].Scale, out[i].ZeroPoint = t.Quant.Scale, t.Quant.ZeroPoint
		}
	}
	return out
}

// ModelMetadata is the body of /api/v1/models/{id}/metadata.
type ModelMetadata struct {
	Model       string       `json:"model"`
	Version     string       `json:"version"`
	SHA256      string       `json:"sha256"`
	Batchable   bool         `json:"batchable"`
	BatchDim    bool         `json:"batch_dimension"`
	Inputs      []TensorDesc `json:"inputs"`
	Outputs     []TensorDesc `json:"outputs"`
	Name        string       `json:"name,omitempty"`
	Description string       `json:"description,omitempty"`
	Versions    any          `json:"versions"`
	Active      string       `json:"active,omitempty"`
	Previous    string       `json:"previous,omitempty"`
}

func (s *Server) handleModelMetadata(w http.ResponseWriter, r *http.Request) {
	id, version := predict.SplitModel(r.PathValue("model_id"))
	l, err := s.mgr.Get(r.Context(), id, version)
	if err != nil {
		writeError(w, err)
		return
	}
	rec, err := s.mgr.Model(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	md := ModelMetadata{Model: id, Version: l.Version, SHA256: l.SHA256, Batchable: l.Batchable, BatchDim: l.HasBatchDim(),
		Inputs: describe(l.Inputs()), Outputs: describe(l.Outputs()), Versions: rec.Versions, Active: rec.Active, Previous: rec.Previous}
	if m := l.Metadata(); m != nil {
		md.Name, md.Description = m.Name, m.Description
		for i := range md.Inputs {
			if i < len(m.Inputs) {
				md.Inputs[i].Mean, md.Inputs[i].Std = m.Inputs[i].Mean, m.Inputs[i].Std
			}
		}
		for i := range md.Outputs {
			if i < len(m.Outputs) {
				md.Outputs[i].Labels = len(m.Outputs[i].Labels)
			}
		}
	}
	writeJSON(w, http.StatusOK, md)
}

func (s *Server) handleSetRoute(w http.ResponseWriter, r *http.Request) {
	var route serving.Route
	if err := s.decodeBody(w, r, &route); err != nil {
		writeError(w, err)
		return
	}
	id := r.PathValue("model_id")
	if _, err := s.mgr.Model(r.Context(), id); err != nil {
		writeError(w, fmt.Errorf("%w: %q", serving.ErrModelNotFound, id))
		return
	}
	if err := s.mgr.SetShadow(r.Context(), id, route.Shadow); err != nil {
		writeError(w, routeErr(err))
		return
	}
	if err := s.mgr.SetAB(r.Context(), id, route.Candidate, route.CandidatePercent); err != nil {
		writeError(w, routeErr(err))
		return
	}
	writeJSON(w, http.StatusOK, s.mgr.Routes()[id])
}

func routeErr(err error) error {
	if e := toError(err); e.Status == http.StatusInternalServerError && !errors.Is(err, ota.ErrNotFound) {
		return errf(http.StatusUnprocessableEntity, "invalid_route", err.Error())
	}
	return err
}

func (s *Server) handleListModels(w http.ResponseWriter, r *http.Request) {
	st, err := s.mgr.Status(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if st == nil {
		st = []serving.ModelStatus{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": st})
}

// Status is the body of /api/v1/status.
type Status struct {
	Version       string                `json:"agent_version"`
	Backend       string                `json:"backend"`
	Time          time.Time             `json:"time"`
	Models        []serving.ModelStatus `json:"models"`
	Telemetry     *telemetry.RingStats  `json:"telemetry,omitempty"`
	ShadowDropped uint64                `json:"shadow_dropped"`
	Extra         map[string]any        `json:"extra,omitempty"`
}

// Snapshot returns the agent's status.
func (s *Server) Snapshot(ctx context.Context) (Status, error) {
	st := Status{Version: s.cfg.Version, Backend: s.mgr.BackendName(), Time: time.Now().UTC(), ShadowDropped: s.mgr.ShadowDropped()}
	models, err := s.mgr.Status(ctx)
	if err != nil {
		return st, err
	}
	st.Models = models
	if s.ring != nil {
		rs, err := s.ring.Stats()
		if err != nil {
			return st, err
		}
		st.Telemetry = &rs
	}
	if s.StatusExtra != nil {
		st.Extra = s.StatusExtra(ctx)
	}
	return st, nil
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.Snapshot(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// SetJobs attaches the job queue (the daemon creates it after the server;
// it runs jobs through the prediction service, jobs.Predictor).
func (s *Server) SetJobs(q *jobs.Queue) { s.jobs = q }
