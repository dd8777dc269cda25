package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/server"
)

// fleetctl runs the CLI in-process and returns its stdout and error.
func fleetctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	root := newRootCmd()
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	w.Close()
	os.Stdout = old
	return string(<-done), err
}

// TestTokensAndAuditCLI drives fleetctl against a real server over HTTPS:
// the generated admin token (via --token-file) creates an operator token,
// which is refused on admin commands with a clear message; no token gives
// a clear 401; a revoked token stops working; the audit log shows the
// changes; enrollment tokens moved to "enroll-tokens create".
func TestTokensAndAuditCLI(t *testing.T) {
	dir := t.TempDir()
	srv, err := server.Start(context.Background(), server.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", EmbeddedAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, k := range []string{"FLEET_TOKEN", "EDGEFLEET_TOKEN", "FLEET_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("FLEET_CA_FILE", filepath.Join(dir, server.PKIDir, pki.CACertFile))
	base := []string{"--server", srv.URL()}
	adminArgs := append(append([]string{}, base...), "--token-file", srv.AdminTokenFile(), "--json")

	out, err := fleetctl(t, append(adminArgs, "tokens", "create", "--name", "ci", "--scope", "operator")...)
	if err != nil {
		t.Fatalf("tokens create: %v\n%s", err, out)
	}
	var created apitype.APITokenResponse
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Token, "eft_") || created.Info.Scope != "operator" {
		t.Fatalf("tokens create output %q: %v", out, err)
	}
	out, err = fleetctl(t, append(adminArgs, "tokens", "list")...)
	if err != nil || !strings.Contains(out, `"ci"`) || !strings.Contains(out, `"bootstrap-admin"`) || strings.Contains(out, created.Token) {
		t.Fatalf("tokens list: %v\n%s", err, out)
	}
	out, err = fleetctl(t, append(adminArgs, "enroll-tokens", "create", "--label", "site=lab")...)
	if err != nil || !strings.Contains(out, `"token"`) {
		t.Fatalf("enroll-tokens create: %v\n%s", err, out)
	}

	// No token: a clear 401.
	_, err = fleetctl(t, append(base, "devices", "list")...)
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "--token-file") {
		t.Fatalf("no token: %v", err)
	}
	// Operator token on an admin command: a clear 403; on an operator
	// command it works (control).
	t.Setenv("FLEET_TOKEN", created.Token)
	_, err = fleetctl(t, append(base, "tokens", "list")...)
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "scope") {
		t.Fatalf("operator on tokens list: %v", err)
	}
	if out, err := fleetctl(t, append(base, "devices", "list")...); err != nil {
		t.Fatalf("operator on devices list: %v\n%s", err, out)
	}
	// Revoke it: refused from then on.
	t.Setenv("FLEET_TOKEN", "")
	if out, err := fleetctl(t, append(adminArgs, "tokens", "revoke", created.Info.ID)...); err != nil {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	t.Setenv("FLEET_TOKEN", created.Token)
	_, err = fleetctl(t, append(base, "devices", "list")...)
	if err == nil || !strings.Contains(err.Error(), "token_revoked") {
		t.Fatalf("revoked token: %v", err)
	}
	t.Setenv("FLEET_TOKEN", "")

	out, err = fleetctl(t, append(adminArgs, "audit", "--limit", "10")...)
	if err != nil {
		t.Fatalf("audit: %v\n%s", err, out)
	}
	var page apitype.AuditPage
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatalf("audit output %q: %v", out, err)
	}
	routes := []string{}
	for _, e := range page.Entries {
		routes = append(routes, e.Method+" "+e.Route)
	}
	want := "DELETE /api/v1/tokens/{id},POST /api/v1/enroll-tokens,POST /api/v1/tokens"
	if strings.Join(routes, ",") != want {
		t.Fatalf("audit routes %v, want %s", routes, want)
	}
	// A missing token file is a clear error, not an unauthenticated call.
	_, err = fleetctl(t, append(base, "--token-file", filepath.Join(dir, "nope"), "devices", "list")...)
	if err == nil || !strings.Contains(err.Error(), "token file") {
		t.Fatalf("missing token file: %v", err)
	}
}
