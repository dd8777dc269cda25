package simulate

import (
	"context"
	"strings"
	"testing"
)

func TestSpawnRejectsBadEnv(t *testing.T) {
	for _, env := range []string{"GOMEMLIMIT", "=900MiB", ""} {
		_, err := Spawn(context.Background(), SpawnConfig{ServerBin: "fleet-server", ModelPath: "m.tflite", Dir: t.TempDir(), Env: []string{env}})
		if err == nil || !strings.Contains(err.Error(), "want KEY=VALUE") {
			t.Errorf("env %q: %v, want a KEY=VALUE error", env, err)
		}
	}
	// Control: a well-formed variable passes the check and fails later,
	// on the missing model.
	_, err := Spawn(context.Background(), SpawnConfig{ServerBin: "fleet-server", ModelPath: "missing.tflite", Dir: t.TempDir(), Env: []string{"GOMEMLIMIT=900MiB"}})
	if err == nil || strings.Contains(err.Error(), "KEY=VALUE") {
		t.Fatalf("well-formed env: %v", err)
	}
}

func TestCheckFileLimit(t *testing.T) {
	if err := checkFileLimit(1); err != nil {
		t.Fatalf("one device: %v", err)
	}
	err := checkFileLimit(1 << 30)
	if err == nil || !strings.Contains(err.Error(), "ulimit -n") {
		t.Fatalf("2^30 devices: %v, want advice to raise the limit", err)
	}
}

// TestSpawnClusterRejectsBadEnv: the replicas' and the node's environment
// are both checked before anything starts.
func TestSpawnClusterRejectsBadEnv(t *testing.T) {
	for _, cc := range []ClusterConfig{
		{SpawnConfig: SpawnConfig{Env: []string{"GOMEMLIMIT"}}},
		{NodeEnv: []string{"=1GiB"}},
	} {
		cc.ServerBin, cc.ModelPath, cc.Dir = "fleet-server", "m.tflite", t.TempDir()
		if _, err := SpawnCluster(context.Background(), cc); err == nil || !strings.Contains(err.Error(), "want KEY=VALUE") {
			t.Errorf("%v / %v: %v, want a KEY=VALUE error", cc.Env, cc.NodeEnv, err)
		}
	}
}
