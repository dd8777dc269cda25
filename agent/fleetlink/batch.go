package fleetlink

import (
	"fmt"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// encodeBatch encodes a telemetry batch of recs that fits in
// wire.MaxPayload: records with monitoring distributions are a few KB
// each, so a full batch may not fit; it then halves the records until it
// does (the rest go in the next batch). It returns the records sent.
func encodeBatch(device string, recs []wire.TelemetryRecord, dropped uint64) ([]byte, []wire.TelemetryRecord, error) {
	for {
		b, err := wire.Encode(wire.TelemetryBatch{V: wire.Version, DeviceID: device, Records: recs, Dropped: dropped})
		if err != nil {
			return nil, nil, err
		}
		if len(b) <= wire.MaxPayload {
			return b, recs, nil
		}
		if len(recs) <= 1 {
			return nil, nil, fmt.Errorf("telemetry record %d alone is %d bytes, over the %d-byte payload limit", recs[0].Seq, len(b), wire.MaxPayload)
		}
		recs = recs[:len(recs)/2]
	}
}
