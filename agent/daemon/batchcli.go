package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/edgefleet/edgefleet/agent/api"
	"github.com/edgefleet/edgefleet/agent/batch"
	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/agent/serving"
	"github.com/edgefleet/edgefleet/agent/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// BatchOptions configures `edge-agent batch`.
type BatchOptions struct {
	Spec batch.Spec
	// Server, when set, sends the batch to a running agent at this URL;
	// otherwise the models are loaded in process from DataDir (the daemon
	// must be stopped).
	Server  string
	Token   string
	DataDir string
	Serving ServingConfig
	Out     io.Writer
	// ReferenceStats, when set (in-process mode only), is where the
	// distributions of this run's predictions are written: a wire
	// Monitoring object, the --reference-stats file of fleetctl models
	// push (docs/monitoring.md).
	ReferenceStats string
}

// RunBatch runs or resumes a batch and prints a summary.
func RunBatch(ctx context.Context, o BatchOptions) error {
	var p batch.Predictor
	var coll *telemetry.Collector
	if o.ReferenceStats != "" {
		if o.Server != "" {
			return fmt.Errorf("--reference-stats needs the in-process mode (without --server)")
		}
		coll = telemetry.NewCollector(nil)
	}
	if o.Server != "" {
		p = batch.HTTPPredictor{BaseURL: o.Server, Token: o.Token}
	} else {
		store, err := modelstore.Open(o.DataDir)
		if err != nil {
			return fmt.Errorf("%w (use --server URL to send the batch to the running agent)", err)
		}
		defer store.Close()
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		mgr := serving.NewManager(engine.Native{}, store, coll, serving.Config{Limits: serving.Limits{
			Threads: o.Serving.Threads, Pool: o.Serving.Pool, MaxBatch: o.Serving.MaxBatch, MaxDelay: o.Serving.MaxDelay, Queue: o.Serving.Queue}}, quiet)
		defer mgr.Close()
		p = api.New(api.Config{}, mgr, nil, nil, quiet)
	}
	cp, err := batch.Run(ctx, p, o.Spec)
	if err != nil {
		return fmt.Errorf("batch stopped after %d of %d records (run the same command again to resume): %w", cp.Done, cp.Total, err)
	}
	if o.Out != nil {
		fmt.Fprintf(o.Out, "%d records → %s\n", cp.Total, o.Spec.Output)
	}
	if coll != nil {
		return writeReferenceStats(o, coll)
	}
	return nil
}

// writeReferenceStats writes the distributions of the batch's model (its
// primary record of this run) to o.ReferenceStats.
func writeReferenceStats(o BatchOptions, coll *telemetry.Collector) error {
	id, version, _ := strings.Cut(o.Spec.Model, "@")
	var m *wire.Monitoring
	for _, r := range coll.Flush() {
		if r.ModelID == id && (version == "" || r.Version == version) && r.Role == wire.RolePrimary && r.Monitoring != nil {
			m = r.Monitoring
			break
		}
	}
	if m == nil || m.Predictions == 0 && len(m.Features) == 0 {
		return fmt.Errorf("--reference-stats: this run predicted nothing of %s to take distributions from (a resumed batch counts only the rest)", o.Spec.Model)
	}
	ref := *m
	ref.Resources = nil
	b, err := json.Marshal(&ref)
	if err != nil {
		return fmt.Errorf("encode reference stats: %w", err)
	}
	if err := os.WriteFile(o.ReferenceStats, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write reference stats: %w", err)
	}
	if o.Out != nil {
		fmt.Fprintf(o.Out, "reference stats of %d predictions → %s\n", ref.Predictions, o.ReferenceStats)
	}
	return nil
}
