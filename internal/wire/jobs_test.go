package wire

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"
)

// TestAgentJobFields: an agent job names neither a model nor a target; a
// model job needs both (rollback: no target).
func TestAgentJobFields(t *testing.T) {
	tgt := &Target{Name: "models/m/2/model.tflite", Length: 3}
	for _, c := range []struct {
		name string
		j    Job
		want string
	}{
		{"agent", Job{Kind: JobAgent, Version: "2"}, ""},
		{"agent with a model", Job{Kind: JobAgent, ModelID: "m", Version: "2"}, "names no model"},
		{"agent with a target", Job{Kind: JobAgent, Version: "2", Target: tgt}, "names no model and no target"},
		{"agent without a version", Job{Kind: JobAgent}, "version"},
		{"install", Job{Kind: JobInstall, ModelID: "m", Version: "2", Target: tgt}, ""},
		{"install without a model", Job{Kind: JobInstall, Version: "2", Target: tgt}, "model_id"},
		{"install without a target", Job{Kind: JobInstall, ModelID: "m", Version: "2"}, "needs a target"},
		{"rollback", Job{Kind: JobRollback, ModelID: "m", Version: "1"}, ""},
		{"unknown kind", Job{Kind: "firmware", Version: "1"}, "rollback or agent"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.j.JobID, c.j.State = "j1", JobQueued
			err := c.j.Validate()
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("Validate: %v, want %q", err, c.want)
			}
		})
	}
}

// TestAgentJobSigned: an agent job goes through the signed-command path
// like every other job, and a tampered one is refused.
func TestAgentJobSigned(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sc, err := SignCommand(key, CommandFor("d1", Job{JobID: "a1-0001", Kind: JobAgent, Version: "2"}, now, time.Hour, "n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := VerifyCommand(pub, sc, "d1", now)
	if err != nil || c.Kind != JobAgent || c.Version != "2" || c.ModelID != "" {
		t.Fatalf("control: %v %+v", err, c)
	}
	forged := *sc
	forged.Payload = []byte(strings.Replace(string(sc.Payload), `"version":"2"`, `"version":"6"`, 1))
	if _, err := VerifyCommand(pub, &forged, "d1", now); err == nil {
		t.Fatal("a forged agent version was accepted")
	}
}
