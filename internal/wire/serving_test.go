package wire

import "testing"

// TestJobUpdateServing: a final job update carries what the device
// serves; a malformed serving part is refused like the rest.
func TestJobUpdateServing(t *testing.T) {
	u := JobUpdate{V: Version, DeviceID: "d1", JobID: "r1-0001", State: JobSucceeded,
		Serving: &ModelStatus{ID: "m", Active: "2", Previous: "1", Installed: []string{"1", "2"}}}
	b, err := Encode(u)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeJobUpdate(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Serving == nil || got.Serving.Active != "2" || got.Serving.ID != "m" {
		t.Fatalf("serving lost in the round trip: %+v", got.Serving)
	}
	for _, bad := range []*ModelStatus{{ID: ""}, {ID: "m", CandidatePercent: 101}, {ID: "m", Installed: make([]string, 65)}} {
		u.Serving = bad
		if err := u.Validate(); err == nil {
			t.Errorf("serving %+v accepted", bad)
		}
	}
}
