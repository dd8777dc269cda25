package postgres

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgefleet/edgefleet/fleet/store"
)

// A group-commit batch runs its calls' fns in order in one transaction,
// each seeing the earlier ones' writes. Read one key at a time, that is a
// round trip per Get, serial, while the batch holds the writer lock: at
// 10,000 devices through NATS a batch of telemetry ingests made two reads
// per call (a device's high-water mark, then its rollup cells).
//
// So the batch reads ahead: in each round the first fn not yet done runs
// as before (a Get the batch has not read goes to the database), and the
// fns after it run speculatively — a Get the batch has not read yet
// records the key and fails the run (errNeedRead; the run is thrown away
// even if the fn ignores the error), writes go to the run's own overlay.
// A speculative run that read only what the batch had already read, after
// runs that all completed, is what a sequential run would have done: it
// is kept (its writes join the batch's). Then every recorded key is read
// in one query and the next round starts at the first fn not kept.
// Telemetry ingests need three rounds: their marks, their cells, done.
// fns may run several times (as on a serialization failure); only the
// last run of each counts.

// errNeedRead fails a speculative run at a key the batch has not read.
var errNeedRead = errors.New("postgres store: key not read yet (speculative run)")

// cached is a row read by the batch's transaction (absent: no row).
type cached struct {
	value  []byte
	absent bool
}

// lookup finds bucket/key among the batch's buffered writes and the rows
// it has read.
func (t *pgTx) lookup(k bkey) (value []byte, found, known bool) {
	if op, ok := t.buf[k]; ok {
		return op.value, !op.del, true
	}
	if c, ok := t.cache[k]; ok {
		return c.value, !c.absent, true
	}
	return nil, false, false
}

// specTx is one speculative run of a batch's fn.
type specTx struct {
	t      *pgTx
	over   map[bkey]bufOp
	order  []bkey
	need   map[bkey]bool // keys to read for the next round (shared)
	missed bool          // the run met a key not read (or a List): thrown away
}

func (s *specTx) Get(bucket, key string) ([]byte, error) {
	k := bkey{bucket, key}
	if op, ok := s.over[k]; ok {
		if op.del {
			return nil, fmt.Errorf("%s/%s: %w", bucket, key, store.ErrNotFound)
		}
		return append([]byte{}, op.value...), nil
	}
	v, found, known := s.t.lookup(k)
	if !known {
		if bucket == TelemetryBucket {
			if _, err := keyTime(key); err != nil {
				return nil, err
			}
		}
		s.missed = true
		s.need[k] = true
		return nil, errNeedRead
	}
	if !found {
		return nil, fmt.Errorf("%s/%s: %w", bucket, key, store.ErrNotFound)
	}
	return append([]byte{}, v...), nil
}

func (s *specTx) write(bucket, key string, value []byte, del bool) error {
	if _, _, err := writeStatement(bucket, key, value, del); err != nil {
		return err
	}
	k := bkey{bucket, key}
	if _, ok := s.over[k]; !ok {
		s.order = append(s.order, k)
	}
	if !del {
		value = append([]byte{}, value...)
	}
	s.over[k] = bufOp{value: value, del: del}
	return nil
}

func (s *specTx) Put(bucket, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	return s.write(bucket, key, value, false)
}

func (s *specTx) Delete(bucket, key string) error { return s.write(bucket, key, nil, true) }

// List and ListFrom are not run speculatively: the fn runs first in the
// next round, against the database.
func (s *specTx) List(string, string, func(string, []byte) error) error {
	s.missed = true
	return errNeedRead
}

func (s *specTx) ListFrom(string, string, func(string, []byte) error) error {
	s.missed = true
	return errNeedRead
}

// runCalls runs the batch's fns in order (see above) in t. It returns the
// index of a fn that failed (-1 if none) and its error.
func (t *pgTx) runCalls(batch []*call) (int, error) {
	for done := 0; done < len(batch); {
		// The first fn not done runs against the database.
		if err := batch[done].fn(t); err != nil {
			return done, err
		}
		done++
		need := map[bkey]bool{}
		keep := true
		for i := done; i < len(batch); i++ {
			s := &specTx{t: t, over: map[bkey]bufOp{}, need: need}
			err := batch[i].fn(s)
			if s.missed || !keep {
				keep = false
				continue
			}
			if err != nil {
				return i, err
			}
			for _, k := range s.order {
				op := s.over[k]
				t.buffer(k.bucket, k.key, op.value, op.del)
			}
			done = i + 1
		}
		if done < len(batch) && len(need) > 0 {
			if err := t.readAhead(need); err != nil {
				return -1, err
			}
		}
	}
	return -1, nil
}

// readAhead reads the rows of keys into the batch's cache in one round
// trip (one query per table).
func (t *pgTx) readAhead(keys map[bkey]bool) error {
	var kvB, kvK, telK []string
	var telTS []time.Time
	for k := range keys {
		if _, _, known := t.lookup(k); known {
			continue
		}
		if k.bucket == TelemetryBucket {
			ts, err := keyTime(k.key)
			if err != nil {
				return err
			}
			telK, telTS = append(telK, k.key), append(telTS, ts)
			continue
		}
		kvB, kvK = append(kvB, k.bucket), append(kvK, k.key)
	}
	b := &pgx.Batch{}
	if len(kvK) > 0 {
		b.Queue(`SELECT e.bucket, e.key, e.value FROM unnest($1::text[], $2::text[]) AS k(b, k)
			JOIN edgefleet_kv e ON e.bucket = k.b COLLATE "C" AND e.key = k.k COLLATE "C"`, kvB, kvK)
	}
	if len(telK) > 0 {
		b.Queue(`SELECT $3::text, e.key, e.value FROM unnest($1::text[], $2::timestamptz[]) AS k(k, ts)
			JOIN `+telTable+` e ON e.key = k.k COLLATE "C" AND e.ts = k.ts`, telK, telTS, TelemetryBucket)
	}
	if b.Len() == 0 {
		return nil
	}
	for k := range keys {
		if _, _, known := t.lookup(k); !known {
			t.cache[k] = cached{absent: true} // unless the query returns it
		}
	}
	br := t.tx.SendBatch(t.ctx, b)
	for range b.Len() {
		rows, err := br.Query()
		if err != nil {
			br.Close()
			return fmt.Errorf("read %d keys: %w", len(keys), err)
		}
		for rows.Next() {
			var k bkey
			var v []byte
			if err := rows.Scan(&k.bucket, &k.key, &v); err != nil {
				rows.Close()
				br.Close()
				return fmt.Errorf("read %d keys: %w", len(keys), err)
			}
			t.cache[k] = cached{value: v}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			br.Close()
			return fmt.Errorf("read %d keys: %w", len(keys), err)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("read %d keys: %w", len(keys), err)
	}
	return nil
}

// flushStatements are the multi-row statements that write ops (one per
// table and kind, rows in key order so that concurrent writers lock rows
// in the same order).
func flushStatements(ops map[bkey]bufOp) (*pgx.Batch, error) {
	keys := make([]bkey, 0, len(ops))
	for k := range ops {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b bkey) int { return cmp.Or(cmp.Compare(a.bucket, b.bucket), cmp.Compare(a.key, b.key)) })
	var (
		putB, putK, delB, delK []string
		putV                   [][]byte
		telPutK, telDelK       []string
		telPutTS, telDelTS     []time.Time
		telPutV                [][]byte
	)
	for _, k := range keys {
		op := ops[k]
		if k.bucket == TelemetryBucket {
			ts, err := keyTime(k.key)
			if err != nil {
				return nil, err
			}
			if op.del {
				telDelK, telDelTS = append(telDelK, k.key), append(telDelTS, ts)
			} else {
				telPutK, telPutTS, telPutV = append(telPutK, k.key), append(telPutTS, ts), append(telPutV, op.value)
			}
			continue
		}
		if op.del {
			delB, delK = append(delB, k.bucket), append(delK, k.key)
		} else {
			putB, putK, putV = append(putB, k.bucket), append(putK, k.key), append(putV, op.value)
		}
	}
	b := &pgx.Batch{}
	if len(putK) > 0 {
		b.Queue(`INSERT INTO edgefleet_kv (bucket, key, value) SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])
			ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value`, putB, putK, putV)
	}
	if len(delK) > 0 {
		b.Queue(`DELETE FROM edgefleet_kv e USING unnest($1::text[], $2::text[]) AS k(b, k)
			WHERE e.bucket = k.b COLLATE "C" AND e.key = k.k COLLATE "C"`, delB, delK)
	}
	if len(telPutK) > 0 {
		b.Queue(`INSERT INTO `+telTable+` (ts, key, value) SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bytea[])
			ON CONFLICT (key, ts) DO UPDATE SET value = excluded.value`, telPutTS, telPutK, telPutV)
	}
	if len(telDelK) > 0 {
		b.Queue(`DELETE FROM `+telTable+` e USING unnest($1::text[], $2::timestamptz[]) AS k(k, ts)
			WHERE e.key = k.k COLLATE "C" AND e.ts = k.ts`, telDelK, telDelTS)
	}
	return b, nil
}
