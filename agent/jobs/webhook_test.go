package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/internal/clock"
	bolt "go.etcd.io/bbolt"
)

func TestValidateWebhook(t *testing.T) {
	for _, c := range []struct {
		url   string
		allow []string
		ok    bool
	}{
		{"http://127.0.0.1:8080/hook", nil, true},
		{"https://hooks.example.com/x?y=1", nil, true},
		{"http://192.168.1.10/hook", nil, true},
		{"file:///etc/passwd", nil, false},
		{"gopher://example.com/", nil, false},
		{"ftp://example.com/x", nil, false},
		{"/relative/path", nil, false},
		{"http:///nohost", nil, false},
		{"http://user:pw@example.com/", nil, false},
		{"http://169.254.169.254/latest/meta-data/", nil, false},
		{"http://[fe80::1%25eth0]/", nil, false},
		{"http://[::ffff:169.254.169.254]/", nil, false},
		{"http://metadata.google.internal/computeMetadata/v1/", nil, false},
		{"http://METADATA.google.internal./", nil, false},
		{"http://100.100.100.200/", nil, false},
		{"http://0.0.0.0:80/", nil, false},
		{"http://224.0.0.1/", nil, false},
		// allow-list: only listed hosts, and a listed metadata host is allowed
		{"https://hooks.example.com/x", []string{"hooks.example.com"}, true},
		{"https://a.hooks.example.com/x", []string{"*.hooks.example.com"}, true},
		{"https://evil.com/x", []string{"*.hooks.example.com"}, false},
		{"http://127.0.0.1/", []string{"hooks.example.com"}, false},
		{"http://169.254.169.254/", []string{"169.254.169.254"}, true},
		{"file:///x", []string{"x"}, false},
	} {
		err := ValidateWebhook(c.url, c.allow)
		if (err == nil) != c.ok {
			t.Errorf("ValidateWebhook(%q, %v) = %v, want ok=%v", c.url, c.allow, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrBadWebhook) {
			t.Errorf("ValidateWebhook(%q): %v does not wrap ErrBadWebhook", c.url, err)
		}
	}
}

func FuzzValidateWebhook(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1/", "file:///etc/passwd", "http://[fe80::1%25eth0]/", "http://169.254.169.254/", "https://a.b/c?d#e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := ValidateWebhook(s, []string{"*.example.com"}); err != nil && !errors.Is(err, ErrBadWebhook) {
			t.Fatalf("%q: %v", s, err)
		}
		ValidateWebhook(s, nil)
	})
}

// TestSubmitRefusesBadWebhook: the job is refused before anything is stored.
func TestSubmitRefusesBadWebhook(t *testing.T) {
	q, err := Open(t.TempDir(), nil, Options{MaxPending: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, u := range []string{"file:///etc/passwd", "http://169.254.169.254/latest/meta-data/iam"} {
		if _, err := q.Submit("m", json.RawMessage(`1`), u); !errors.Is(err, ErrBadWebhook) {
			t.Fatalf("submit with webhook %s: %v, want ErrBadWebhook", u, err)
		}
	}
	// control: a valid webhook is accepted (and the refusals took no slot)
	if _, err := q.Submit("m", json.RawMessage(`1`), "http://127.0.0.1:9/hook"); err != nil {
		t.Fatal(err)
	}
}

// TestWebhookClientRefusesMetadataAtDial: the default client checks the
// address it connects to, so a redirect (or a DNS name) leading to the
// metadata service is refused; a plain loopback receiver is the control.
func TestWebhookClientRefusesMetadataAtDial(t *testing.T) {
	c := webhookClient(nil)
	var hits atomic.Int32
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer ok.Close()
	redir := httptest.NewServer(http.RedirectHandler("http://169.254.169.254/latest/meta-data/", http.StatusFound))
	defer redir.Close()
	if resp, err := c.Post(ok.URL, "application/json", nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("control receiver: %v", err)
	} else {
		resp.Body.Close()
	}
	if _, err := c.Post(redir.URL, "application/json", nil); !errors.Is(err, ErrBadWebhook) {
		t.Fatalf("redirect to metadata: %v, want ErrBadWebhook", err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://169.254.169.254/", nil)
	if _, err := c.Do(req); !errors.Is(err, ErrBadWebhook) {
		t.Fatalf("direct metadata address: %v, want ErrBadWebhook", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("control receiver hit %d times, want 1", hits.Load())
	}
}

// TestDeadReceiverDoesNotDelayOthers: a receiver that never answers holds
// one delivery slot; a good receiver's webhook, submitted after it, is
// delivered while the dead one is still hanging.
func TestDeadReceiverDoesNotDelayOthers(t *testing.T) {
	release := make(chan struct{})
	var hanging atomic.Int32
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hanging.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer dead.Close()
	defer close(release)
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer good.Close()
	q, err := Open(t.TempDir(), func(ctx context.Context, model string, req json.RawMessage) (json.RawMessage, error) {
		return req, nil
	}, Options{WebhookTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); q.Close() }()
	q.Start(ctx)
	jd, _ := q.Submit("m", json.RawMessage(`1`), dead.URL)
	waitFor(t, q, jd.ID, func(j Job) bool { return j.Status == Succeeded })
	deadline := time.Now().Add(time.Minute)
	for hanging.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	jg, _ := q.Submit("m", json.RawMessage(`2`), good.URL)
	waitFor(t, q, jg.ID, func(j Job) bool { return j.WebhookState == "delivered" })
	if j, _ := q.Get(jd.ID); j.WebhookAttempts != 0 || j.WebhookState != "pending" {
		t.Fatalf("dead receiver's webhook finished before the good one was delivered: %+v", j)
	}
}

// TestWebhookTimeout: a delivery to a receiver that never answers fails
// after WebhookTimeout and is retried later.
func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer dead.Close()
	defer close(release)
	q, err := Open(t.TempDir(), func(ctx context.Context, model string, req json.RawMessage) (json.RawMessage, error) {
		return req, nil
	}, Options{WebhookTimeout: 50 * time.Millisecond, WebhookAttempts: 2, WebhookBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); q.Close() }()
	q.Start(ctx)
	j, _ := q.Submit("m", json.RawMessage(`1`), dead.URL)
	final := waitFor(t, q, j.ID, func(j Job) bool { return j.WebhookState == "failed" })
	if final.WebhookAttempts != 2 || final.WebhookError == "" {
		t.Fatalf("final = %+v", final)
	}
}

// TestPurgeContinuous: finished jobs past the retention are deleted while
// the queue runs (not only at the next start); a job whose webhook is
// still pending is kept until it is delivered or given up.
func TestPurgeContinuous(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clk := clock.Func(func() time.Time { return time.Unix(0, now.Load()) })
	q, err := Open(t.TempDir(), func(ctx context.Context, model string, req json.RawMessage) (json.RawMessage, error) {
		return req, nil
	}, Options{Clock: clk, Retention: time.Hour, PurgeInterval: time.Millisecond, WebhookBackoff: 24 * time.Hour, WebhookAttempts: 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); q.Close() }()
	q.Start(ctx)
	a, _ := q.Submit("m", json.RawMessage(`1`), "")
	// a webhook that fails and is retried a day later: pending long after the retention
	b, _ := q.Submit("m", json.RawMessage(`2`), "http://127.0.0.1:1/unreachable")
	waitFor(t, q, a.ID, func(j Job) bool { return j.Status == Succeeded })
	waitFor(t, q, b.ID, func(j Job) bool { return j.WebhookAttempts == 1 })
	c, _ := q.Submit("m", json.RawMessage(`3`), "")
	waitFor(t, q, c.ID, func(j Job) bool { return j.Status == Succeeded })
	now.Add(int64(2 * time.Hour))
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := q.Get(a.ID)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("finished job not purged a minute after its retention: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := q.Get(b.ID); err != nil {
		t.Fatalf("job with a pending webhook was purged: %v", err)
	}
	// payload and indexes went with the record
	q.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketPayloads).Get([]byte(a.ID)) != nil {
			t.Error("payload of a purged job left behind")
		}
		if n := tx.Bucket(bucketFinished).Stats().KeyN; n != 1 {
			t.Errorf("%d finished-index keys, want 1 (the pending-webhook job)", n)
		}
		return nil
	})
}

// TestMigratesFirstLayout: a database written by the previous layout (one
// bucket of full records) is indexed at open: queued jobs run, finished
// jobs keep their results.
func TestMigratesFirstLayout(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(dir+"/"+DBFile, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	old := []Job{
		{ID: "0000000000000001-aa", Model: "m", Status: Succeeded, Request: json.RawMessage(`"x"`), Result: json.RawMessage(`"done"`), Created: now, Finished: now},
		{ID: "0000000000000002-bb", Model: "m", Status: Running, Request: json.RawMessage(`"y"`), Created: now},
		{ID: "0000000000000003-cc", Model: "m", Status: Queued, Request: json.RawMessage(`"z"`), Created: now},
	}
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists(bucketJobs)
		for _, j := range old {
			raw, _ := json.Marshal(j)
			b.Put([]byte(j.ID), raw)
		}
		return nil
	})
	db.Close()
	q, err := Open(dir, func(ctx context.Context, model string, req json.RawMessage) (json.RawMessage, error) {
		return req, nil
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); q.Close() }()
	q.Start(ctx)
	for _, j := range old[1:] {
		got := waitFor(t, q, j.ID, func(j Job) bool { return j.Status == Succeeded })
		if string(got.Result) != string(j.Request) {
			t.Fatalf("migrated job %s: result %s, want %s", j.ID, got.Result, j.Request)
		}
	}
	if got, err := q.Get(old[0].ID); err != nil || string(got.Result) != `"done"` || string(got.Request) != `"x"` {
		t.Fatalf("migrated finished job: %+v %v", got, err)
	}
}
