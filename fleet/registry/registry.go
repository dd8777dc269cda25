// Package registry is the fleet's record of enrollment tokens (Tokens),
// devices and their enrollment (Devices), device groups (Groups, label
// Selectors), model releases (Models) and device jobs (Jobs): one type per
// concern, all kept in one store.Store as JSON values. Broker
// authentication over the device records is fleet/brokerauth.
package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/edgefleet/edgefleet/fleet/store"
	"github.com/edgefleet/edgefleet/internal/clock"
)

// Buckets used in the store.
const (
	bucketDevices = "devices"
	bucketTokens  = "tokens"
	bucketGroups  = "groups"
	bucketModels  = "models"
	bucketJobs    = "jobs"
	bucketMeta    = "meta"
)

// ErrNotFound is wrapped when a device, token, group, model or job is missing.
var ErrNotFound = store.ErrNotFound

// ErrBadToken is returned by Enroll for an unknown, expired or used-up token.
var ErrBadToken = errors.New("enrollment token invalid, expired or used up")

// ErrDeviceExists is returned by Enroll when the device id is enrolled and
// the request does not carry the device's current certificate: taking over
// an enrolled id needs an operator's reset first.
var ErrDeviceExists = errors.New("device is already enrolled: re-enrollment needs the device's current certificate or an operator reset (fleetctl devices reset ID)")

// ErrBadCSR is wrapped when the certificate signing request is missing or invalid.
var ErrBadCSR = errors.New("bad certificate signing request")

// Registry is the fleet's records, one type per concern, all kept in one
// store.Store.
type Registry struct {
	Tokens  *Tokens
	Devices *Devices
	Groups  *Groups
	Models  *Models
	Jobs    *Jobs
}

// base is what every record type shares: the store and the clock.
type base struct {
	s   store.Store
	now func() time.Time
}

// New returns the registry over s; c supplies timestamps (the system clock
// if nil).
func New(s store.Store, c clock.Clock) *Registry {
	b := base{s: s, now: clock.Or(c).Now}
	return &Registry{Tokens: &Tokens{b}, Devices: &Devices{base: b}, Groups: &Groups{b}, Models: &Models{b}, Jobs: &Jobs{base: b}}
}

func getJSON(tx store.Tx, bucket, key string, v any) error {
	b, err := tx.Get(bucket, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return nil
}

func putJSON(tx store.Tx, bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	return tx.Put(bucket, key, b)
}

func listJSON[T any](tx store.Tx, bucket, prefix string) ([]T, error) {
	var out []T
	err := tx.List(bucket, prefix, func(k string, b []byte) error {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("decode %s/%s: %w", bucket, k, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}
