package daemon

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/agent/batch"
	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/internal/wire"
	"github.com/edgefleet/edgefleet/ota"
)

// TestBatchWritesReferenceStats: `edge-agent batch --reference-stats`
// runs the real iris model over a validation set and writes its
// distributions in the format fleetctl models push --reference-stats
// accepts (wire.DecodeMonitoring); with --server it is refused.
func TestBatchWritesReferenceStats(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := modelstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Install(ctx, "iris", "1", filepath.Join("..", "..", "testdata", "models", "iris.tflite"), ota.ArtifactInfo{Source: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Activate(ctx, "iris", "1"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	in := filepath.Join(dir, "val.ndjson")
	var lines []string
	for i := 0; i < 30; i++ {
		lines = append(lines, []string{`[5.1,3.5,1.4,0.2]`, `[6.7,3.0,5.2,2.3]`, `[5.9,3.0,4.2,1.5]`}[i%3])
	}
	os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	ref := filepath.Join(dir, "ref.json")
	var out bytes.Buffer
	o := BatchOptions{Spec: batch.Spec{Model: "iris", Input: in, Output: filepath.Join(dir, "out.ndjson")}, DataDir: dir, Serving: Defaults().Serving, Out: &out, ReferenceStats: ref}
	if err := RunBatch(ctx, o); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.DecodeMonitoring(b)
	if err != nil {
		t.Fatalf("reference stats do not decode: %v\n%s", err, b)
	}
	if m.Predictions != 30 || len(m.Classes) == 0 || len(m.Confidence) != wire.ConfidenceBuckets || len(m.Features) != 4 || math.Abs(m.Features[0].Min-5.1) > 1e-6 || math.Abs(m.Features[0].Max-6.7) > 1e-6 || m.Resources != nil {
		t.Fatalf("reference stats %s", b)
	}
	if !strings.Contains(out.String(), "reference stats of 30 predictions") {
		t.Fatalf("output %q", out.String())
	}
	o.Server = "http://127.0.0.1:1"
	if err := RunBatch(ctx, o); err == nil || !strings.Contains(err.Error(), "in-process") {
		t.Fatalf("--server with --reference-stats: %v", err)
	}
}
