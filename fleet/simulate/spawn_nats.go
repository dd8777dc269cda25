package simulate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/edgefleet/edgefleet/fleet/client"
	"github.com/edgefleet/edgefleet/fleet/store/postgres/pgserver"
)

// ClusterConfig describes the multi-node path for a self-contained
// benchmark: a PostgreSQL store, one `fleet-server nats-node` (JetStream,
// the devices' MQTT listener) and Replicas fleet-server replicas consuming
// device messages from it, all on loopback with TLS from the fleet CA.
type ClusterConfig struct {
	SpawnConfig
	// Replicas is the number of fleet-server replicas (default 1).
	Replicas int
	// StoreURL is an existing PostgreSQL database (postgres://...); empty
	// starts a throwaway PostgreSQL server in Dir (Debian's package).
	StoreURL string
	// NodeArgs are extra `fleet-server nats-node` flags (e.g.
	// --pprof-listen 127.0.0.1:6060); NodeEnv its KEY=VALUE environment
	// (SpawnConfig.Env is the replicas' only: a GOMEMLIMIT sized for a
	// replica made the node, which needs about 1 GB at 10,000 devices,
	// spend its time in garbage collection).
	NodeArgs, NodeEnv []string
}

// Cluster is a running NATS node, its replicas and (maybe) PostgreSQL.
type Cluster struct {
	// URL is the first replica's API; PeerURLs the others'.
	URL         string
	PeerURLs    []string
	AdminToken  string
	EnrollToken string
	TLS         *tls.Config
	// PIDs are the processes by name ("replica-1", "nats-node", "postgres").
	PIDs      map[string]int
	Dir       string
	children  []*child
	pg        *pgserver.Server
	removeDir bool
}

type child struct {
	name   string
	cmd    *exec.Cmd
	exited chan error
}

func startChild(name, bin string, args, env []string, logPath string) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("spawn %s: %w", name, err)
	}
	defer logf.Close()
	c := &child{name: name, cmd: exec.Command(bin, args...), exited: make(chan error, 1)}
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.Env = append(os.Environ(), env...)
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("spawn %s (%s): %w", name, bin, err)
	}
	go func() { c.exited <- c.cmd.Wait() }()
	return c, nil
}

func (c *child) stop() {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// SpawnCluster initialises keys and a shared repository, releases the
// model, starts PostgreSQL (unless StoreURL is given), the replicas and
// the NATS node on free loopback ports, waits until every replica answers
// and registers the model.
func SpawnCluster(ctx context.Context, cc ClusterConfig) (*Cluster, error) {
	if cc.ServerBin == "" || cc.ModelPath == "" {
		return nil, errors.New("spawn cluster: server binary and model path are required")
	}
	if cc.Replicas <= 0 {
		cc.Replicas = 1
	}
	for _, kv := range append(append([]string{}, cc.Env...), cc.NodeEnv...) {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("spawn cluster: environment %q: want KEY=VALUE", kv)
		}
	}
	c := &Cluster{Dir: cc.Dir, AdminToken: randomHex(16), EnrollToken: randomHex(16), PIDs: map[string]int{}}
	if c.Dir == "" {
		d, err := os.MkdirTemp("", "edgefleet-simulate-")
		if err != nil {
			return nil, fmt.Errorf("spawn cluster: %w", err)
		}
		c.Dir, c.removeDir = d, true
	}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	store := cc.StoreURL
	if store == "" {
		pg, err := pgserver.Run(ctx, filepath.Join(c.Dir, "pg"))
		if err != nil {
			return nil, fmt.Errorf("spawn cluster: %w", err)
		}
		c.pg, store = pg, pg.DSN
		c.PIDs["postgres"] = pg.PID
	}
	keys, repo := filepath.Join(c.Dir, "keys"), filepath.Join(c.Dir, "repo")
	m, err := pushModel(ctx, keys, repo, cc.ModelPath, cc.ModelID, cc.Version)
	if err != nil {
		return nil, fmt.Errorf("spawn cluster: %w", err)
	}
	natsAddr, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("spawn cluster: %w", err)
	}
	mqttAddr, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("spawn cluster: %w", err)
	}
	password := "EDGEFLEET_BROKER_PASSWORD=" + randomHex(24)
	env := append([]string{password}, cc.Env...)
	nodeEnv := append([]string{password}, cc.NodeEnv...)
	var urls []string
	for i := 1; i <= cc.Replicas; i++ {
		httpAddr, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("spawn cluster: %w", err)
		}
		name := fmt.Sprintf("replica-%d", i)
		args := []string{"--store", store, "--data-dir", filepath.Join(c.Dir, name), "--repo-dir", repo, "--keys-dir", keys,
			"--listen", httpAddr, "--client-id", fmt.Sprintf("fleet-%d", i), "--broker", "mqtts://" + mqttAddr, "--broker-password-auth",
			"--nats", "tls://" + natsAddr, "--enroll-token", c.EnrollToken, "--admin-token", c.AdminToken,
			"--enroll-rate", "1000000", "--enroll-burst", "1000000"}
		args = append(args, cc.Args...)
		ch, err := startChild(name, cc.ServerBin, args, env, filepath.Join(c.Dir, name+".log"))
		if err != nil {
			return nil, err
		}
		c.children = append(c.children, ch)
		c.PIDs[name] = ch.cmd.Process.Pid
		urls = append(urls, "https://"+httpAddr)
		if i == 1 {
			// The first replica stores the fleet CA the node waits for;
			// starting the others at once is supported but slower here.
			if err := waitFile(ctx, filepath.Join(c.Dir, name, "pki", "ca.pem"), ch); err != nil {
				return nil, err
			}
		}
	}
	node, err := startChild("nats-node", cc.ServerBin, append([]string{"nats-node", "--store", store, "--name", "n1",
		"--data-dir", filepath.Join(c.Dir, "nats"), "--listen", natsAddr, "--mqtt-listen", mqttAddr}, cc.NodeArgs...), nodeEnv, filepath.Join(c.Dir, "nats-node.log"))
	if err != nil {
		return nil, err
	}
	c.children = append(c.children, node)
	c.PIDs["nats-node"] = node.cmd.Process.Pid
	pem, err := os.ReadFile(filepath.Join(c.Dir, "replica-1", "pki", "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("spawn cluster: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("spawn cluster: replica-1's CA is not PEM")
	}
	c.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c.TLS}}
	for i, u := range urls {
		if err := waitHTTP(ctx, hc, u, c.AdminToken, c.children[i], 3*time.Minute); err != nil {
			return nil, fmt.Errorf("spawn cluster: %w (see %s)", err, c.Dir)
		}
	}
	c.URL, c.PeerURLs = urls[0], urls[1:]
	api := client.New(c.URL, c.AdminToken)
	api.HTTP = hc
	if _, err := api.AddModel(ctx, m); err != nil {
		return nil, fmt.Errorf("spawn cluster: register model: %w", err)
	}
	ok = true
	return c, nil
}

func waitFile(ctx context.Context, path string, ch *child) error {
	for range 600 {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case err := <-ch.exited:
			ch.exited <- err
			return fmt.Errorf("spawn %s: exited during start (%v)", ch.name, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("spawn %s: %s not written after 60 s", ch.name, path)
}

// waitHTTP waits until the replica's /metrics answers 200 (its NATS
// consumer is set up before it serves).
func waitHTTP(ctx context.Context, hc *http.Client, url, token string, ch *child, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-ch.exited:
			ch.exited <- err
			return fmt.Errorf("%s exited during start (%v)", ch.name, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answering on %s after %s", ch.name, url, timeout)
		}
	}
}

// Close stops the replicas, the node and PostgreSQL, and removes a temp
// dir it created.
func (c *Cluster) Close() error {
	for i := len(c.children) - 1; i >= 0; i-- {
		c.children[i].stop()
	}
	c.children = nil
	if c.pg != nil {
		c.pg.Stop()
		c.pg = nil
	}
	if c.removeDir {
		os.RemoveAll(c.Dir)
	}
	return nil
}
