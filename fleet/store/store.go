// Package store is the fleet server's persistence seam: a small transactional
// key-value interface with a bbolt implementation (fleet/store/boltstore, the
// default, one file in the data dir) and an in-memory one, both passing
// storetest.Run. This package links no database engine, so the packages
// whose types the API returns (registry, rollout, telemetry, auth) stay
// light for API clients. The PostgreSQL implementation for replicas is
// fleet/store/postgres; see docs/scale-out.md.
package store

import (
	"context"
	"errors"
)

// ErrNotFound is returned by Tx.Get for a missing key.
var ErrNotFound = errors.New("not found")

// Store runs transactions. Update transactions are serialized and atomic:
// if fn returns an error nothing it wrote is visible.
type Store interface {
	View(ctx context.Context, fn func(Tx) error) error
	Update(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// Tx reads and writes keys grouped in buckets. Values returned by Get and
// List are copies the caller may keep.
type Tx interface {
	Get(bucket, key string) ([]byte, error)
	Put(bucket, key string, value []byte) error
	Delete(bucket, key string) error
	// List calls fn for every key with the prefix, in byte order.
	List(bucket, prefix string, fn func(key string, value []byte) error) error
	// ListFrom calls fn for every key ≥ from, in byte order, to the end
	// of the bucket (in a time-keyed bucket: everything since a time).
	ListFrom(bucket, from string, fn func(key string, value []byte) error) error
}
