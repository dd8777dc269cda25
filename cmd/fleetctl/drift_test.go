package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/ota/release"
)

// TestModelsPushReferenceStats: `models push --reference-stats` refuses an
// invalid file before releasing anything, and with a valid file the
// version's drift reference is the file (shown by `models drift`).
func TestModelsPushReferenceStats(t *testing.T) {
	dir := t.TempDir()
	srv, err := server.Start(context.Background(), server.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", EmbeddedAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, k := range []string{"FLEET_TOKEN", "EDGEFLEET_TOKEN", "FLEET_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("FLEET_CA_FILE", filepath.Join(dir, server.PKIDir, pki.CACertFile))
	keys, repo := filepath.Join(dir, "keys"), filepath.Join(dir, "repo")
	if err := release.NewRepo(keys, repo).Init(release.KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join("..", "..", "testdata", "models", "hello_world_int8.tflite")
	base := []string{"--server", srv.URL(), "--token-file", srv.AdminTokenFile()}
	push := func(ref string) (string, error) {
		return fleetctl(t, append(base, "models", "push", model, "--id", "hw", "--version", "1", "--keys-dir", keys, "--repo-dir", repo, "--reference-stats", ref)...)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"confidence":[1,2,3]}`), 0o644)
	if out, err := push(bad); err == nil || !strings.Contains(err.Error(), "want 20") {
		t.Fatalf("invalid reference stats: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(repo, "targets", "models", "hw")); err == nil {
		t.Fatal("the model was released although its reference stats are invalid")
	}
	good := filepath.Join(dir, "ref.json")
	os.WriteFile(good, []byte(`{"predictions":10,"classes":[{"class":0,"count":10}],"confidence":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,10]}`), 0o644)
	if out, err := push(good); err != nil || !strings.Contains(out, "reference stats from") {
		t.Fatalf("push with reference stats: %v\n%s", err, out)
	}
	out, err := fleetctl(t, append(base, "models", "drift", "hw", "1")...)
	if err != nil || !strings.Contains(out, "reference: reference_stats") || !strings.Contains(out, "not evaluated") {
		t.Fatalf("models drift: %v\n%s", err, out)
	}
}
