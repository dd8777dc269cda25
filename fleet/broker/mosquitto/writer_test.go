package mosquitto_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/fleet/broker/mosquitto"
)

// TestWriter: every Write reflects the accounts of that moment and writes
// the TLS files when configured; a failing account lookup writes nothing.
func TestWriter(t *testing.T) {
	hash := func(pw string) string {
		h, err := mosquitto.HashPassword(pw)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	accts := []mosquitto.Account{{Username: "d1", Hash: hash("one")}}
	var lookupErr error
	tests := []struct {
		name string
		tls  *mosquitto.TLSFiles
	}{
		{"plain", nil},
		{"tls", &mosquitto.TLSFiles{CA: []byte("ca"), Cert: []byte("cert"), Key: []byte("key")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "mosq")
			w := &mosquitto.Writer{Dir: dir, Listen: "127.0.0.1:1883", Server: mosquitto.Account{Username: "fleet-server", Hash: hash("srv")},
				TLSFiles: tt.tls, Accounts: func(context.Context) ([]mosquitto.Account, error) { return accts, lookupErr }}
			ctx := context.Background()
			if err := w.Write(ctx); err != nil {
				t.Fatal(err)
			}
			read := func(name string) string {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			if pw := read("passwd"); !strings.Contains(pw, "d1:") || !strings.Contains(pw, "fleet-server:") {
				t.Fatalf("passwd = %q", pw)
			}
			conf := read("mosquitto.conf")
			if got := strings.Contains(conf, "certfile "+filepath.Join(dir, "broker.pem")); got != (tt.tls != nil) {
				t.Fatalf("TLS listener = %v, want %v:\n%s", got, tt.tls != nil, conf)
			}
			if tt.tls != nil && read("broker-key.pem") != "key" {
				t.Fatal("key file not written")
			}
			accts = append(accts, mosquitto.Account{Username: "d2", Hash: hash("two")})
			if err := w.Write(ctx); err != nil || !strings.Contains(read("passwd"), "d2:") {
				t.Fatalf("second write: %v, passwd %q", err, read("passwd"))
			}
			lookupErr = errors.New("store down")
			accts = accts[:1]
			if err := w.Write(ctx); !errors.Is(err, lookupErr) {
				t.Fatalf("write with failing lookup: %v", err)
			}
			lookupErr = nil
			if !strings.Contains(read("passwd"), "d2:") {
				t.Fatal("failed write changed the files")
			}
		})
	}
}
