package simulate

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/edgefleet/edgefleet/fleet/client"
	"github.com/edgefleet/edgefleet/fleet/modelrel"
	"github.com/edgefleet/edgefleet/fleet/registry"
	"github.com/edgefleet/edgefleet/ota/release"
)

// SpawnConfig describes a fleet-server child process for a self-contained
// benchmark: fresh keys and repository, the model released into it.
type SpawnConfig struct {
	// ServerBin is the fleet-server binary.
	ServerBin string
	// Dir holds keys, data and server.log (default: a new temp dir, removed
	// by Close).
	Dir string
	// ModelPath is released as ModelID@Version before the server starts.
	ModelPath, ModelID, Version string
	// Args are extra fleet-server flags (e.g. --store postgres://...).
	Args []string
	// Env are extra KEY=VALUE environment variables for the server only
	// (e.g. GOMEMLIMIT=900MiB: the load tool itself must not inherit the
	// server's memory limit).
	Env []string
}

// Spawned is a running fleet-server child.
type Spawned struct {
	URL, AdminToken, EnrollToken string
	// TLS trusts the server's generated fleet CA (nil for plaintext).
	TLS       *tls.Config
	PID       int
	Dir       string
	cmd       *exec.Cmd
	removeDir bool
	exited    chan error
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Spawn initialises keys and a repository, releases the model, starts
// fleet-server on free loopback ports and registers the model through the API.
func Spawn(ctx context.Context, sc SpawnConfig) (*Spawned, error) {
	if sc.ServerBin == "" || sc.ModelPath == "" {
		return nil, errors.New("spawn fleet-server: server binary and model path are required")
	}
	for _, kv := range sc.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("spawn fleet-server: environment %q: want KEY=VALUE", kv)
		}
	}
	s := &Spawned{Dir: sc.Dir, AdminToken: randomHex(16), EnrollToken: randomHex(16), exited: make(chan error, 1)}
	if s.Dir == "" {
		d, err := os.MkdirTemp("", "edgefleet-simulate-")
		if err != nil {
			return nil, fmt.Errorf("spawn fleet-server: %w", err)
		}
		s.Dir, s.removeDir = d, true
	}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	keys, data := filepath.Join(s.Dir, "keys"), filepath.Join(s.Dir, "data")
	repo := filepath.Join(data, "repo")
	m, err := pushModel(ctx, keys, repo, sc.ModelPath, sc.ModelID, sc.Version)
	if err != nil {
		return nil, fmt.Errorf("spawn fleet-server: %w", err)
	}
	httpAddr, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("spawn fleet-server: %w", err)
	}
	mqttAddr, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("spawn fleet-server: %w", err)
	}
	logf, err := os.Create(filepath.Join(s.Dir, "server.log"))
	if err != nil {
		return nil, fmt.Errorf("spawn fleet-server: %w", err)
	}
	defer logf.Close()
	args := []string{"--data-dir", data, "--listen", httpAddr, "--mqtt-listen", mqttAddr, "--keys-dir", keys,
		"--enroll-token", s.EnrollToken, "--admin-token", s.AdminToken}
	// Every simulated device enrolls from 127.0.0.1: lift the per-address
	// enrollment rate limit when this server has one.
	if help, _ := exec.Command(sc.ServerBin, "--help").CombinedOutput(); strings.Contains(string(help), "--enroll-rate") {
		args = append(args, "--enroll-rate", "1000000", "--enroll-burst", "1000000")
	}
	args = append(args, sc.Args...)
	s.cmd = exec.Command(sc.ServerBin, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if len(sc.Env) > 0 {
		s.cmd.Env = append(os.Environ(), sc.Env...)
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("spawn fleet-server %s: %w", sc.ServerBin, err)
	}
	s.PID = s.cmd.Process.Pid
	go func() { s.exited <- s.cmd.Wait() }()
	s.URL = "http://" + httpAddr
	plain := false
	for _, a := range args {
		plain = plain || a == "--insecure-plaintext"
	}
	caFile := filepath.Join(data, "pki", "ca.pem")
	deadline := time.Now().Add(60 * time.Second)
	hc := &http.Client{Timeout: 10 * time.Second}
	for {
		if s.TLS == nil && !plain {
			// TLS by default: the server generates the fleet CA at first start.
			if pem, err := os.ReadFile(caFile); err == nil {
				pool := x509.NewCertPool()
				if pool.AppendCertsFromPEM(pem) {
					s.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
					s.URL = "https://" + httpAddr
					hc.Transport = &http.Transport{TLSClientConfig: s.TLS}
				}
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+s.AdminToken)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-s.exited:
			s.exited <- err
			return nil, fmt.Errorf("spawn fleet-server: exited during start (%v); see %s", err, logf.Name())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("spawn fleet-server: not answering on %s after 60 s; see %s", s.URL, logf.Name())
		}
	}
	api := client.New(s.URL, s.AdminToken)
	api.HTTP = hc
	if _, err := api.AddModel(ctx, m); err != nil {
		return nil, fmt.Errorf("spawn fleet-server: register model: %w", err)
	}
	ok = true
	return s, nil
}

// Close stops the server (SIGTERM, then SIGKILL after 20 s) and removes a
// temp dir it created.
func (s *Spawned) Close() error {
	var err error
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-s.exited:
		case <-time.After(20 * time.Second):
			s.cmd.Process.Kill()
			err = <-s.exited
		}
		s.cmd = nil
	}
	if s.removeDir {
		os.RemoveAll(s.Dir)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil // terminated by our signal
	}
	return err
}

// pushModel creates a fresh signed repository (keys in keys, metadata and
// targets in repo) and releases the model file at modelPath into it as
// id@version, as a spawned server or cluster starts with.
func pushModel(ctx context.Context, keys, repo, modelPath, id, version string) (registry.Model, error) {
	if err := release.NewRepo(keys, repo).Init(release.KeyOptions{}); err != nil {
		return registry.Model{}, err
	}
	m, _, err := modelrel.Push(ctx, modelPath, modelrel.Options{ID: id, Version: version, KeysDir: keys, RepoDir: repo})
	return m, err
}
