package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/agent/serving"
	"github.com/edgefleet/edgefleet/agent/serving/servingtest"
)

// runModels runs `edge-agent models ARGS...` in process.
func runModels(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newModelsCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestModelsAddProbeTimeout: --probe-timeout reaches the check invocation
// (a never-ending WHILE is refused after that long, naming the limit), a
// model that finishes is installed with the same limit, and the default is
// serving's 10 s.
func TestModelsAddProbeTimeout(t *testing.T) {
	write := func(stop int32) string {
		data, err := servingtest.WhileModel(stop)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "loop.tflite")
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	dir := t.TempDir()
	_, err := runModels(t, "add", write(-1), "--data-dir", dir, "--id", "loop", "--version", "1", "--probe-timeout", "300ms")
	if err == nil || !strings.Contains(err.Error(), "did not finish within 300ms") {
		t.Fatalf("never-ending model with --probe-timeout 300ms: %v", err)
	}
	out, err := runModels(t, "add", write(5), "--data-dir", dir, "--id", "loop", "--version", "2", "--probe-timeout", "300ms")
	if err != nil || !strings.Contains(out, "loop@2 installed and active") {
		t.Fatalf("control: finite loop: %v\n%s", err, out)
	}
	out, err = runModels(t, "list", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		rows = append(rows, strings.Fields(l))
	}
	if len(rows) != 1 || rows[0][0] != "loop" || rows[0][1] != "2" || rows[0][2] != "active" {
		t.Fatalf("list after add: only loop@2 should be installed, active:\n%s", out)
	}
	add, _, err := newModelsCmd().Find([]string{"add"})
	if err != nil {
		t.Fatal(err)
	}
	if f := add.Flags().Lookup("probe-timeout"); f == nil || f.DefValue != serving.DefaultProbeTimeout.String() || f.DefValue != "10s" {
		t.Fatalf("--probe-timeout default: %+v, want 10s", f)
	}
}
