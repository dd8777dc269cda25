// Package jobs runs asynchronous prediction jobs: each job is persisted in
// bbolt when submitted, run by a worker, and its result stored; jobs that
// were queued or running when the agent stopped run again after a restart.
// A job may name a webhook that is POSTed the finished job, with retries
// (exponential backoff) that also survive a restart.
//
// Storage layout: job records (without their request payload) in one
// bucket, payloads in another, and one index bucket per state (queued,
// running), one of pending webhooks ordered by due time and one of
// finished jobs ordered by finish time. Claiming a job, finding due
// webhooks and purging expired jobs therefore touch only the keys they
// need, whatever the number of jobs. Finished jobs are purged after
// Options.Retention, continuously.
//
// Storage failures (a full disk) never make a worker spin: a failed claim
// backs the worker off, and a result that cannot be written is kept in
// memory (Get returns it) and written as soon as the disk allows.
package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/edgefleet/edgefleet/internal/clock"
	bolt "go.etcd.io/bbolt"
)

// DBFile is the jobs database inside the data directory.
const DBFile = "jobs.db"

// Job states.
const (
	Queued    = "queued"
	Running   = "running"
	Succeeded = "succeeded"
	Failed    = "failed"
)

// ErrNotFound is returned for an unknown job id.
var ErrNotFound = errors.New("job not found")

// ErrFull is returned by Submit when MaxPending jobs are already waiting.
var ErrFull = errors.New("job queue is full")

// Job is one asynchronous prediction.
type Job struct {
	ID       string          `json:"id"`
	Model    string          `json:"model"`
	Status   string          `json:"status"`
	Request  json.RawMessage `json:"request,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    *JobError       `json:"error,omitempty"`
	Webhook  string          `json:"webhook,omitempty"`
	Created  time.Time       `json:"created"`
	Started  time.Time       `json:"started,omitzero"`
	Finished time.Time       `json:"finished,omitzero"`
	// Attempts counts runs (a run interrupted by a restart counts).
	Attempts int `json:"attempts"`
	// WebhookState is "", "pending", "delivered" or "failed".
	WebhookState    string    `json:"webhook_state,omitempty"`
	WebhookAttempts int       `json:"webhook_attempts,omitempty"`
	WebhookNext     time.Time `json:"webhook_next,omitzero"`
	WebhookError    string    `json:"webhook_error,omitempty"`
}

// JobError is a failed job's error.
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// RunFunc runs a job's request and returns its result, or an error with a
// code (see Coder).
type RunFunc func(ctx context.Context, model string, request json.RawMessage) (json.RawMessage, error)

// Coder is implemented by errors that carry an API error code.
type Coder interface{ ErrorCode() string }

// Options configures a Queue.
type Options struct {
	Workers         int
	WebhookAttempts int           // default 8
	WebhookBackoff  time.Duration // first retry delay, doubled each time (default 1s)
	// WebhookTimeout bounds one delivery, connection to response (default 10s).
	WebhookTimeout time.Duration
	// WebhookConcurrency is how many deliveries run at once (default 8): a
	// receiver that hangs holds one slot, never the others.
	WebhookConcurrency int
	// WebhookAllowHosts, if set, is the only hosts webhooks may name (see
	// ValidateWebhook); a listed link-local or metadata address is allowed.
	WebhookAllowHosts []string
	Retention         time.Duration // finished jobs are deleted after it (default 24h)
	// PurgeInterval is how often expired jobs are deleted (default
	// Retention/4, at most 1 minute).
	PurgeInterval time.Duration
	// StorageBackoff is the first wait after a failed database write (a
	// full disk), doubled up to 32× (default 1s).
	StorageBackoff time.Duration
	MaxPending     int // queued or running jobs accepted at most (default 10000)
	// Client sends webhooks (default: a client that refuses link-local
	// and metadata addresses at connect time, after DNS resolution).
	Client *http.Client
	// Clock stamps jobs and drives retention (nil: the system clock).
	Clock clock.Clock
	Log   *slog.Logger
}

// Queue is the persistent job queue.
type Queue struct {
	db   *bolt.DB
	run  RunFunc
	opt  Options
	wake chan struct{}
	hook chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	pending int            // queued or running
	unsaved map[string]Job // finished jobs whose result write failed
}

// Buckets. Ids are time-ordered, so the queued index iterates FIFO.
var (
	bucketJobs     = []byte("jobs")     // id → Job JSON without Request
	bucketPayloads = []byte("payloads") // id → request bytes
	bucketQueued   = []byte("queued")   // id → nil
	bucketRunning  = []byte("running")  // id → nil
	bucketHooks    = []byte("hooks")    // due (8 bytes, unix ns, big endian) + id → nil
	bucketFinished = []byte("finished") // finished (8 bytes) + id → nil
	bucketMeta     = []byte("meta")     // "schema" → schemaVersion
	keySchema      = []byte("schema")
	schemaVersion  = []byte("2")
)

func timeKey(t time.Time, id string) []byte {
	k := make([]byte, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(max(t.UnixNano(), 0)))
	copy(k[8:], id)
	return k
}

func splitTimeKey(k []byte) (time.Time, string) {
	if len(k) < 8 {
		return time.Time{}, ""
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k))), string(k[8:])
}

// Open opens the jobs database in dataDir. Jobs left running by a previous
// process are queued again; a database of the previous layout is indexed
// once.
func Open(dataDir string, run RunFunc, opt Options) (*Queue, error) {
	if opt.Workers <= 0 {
		opt.Workers = 1
	}
	if opt.WebhookAttempts <= 0 {
		opt.WebhookAttempts = 8
	}
	if opt.WebhookBackoff <= 0 {
		opt.WebhookBackoff = time.Second
	}
	if opt.WebhookTimeout <= 0 {
		opt.WebhookTimeout = 10 * time.Second
	}
	if opt.WebhookConcurrency <= 0 {
		opt.WebhookConcurrency = 8
	}
	if opt.Retention <= 0 {
		opt.Retention = 24 * time.Hour
	}
	if opt.PurgeInterval <= 0 {
		opt.PurgeInterval = min(opt.Retention/4, time.Minute)
	}
	if opt.StorageBackoff <= 0 {
		opt.StorageBackoff = time.Second
	}
	if opt.MaxPending <= 0 {
		opt.MaxPending = 10000
	}
	if opt.Client == nil {
		opt.Client = webhookClient(opt.WebhookAllowHosts)
	}
	opt.Clock = clock.Or(opt.Clock)
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	for _, h := range opt.WebhookAllowHosts {
		if h == "" {
			return nil, fmt.Errorf("open jobs: webhook allow-list has an empty host")
		}
	}
	p := filepath.Join(dataDir, DBFile)
	db, err := bolt.Open(p, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open jobs %s: %w", p, err)
	}
	q := &Queue{db: db, run: run, opt: opt, wake: make(chan struct{}, 1), hook: make(chan struct{}, 1), unsaved: map[string]Job{}}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketJobs, bucketPayloads, bucketQueued, bucketRunning, bucketHooks, bucketFinished, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if !bytes.Equal(tx.Bucket(bucketMeta).Get(keySchema), schemaVersion) {
			if err := migrate(tx); err != nil {
				return fmt.Errorf("index jobs: %w", err)
			}
		}
		// Jobs left running are queued again.
		running := tx.Bucket(bucketRunning)
		var ids [][]byte
		_ = running.ForEach(func(k, _ []byte) error { ids = append(ids, append([]byte(nil), k...)); return nil })
		for _, k := range ids {
			j, err := loadTx(tx, string(k))
			if err != nil {
				return err
			}
			j.Status = Queued
			if err := errors.Join(storeTx(tx, j), running.Delete(k), tx.Bucket(bucketQueued).Put(k, nil)); err != nil {
				return err
			}
		}
		q.pending = tx.Bucket(bucketQueued).Stats().KeyN
		_, err := purgeTx(tx, opt.Clock.Now().Add(-opt.Retention))
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open jobs %s: %w", p, err)
	}
	return q, nil
}

// migrate indexes a database of the first layout (one bucket of full job
// records): payloads move to their bucket and every index is built.
func migrate(tx *bolt.Tx) error {
	b := tx.Bucket(bucketJobs)
	var all []Job
	err := b.ForEach(func(k, v []byte) error {
		var j Job
		if err := json.Unmarshal(v, &j); err != nil {
			return fmt.Errorf("job %q: %w", k, err)
		}
		all = append(all, j)
		return nil
	})
	if err != nil {
		return err
	}
	for _, j := range all {
		if len(j.Request) > 0 {
			if err := tx.Bucket(bucketPayloads).Put([]byte(j.ID), j.Request); err != nil {
				return err
			}
		}
		if err := storeTx(tx, j); err != nil {
			return err
		}
		if err := indexTx(tx, j); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(keySchema, schemaVersion)
}

// indexTx adds j to the indexes of its state.
func indexTx(tx *bolt.Tx, j Job) error {
	id := []byte(j.ID)
	switch j.Status {
	case Queued:
		return tx.Bucket(bucketQueued).Put(id, nil)
	case Running:
		return tx.Bucket(bucketRunning).Put(id, nil)
	}
	if err := tx.Bucket(bucketFinished).Put(timeKey(j.Finished, j.ID), nil); err != nil {
		return err
	}
	if j.WebhookState == "pending" {
		return tx.Bucket(bucketHooks).Put(timeKey(j.WebhookNext, j.ID), nil)
	}
	return nil
}

// storeTx writes j's record (without its request).
func storeTx(tx *bolt.Tx, j Job) error {
	j.Request = nil
	raw, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	return tx.Bucket(bucketJobs).Put([]byte(j.ID), raw)
}

// loadTx reads j's record (without its request).
func loadTx(tx *bolt.Tx, id string) (Job, error) {
	var j Job
	raw := tx.Bucket(bucketJobs).Get([]byte(id))
	if raw == nil {
		return j, ErrNotFound
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		return j, fmt.Errorf("decode job %s: %w", id, err)
	}
	return j, nil
}

// purgeTx deletes finished jobs older than cutoff whose webhook is not
// pending, in finish order, and returns how many it deleted.
func purgeTx(tx *bolt.Tx, cutoff time.Time) (int, error) {
	fin := tx.Bucket(bucketFinished)
	c := fin.Cursor()
	n := 0
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		t, id := splitTimeKey(k)
		if !t.Before(cutoff) {
			break
		}
		j, err := loadTx(tx, id)
		if err == nil && j.WebhookState == "pending" {
			continue // purged once delivered or given up
		}
		if err := errors.Join(c.Delete(), tx.Bucket(bucketJobs).Delete([]byte(id)), tx.Bucket(bucketPayloads).Delete([]byte(id))); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Purge deletes the finished jobs older than the retention now and
// returns how many; Start also runs it every PurgeInterval.
func (q *Queue) Purge() (int, error) {
	var n int
	err := q.db.Update(func(tx *bolt.Tx) error {
		var err error
		n, err = purgeTx(tx, q.opt.Clock.Now().Add(-q.opt.Retention))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge jobs: %w", err)
	}
	return n, nil
}

// Start runs the workers, the webhook sender and the purger until ctx
// ends.
func (q *Queue) Start(ctx context.Context) {
	for i := 0; i < q.opt.Workers; i++ {
		q.wg.Add(1)
		go q.worker(ctx)
	}
	q.wg.Add(2)
	go q.webhooks(ctx)
	go q.purger(ctx)
	q.signal(q.wake)
	q.signal(q.hook)
}

// Close waits for the workers (after the Start context ended), makes a
// last attempt to write results kept in memory, and closes the database.
func (q *Queue) Close() error {
	q.wg.Wait()
	err := q.flush()
	return errors.Join(err, q.db.Close())
}

func (q *Queue) signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// newID returns a time-ordered unique id.
func (q *Queue) newID() string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("%016x-%s", q.opt.Clock.Now().UnixNano(), hex.EncodeToString(b[:]))
}

// Submit persists a new queued job and returns it. A webhook must pass
// ValidateWebhook with the queue's allow-list (ErrBadWebhook).
func (q *Queue) Submit(model string, request json.RawMessage, webhook string) (Job, error) {
	if webhook != "" {
		if err := ValidateWebhook(webhook, q.opt.WebhookAllowHosts); err != nil {
			return Job{}, fmt.Errorf("submit job: %w", err)
		}
	}
	q.mu.Lock()
	if q.pending >= q.opt.MaxPending {
		q.mu.Unlock()
		return Job{}, fmt.Errorf("submit job: %w (%d pending)", ErrFull, q.opt.MaxPending)
	}
	q.pending++
	q.mu.Unlock()
	j := Job{ID: q.newID(), Model: model, Status: Queued, Request: request, Webhook: webhook, Created: q.opt.Clock.Now().UTC()}
	err := q.db.Update(func(tx *bolt.Tx) error {
		return errors.Join(storeTx(tx, j), tx.Bucket(bucketPayloads).Put([]byte(j.ID), request), indexTx(tx, j))
	})
	if err != nil {
		q.done()
		return Job{}, fmt.Errorf("submit job: %w", err)
	}
	q.signal(q.wake)
	return j, nil
}

func (q *Queue) done() {
	q.mu.Lock()
	q.pending--
	q.mu.Unlock()
}

// Get returns job id.
func (q *Queue) Get(id string) (Job, error) {
	q.mu.Lock()
	j, ok := q.unsaved[id]
	q.mu.Unlock()
	if ok {
		return j, nil
	}
	err := q.db.View(func(tx *bolt.Tx) error {
		var err error
		if j, err = loadTx(tx, id); err != nil {
			return err
		}
		if p := tx.Bucket(bucketPayloads).Get([]byte(id)); p != nil {
			j.Request = append(json.RawMessage(nil), p...)
		}
		return nil
	})
	if err != nil {
		return Job{}, fmt.Errorf("job %s: %w", id, err)
	}
	return j, nil
}

// claim atomically moves the oldest queued job to running. found is true
// only when that move was committed.
func (q *Queue) claim() (j Job, found bool, err error) {
	err = q.db.Update(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketQueued).Cursor().First()
		if k == nil {
			return nil
		}
		x, err := loadTx(tx, string(k))
		if err != nil {
			return err
		}
		x.Status = Running
		x.Started = q.opt.Clock.Now().UTC()
		x.Attempts++
		if err := errors.Join(storeTx(tx, x), tx.Bucket(bucketQueued).Delete(k), tx.Bucket(bucketRunning).Put(k, nil)); err != nil {
			return err
		}
		if p := tx.Bucket(bucketPayloads).Get(k); p != nil {
			x.Request = append(json.RawMessage(nil), p...)
		}
		j = x
		return nil
	})
	if err != nil {
		return Job{}, false, fmt.Errorf("claim job: %w", err)
	}
	return j, j.ID != "", nil
}

// finish writes a finished job: record, running → finished index and the
// webhook index.
func (q *Queue) finish(j Job) error {
	return q.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketJobs).Get([]byte(j.ID)) == nil {
			return nil // purged meanwhile (cannot happen while running); nothing to update
		}
		return errors.Join(storeTx(tx, j), tx.Bucket(bucketRunning).Delete([]byte(j.ID)), indexTx(tx, j))
	})
}

// flush writes the results kept in memory; it stops at the first failure.
func (q *Queue) flush() error {
	q.mu.Lock()
	js := make([]Job, 0, len(q.unsaved))
	for _, j := range q.unsaved {
		js = append(js, j)
	}
	q.mu.Unlock()
	for _, j := range js {
		if err := q.finish(j); err != nil {
			return fmt.Errorf("store result of job %s: %w", j.ID, err)
		}
		q.mu.Lock()
		delete(q.unsaved, j.ID)
		q.mu.Unlock()
		if j.Webhook != "" {
			q.signal(q.hook)
		}
	}
	return nil
}

// backoff waits d (or until ctx ends) and returns the next delay.
func (q *Queue) backoff(ctx context.Context, d time.Duration) (time.Duration, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return d, false
	case <-t.C:
	}
	return min(2*d, 32*q.opt.StorageBackoff), true
}

func (q *Queue) worker(ctx context.Context) {
	defer q.wg.Done()
	delay := q.opt.StorageBackoff
	for {
		// Results kept in memory go first; while they cannot be written no
		// new job starts (so memory stays bounded by the worker count).
		err := q.flush()
		var j Job
		var ok bool
		if err == nil {
			j, ok, err = q.claim()
		}
		if err != nil {
			q.opt.Log.Error("jobs: storage failed, backing off", "err", err, "retry_in", delay)
			var alive bool
			if delay, alive = q.backoff(ctx, delay); !alive {
				return
			}
			continue
		}
		delay = q.opt.StorageBackoff
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
				continue
			}
		}
		q.signal(q.wake) // let other workers look for more
		res, err := q.run(ctx, j.Model, j.Request)
		if ctx.Err() != nil {
			return // stays running; queued again at the next Open
		}
		j.Request = nil
		j.Finished = q.opt.Clock.Now().UTC()
		if err != nil {
			code := "internal"
			var c Coder
			if errors.As(err, &c) {
				code = c.ErrorCode()
			}
			j.Status, j.Error = Failed, &JobError{Code: code, Message: err.Error()}
		} else {
			j.Status, j.Result = Succeeded, res
		}
		if j.Webhook != "" {
			j.WebhookState, j.WebhookNext = "pending", j.Finished
		}
		if err := q.finish(j); err != nil {
			q.mu.Lock()
			q.unsaved[j.ID] = j
			q.mu.Unlock()
			q.opt.Log.Error("jobs: store result; kept in memory until the disk allows", "job", j.ID, "err", err)
		} else if j.Webhook != "" {
			q.signal(q.hook)
		}
		q.done()
	}
}

// purger deletes expired finished jobs every PurgeInterval.
func (q *Queue) purger(ctx context.Context) {
	defer q.wg.Done()
	t := time.NewTicker(q.opt.PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := q.Purge(); err != nil {
			q.opt.Log.Warn("jobs: purge", "err", err)
		} else if n > 0 {
			q.opt.Log.Debug("jobs: purged expired jobs", "count", n)
		}
	}
}

// hookDone is a finished delivery reported to the dispatcher.
type hookDone struct {
	id        string
	storeFail bool
}

// webhooks dispatches due webhooks, at most WebhookConcurrency at a time,
// each bounded by WebhookTimeout.
func (q *Queue) webhooks(ctx context.Context) {
	defer q.wg.Done()
	inflight := map[string]bool{}
	results := make(chan hookDone, q.opt.WebhookConcurrency)
	var deliveries sync.WaitGroup
	defer deliveries.Wait()
	delay := q.opt.StorageBackoff
	for {
		var next time.Time
		if free := q.opt.WebhookConcurrency - len(inflight); free > 0 {
			var due []dueHook
			due, next = q.dueHooks(inflight, free)
			for _, d := range due {
				inflight[d.id] = true
				deliveries.Add(1)
				go func() {
					defer deliveries.Done()
					results <- hookDone{id: d.id, storeFail: !q.deliver(ctx, d)}
				}()
			}
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(0, next.Sub(q.opt.Clock.Now()))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			for len(inflight) > 0 { // let deliveries end (their context is done)
				delete(inflight, (<-results).id)
			}
			return
		case <-q.hook:
		case r := <-results:
			delete(inflight, r.id)
			if r.storeFail { // a full disk: do not redeliver at once
				var alive bool
				if delay, alive = q.backoff(ctx, delay); !alive {
					t.Stop()
					for len(inflight) > 0 {
						delete(inflight, (<-results).id)
					}
					return
				}
			} else {
				delay = q.opt.StorageBackoff
			}
		case <-t.C:
		}
		t.Stop()
	}
}

// dueHook is a pending webhook's index key.
type dueHook struct {
	key []byte
	id  string
}

// dueHooks returns up to limit due webhooks not in flight and when the
// next one not returned is due (zero if none).
func (q *Queue) dueHooks(inflight map[string]bool, limit int) ([]dueHook, time.Time) {
	var due []dueHook
	var next time.Time
	now := q.opt.Clock.Now()
	q.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketHooks).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			t, id := splitTimeKey(k)
			if t.After(now) {
				next = t
				return nil
			}
			if inflight[id] {
				continue
			}
			if len(due) == limit {
				next = now
				return nil
			}
			due = append(due, dueHook{key: append([]byte(nil), k...), id: id})
		}
		return nil
	})
	return due, next
}

// deliver posts one webhook and records the outcome; it returns false if
// the outcome could not be stored.
func (q *Queue) deliver(ctx context.Context, d dueHook) bool {
	var j Job
	if err := q.db.View(func(tx *bolt.Tx) error {
		var err error
		j, err = loadTx(tx, d.id)
		return err
	}); err != nil {
		q.opt.Log.Error("jobs: load webhook job", "job", d.id, "err", err)
		q.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketHooks).Delete(d.key) })
		return true
	}
	dctx, cancel := context.WithTimeout(ctx, q.opt.WebhookTimeout)
	err := q.post(dctx, j)
	cancel()
	if ctx.Err() != nil {
		return true // shutting down: the webhook stays pending
	}
	j.WebhookAttempts++
	switch {
	case err == nil:
		j.WebhookState, j.WebhookError = "delivered", ""
	case j.WebhookAttempts >= q.opt.WebhookAttempts:
		j.WebhookState, j.WebhookError = "failed", err.Error()
	default:
		j.WebhookError = err.Error()
		j.WebhookNext = q.opt.Clock.Now().Add(q.opt.WebhookBackoff << (j.WebhookAttempts - 1))
	}
	err = q.db.Update(func(tx *bolt.Tx) error {
		if err := errors.Join(storeTx(tx, j), tx.Bucket(bucketHooks).Delete(d.key)); err != nil {
			return err
		}
		if j.WebhookState == "pending" {
			return tx.Bucket(bucketHooks).Put(timeKey(j.WebhookNext, j.ID), nil)
		}
		return nil
	})
	if err != nil {
		q.opt.Log.Error("jobs: store webhook state", "job", j.ID, "err", err)
		return false
	}
	return true
}

func (q *Queue) post(ctx context.Context, j Job) error {
	body := j
	body.Request = nil
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.Webhook, bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", j.Webhook, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Edge-Job-Id", j.ID)
	resp, err := q.opt.Client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", j.Webhook, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s: status %s", j.Webhook, resp.Status)
	}
	return nil
}
