package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/agent/fleetlink"
	"github.com/edgefleet/edgefleet/fleet/broker"
	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestTakeoverByReEnrollmentRefused: an attacker holding a valid
// enrollment token cannot re-enroll an enrolled device id (HTTP 409, the
// device keeps working); the device itself renews with its current
// certificate (no token); after an operator's reset the id enrolls again.
func TestTakeoverByReEnrollmentRefused(t *testing.T) {
	e := startServer(t, server.Config{})
	e.enroll(1)
	victim := e.devs[0]
	before, _ := enroll.LoadEnrollment(victim.dir)

	attackerDir := t.TempDir()
	_, err := enroll.Enroll(e.ctx, e.srv.URL(), attackerDir, wire.EnrollRequest{Token: e.token, DeviceID: victim.id,
		Labels: map[string]string{"ring": "0"}}, e.pin())
	if err == nil || !strings.Contains(err.Error(), "HTTP 409") {
		t.Fatalf("takeover by re-enrollment: %v, want HTTP 409", err)
	}
	dev, _ := e.srv.Registry().Devices.Get(e.ctx, victim.id)
	cert, _ := tls.LoadX509KeyPair(victim.dir+"/fleet/"+enroll.CertFile, victim.dir+"/fleet/"+enroll.KeyFile)
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	if dev.CertSerial != pki.SerialString(leaf) {
		t.Fatal("the refused takeover replaced the device's certificate")
	}

	// Control 1: the device renews with its current certificate, no token
	// (and no pin flag: the CA pinned at the first enrollment is used).
	renewed, err := enroll.Enroll(e.ctx, e.srv.URL(), victim.dir, wire.EnrollRequest{DeviceID: victim.id}, enroll.EnrollOptions{})
	if err != nil {
		t.Fatalf("renewal with the current certificate: %v", err)
	}
	if renewed.DeviceID != before.DeviceID {
		t.Fatal("renewal changed the device")
	}
	// Control 2: after an operator reset, the id can be enrolled again.
	resp, err := e.api("POST", "/api/v1/devices/"+victim.id+"/reset", "")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("reset: %v %v", err, resp)
	}
	resp.Body.Close()
	if _, err := enroll.Enroll(e.ctx, e.srv.URL(), attackerDir, wire.EnrollRequest{Token: e.token, DeviceID: victim.id}, e.pin()); err != nil {
		t.Fatalf("enrollment after reset: %v", err)
	}
}

// TestRevokedDeviceCutOff: deleting a device (and resetting another) cuts
// its live MQTT session before the API call returns (checked on the
// broker's state, not on a timer; the latency is logged), and its
// reconnects are refused; a third device stays online.
func TestRevokedDeviceCutOff(t *testing.T) {
	var mu sync.Mutex
	offAt := map[string]time.Time{}
	e := startServer(t, server.Config{OnBrokerEvent: func(ev broker.ClientEvent) {
		if !ev.Connected && !ev.TakenOver && ev.Principal.DeviceID != "" {
			mu.Lock()
			if _, ok := offAt[ev.Principal.DeviceID]; !ok {
				offAt[ev.Principal.DeviceID] = ev.Time
			}
			mu.Unlock()
		}
	}})
	e.enroll(3)
	e.startLinks()
	e.waitFor("all devices online", 20*time.Second, func() bool { return e.online() == 3 })
	b := e.srv.Broker()
	for _, d := range e.devs {
		if !b.Connected(d.id) {
			t.Fatalf("%s not connected", d.id)
		}
	}
	rejectedBefore := b.Stats.AuthRejected.Load()
	for _, c := range []struct{ method, path, id string }{
		{"DELETE", "/api/v1/devices/dev-0", "dev-0"},
		{"POST", "/api/v1/devices/dev-1/reset", "dev-1"},
	} {
		start := time.Now()
		resp, err := e.api(c.method, c.path, "")
		if err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %v %v", c.method, c.path, err, resp)
		}
		resp.Body.Close()
		returned := time.Since(start)
		if b.Connected(c.id) {
			t.Fatalf("%s still connected after %s returned", c.id, c.path)
		}
		e.waitFor(c.id+" disconnect event", 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return !offAt[c.id].IsZero() })
		mu.Lock()
		t.Logf("%s %s: API returned after %v, broker disconnect event after %v", c.method, c.path, returned.Round(time.Millisecond), offAt[c.id].Sub(start).Round(time.Millisecond))
		mu.Unlock()
	}
	// The revoked links keep retrying with their old certificates: refused.
	e.waitFor("reconnects refused", 20*time.Second, func() bool { return b.Stats.AuthRejected.Load() >= rejectedBefore+2 })
	if b.Connected("dev-0") || b.Connected("dev-1") {
		t.Fatal("a revoked device reconnected")
	}
	// Control: the third device is unaffected.
	if !b.Connected("dev-2") || !e.devs[2].link.Online() {
		t.Fatal("dev-2 lost its session")
	}
}

// TestPlaintextRefusedByDefault: plain HTTP to the API port and plain MQTT
// to the broker port fail, and so does a TLS MQTT login with a password
// instead of a certificate; the control, TLS with the device certificate,
// connects.
func TestPlaintextRefusedByDefault(t *testing.T) {
	e := startServer(t, server.Config{})
	e.enroll(1)
	host := strings.TrimPrefix(e.srv.URL(), "https://")
	resp, err := http.Get("http://" + host + "/api/v1/devices")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(body), "dev-0") {
			t.Fatalf("plain HTTP answered %d %s", resp.StatusCode, body)
		}
	}
	brokerAddr := strings.TrimPrefix(e.srv.BrokerURL(), "mqtts://")
	plain := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + brokerAddr).SetClientID("dev-0").SetUsername("dev-0").
		SetPassword("x").SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := plain.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		plain.Disconnect(10)
		t.Fatal("plain MQTT connect accepted")
	}
	tc, err := enroll.TLSConfig(e.devs[0].dir)
	if err != nil {
		t.Fatal(err)
	}
	noCert := tc.Clone()
	noCert.GetClientCertificate = nil
	pw := paho.NewClient(paho.NewClientOptions().AddBroker("ssl://" + brokerAddr).SetClientID("dev-0").SetUsername("dev-0").
		SetPassword("guess").SetTLSConfig(noCert).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := pw.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		pw.Disconnect(10)
		t.Fatal("password login without certificate accepted")
	}
	ok := paho.NewClient(paho.NewClientOptions().AddBroker("ssl://" + brokerAddr).SetClientID("dev-0").SetTLSConfig(tc).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := ok.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("control, device certificate over TLS: %v", tok.Error())
	}
	ok.Disconnect(10)
}

// TestImpostorBrokerCannotConnect: a broker on another port with its own
// CA (and a certificate valid for 127.0.0.1) never completes a TLS
// handshake with an enrolled agent, so it cannot even receive its
// CONNECT. Control: the same link reaches the real broker.
func TestImpostorBrokerCannotConnect(t *testing.T) {
	e := startServer(t, server.Config{})
	e.enroll(1)
	d := e.devs[0]
	evilCA, _ := pki.NewCA("impostor", time.Now())
	cert, _ := evilCA.IssueServer(nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	handshakes := make(chan error, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
				c.SetDeadline(time.Now().Add(10 * time.Second))
				handshakes <- tc.Handshake()
			}()
		}
	}()
	enr, _ := enroll.LoadEnrollment(d.dir)
	enr.BrokerURL = "mqtts://" + ln.Addr().String()
	l, err := fleetlink.New(fleetlink.Config{Enrollment: *enr, DataDir: d.dir, Jobs: d, Status: d, MaxReconnectInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	for i := 0; i < 2; i++ {
		select {
		case err := <-handshakes:
			if err == nil {
				t.Fatal("the agent completed a TLS handshake with the impostor")
			}
			t.Logf("impostor handshake %d: %v", i+1, err)
		case <-time.After(20 * time.Second):
			t.Fatal("the agent never tried the impostor")
		}
	}
	if l.Online() {
		t.Fatal("link online with the impostor")
	}
	cancel()
	<-done
	// Control: the real broker.
	e.startLinks()
	e.waitFor("device online on the real broker", 20*time.Second, func() bool { return e.online() == 1 })
}

// TestCSRForAnotherDeviceRefused: a CSR whose common name is not the
// enrolling device id is refused by the server (HTTP 400, bad_csr).
func TestCSRForAnotherDeviceRefused(t *testing.T) {
	e := startServer(t, server.Config{})
	_, _, csr, _ := pki.NewDeviceKey("victim")
	body, _ := wire.Encode(wire.EnrollRequest{V: wire.Version, Token: e.token, DeviceID: "attacker", CSR: string(csr)})
	resp, err := e.client().Post(e.srv.URL()+"/api/v1/enroll", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "bad_csr") {
		t.Fatalf("CSR for another device: %d %s", resp.StatusCode, b)
	}
	// Control: the matching CSR is signed.
	_, _, own, _ := pki.NewDeviceKey("attacker")
	body, _ = wire.Encode(wire.EnrollRequest{V: wire.Version, Token: e.token, DeviceID: "attacker", CSR: string(own)})
	resp, err = e.client().Post(e.srv.URL()+"/api/v1/enroll", "application/json", strings.NewReader(string(body)))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("control: %v %v", err, resp)
	}
	resp.Body.Close()
}

// TestInsecurePlaintextIsExplicit: with --insecure-plaintext (server and
// agent) the fleet runs over plain HTTP and MQTT with passwords; an agent
// without the flag refuses that server.
func TestInsecurePlaintextIsExplicit(t *testing.T) {
	e := startServer(t, server.Config{InsecurePlaintext: true})
	if !strings.HasPrefix(e.srv.URL(), "http://") || !strings.HasPrefix(e.srv.BrokerURL(), "mqtt://") {
		t.Fatalf("insecure mode URLs %s %s", e.srv.URL(), e.srv.BrokerURL())
	}
	if _, err := enroll.Enroll(e.ctx, e.srv.URL(), t.TempDir(), wire.EnrollRequest{Token: e.token, DeviceID: "careful"},
		enroll.EnrollOptions{}); err == nil || !strings.Contains(err.Error(), "plaintext") {
		t.Fatalf("agent without --insecure-plaintext: %v", err)
	}
	e.enroll(1) // with the flag (env.pin)
	e.startLinks()
	e.waitFor("device online over plain MQTT", 20*time.Second, func() bool { return e.online() == 1 })
}
