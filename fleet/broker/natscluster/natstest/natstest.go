// Package natstest starts a real NATS cluster (embedded nats-server nodes
// with JetStream, routes and MQTT listeners) on loopback for tests.
package natstest

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/broker"
	"github.com/edgefleet/edgefleet/fleet/broker/natscluster"
)

// Cluster is a running test cluster.
type Cluster struct {
	Nodes []*natscluster.Node
	mu    sync.Mutex
	down  map[int]bool
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start runs n nodes routed to each other (plaintext, authenticated by
// auth) and waits until every node has its routes; they stop at the
// test's end.
func Start(t testing.TB, n int, auth broker.Authenticator) *Cluster {
	t.Helper()
	return StartConfig(t, n, auth, natscluster.NodeConfig{})
}

// StartConfig is Start with node settings from base (MaxConsumers, ...);
// names, addresses, store dirs, auth and routes are filled in.
func StartConfig(t testing.TB, n int, auth broker.Authenticator, base natscluster.NodeConfig) *Cluster {
	t.Helper()
	routes := make([]string, n)
	for i := range routes {
		routes[i] = freeAddr(t)
	}
	c := &Cluster{down: map[int]bool{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.Default()
	}
	for i := 0; i < n; i++ {
		var others []string
		for j, r := range routes {
			if j != i {
				others = append(others, r)
			}
		}
		cfg := base
		cfg.Name, cfg.StoreDir, cfg.ClientAddr, cfg.MQTTAddr = fmt.Sprintf("n%d", i+1), t.TempDir(), freeAddr(t), freeAddr(t)
		cfg.InsecurePlaintext, cfg.Auth, cfg.Logger, cfg.RouteUser, cfg.RoutePassword = true, auth, log, "route", "route-secret-for-tests"
		if n > 1 {
			cfg.RouteAddr, cfg.Routes = routes[i], others
		}
		node, err := natscluster.Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, node)
	}
	t.Cleanup(func() {
		for i := range c.Nodes {
			c.Kill(i)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for _, node := range c.Nodes {
		for node.Routes() < n-1 {
			if time.Now().After(deadline) {
				t.Fatalf("node %s has %d routes after 60 s, want %d", node.Name(), node.Routes(), n-1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c
}

// Kill stops node i (once).
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	if c.down[i] {
		c.mu.Unlock()
		return
	}
	c.down[i] = true
	c.mu.Unlock()
	c.Nodes[i].Close()
}

// ClientURLs are the NATS URLs of every node.
func (c *Cluster) ClientURLs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.ClientURL())
	}
	return out
}

// Proxy listens on a loopback port and forwards each connection to the
// first of addrs that accepts it: a stand-in for the DNS name or TCP load
// balancer in front of the nodes' MQTT listeners, so a client whose node
// died reconnects to a live one. It stops at the test's end.
func Proxy(t testing.TB, addrs ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(c net.Conn, on bool) {
		mu.Lock()
		defer mu.Unlock()
		if on {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			var out net.Conn
			for _, a := range addrs {
				if out, err = net.DialTimeout("tcp", a, 2*time.Second); err == nil {
					break
				}
			}
			if out == nil {
				in.Close()
				continue
			}
			track(in, true)
			track(out, true)
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				io.Copy(dst, src)
				dst.Close()
				src.Close()
				track(dst, false)
				track(src, false)
			}
			go pipe(out, in)
			go pipe(in, out)
		}
	}()
	return ln.Addr().String()
}

// MQTTAddrs are the nodes' MQTT listen addresses starting with node first
// (the order a Proxy tries them).
func (c *Cluster) MQTTAddrs(first int) []string {
	var out []string
	for k := range c.Nodes {
		u := c.Nodes[(first+k)%len(c.Nodes)].MQTTURL()
		if i := strings.Index(u, "://"); i >= 0 {
			u = u[i+3:]
		}
		out = append(out, u)
	}
	return out
}
