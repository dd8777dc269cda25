package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/edgefleet/edgefleet/fleet/store"
)

// A rollout is stored as one header row (bucketRollouts, key = rollout id:
// everything but Devices) and one row per device (bucketRolloutDevices,
// key = rollout id + "/" + device id), so a tick that changes a few
// devices writes those rows only, not the whole 10,000-device rollout.
// Rollout ids never contain "/" (wire.ValidateID).
const bucketRolloutDevices = "rollout-devices"

func deviceRowKey(rolloutID, deviceID string) string { return rolloutID + "/" + deviceID }

// The rollouts' version (bucketRolloutMeta, key versionKey, a decimal
// counter) goes up in every transaction that writes rollout rows, so a
// replica sharing the store reads one row per tick to learn whether any
// other replica changed a rollout, instead of decoding every rollout and
// device row (10,000 rows at 10,000 devices) each tick.
const (
	bucketRolloutMeta = "rollout-meta"
	versionKey        = "version"
)

// readVersionTx returns the stored rollouts' version (0 before the first write).
func readVersionTx(tx store.Tx) (uint64, error) {
	b, err := tx.Get(bucketRolloutMeta, versionKey)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read rollouts version: %w", err)
	}
	v, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read rollouts version: stored value %q is not a decimal counter: %w", b, err)
	}
	return v, nil
}

// bumpVersionTx adds one to the stored version and returns the version
// before and after.
func bumpVersionTx(tx store.Tx) (before, after uint64, err error) {
	before, err = readVersionTx(tx)
	if err != nil {
		return 0, 0, err
	}
	after = before + 1
	if err := tx.Put(bucketRolloutMeta, versionKey, []byte(strconv.FormatUint(after, 10))); err != nil {
		return 0, 0, fmt.Errorf("write rollouts version: %w", err)
	}
	return before, after, nil
}

// encodeHeader encodes r without its devices.
func encodeHeader(r *Rollout) ([]byte, error) {
	h := *r
	h.Devices = nil
	b, err := json.Marshal(&h)
	if err != nil {
		return nil, fmt.Errorf("encode rollout %s: %w", r.Spec.ID, err)
	}
	return b, nil
}

// copyRollout is a deep copy of r (the controller decides on a private
// copy; readers keep the old one). Cheaper than a JSON round trip: device
// states are plain values.
func copyRollout(r *Rollout) *Rollout {
	c := *r
	c.Spec.Stages = slices.Clone(r.Spec.Stages)
	c.Gates = slices.Clone(r.Gates)
	c.Events = slices.Clone(r.Events)
	c.Devices = make(map[string]*DeviceState, len(r.Devices))
	for id, d := range r.Devices {
		dc := *d
		c.Devices[id] = &dc
	}
	return &c
}

// writeStats counts what one persist wrote (tests bound it per tick).
type writeStats struct{ Rows, Bytes int }

// persistTx writes the difference between old (the stored state; nil for
// a rollout not stored yet) and cur: the header row if it changed, the
// device rows that changed or appeared, deletions of devices that went.
func persistTx(tx store.Tx, old, cur *Rollout) (writeStats, error) {
	var st writeStats
	id := cur.Spec.ID
	h, err := encodeHeader(cur)
	if err != nil {
		return st, err
	}
	var oldH []byte
	if old != nil {
		if oldH, err = encodeHeader(old); err != nil {
			return st, err
		}
	}
	if old == nil || !bytes.Equal(h, oldH) {
		if err := tx.Put(bucketRollouts, id, h); err != nil {
			return st, fmt.Errorf("save rollout %s: %w", id, err)
		}
		st.Rows++
		st.Bytes += len(h)
	}
	for dev, d := range cur.Devices {
		if old != nil {
			if od, ok := old.Devices[dev]; ok && *od == *d {
				continue
			}
		}
		b, err := json.Marshal(d)
		if err != nil {
			return st, fmt.Errorf("encode rollout %s device %s: %w", id, dev, err)
		}
		if err := tx.Put(bucketRolloutDevices, deviceRowKey(id, dev), b); err != nil {
			return st, fmt.Errorf("save rollout %s device %s: %w", id, dev, err)
		}
		st.Rows++
		st.Bytes += len(b)
	}
	if old != nil {
		for dev := range old.Devices {
			if _, ok := cur.Devices[dev]; !ok {
				if err := tx.Delete(bucketRolloutDevices, deviceRowKey(id, dev)); err != nil {
					return st, fmt.Errorf("save rollout %s: drop device %s: %w", id, dev, err)
				}
				st.Rows++
			}
		}
	}
	return st, nil
}

// rowCache keeps the device rows a load decoded, with their bytes, so
// the next load (a replica reloading after another one wrote) decodes only
// the rows that changed: during a 10,000-device rollout the leader
// reloaded every row whenever the other replica wrote one. A row is
// reused only when its bytes are identical, so a load returns what
// decoding every row would.
type rowCache struct {
	rows    map[string]cachedDeviceRow
	decoded int64 // rows decoded so far (tests)
}

type cachedDeviceRow struct {
	raw []byte
	d   DeviceState
}

// get returns the cached row of key k (none on a nil cache).
func (c *rowCache) get(k string) (cachedDeviceRow, bool) {
	if c == nil {
		return cachedDeviceRow{}, false
	}
	row, ok := c.rows[k]
	return row, ok
}

// loadRolloutsTx reads every rollout, decoding through c (nil: every
// row) only the device rows that changed since the previous load. A
// header that still holds its devices (the format before per-device rows)
// is returned in legacy, to be rewritten as rows.
func loadRolloutsTx(tx store.Tx, c *rowCache) (out map[string]*Rollout, legacy []string, err error) {
	out = map[string]*Rollout{}
	err = tx.List(bucketRollouts, "", func(k string, v []byte) error {
		var r Rollout
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode rollout %s: %w", k, err)
		}
		if r.Devices != nil {
			legacy = append(legacy, k)
		} else {
			r.Devices = map[string]*DeviceState{}
		}
		out[k] = &r
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	var fresh map[string]cachedDeviceRow
	if c != nil {
		fresh = make(map[string]cachedDeviceRow, len(c.rows))
	}
	err = tx.List(bucketRolloutDevices, "", func(k string, v []byte) error {
		rid, dev, ok := strings.Cut(k, "/")
		r := out[rid]
		if !ok || r == nil {
			return nil // a row whose header is gone: ignored
		}
		var d DeviceState
		if row, hit := c.get(k); hit && bytes.Equal(row.raw, v) {
			d = row.d
		} else {
			if c != nil {
				c.decoded++
			}
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode rollout %s device %s: %w", rid, dev, err)
			}
		}
		if fresh != nil {
			fresh[k] = cachedDeviceRow{raw: v, d: d} // v is ours (store.Tx)
		}
		if _, had := r.Devices[dev]; !had || !slices.Contains(legacy, rid) {
			r.Devices[dev] = &d
		}
		return nil
	})
	if err != nil {
		if c != nil {
			c.rows = nil // start over next time
		}
		return nil, nil, err
	}
	if c != nil {
		c.rows = fresh
	}
	return out, legacy, nil
}
