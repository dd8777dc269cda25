package broker_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/broker"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// The device side of the connection-memory measurement runs in a child
// process (the test binary itself, see TestMain), so that the parent's
// memory statistics count the broker's side of each connection only.
const (
	connMemDirEnv  = "EDGEFLEET_CONNMEM_DIR"
	connMemAddrEnv = "EDGEFLEET_CONNMEM_ADDR"
	connMemNEnv    = "EDGEFLEET_CONNMEM_N"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(connMemDirEnv); dir != "" {
		n, _ := strconv.Atoi(os.Getenv(connMemNEnv))
		if err := connMemDevices(dir, os.Getenv(connMemAddrEnv), n); err != nil {
			fmt.Fprintln(os.Stderr, "devices:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// certAuth accepts every certificate the TLS layer verified: its common
// name is the device id.
type certAuth struct{}

func (certAuth) Authenticate(user, password string) (broker.Principal, bool) {
	return broker.Principal{}, false
}

func (certAuth) AuthenticateCert(c *x509.Certificate) (broker.Principal, bool) {
	return broker.Principal{DeviceID: c.Subject.CommonName}, true
}

// connMemCA writes a fresh P-256 CA (as fleet/pki makes) to dir and returns
// a server TLS config that requires device certificates it signed.
func connMemCA(t testing.TB, dir string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "connmem CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "ca.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	srv, err := issue(ca, key, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{Certificates: []tls.Certificate{srv}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
}

// issue signs a leaf certificate for cn (an IP for servers).
func issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, usage x509.ExtKeyUsage) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	if ip := net.ParseIP(cn); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// connMemDevices is the child process: n devices connect over TLS with
// their certificates like the agent (persistent session, Last Will on the
// status topic, the two subscriptions, an online status and one telemetry
// batch, QoS 1), then stay connected and idle until stdin closes.
func connMemDevices(dir, addr string, n int) error {
	ca, caKey, err := loadCA(dir)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	conns := make([]net.Conn, 0, n)
	for i := range n {
		id := fmt.Sprintf("dev-%05d", i)
		cert, err := issue(ca, caKey, id, x509.ExtKeyUsageClientAuth)
		if err != nil {
			return err
		}
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"})
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		if err := agentSession(c, id); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		conns = append(conns, c)
	}
	fmt.Println("ready")
	// Every line on stdin: each device publishes one more telemetry batch
	// (QoS 1, acknowledged), then "published" is printed. EOF ends.
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		for i, c := range conns {
			id := fmt.Sprintf("dev-%05d", i)
			if err := publishTelemetry(c, id, 7); err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
		}
		fmt.Println("published")
	}
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// publishTelemetry sends one telemetry batch at QoS 1 and reads the PUBACK.
func publishTelemetry(c net.Conn, id string, packetID byte) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	var p bytes.Buffer
	mqttString(&p, wire.TelemetryTopic(id))
	p.Write([]byte{0, packetID})
	p.WriteString(`{"v":1,"device_id":"` + id + `","epoch":"e1","records":[]}`)
	if err := writePacket(c, 0x32, p.Bytes()); err != nil {
		return err
	}
	return expect(bufio.NewReaderSize(c, 16), 0x40, 2)
}

// loadCA reads the CA connMemCA wrote to dir.
func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(caPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("bad CA files in %s", dir)
	}
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	return ca, key, err
}

// deviceTLS is a device's client TLS config with a certificate for id
// from the CA in dir.
func deviceTLS(dir, id string) (*tls.Config, error) {
	ca, caKey, err := loadCA(dir)
	if err != nil {
		return nil, err
	}
	cert, err := issue(ca, caKey, id, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"}, nil
}

// agentSession speaks the agent's start of session in MQTT 3.1.1 on c.
func agentSession(c net.Conn, id string) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	r := bufio.NewReader(c)
	var vh bytes.Buffer
	mqttString(&vh, "MQTT")
	// Protocol level 4; flags: will retain, will QoS 1, will flag (clean session off).
	vh.Write([]byte{4, 0x20 | 0x08 | 0x04, 0, 60})
	mqttString(&vh, id)
	mqttString(&vh, wire.StatusTopic(id))
	mqttString(&vh, `{"v":1,"device_id":"`+id+`","state":"offline"}`)
	if err := writePacket(c, 0x10, vh.Bytes()); err != nil {
		return err
	}
	if err := expect(r, 0x20, 2); err != nil {
		return fmt.Errorf("connack: %w", err)
	}
	var sub bytes.Buffer
	sub.Write([]byte{0, 1})
	for _, f := range []string{wire.JobsNotifyTopic(id), wire.TelemetryAckTopic(id)} {
		mqttString(&sub, f)
		sub.WriteByte(1)
	}
	if err := writePacket(c, 0x82, sub.Bytes()); err != nil {
		return err
	}
	if err := expect(r, 0x90, 4); err != nil {
		return fmt.Errorf("suback: %w", err)
	}
	for i, m := range []struct {
		topic, payload string
		retain         byte
	}{
		{wire.StatusTopic(id), `{"v":1,"device_id":"` + id + `","state":"online"}`, 1},
		{wire.TelemetryTopic(id), `{"v":1,"device_id":"` + id + `","epoch":"e1","records":[]}`, 0},
	} {
		var p bytes.Buffer
		mqttString(&p, m.topic)
		p.Write([]byte{0, byte(2 + i)})
		p.WriteString(m.payload)
		if err := writePacket(c, 0x32|m.retain, p.Bytes()); err != nil {
			return err
		}
		if err := expect(r, 0x40, 2); err != nil {
			return fmt.Errorf("puback: %w", err)
		}
	}
	return nil
}

func writePacket(w io.Writer, header byte, body []byte) error {
	pk := append([]byte{header}, varint(len(body))...)
	_, err := w.Write(append(pk, body...))
	return err
}

// expect reads one packet of type header (first byte) with n bytes of body.
func expect(r *bufio.Reader, header byte, n int) error {
	b := make([]byte, 2+n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	if b[0] != header || int(b[1]) != n {
		return fmt.Errorf("got %x, want type %x with %d bytes", b, header, n)
	}
	return nil
}

// connCost is what n idle device connections cost the broker's process.
type connCost struct {
	heap, stack, goroutines float64 // per connection, after two collections
	// publishStack is the stack per connection right after every device
	// published once more (no collection in between: a connection
	// goroutine whose stack grew for the publish still has it).
	publishStack float64
}

// measureConnections starts the embedded broker over TLS with cfg (the
// server's in-process transport subscribed as in fleet-server), connects
// n devices from a child process and returns the broker's memory per
// connection after two collections.
func measureConnections(t testing.TB, cfg broker.EmbeddedConfig, n int) connCost {
	t.Helper()
	dir := t.TempDir()
	cfg.Addr, cfg.Auth, cfg.TLS = "127.0.0.1:0", certAuth{}, connMemCA(t, dir)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e, err := broker.StartEmbedded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	delivered := make(chan struct{}, 2*n)
	tr, err := e.InProcess(wire.ServerFilters(), func(string, []byte) { delivered <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), connMemDirEnv+"="+dir, connMemAddrEnv+"="+e.Addr(), connMemNEnv+"="+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("device process: %q %v", line, err)
	}
	for range 2 * n { // every online status and telemetry batch reached the server
		<-delivered
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	g1 := runtime.NumGoroutine()
	if path := os.Getenv("CONNMEM_HEAPPROFILE"); path != "" { // where the heap goes, with the devices connected
		if f, err := os.Create(path); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	c := connCost{
		heap:       float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n),
		stack:      float64(int64(after.StackInuse)-int64(before.StackInuse)) / float64(n),
		goroutines: float64(g1-g0) / float64(n),
	}
	// Stacks shrink only at a collection: none until measured.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	fmt.Fprintln(stdin, "publish")
	if line, err := out.ReadString('\n'); err != nil || line != "published\n" {
		t.Fatalf("device process: %q %v", line, err)
	}
	for range n {
		<-delivered
	}
	var pub runtime.MemStats
	runtime.ReadMemStats(&pub)
	c.publishStack = float64(int64(pub.StackInuse)-int64(before.StackInuse)) / float64(n)
	return c
}

// BenchmarkConnectionMemory reports what one idle device connection (TLS
// with a client certificate, persistent session, Last Will, two
// subscriptions, a retained status) costs the embedded broker:
// heap-B/conn and stack-B/conn after two collections. CONNMEM_N sets the
// number of connections (default 1,000); CONNMEM_HEAPPROFILE=file writes
// the heap profile with the devices connected (run with
// -test.memprofilerate=1 for exact numbers).
func BenchmarkConnectionMemory(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("CONNMEM_N")); err == nil && v > 0 {
		n = v
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for b.Loop() {
		c := measureConnections(b, broker.EmbeddedConfig{}, n)
		b.ReportMetric(c.heap, "heap-B/conn")
		b.ReportMetric(c.stack, "stack-B/conn")
		b.ReportMetric(c.goroutines, "goroutines/conn")
		b.ReportMetric(c.heap+c.stack, "B/conn")
		b.ReportMetric(c.publishStack, "publish-stack-B/conn")
	}
}
