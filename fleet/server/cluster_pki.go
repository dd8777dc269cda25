package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/store"
)

// pkiBucket holds the fleet CA and the command-signing key on a shared
// (PostgreSQL) store, so every replica signs jobs and device certificates
// with the same keys.
const pkiBucket = "cluster-pki"

// sharePKI makes the replicas on a shared store use one fleet CA (unless
// the operator gives --ca-cert/--ca-key files, which every replica must
// then be given) and one command-signing key: the first replica stores the
// files it loaded or generated in dir; every later one writes the stored
// files into its own dir before loading them. A no-op on bbolt.
func (s *Server) sharePKI(dir string) error {
	if s.leader == nil { // bbolt: nothing shared
		return nil
	}
	files := []string{CommandKeyFile}
	if s.cfg.CACertFile == "" {
		files = append(files, pki.CACertFile, pki.CAKeyFile)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("shared PKI: %w", err)
	}
	stored := map[string][]byte{}
	err := s.store.Update(context.Background(), func(tx store.Tx) error {
		clear(stored)
		missing := false
		for _, f := range files {
			v, err := tx.Get(pkiBucket, f)
			if errors.Is(err, store.ErrNotFound) {
				missing = true
				continue
			}
			if err != nil {
				return err
			}
			stored[f] = v
		}
		if !missing {
			return nil
		}
		if len(stored) > 0 {
			return fmt.Errorf("the store holds only some of %v in %s: restore the missing ones", files, pkiBucket)
		}
		// First replica: its own (loaded or generated) files become the fleet's.
		if s.cfg.CACertFile == "" {
			if _, _, err := pki.LoadOrCreateCA(dir, "edgefleet fleet CA"); err != nil {
				return err
			}
		}
		if _, err := pki.LoadOrCreateSigningKey(filepath.Join(dir, CommandKeyFile)); err != nil {
			return err
		}
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				return err
			}
			if err := tx.Put(pkiBucket, f, b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("shared PKI: %w", err)
	}
	for f, b := range stored {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			return fmt.Errorf("shared PKI: %w", err)
		}
	}
	if len(stored) > 0 {
		s.log.Info("fleet CA and command key taken from the shared store", "dir", dir)
	}
	return nil
}

// natsTLS verifies tls:// NATS nodes with the broker CA file, else the
// fleet CA (nil for nats:// URLs).
func (s *Server) natsTLS() *tls.Config {
	for _, u := range s.cfg.NATSURLs {
		if len(u) > 6 && u[:6] == "tls://" {
			tc := &tls.Config{MinVersion: tls.VersionTLS12}
			if s.ca != nil {
				tc.RootCAs = s.ca.Pool()
			}
			if s.cfg.BrokerCAFile != "" {
				if pem, err := os.ReadFile(s.cfg.BrokerCAFile); err == nil {
					p := x509.NewCertPool()
					if p.AppendCertsFromPEM(pem) {
						tc.RootCAs = p
					}
				}
			}
			return tc
		}
	}
	return nil
}

// ErrNoSharedCA is returned by LoadSharedCA while no replica has stored
// the fleet CA yet.
var ErrNoSharedCA = errors.New("no fleet CA in the shared store yet (start a fleet-server replica on it first)")

// LoadSharedCA loads the fleet CA the replicas keep in the shared store
// (for the NATS nodes' TLS certificates and device certificate checks),
// writing its files into dir.
func LoadSharedCA(ctx context.Context, st store.Store, dir string) (*pki.CA, error) {
	files := map[string][]byte{}
	err := st.View(ctx, func(tx store.Tx) error {
		for _, f := range []string{pki.CACertFile, pki.CAKeyFile} {
			v, err := tx.Get(pkiBucket, f)
			if errors.Is(err, store.ErrNotFound) {
				return ErrNoSharedCA
			}
			if err != nil {
				return err
			}
			files[f] = v
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("shared fleet CA: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("shared fleet CA: %w", err)
	}
	for f, b := range files {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			return nil, fmt.Errorf("shared fleet CA: %w", err)
		}
	}
	return pki.LoadCA(filepath.Join(dir, pki.CACertFile), filepath.Join(dir, pki.CAKeyFile))
}
