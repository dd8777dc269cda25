package mosquitto

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Writer keeps an external Mosquitto's files in Dir current: fleet-server
// rewrites them after every change of the device accounts (then SIGHUP
// Mosquitto to reload them). Set the fields before the first Write; Write
// may be called concurrently.
type Writer struct {
	// Dir receives passwd, acl and mosquitto.conf (and the TLS files).
	Dir string
	// Listen is the generated listener's "host:port".
	Listen string
	// Server is the fleet server's own account.
	Server Account
	// Accounts returns the devices' accounts at the time of a Write.
	Accounts func(ctx context.Context) ([]Account, error)
	// TLSFiles, if set, are the PEM files of a TLS listener (the fleet
	// CA, and a broker certificate and its key issued from it), written
	// into Dir as ca.pem, broker.pem and broker-key.pem.
	TLSFiles *TLSFiles

	mu sync.Mutex
}

// TLSFiles is the content of a TLS listener's PEM files.
type TLSFiles struct {
	CA, Cert, Key []byte
}

// Write regenerates and stores every file.
func (w *Writer) Write(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	accts, err := w.Accounts(ctx)
	if err != nil {
		return err
	}
	tlsFiles, err := w.writeTLS()
	if err != nil {
		return err
	}
	f, err := Generate(Options{Server: w.Server, Devices: accts, Dir: w.Dir, Listen: w.Listen, TLS: tlsFiles})
	if err != nil {
		return err
	}
	return f.Write(w.Dir)
}

// writeTLS stores TLSFiles in Dir (nil without them).
func (w *Writer) writeTLS() (*TLS, error) {
	if w.TLSFiles == nil {
		return nil, nil
	}
	if err := os.MkdirAll(w.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("mosquitto TLS files: %w", err)
	}
	t := &TLS{CAFile: filepath.Join(w.Dir, "ca.pem"), CertFile: filepath.Join(w.Dir, "broker.pem"), KeyFile: filepath.Join(w.Dir, "broker-key.pem")}
	files := map[string][]byte{t.CAFile: w.TLSFiles.CA, t.CertFile: w.TLSFiles.Cert, t.KeyFile: w.TLSFiles.Key}
	for path, b := range files {
		if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
			return nil, fmt.Errorf("mosquitto TLS files: %w", err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return nil, fmt.Errorf("mosquitto TLS files: %w", err)
		}
	}
	return t, nil
}
