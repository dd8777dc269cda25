package telemetry

import (
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/internal/wire"
)

func rec(model string) Record {
	return Record{TelemetryRecord: wire.TelemetryRecord{Time: time.Unix(0, 0).UTC(), ModelID: model, Version: "1", Requests: 3}}
}

func TestRingAppendReadAck(t *testing.T) {
	dir := t.TempDir()
	r, err := OpenRing(dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	wake := r.Notify()
	for i := 0; i < 3; i++ {
		seq, err := r.Append(rec("m"))
		if err != nil || seq != uint64(i+1) {
			t.Fatalf("Append #%d = %d, %v", i, seq, err)
		}
	}
	select {
	case <-wake:
	default:
		t.Fatal("Notify channel not closed by Append")
	}
	got, err := r.Read(0, 10)
	if err != nil || len(got) != 3 || got[0].Seq != 1 || got[2].Seq != 3 || got[1].ModelID != "m" {
		t.Fatalf("Read(0) = %+v, %v", got, err)
	}
	if got, _ := r.Read(1, 1); len(got) != 1 || got[0].Seq != 2 {
		t.Fatalf("Read(1,1) = %+v", got)
	}
	if err := r.Ack(2); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Read(0, 10); len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("after Ack(2): %+v", got)
	}
	// Sequence numbers survive a reopen and stay increasing.
	r.Close()
	r, err = OpenRing(dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if seq, _ := r.Append(rec("m")); seq != 4 {
		t.Fatalf("seq after reopen = %d, want 4", seq)
	}
	st, _ := r.Stats()
	if st.Pending != 2 || st.FirstSeq != 3 || st.LastSeq != 4 || st.Acked != 2 || st.Dropped != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if err := r.Ack(1); err != nil { // stale ack: no-op
		t.Fatal(err)
	}
	if st2, _ := r.Stats(); st2.Pending != 2 {
		t.Fatalf("stale ack changed the ring: %+v", st2)
	}
}

func TestRingBoundDropsOldestAndCounts(t *testing.T) {
	r, err := OpenRing(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; i < 7; i++ {
		if _, err := r.Append(rec("m")); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := r.Read(0, 100)
	if len(got) != 3 || got[0].Seq != 5 || got[2].Seq != 7 {
		t.Fatalf("records = %+v, want seq 5..7", got)
	}
	st, _ := r.Stats()
	if st.Dropped != 4 || st.Pending != 3 {
		t.Fatalf("stats = %+v, want 4 dropped, 3 pending", st)
	}
	if _, err := OpenRing(t.TempDir(), 0); err == nil {
		t.Fatal("bound 0 accepted")
	}
}
