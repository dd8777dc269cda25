package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/agent/serving/servingtest"
)

// TestListenForms: a bare port from EDGE_LISTEN, the YAML file (string or
// number) or a flag means 127.0.0.1:PORT, as documented; garbage is
// refused with the reason.
func TestListenForms(t *testing.T) {
	cfg := Defaults()
	if err := cfg.ApplyEnv(func(k string) string { return map[string]string{"EDGE_LISTEN": "8081"}[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8081" {
		t.Fatalf("EDGE_LISTEN=8081 → %q", cfg.Listen)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, y := range []string{`listen: "8082"`, `listen: 8082`} {
		file := filepath.Join(t.TempDir(), "a.yaml")
		os.WriteFile(file, []byte(y+"\n"), 0o644)
		c := Defaults()
		if err := c.LoadFile(file); err != nil {
			t.Fatalf("%s: %v", y, err)
		}
		if c.Listen != "127.0.0.1:8082" {
			t.Fatalf("%s → %q", y, c.Listen)
		}
	}
	for _, bad := range []string{"127.0.0.1:http", "1:2:3", "127.0.0.1:70000"} {
		c := Defaults()
		c.Listen = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "listen") {
			t.Errorf("listen %q: %v", bad, err)
		}
	}
}

func TestListenWarning(t *testing.T) {
	for _, c := range []struct {
		addr, token string
		warn        bool
	}{
		{"0.0.0.0:8080", "", true}, {":8080", "", true}, {"[::]:8080", "", true}, {"192.168.1.5:8080", "", true},
		{"0.0.0.0:8080", "tok", false}, {"127.0.0.1:8080", "", false}, {"[::1]:8080", "", false}, {"localhost:8080", "", false},
	} {
		if got := ListenWarning(c.addr, c.token) != ""; got != c.warn {
			t.Errorf("ListenWarning(%q, token %q) = %v, want %v", c.addr, c.token, got, c.warn)
		}
	}
}

// TestSlowBodyCutOff: a client that sends headers and part of a body, then
// stalls, is disconnected after read_timeout (it used to hold its
// connection forever); a client sending promptly is served.
func TestSlowBodyCutOff(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.ReadTimeout = 300 * time.Millisecond
	addModel(t, cfg.DataDir, "iris.tflite", "iris", "1")
	url, stop := runDaemon(t, cfg, Options{Version: "t"})
	defer stop()
	host := strings.TrimPrefix(url, "http://")

	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /api/v1/models/iris/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"instances\":")
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(c) // returns when the server closes the connection
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the stalled connection is still open after 30 s (read %q)", b)
	}
	if strings.HasPrefix(string(b), "HTTP/1.1 200") {
		t.Fatalf("stalled body answered 200: %q", b)
	}

	code, body := post(t, http.DefaultClient, url+"/api/v1/models/iris/predict", `{"instances":[[5.1,3.5,1.4,0.2]]}`)
	if code != 200 {
		t.Fatalf("control request: %d %s", code, body)
	}
}

// TestConnectionCap: with max_connections 3, three idle keep-alive
// connections hold every slot: a fourth client is not served until the
// idle timeout closes them (they used to stay open forever).
func TestConnectionCap(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.MaxConnections = 3
	cfg.HTTP.IdleTimeout = 500 * time.Millisecond
	url, stop := runDaemon(t, cfg, Options{Version: "t"})
	defer stop()
	host := strings.TrimPrefix(url, "http://")
	get := func(c net.Conn) error {
		fmt.Fprintf(c, "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	var idle []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := get(c); err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	// The fourth is accepted by the kernel but not by the server: its
	// request waits until an idle connection is closed by the server.
	fourth, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer fourth.Close()
	fourth.SetDeadline(time.Now().Add(30 * time.Second))
	if err := get(fourth); err != nil {
		t.Fatalf("fourth client never served: %v", err)
	}
	// It was served because the server closed the idle ones.
	for i, c := range idle {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil || n > 0 {
			t.Fatalf("idle connection %d still open", i)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("idle connection %d not closed by the server", i)
		}
	}
}

// TestConnectionCapHolds: while three connections are in use, a fourth
// gets no answer; it does as soon as one is released (control).
func TestConnectionCapHolds(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.MaxConnections = 3
	cfg.HTTP.IdleTimeout = time.Hour
	url, stop := runDaemon(t, cfg, Options{Version: "t"})
	defer stop()
	host := strings.TrimPrefix(url, "http://")
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		held = append(held, c)
	}
	fourth, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer fourth.Close()
	fmt.Fprintf(fourth, "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
	fourth.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _ := fourth.Read(make([]byte, 1)); n > 0 {
		t.Fatal("a fourth connection was served beyond max_connections 3")
	}
	held[0].Close()
	fourth.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(fourth), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after a slot was freed: %v", err)
	}
	for _, c := range held[1:] {
		c.Close()
	}
}

// TestStartupNotBlockedByNeverEndingModel: a model whose probe never ends
// (installed without the check) does not hold up the start, and shutdown
// cancels its probe.
func TestStartupNotBlockedByNeverEndingModel(t *testing.T) {
	cfg := testConfig(t)
	cfg.Serving.ProbeTimeout = time.Hour // only cancellation can end it
	data, err := servingtest.NeverEndingModel()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "loop.tflite")
	os.WriteFile(file, data, 0o644)
	if err := ModelsAdd(context.Background(), AddOptions{DataDir: cfg.DataDir, File: file, ID: "loop", Version: "1", Backend: "none"}); err != nil {
		t.Fatal(err)
	}
	url, stop := runDaemon(t, cfg, Options{Version: "t"}) // fails if not ready within 20 s
	resp, err := http.Get(url + "/api/v1/models")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("models while loading: %v", err)
	}
	resp.Body.Close()
	// The probes are asked at once: each waits at most 2 s for the model,
	// while the never-ending probe runs until shutdown (the runtime's
	// WHILE iteration cap would take hours on this model).
	paths := []string{"/v2/health/ready", "/api/v1/models/loop/health", "/v2/models/loop/ready"}
	codes := make([]int, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := http.Client{Timeout: 30 * time.Second}
			resp, err := c.Get(url + path)
			if err != nil {
				errs[i] = err
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, path := range paths {
		if errs[i] != nil {
			t.Fatalf("%s while loading: %v", path, errs[i])
		}
		if codes[i] != 503 {
			t.Fatalf("%s while loading: %d, want 503", path, codes[i])
		}
	}
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("shutdown blocked by the probe")
	}
}

// TestModelsAddProbe: `models add` refuses a model whose invocation does
// not finish within the probe timeout, and installs one that does.
func TestModelsAddProbe(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		stop int32
		ok   bool
	}{{-1, false}, {5, true}} {
		data, _ := servingtest.WhileModel(c.stop)
		file := filepath.Join(t.TempDir(), "m.tflite")
		os.WriteFile(file, data, 0o644)
		err := ModelsAdd(context.Background(), AddOptions{DataDir: dir, File: file, ID: "loop", Version: fmt.Sprint(c.stop), ProbeTimeout: 200 * time.Millisecond})
		if c.ok && err != nil {
			t.Fatalf("finite loop refused: %v", err)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), "did not finish within 200ms")) {
			t.Fatalf("never-ending loop: %v", err)
		}
	}
}
