// Package boltstore is the default fleet store: one bbolt file in the data
// dir, passing storetest.Run like every store.Store.
package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/edgefleet/edgefleet/fleet/store"
)

// Store is a store.Store in one bbolt file. Update transactions from concurrent
// callers are group-committed: bbolt's Batch runs many of them in one
// write transaction with one fsync (see Update).
type Store struct{ db *bolt.DB }

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("store file is locked by another process")

// Options tunes OpenWith.
type Options struct {
	// LockTimeout is how long to wait for another process's lock on the
	// file (default 5 s).
	LockTimeout time.Duration
	// MaxBatchSize and MaxBatchDelay bound a group commit (defaults 1000
	// updates, 5 ms).
	MaxBatchSize  int
	MaxBatchDelay time.Duration
}

// Open opens (creating if needed) the bbolt file at path.
func Open(path string) (*Store, error) { return OpenWith(path, Options{}) }

// OpenWith opens the bbolt file at path with options. A file held by
// another process (a second fleet-server on the same data dir) gives
// ErrLocked after LockTimeout.
func OpenWith(path string, o Options) (*Store, error) {
	if o.LockTimeout <= 0 {
		o.LockTimeout = 5 * time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w (is another fleet-server running on this data dir? "+
			"a bbolt store serves one process; run replicas on a shared PostgreSQL store)", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.MaxBatchSize = 1000
	if o.MaxBatchSize > 0 {
		db.MaxBatchSize = o.MaxBatchSize
	}
	db.MaxBatchDelay = 5 * time.Millisecond
	if o.MaxBatchDelay > 0 {
		db.MaxBatchDelay = o.MaxBatchDelay
	}
	return &Store{db: db}, nil
}

// View implements store.Store.
func (b *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

// Update implements store.Store. Concurrent updates are group-committed through
// bbolt's Batch: they share one write transaction and one fsync, each is
// still atomic (an fn that fails is rolled back and retried alone), and fn
// may run more than once, so it must only depend on what it reads in tx.
func (b *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.Batch(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

// Close implements store.Store; closing a nil or closed store is a no-op.
func (b *Store) Close() error {
	if b == nil || b.db == nil {
		return nil
	}
	return b.db.Close()
}

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) Get(bucket, key string) ([]byte, error) {
	bk := t.tx.Bucket([]byte(bucket))
	if bk == nil {
		return nil, fmt.Errorf("%s/%s: %w", bucket, key, store.ErrNotFound)
	}
	v := bk.Get([]byte(key))
	if v == nil {
		return nil, fmt.Errorf("%s/%s: %w", bucket, key, store.ErrNotFound)
	}
	return bytes.Clone(v), nil
}

func (t boltTx) Put(bucket, key string, value []byte) error {
	bk, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	if err := bk.Put([]byte(key), value); err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	return nil
}

func (t boltTx) Delete(bucket, key string) error {
	bk := t.tx.Bucket([]byte(bucket))
	if bk == nil {
		return nil
	}
	if err := bk.Delete([]byte(key)); err != nil {
		return fmt.Errorf("delete %s/%s: %w", bucket, key, err)
	}
	return nil
}

func (t boltTx) List(bucket, prefix string, fn func(string, []byte) error) error {
	bk := t.tx.Bucket([]byte(bucket))
	if bk == nil {
		return nil
	}
	c := bk.Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if err := fn(string(k), bytes.Clone(v)); err != nil {
			return err
		}
	}
	return nil
}

func (t boltTx) ListFrom(bucket, from string, fn func(string, []byte) error) error {
	bk := t.tx.Bucket([]byte(bucket))
	if bk == nil {
		return nil
	}
	c := bk.Cursor()
	for k, v := c.Seek([]byte(from)); k != nil; k, v = c.Next() {
		if err := fn(string(k), bytes.Clone(v)); err != nil {
			return err
		}
	}
	return nil
}
