// Package batch runs batch prediction over a directory of inputs or an
// NDJSON file and writes one result line per input to an NDJSON output.
// Runs are resumable: after every chunk the output is fsynced and a
// checkpoint (records done, output length) is replaced atomically, so a run
// interrupted at any point — even by kill -9 — resumes where the checkpoint
// says, truncating any output written after it: no record is lost or
// duplicated. Scheduled runs (cron syntax) use the same machinery.
package batch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/edgefleet/edgefleet/agent/predict"
)

// Predictor runs a batch-predict request: the prediction service in
// process (through the daemon's API server), or a running agent over HTTP
// (HTTPPredictor, whose refusals are *StatusError).
type Predictor interface {
	Predict(ctx context.Context, model string, req predict.Request, partial bool) (*predict.Response, error)
}

// HTTPPredictor calls a running agent's batch-predict endpoint.
type HTTPPredictor struct {
	BaseURL string // e.g. http://127.0.0.1:8080
	Token   string
	Client  *http.Client
}

// Predict implements Predictor.
func (h HTTPPredictor) Predict(ctx context.Context, model string, req predict.Request, partial bool) (*predict.Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	u := strings.TrimRight(h.BaseURL, "/") + "/api/v1/models/" + model + "/batch-predict"
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", "application/json")
	if h.Token != "" {
		r.Header.Set("Authorization", "Bearer "+h.Token)
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(r)
	if err != nil {
		return nil, fmt.Errorf("batch-predict %s: %w", u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, fmt.Errorf("batch-predict %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb predict.ErrorBody
		if json.Unmarshal(raw, &eb) == nil && eb.Error != nil {
			return nil, &StatusError{Status: resp.StatusCode, Err: eb.Error}
		}
		return nil, fmt.Errorf("batch-predict %s: %s", u, resp.Status)
	}
	var out predict.Response
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("batch-predict %s: decode response: %w", u, err)
	}
	return &out, nil
}

// StatusError is a batch-predict request a running agent refused: the
// HTTP status and the API error.
type StatusError struct {
	Status int
	Err    *predict.Error
}

// Error implements error.
func (e *StatusError) Error() string { return e.Err.Error() }

// Unwrap returns the API error.
func (e *StatusError) Unwrap() error { return e.Err }

// requestError says whether a failed request stops the run (the agent is
// overloaded, lacks the model or failed: a refusal with status 429, 404 or
// 5xx, or any error other than a request error of the prediction service)
// or is the error of every record in it (a request the service refused
// for its input, returned as its error).
func requestError(err error) (*predict.Error, bool) {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Err, se.Status == http.StatusTooManyRequests || se.Status >= 500 || se.Status == http.StatusNotFound
	}
	var pe *predict.Error
	if errors.As(err, &pe) {
		return pe, false
	}
	return nil, true
}

// Spec describes one batch run.
type Spec struct {
	Model  string
	Input  string // a directory or an NDJSON file
	Output string // NDJSON results; Output+".checkpoint" holds the progress
	// Chunk is the number of records per request and checkpoint (default 32).
	Chunk int
	// Progress, if set, is called with records done and total.
	Progress func(done, total int)
}

// Line is one output line.
type Line struct {
	Index        int            `json:"index"`
	Input        string         `json:"input"`
	Prediction   any            `json:"prediction,omitempty"`
	TopK         any            `json:"top_k,omitempty"`
	ModelVersion string         `json:"model_version,omitempty"`
	Error        *predict.Error `json:"error,omitempty"`
}

// Checkpoint is the persisted progress of a run.
type Checkpoint struct {
	Model      string    `json:"model"`
	Input      string    `json:"input"`
	Total      int       `json:"total"`
	Done       int       `json:"done"`
	OutputSize int64     `json:"output_size"`
	Finished   bool      `json:"finished"`
	Started    time.Time `json:"started"`
}

// CheckpointPath returns the checkpoint file of an output.
func CheckpointPath(output string) string { return output + ".checkpoint" }

// ReadCheckpoint reads an output's checkpoint (os.ErrNotExist if none).
func ReadCheckpoint(output string) (Checkpoint, error) {
	var c Checkpoint
	raw, err := os.ReadFile(CheckpointPath(output))
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("checkpoint %s: %w", CheckpointPath(output), err)
	}
	return c, nil
}

func writeCheckpoint(output string, c Checkpoint) error {
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	p := CheckpointPath(output)
	tmp := p + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	_, err = f.Write(raw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// record is one input: its key and its JSON instance.
type record struct {
	key      string
	instance json.RawMessage
}

var imageExt = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".bmp": true}

// readInputs lists the run's records in a stable order: the lines of an
// NDJSON file, or the files of a directory sorted by name (.json: an
// instance; .jpg/.jpeg/.png/.bmp: an image; .bin: raw tensor bytes; other
// files are skipped).
func readInputs(path string) ([]record, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	if !st.IsDir() {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		defer f.Close()
		var out []record
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		n := 0
		for sc.Scan() {
			n++
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			out = append(out, record{key: fmt.Sprintf("%s:%d", filepath.Base(path), n), instance: append(json.RawMessage(nil), line...)})
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("input %s line %d: %w", path, n+1, err)
		}
		return out, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var out []record
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if ext != ".json" && ext != ".bin" && !imageExt[ext] {
			continue
		}
		out = append(out, record{key: e.Name()})
	}
	return out, nil
}

// load reads a directory record's instance lazily (images can be large).
func (r *record) load(dir string) error {
	if r.instance != nil {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, r.key))
	if err != nil {
		return err
	}
	switch ext := strings.ToLower(filepath.Ext(r.key)); {
	case ext == ".json":
		r.instance = data
	case ext == ".bin":
		r.instance, _ = json.Marshal(map[string]string{"b64": base64.StdEncoding.EncodeToString(data)})
	default:
		r.instance, _ = json.Marshal(map[string]string{"image_b64": base64.StdEncoding.EncodeToString(data)})
	}
	return nil
}

// Run runs (or resumes) a batch and returns the final checkpoint.
func Run(ctx context.Context, p Predictor, spec Spec) (Checkpoint, error) {
	if spec.Chunk <= 0 {
		spec.Chunk = 32
	}
	recs, err := readInputs(spec.Input)
	if err != nil {
		return Checkpoint{}, err
	}
	absIn, _ := filepath.Abs(spec.Input)
	cp, err := ReadCheckpoint(spec.Output)
	resume := err == nil && !cp.Finished && cp.Model == spec.Model && cp.Input == absIn && cp.Total == len(recs)
	if !resume {
		cp = Checkpoint{Model: spec.Model, Input: absIn, Total: len(recs), Started: time.Now().UTC()}
	}
	if err := os.MkdirAll(filepath.Dir(spec.Output), 0o755); err != nil {
		return cp, fmt.Errorf("output: %w", err)
	}
	out, err := os.OpenFile(spec.Output, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return cp, fmt.Errorf("output: %w", err)
	}
	defer out.Close()
	// Drop anything written after the last checkpoint (or everything, for
	// a new run).
	if err := out.Truncate(cp.OutputSize); err != nil {
		return cp, fmt.Errorf("output: %w", err)
	}
	if _, err := out.Seek(cp.OutputSize, io.SeekStart); err != nil {
		return cp, fmt.Errorf("output: %w", err)
	}
	if err := writeCheckpoint(spec.Output, cp); err != nil {
		return cp, err
	}
	if spec.Progress != nil {
		spec.Progress(cp.Done, cp.Total)
	}
	dir := spec.Input
	for cp.Done < len(recs) {
		if err := ctx.Err(); err != nil {
			return cp, err
		}
		end := min(len(recs), cp.Done+spec.Chunk)
		chunk := recs[cp.Done:end]
		req := predict.Request{}
		lines := make([]Line, len(chunk))
		var idx []int
		for i := range chunk {
			lines[i] = Line{Index: cp.Done + i, Input: chunk[i].key}
			if err := chunk[i].load(dir); err != nil {
				lines[i].Error = &predict.Error{Code: "bad_input_file", Message: err.Error()}
				continue
			}
			req.Instances = append(req.Instances, chunk[i].instance)
			idx = append(idx, i)
		}
		if len(req.Instances) > 0 {
			resp, err := p.Predict(ctx, spec.Model, req, true)
			if err != nil {
				ae, stop := requestError(err)
				if stop {
					return cp, fmt.Errorf("batch %s: records %d..%d: %w", spec.Model, cp.Done, end-1, err)
				}
				for _, i := range idx { // request-level input error: every record gets it
					lines[i].Error = ae
				}
			} else {
				for j, i := range idx {
					lines[i].Prediction = resp.Predictions[j]
					lines[i].ModelVersion = resp.ModelVersion
					if resp.TopK != nil && resp.TopK[j] != nil {
						lines[i].TopK = resp.TopK[j]
					}
					if resp.Errors != nil && resp.Errors[j] != nil {
						lines[i].Error = resp.Errors[j]
						lines[i].Prediction = nil
					}
				}
			}
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, l := range lines {
			if err := enc.Encode(l); err != nil {
				return cp, err
			}
		}
		if _, err := out.Write(buf.Bytes()); err != nil {
			return cp, fmt.Errorf("output: %w", err)
		}
		if err := out.Sync(); err != nil {
			return cp, fmt.Errorf("output: %w", err)
		}
		cp.Done = end
		cp.OutputSize += int64(buf.Len())
		if err := writeCheckpoint(spec.Output, cp); err != nil {
			return cp, err
		}
		if spec.Progress != nil {
			spec.Progress(cp.Done, cp.Total)
		}
	}
	cp.Finished = true
	return cp, writeCheckpoint(spec.Output, cp)
}
