// Package brokertest starts real MQTT brokers for tests: the embedded broker
// and a Mosquitto child process on a free loopback port with generated
// password and ACL files.
package brokertest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/broker"
	"github.com/edgefleet/edgefleet/fleet/broker/mosquitto"
)

// MosquittoPath is the Debian package's broker binary.
const MosquittoPath = "/usr/sbin/mosquitto"

// Accounts is a thread-safe in-memory Authenticator and account list.
type Accounts struct {
	mu     sync.Mutex
	hashes map[string]string
	server string
}

// NewAccounts returns accounts with a server user.
func NewAccounts(t testing.TB, serverUser, serverPassword string) *Accounts {
	a := &Accounts{hashes: map[string]string{}, server: serverUser}
	a.Add(t, serverUser, serverPassword)
	return a
}

// Add registers a user (a device unless it is the server user).
func (a *Accounts) Add(t testing.TB, user, password string) {
	h, err := mosquitto.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.hashes[user] = h
	a.mu.Unlock()
}

// Authenticate implements broker.Authenticator.
func (a *Accounts) Authenticate(user, password string) (broker.Principal, bool) {
	a.mu.Lock()
	h, ok := a.hashes[user]
	a.mu.Unlock()
	if !ok || !mosquitto.VerifyPassword(h, password) {
		return broker.Principal{}, false
	}
	if user == a.server {
		return broker.Principal{Server: true}, true
	}
	return broker.Principal{DeviceID: user}, true
}

// Files renders Mosquitto files for the accounts.
func (a *Accounts) Files(t testing.TB, dir, listen string) mosquitto.Files {
	a.mu.Lock()
	o := mosquitto.Options{Dir: dir, Listen: listen, Server: mosquitto.Account{Username: a.server, Hash: a.hashes[a.server]}}
	for u, h := range a.hashes {
		if u != a.server {
			o.Devices = append(o.Devices, mosquitto.Account{Username: u, Hash: h})
		}
	}
	a.mu.Unlock()
	f, err := mosquitto.Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// StartEmbedded starts the embedded broker on a free loopback port and
// closes it when the test ends. It returns the broker URL.
func StartEmbedded(t testing.TB, auth broker.Authenticator) string {
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", Auth: auth, PasswordAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e.URL()
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartMosquitto writes Mosquitto files for the accounts into a temp dir,
// starts /usr/sbin/mosquitto on a free loopback port, waits until it
// accepts connections and kills it when the test ends. It returns the
// broker URL.
func StartMosquitto(t testing.TB, a *Accounts) string {
	t.Helper()
	if _, err := os.Stat(MosquittoPath); err != nil {
		t.Fatalf("mosquitto not installed (run build/setup-deps.sh): %v", err)
	}
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	files := a.Files(t, dir, addr)
	if os.Geteuid() == 0 {
		// Mosquitto started as root drops to user "mosquitto", which cannot
		// read the test's private temp dir.
		files.Conf += "user root\n"
	}
	if err := files.Write(dir); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "mosquitto.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(MosquittoPath, "-c", filepath.Join(dir, "mosquitto.conf"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "mosquitto.log"))
			t.Logf("mosquitto log:\n%s", b)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return "mqtt://" + addr
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "mosquitto.log"))
			t.Fatalf("mosquitto did not listen on %s: %v\n%s", addr, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
