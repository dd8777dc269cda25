package broker_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/broker"
)

// TestConnectTimeout: a connection that does not complete its TLS
// handshake, or does not send CONNECT, within the connect timeout is
// closed by the broker (before, it held its goroutines and buffers
// forever). Control: a device that connected in time stays connected
// well past the timeout.
func TestConnectTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		tls  bool
		// stall opens a connection that never sends CONNECT.
		stall func(t *testing.T, addr, caDir string) net.Conn
	}{
		{"tcp, no CONNECT", false, func(t *testing.T, addr, _ string) net.Conn { return dial(t, addr) }},
		{"tls handshake never started", true, func(t *testing.T, addr, _ string) net.Conn { return dial(t, addr) }},
		{"tls done, no CONNECT", true, func(t *testing.T, addr, caDir string) net.Conn {
			cfg, err := deviceTLS(caDir, "dev-1")
			if err != nil {
				t.Fatal(err)
			}
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := broker.EmbeddedConfig{ConnectTimeout: timeout}
			var addr, caDir string
			if tc.tls {
				caDir = t.TempDir()
				cfg.Addr, cfg.Auth, cfg.TLS = "127.0.0.1:0", certAuth{}, connMemCA(t, caDir)
				e, err := broker.StartEmbedded(cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { e.Close() })
				addr = e.Addr()
			} else {
				e, _ := startLimited(t, cfg, "dev-1")
				addr = e.Addr()
				// Control: a device that logged in in time is not cut.
				ok := rawConnect(t, addr, "dev-1", "pw-dev-1")
				defer ok.Close()
				defer func() {
					ok.SetReadDeadline(time.Now().Add(3 * timeout))
					if _, err := ok.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Errorf("connected device: read %v, want our own deadline (connection kept)", err)
					}
				}()
			}
			c := tc.stall(t, addr, caDir)
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err := io.Copy(io.Discard, c)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("stalled connection still open after 30 s (%v), want closed by the broker after %v", err, timeout)
			}
		})
	}
}

func dial(t *testing.T, addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
