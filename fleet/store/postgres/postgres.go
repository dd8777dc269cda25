// Package postgres is the PostgreSQL implementation of store.Store (pgx v5),
// for several fleet-server replicas sharing one database: one table of
// (bucket, key, value) with byte-order ("C" collation) keys, read-only
// REPEATABLE READ transactions for View and SERIALIZABLE transactions for
// Update, retried on serialization failures and deadlocks. It passes the
// same storetest conformance suite as the bbolt and in-memory stores.
//
// The telemetry records bucket (TelemetryBucket) lives in its own table,
// declaratively range-partitioned by day on the record time; partitions are
// created ahead (Maintain) and retention drops whole partitions
// (DropRecordsBefore) instead of deleting rows.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edgefleet/edgefleet/fleet/store"
)

// Store is a store.Store in a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	// Updates are group-committed: concurrent Update calls queue here and
	// one writer goroutine runs up to MaxBatch of them in one transaction.
	calls     chan *call
	closing   chan struct{}
	stopped   chan struct{} // closed when the writer has exited
	closeOnce sync.Once
	writerWG  sync.WaitGroup
	// batchTimeout bounds one group-commit transaction (BatchTimeoutParam).
	batchTimeout time.Duration
}

// DefaultBatchTimeout bounds one group-commit transaction of Updates (from
// taking a connection and the writer lock to the commit) unless the DSN
// sets BatchTimeoutParam. A database that stops answering (a hung server,
// a lock some other session holds) then fails the batch's Updates with
// ErrBatchTimeout instead of holding them — and every Update queued
// behind them — until the connection breaks. It is below the NATS
// consumer's ack wait (30 s), so a replica answers a device message
// (failure → redelivery) before JetStream gives it to another replica.
const DefaultBatchTimeout = 20 * time.Second

// BatchTimeoutParam is the DSN parameter that sets the batch timeout as a
// Go duration (postgres://…/db?batch_timeout=5s); it is not sent to the
// server.
const BatchTimeoutParam = "batch_timeout"

// ErrBatchTimeout is wrapped by the error of an Update whose transaction
// did not finish within the batch timeout. The statement the timeout
// interrupted is cancelled on the server and its connection closed (pgx),
// so a session waiting for a lock gives up the writer lock too.
var ErrBatchTimeout = errors.New("postgres store: update transaction timed out")

// MaxBatch bounds the Update calls group-committed in one transaction.
const MaxBatch = 256

// call is one queued Update.
type call struct {
	ctx  context.Context
	fn   func(store.Tx) error
	done chan error
}

// DefaultMaxConns is the connection pool size unless the DSN sets
// pool_max_conns.
const DefaultMaxConns = 32

// maxRetries bounds the retries of an Update that hit a serialization
// failure or a deadlock.
// Hot rows (an enrollment token every device uses, a telemetry rollup
// every batch updates) conflict under load: retries back off with jitter.
const maxRetries = 100

const schema = `CREATE TABLE IF NOT EXISTS edgefleet_kv (
	bucket text COLLATE "C" NOT NULL,
	key    text COLLATE "C" NOT NULL,
	value  bytea NOT NULL,
	PRIMARY KEY (bucket, key))`

// Open connects to the database at dsn (postgres://user:pass@host:port/db)
// and creates the table if needed.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return open(ctx, dsn, nil)
}

// open is Open with a hook that may change the pool's configuration
// (tests trace the statements).
func open(ctx context.Context, dsn string, tune func(*pgxpool.Config)) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres store: parse %q: %w", redact(dsn), err)
	}
	batchTimeout := DefaultBatchTimeout
	if v, ok := cfg.ConnConfig.RuntimeParams[BatchTimeoutParam]; ok {
		// pgx keeps parameters it does not know as server settings.
		delete(cfg.ConnConfig.RuntimeParams, BatchTimeoutParam)
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("postgres store: %s=%q: want a positive duration such as 20s", BatchTimeoutParam, v)
		}
		batchTimeout = d
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgxpool's default (4 on 2 cores) serialises a replica's ingest
		// workers behind a few connections.
		cfg.MaxConns = DefaultMaxConns
	}
	if tune != nil {
		tune(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: connect %s: %w", redact(dsn), err)
	}
	s := &Store{pool: pool, calls: make(chan *call, 4*MaxBatch), closing: make(chan struct{}),
		stopped: make(chan struct{}), batchTimeout: batchTimeout}
	if err := s.createSchema(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if _, err := s.Maintain(ctx, time.Now(), time.Time{}); err != nil {
		pool.Close()
		return nil, err
	}
	s.writerWG.Add(1)
	go s.writer()
	return s, nil
}

// createSchema creates the tables, serialised across processes by an
// advisory lock (concurrent CREATE TABLE IF NOT EXISTS of the same table
// fails in PostgreSQL when replicas start together).
func (s *Store) createSchema(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres store: create tables: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(maintenanceLockKey)); err != nil {
		return fmt.Errorf("postgres store: create tables: %w", err)
	}
	if _, err := tx.Exec(ctx, schema); err != nil {
		return fmt.Errorf("postgres store: create table: %w", err)
	}
	if _, err := tx.Exec(ctx, telSchema); err != nil {
		return fmt.Errorf("postgres store: create telemetry table: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres store: create tables: %w", err)
	}
	return nil
}

// redact hides a password in a DSN for error messages.
func redact(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			if c := strings.Index(dsn[i+3:at], ":"); c >= 0 {
				return dsn[:i+3+c+1] + "***" + dsn[at:]
			}
		}
	}
	return dsn
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// Update implements store.Store: fn runs in a SERIALIZABLE transaction,
// retried (fn runs again) on serialization failures and deadlocks.
//
// Updates are group-committed, like the bbolt store's: concurrent calls
// queue and one writer runs up to MaxBatch of them, in order, in one
// transaction (each sees the earlier ones' writes). Many small
// transactions on the same rows (a device's high-water mark, telemetry
// rollups, an enrollment token) made SERIALIZABLE abort most of them under
// load — at 5,000 devices through a NATS cluster PostgreSQL rolled back 3
// transactions for every 4 it committed, and telemetry acks fell behind.
// A call whose fn fails is taken out of the batch (the others run again
// without it) and runs alone, so its error is its own; a serialization
// failure retries the whole batch. A call whose ctx ended before its
// batch started is not run. A batch reads ahead by running fns
// speculatively (speculate.go), so fn may run several times even without
// conflicts: like a retried fn, it must compute its results afresh on
// every run (the last run is the one committed).
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &call{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.calls <- c:
	case <-s.closing:
		return errors.New("postgres store: closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-c.done:
		return err
	case <-s.stopped:
		select {
		case err := <-c.done: // answered before the writer exited
			return err
		default:
			return errors.New("postgres store: closed")
		}
	}
}

// writer runs the queued Update calls in batches until Close.
func (s *Store) writer() {
	defer s.writerWG.Done()
	defer close(s.stopped)
	for {
		var batch []*call
		select {
		case c := <-s.calls:
			batch = append(batch, c)
		case <-s.closing:
			s.failQueued()
			return
		}
	fill:
		for len(batch) < MaxBatch {
			select {
			case c := <-s.calls:
				batch = append(batch, c)
			default:
				break fill
			}
		}
		s.runBatch(batch)
	}
}

// failQueued answers the calls still queued at Close.
func (s *Store) failQueued() {
	for {
		select {
		case c := <-s.calls:
			c.done <- errors.New("postgres store: closed")
		default:
			return
		}
	}
}

// runBatch commits the calls' fns in one transaction (see Update).
func (s *Store) runBatch(batch []*call) {
	live := batch[:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.done <- err
			continue
		}
		live = append(live, c)
	}
	batch = live
	for attempt := 0; len(batch) > 0; {
		failed, err := s.updateBatch(batch)
		switch {
		case err == nil:
			for _, c := range batch {
				c.done <- nil
			}
			return
		case errors.Is(err, ErrBatchTimeout):
			// The database did not answer in time: running the calls
			// again (alone) would wait as long again for each.
			for _, c := range batch {
				c.done <- err
			}
			return
		case failed >= 0 && len(batch) == 1:
			batch[0].done <- err
			return
		case failed >= 0:
			// Rerun the others without it; it runs alone (its error may
			// depend on the batch's earlier writes).
			c := batch[failed]
			batch = append(batch[:failed:failed], batch[failed+1:]...)
			go func() { c.done <- s.updateAlone(c.ctx, c.fn) }()
		case retryable(err):
			attempt++
			if attempt >= maxRetries {
				for _, c := range batch {
					c.done <- fmt.Errorf("postgres store: update gave up after %d serialization failures: %w", maxRetries, err)
				}
				return
			}
			select {
			case <-time.After(backoff(attempt - 1)):
			case <-s.closing:
			}
		case len(batch) > 1:
			// A buffered write failed at the flush: no fn to blame, so
			// each runs alone and gets its own result.
			for _, c := range batch {
				c.done <- s.updateAlone(c.ctx, c.fn)
			}
			return
		default:
			batch[0].done <- err
			return
		}
	}
}

// writerLockKey is the session advisory lock a batch holds across
// replicas: one batch transaction at a time in the whole database.
const writerLockKey = 0x65646777726974

// updateBatch runs the fns in order in one SERIALIZABLE transaction. It
// returns the index of a fn that failed (-1 if none did) and the error
// that ended the transaction.
//
// The transaction runs under a session advisory lock taken before BEGIN
// (so its snapshot follows the previous holder's commit): without it two
// replicas' batches, each writing hundreds of rows in no particular order
// (telemetry rollup shards, high-water marks), blocked each other on row
// locks until PostgreSQL's deadlock detector aborted one, every second.
func (s *Store) updateBatch(batch []*call) (int, error) {
	// The batch's calls have their own contexts (checked before it
	// starts); the batch has its timeout.
	ctx, cancel := context.WithTimeout(context.Background(), s.batchTimeout)
	defer cancel()
	failed, err := s.runBatchTx(ctx, batch)
	if err != nil && ctx.Err() != nil {
		return -1, fmt.Errorf("%w: %d updates not committed within %s (database not answering, or a lock held elsewhere): %w",
			ErrBatchTimeout, len(batch), s.batchTimeout, err)
	}
	return failed, err
}

func (s *Store) runBatchTx(ctx context.Context, batch []*call) (int, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return -1, fmt.Errorf("postgres store: acquire: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(writerLockKey)); err != nil {
		conn.Conn().Close(ctx) // the lock state is unknown: do not reuse the session
		return -1, fmt.Errorf("postgres store: writer lock: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(writerLockKey)); err != nil {
			conn.Conn().Close(ctx) // closing the session releases the lock
		}
	}()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return -1, fmt.Errorf("postgres store: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	t := &pgTx{ctx: ctx, tx: tx, buf: map[bkey]bufOp{}, cache: map[bkey]cached{}}
	if i, err := t.runCalls(batch); err != nil { // speculate.go
		if i < 0 || retryable(err) || ctx.Err() != nil {
			return -1, err
		}
		return i, err
	}
	if err := t.flush(); err != nil {
		return -1, fmt.Errorf("postgres store: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return -1, fmt.Errorf("postgres store: commit: %w", err)
	}
	return -1, nil
}

// updateAlone runs one fn in its own transaction, retried on
// serialization failures and deadlocks.
func (s *Store) updateAlone(ctx context.Context, fn func(store.Tx) error) error {
	var err error
	for attempt := 0; attempt < maxRetries; attempt++ {
		err = s.update(ctx, fn)
		if !retryable(err) {
			return err
		}
		select {
		case <-time.After(backoff(attempt)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("postgres store: update gave up after %d serialization failures: %w", maxRetries, err)
}

// backoff is the pause before retry attempt+1: growing to 50 ms, with
// ±50 % jitter so that conflicting transactions do not retry in step.
func backoff(attempt int) time.Duration {
	d := time.Duration(min(attempt+1, 50)) * time.Millisecond
	return d/2 + rand.N(d)
}

func (s *Store) update(ctx context.Context, fn func(store.Tx) error) error {
	tctx, cancel := context.WithTimeout(ctx, s.batchTimeout)
	defer cancel()
	err := s.updateTx(tctx, fn)
	if err != nil && tctx.Err() != nil && ctx.Err() == nil { // the timeout, not the caller's end
		return fmt.Errorf("%w: update not committed within %s (database not answering, or a lock held elsewhere): %w",
			ErrBatchTimeout, s.batchTimeout, err)
	}
	return err
}

func (s *Store) updateTx(ctx context.Context, fn func(store.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return fmt.Errorf("postgres store: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(&pgTx{ctx: ctx, tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres store: commit: %w", err)
	}
	return nil
}

// Close implements store.Store: the batch being committed finishes,
// queued updates fail.
func (s *Store) Close() error {
	if s == nil || s.pool == nil {
		return nil
	}
	s.closeOnce.Do(func() {
		close(s.closing)
		s.writerWG.Wait()
		s.pool.Close()
	})
	return nil
}

// Pool exposes the connection pool (leader election, telemetry tables).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

type pgTx struct {
	ctx context.Context
	tx  querier // view.go
	// buf holds the writes of a batch transaction until the next List or
	// the commit, which send them in one round trip (pgx.Batch); Get sees
	// them. nil: writes go to the database at once.
	buf   map[bkey]bufOp
	order []bkey
	// cache holds the rows a batch transaction has read ahead
	// (speculate.go) or written; Get sees them.
	cache map[bkey]cached
}

type bkey struct{ bucket, key string }

type bufOp struct {
	value []byte
	del   bool
}

// buffer records a write for the next flush.
func (t *pgTx) buffer(bucket, key string, value []byte, del bool) {
	k := bkey{bucket, key}
	if _, ok := t.buf[k]; !ok {
		t.order = append(t.order, k)
	}
	t.buf[k] = bufOp{value: value, del: del}
}

// flush sends the buffered writes in one round trip: one multi-row
// statement per table and kind (a statement per row cost PostgreSQL
// more than the rows themselves).
func (t *pgTx) flush() error {
	if len(t.order) == 0 {
		return nil
	}
	b, err := flushStatements(t.buf)
	if err != nil {
		return err // keys are checked when buffered
	}
	n := len(t.order)
	if t.cache != nil {
		for k, op := range t.buf {
			t.cache[k] = cached{value: op.value, absent: op.del}
		}
	}
	clear(t.buf)
	t.order = t.order[:0]
	if err := t.tx.SendBatch(t.ctx, b).Close(); err != nil {
		return fmt.Errorf("write %d buffered rows: %w", n, err)
	}
	return nil
}

// writeStatement is the SQL that puts value at bucket/key (or deletes
// it): telemetry rows go to the time-partitioned table, keyed also by the
// time their key starts with (an error if it does not).
func writeStatement(bucket, key string, value []byte, del bool) (string, []any, error) {
	if bucket == TelemetryBucket {
		ts, err := keyTime(key)
		if err != nil {
			return "", nil, err
		}
		if del {
			return `DELETE FROM ` + telTable + ` WHERE key = $1 AND ts = $2`, []any{key, ts}, nil
		}
		return `INSERT INTO ` + telTable + ` (ts, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (key, ts) DO UPDATE SET value = excluded.value`, []any{ts, key, value}, nil
	}
	if del {
		return `DELETE FROM edgefleet_kv WHERE bucket = $1 AND key = $2`, []any{bucket, key}, nil
	}
	return `INSERT INTO edgefleet_kv (bucket, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value`, []any{bucket, key, value}, nil
}

// write puts (or deletes) bucket/key: buffered in a batch transaction,
// at once otherwise.
func (t *pgTx) write(bucket, key string, value []byte, del bool) error {
	q, args, err := writeStatement(bucket, key, value, del)
	if err != nil {
		return err
	}
	if t.buf != nil {
		if !del {
			value = append([]byte{}, value...)
		}
		t.buffer(bucket, key, value, del)
		return nil
	}
	if _, err := t.tx.Exec(t.ctx, q, args...); err != nil {
		op := "put"
		if del {
			op = "delete"
		}
		return fmt.Errorf("%s %s/%s: %w", op, bucket, key, err)
	}
	return nil
}

func (t *pgTx) Get(bucket, key string) ([]byte, error) {
	if v, found, known := t.lookup(bkey{bucket, key}); known {
		if !found {
			return nil, fmt.Errorf("%s/%s: %w", bucket, key, store.ErrNotFound)
		}
		return append([]byte{}, v...), nil
	}
	if bucket == TelemetryBucket {
		return t.telGet(key)
	}
	var v []byte
	err := t.tx.QueryRow(t.ctx, `SELECT value FROM edgefleet_kv WHERE bucket = $1 AND key = $2`, bucket, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s/%s: %w", bucket, key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	return v, nil
}

func (t *pgTx) Put(bucket, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	return t.write(bucket, key, value, false)
}

func (t *pgTx) Delete(bucket, key string) error {
	return t.write(bucket, key, nil, true)
}

// List reads the matching rows first and then calls fn, so fn may use the
// transaction (one connection runs one query at a time). The query is
// bounded above by the prefix's successor: a scan to the end of the bucket
// made every device's job list (sent at each jobs/get and final job
// update) read on average half of all the fleet's jobs — at 10,000
// devices through NATS the largest cost of PostgreSQL (2.9 million rows
// read for 7,147 lists).
func (t *pgTx) List(bucket, prefix string, fn func(string, []byte) error) error {
	q, args := `SELECT key, value FROM edgefleet_kv WHERE bucket = $1 AND key >= $2 ORDER BY key`, []any{bucket, prefix}
	end, bounded := prefixEnd(prefix)
	if bounded {
		q, args = `SELECT key, value FROM edgefleet_kv WHERE bucket = $1 AND key >= $2 AND key < $3 ORDER BY key`, []any{bucket, prefix, end}
	}
	if bucket == TelemetryBucket {
		q, args = telListQuery(prefix)
		if bounded {
			q = strings.Replace(q, " ORDER BY key", fmt.Sprintf(" AND key < $%d ORDER BY key", len(args)+1), 1)
			args = append(args, end)
		}
	}
	return t.list(bucket, prefix, q, args, func(k string) bool { return strings.HasPrefix(k, prefix) }, fn)
}

// ListFrom lists the keys ≥ from (in the telemetry table, a key starting
// with 20 time digits prunes the partitions before it).
func (t *pgTx) ListFrom(bucket, from string, fn func(string, []byte) error) error {
	q, args := `SELECT key, value FROM edgefleet_kv WHERE bucket = $1 AND key >= $2 ORDER BY key`, []any{bucket, from}
	if bucket == TelemetryBucket {
		q, args = telListQuery(from)
	}
	return t.list(bucket, from, q, args, func(string) bool { return true }, fn)
}

func (t *pgTx) list(bucket, prefix, q string, args []any, want func(string) bool, fn func(string, []byte) error) error {
	if err := t.flush(); err != nil {
		return err
	}
	rows, err := t.tx.Query(t.ctx, q, args...)
	if err != nil {
		return fmt.Errorf("list %s/%s: %w", bucket, prefix, err)
	}
	type kv struct {
		k string
		v []byte
	}
	var out []kv
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return fmt.Errorf("list %s/%s: %w", bucket, prefix, err)
		}
		if !want(k) {
			break
		}
		out = append(out, kv{k, v})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list %s/%s: %w", bucket, prefix, err)
	}
	for _, e := range out {
		if err := fn(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// prefixEnd is the least string above every string with the prefix (in
// byte order, the order of the "C" collation): the prefix with its last
// rune incremented (runes at the maximum dropped first), so it is valid
// UTF-8 like the keys. ok is false when there is none (an empty prefix,
// only maximum runes, invalid UTF-8): the scan is then unbounded.
func prefixEnd(prefix string) (end string, ok bool) {
	if !utf8.ValidString(prefix) {
		return "", false
	}
	for prefix != "" {
		r, n := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-n]
		switch {
		case r == utf8.MaxRune:
			continue // carry: drop it, increment the rune before
		case r == 0xD7FF:
			r = 0xE000 // surrogates are not valid in UTF-8
		default:
			r++
		}
		return prefix + string(r), true
	}
	return "", false
}
