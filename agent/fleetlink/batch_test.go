package fleetlink

import (
	"math"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestEncodeBatchFitsPayload: a full batch of records with the largest
// monitoring the wire allows is split to fit wire.MaxPayload and still
// decodes; a small batch goes whole (control).
func TestEncodeBatchFitsPayload(t *testing.T) {
	big := &wire.Monitoring{Predictions: math.MaxUint64, ClassOther: math.MaxUint64, Confidence: make([]uint64, wire.ConfidenceBuckets)}
	for i := range big.Confidence {
		big.Confidence[i] = math.MaxUint64
	}
	for i := 0; i < wire.MaxClasses; i++ {
		big.Classes = append(big.Classes, wire.ClassCount{Class: wire.MaxIndex - wire.MaxClasses + i, Count: math.MaxUint64})
	}
	for i := 0; i < wire.MaxFeatures; i++ {
		s := wire.Sketch{Exp: 100, Signed: true, Counts: make([]uint64, wire.SketchBins)}
		for j := range s.Counts {
			s.Counts[j] = math.MaxUint64
		}
		big.Features = append(big.Features, wire.FeatureSummary{Index: i, Count: math.MaxUint64, Mean: -1.2345678901234567e-300,
			Std: 1.2345678901234567e300, Min: -1.2345678901234567e300, Max: 1.2345678901234567e300, Sketch: s})
	}
	var recs []wire.TelemetryRecord
	for i := 0; i < wire.MaxBatchRecords; i++ {
		recs = append(recs, wire.TelemetryRecord{Seq: uint64(i + 1), Time: time.Unix(1e9, 0), ModelID: "m", Version: "1", Monitoring: big})
	}
	b, sent, err := encodeBatch("dev", recs, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > wire.MaxPayload || len(sent) == 0 || len(sent) == len(recs) {
		t.Fatalf("%d bytes, %d of %d records", len(b), len(sent), len(recs))
	}
	if got, err := wire.DecodeTelemetryBatch(b); err != nil || len(got.Records) != len(sent) {
		t.Fatalf("split batch does not decode: %v", err)
	}
	small := recs[:3]
	if _, sent, err := encodeBatch("dev", small, 0); err != nil || len(sent) != 3 {
		t.Fatalf("small batch: %d records, %v", len(sent), err)
	}
}

// TestNextAckWait: the ack wait doubles after each timeout up to the cap.
func TestNextAckWait(t *testing.T) {
	for _, tc := range []struct{ wait, max, want time.Duration }{
		{10 * time.Second, 2 * time.Minute, 20 * time.Second},
		{40 * time.Second, 2 * time.Minute, 80 * time.Second},
		{80 * time.Second, 2 * time.Minute, 2 * time.Minute},
		{2 * time.Minute, 2 * time.Minute, 2 * time.Minute},
	} {
		if got := NextAckWait(tc.wait, tc.max); got != tc.want {
			t.Errorf("NextAckWait(%s, %s) = %s, want %s", tc.wait, tc.max, got, tc.want)
		}
	}
}
