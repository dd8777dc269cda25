package fleetlink

import (
	"context"
	"testing"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestJobUpdateReportsServing: the final update of a job carries the
// device's own view of the job's model (from the status provider), so the
// fleet can check the version really served.
func TestJobUpdateReportsServing(t *testing.T) {
	active := "1"
	l := &Link{cfg: Config{Status: StatusFunc(func(context.Context) wire.Status {
		return wire.Status{Models: []wire.ModelStatus{{ID: "other", Active: "9"}, {ID: "m", Active: active, Previous: "0"}}}
	})}}
	s := l.serving(context.Background(), "m")
	if s == nil || s.ID != "m" || s.Active != "1" {
		t.Fatalf("serving = %+v, want m active 1", s)
	}
	active = "2"
	if s := l.serving(context.Background(), "m"); s == nil || s.Active != "2" {
		t.Fatalf("serving after activation = %+v, want active 2", s)
	}
	if s := l.serving(context.Background(), "unknown"); s != nil {
		t.Fatalf("serving of an unknown model = %+v, want nil", s)
	}
	if s := (&Link{}).serving(context.Background(), "m"); s != nil {
		t.Fatalf("serving without a status provider = %+v", s)
	}
}
