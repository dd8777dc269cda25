package store

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Mem is an in-memory Store for tests; it passes the same storetest suite
// as Bolt.
type Mem struct {
	mu   sync.RWMutex
	data map[string]map[string][]byte
}

// NewMem returns an empty in-memory store.
func NewMem() *Mem { return &Mem{data: map[string]map[string][]byte{}} }

// View implements Store.
func (m *Mem) View(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return fn(&memTx{m: m, readOnly: true})
}

// Update implements Store. Writes go to an overlay applied only on success.
func (m *Mem) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	tx := &memTx{m: m, overlay: map[string]map[string][]byte{}}
	if err := fn(tx); err != nil {
		return err
	}
	for b, kv := range tx.overlay {
		if m.data[b] == nil {
			m.data[b] = map[string][]byte{}
		}
		for k, v := range kv {
			if v == nil {
				delete(m.data[b], k)
			} else {
				m.data[b][k] = v
			}
		}
	}
	return nil
}

// Close implements Store.
func (m *Mem) Close() error { return nil }

type memTx struct {
	m        *Mem
	readOnly bool
	overlay  map[string]map[string][]byte // nil value = deleted
}

func (t *memTx) lookup(bucket, key string) ([]byte, bool) {
	if kv, ok := t.overlay[bucket]; ok {
		if v, ok := kv[key]; ok {
			return v, v != nil
		}
	}
	v, ok := t.m.data[bucket][key]
	return v, ok
}

func (t *memTx) Get(bucket, key string) ([]byte, error) {
	v, ok := t.lookup(bucket, key)
	if !ok {
		return nil, fmt.Errorf("%s/%s: %w", bucket, key, ErrNotFound)
	}
	return bytes.Clone(v), nil
}

func (t *memTx) set(bucket, key string, v []byte) error {
	if t.readOnly {
		return fmt.Errorf("write %s/%s in a read-only transaction", bucket, key)
	}
	if t.overlay[bucket] == nil {
		t.overlay[bucket] = map[string][]byte{}
	}
	t.overlay[bucket][key] = v
	return nil
}

func (t *memTx) Put(bucket, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	return t.set(bucket, key, bytes.Clone(value))
}

func (t *memTx) Delete(bucket, key string) error { return t.set(bucket, key, nil) }

func (t *memTx) List(bucket, prefix string, fn func(string, []byte) error) error {
	return t.list(bucket, func(k string) bool { return strings.HasPrefix(k, prefix) }, fn)
}

func (t *memTx) ListFrom(bucket, from string, fn func(string, []byte) error) error {
	return t.list(bucket, func(k string) bool { return k >= from }, fn)
}

func (t *memTx) list(bucket string, want func(string) bool, fn func(string, []byte) error) error {
	keys := map[string]bool{}
	for k := range t.m.data[bucket] {
		keys[k] = true
	}
	for k := range t.overlay[bucket] {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		if want(k) {
			sorted = append(sorted, k)
		}
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if v, ok := t.lookup(bucket, k); ok {
			if err := fn(k, bytes.Clone(v)); err != nil {
				return err
			}
		}
	}
	return nil
}
