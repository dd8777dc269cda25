package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/auth"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/ota/release"
)

// startSigningAPI is startAPI with TUF keys in KeysDir and the repository
// they signed in DataDir/repo, so the server can release agent binaries.
func startSigningAPI(t *testing.T) *apiEnv {
	t.Helper()
	data, keys := t.TempDir(), filepath.Join(t.TempDir(), "keys")
	if err := release.NewRepo(keys, filepath.Join(data, "repo")).Init(release.KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	return startAPI(t, server.Config{DataDir: data, KeysDir: keys})
}

func pushPath(version, platform, body string) string {
	sum := sha256.Sum256([]byte(body))
	return "/api/v1/agents?" + url.Values{"version": {version}, "platform": {platform}, "sha256": {hex.EncodeToString(sum[:])}}.Encode()
}

// TestAgentPushScopes: pushing an agent binary needs an operator token
// (a viewer gets 403 and nothing is released); a viewer lists releases.
func TestAgentPushScopes(t *testing.T) {
	e := startSigningAPI(t)
	viewer := e.token("ro", auth.Viewer, "").Token
	operator := e.token("ops", auth.Operator, "").Token
	bin := "\x7fELF edge-agent 2"
	ct := "Content-Type: " + apitype.AgentBodyType
	if code, resp, _ := e.req("POST", pushPath("2", "linux/arm64", bin), viewer, bin, ct); code != 403 {
		t.Fatalf("viewer push: %d %s, want 403", code, resp)
	}
	if code, resp, _ := e.req("POST", pushPath("2", "linux/arm64", bin), "", bin, ct); code != 401 {
		t.Fatalf("anonymous push: %d %s, want 401", code, resp)
	}
	list := func() []apitype.AgentRelease {
		code, resp, _ := e.req("GET", "/api/v1/agents", viewer, "")
		if code != 200 {
			t.Fatalf("viewer list: %d %s", code, resp)
		}
		var out []apitype.AgentRelease
		if err := json.Unmarshal([]byte(resp), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if rs := list(); len(rs) != 0 {
		t.Fatalf("refused pushes released %+v", rs)
	}
	code, resp, _ := e.req("POST", pushPath("2", "linux/arm64", bin), operator, bin, ct)
	if code != 200 {
		t.Fatalf("operator push: %d %s", code, resp)
	}
	var rel apitype.AgentRelease
	json.Unmarshal([]byte(resp), &rel)
	if rel.Version != "2" || rel.Platform != "linux/arm64" || rel.Target.Name != "agent/linux-arm64/2/edge-agent" || rel.Target.Length != int64(len(bin)) || rel.Existed {
		t.Fatalf("push answer %+v", rel)
	}
	if rs := list(); len(rs) != 1 || rs[0].Target != rel.Target {
		t.Fatalf("list %+v, want the pushed release", rs)
	}
	// The release is TUF-signed into the repository devices read.
	as, err := release.NewRepo("", filepath.Join(e.data, "repo")).Agents()
	if err != nil || len(as) != 1 || as[0].Custom.Version != "2" || as[0].Custom.GOARCH != "arm64" {
		t.Fatalf("signed targets %+v %v", as, err)
	}
	// Same bytes again: fine, nothing changes.
	if code, resp, _ := e.req("POST", pushPath("2", "linux/arm64", bin), e.admin, bin, ct); code != 200 || !strings.Contains(resp, `"existed": true`) {
		t.Fatalf("same push again: %d %s", code, resp)
	}
}

// TestAgentPushRefusals: every bad push is refused with a reason and
// releases nothing.
func TestAgentPushRefusals(t *testing.T) {
	e := startSigningAPI(t)
	op := e.token("ops", auth.Operator, "").Token
	ct := "Content-Type: " + apitype.AgentBodyType
	bin := "\x7fELF edge-agent 2"
	if code, resp, _ := e.req("POST", pushPath("2", "linux/amd64", bin), op, bin, ct); code != 200 {
		t.Fatalf("control: %d %s", code, resp)
	}
	for _, c := range []struct {
		name, path, body string
		hdr              []string
		code             int
		want             string
	}{
		{"different bytes, same version", pushPath("2", "linux/amd64", "other"), "other", []string{ct}, 409, "immutable"},
		{"corrupted in transit", pushPath("3", "linux/amd64", bin), bin + "x", []string{ct}, 400, "sha256"},
		{"bad platform", pushPath("3", "linux/arm64/v8", bin), bin, []string{ct}, 400, "only defined for arm"},
		{"no platform", "/api/v1/agents?version=3", bin, []string{ct}, 400, "GOOS/GOARCH"},
		{"bad version", pushPath("../3", "linux/amd64", bin), bin, []string{ct}, 400, "version"},
		{"empty binary", pushPath("3", "linux/amd64", ""), "", []string{ct}, 400, "empty"},
		{"JSON body", pushPath("3", "linux/amd64", bin), bin, nil, 415, apitype.AgentBodyType},
		{"form (CSRF)", pushPath("3", "linux/amd64", bin), bin, []string{"Content-Type: application/x-www-form-urlencoded"}, 415, "cross-site"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, resp, _ := e.req("POST", c.path, op, c.body, c.hdr...)
			if code != c.code || !strings.Contains(resp, c.want) {
				t.Fatalf("%d %s, want %d with %q", code, resp, c.code, c.want)
			}
		})
	}
	as, _ := release.NewRepo("", filepath.Join(e.data, "repo")).Agents()
	if len(as) != 1 {
		t.Fatalf("refused pushes changed the repository: %+v", as)
	}
	// A server without signing keys says how to fix it.
	n := startAPI(t, server.Config{})
	if code, resp, _ := n.req("POST", pushPath("2", "linux/amd64", bin), n.admin, bin, ct); code != 409 || !strings.Contains(resp, "--keys-dir") {
		t.Fatalf("no keys: %d %s", code, resp)
	}
}

// TestAgentRolloutCreate: an agent rollout needs a released version and no
// model; it gets the agent gates (no traffic minimum).
func TestAgentRolloutCreate(t *testing.T) {
	e := startSigningAPI(t)
	op := e.token("ops", auth.Operator, "").Token
	viewer := e.token("ro", auth.Viewer, "").Token
	bin := "\x7fELF edge-agent 2"
	if code, resp, _ := e.req("POST", pushPath("2", "linux/amd64", bin), op, bin, "Content-Type: "+apitype.AgentBodyType); code != 200 {
		t.Fatalf("push: %d %s", code, resp)
	}
	body := func(r apitype.RolloutRequest) string { b, _ := json.Marshal(r); return string(b) }
	if code, resp, _ := e.req("POST", "/api/v1/rollouts", op, body(apitype.RolloutRequest{Kind: rollout.KindAgent, Version: "9"})); code != 404 || !strings.Contains(resp, "agents push") {
		t.Fatalf("unreleased agent version: %d %s", code, resp)
	}
	if code, resp, _ := e.req("POST", "/api/v1/rollouts", op, body(apitype.RolloutRequest{Kind: rollout.KindAgent, ModelID: "iris", Version: "2"})); code != 400 {
		t.Fatalf("agent rollout with a model: %d %s", code, resp)
	}
	if code, resp, _ := e.req("POST", "/api/v1/rollouts", viewer, body(apitype.RolloutRequest{ID: "a1", Kind: rollout.KindAgent, Version: "2"})); code != 403 {
		t.Fatalf("viewer creates an agent rollout: %d %s", code, resp)
	}
	code, resp, _ := e.req("POST", "/api/v1/rollouts", op, body(apitype.RolloutRequest{ID: "a1", Kind: rollout.KindAgent, Version: "2", Stages: []int{50, 100}}))
	if code != 200 {
		t.Fatalf("agent rollout: %d %s", code, resp)
	}
	var r rollout.Rollout
	json.Unmarshal([]byte(resp), &r)
	if r.Spec.Kind != rollout.KindAgent || r.Spec.ModelID != "" || r.Spec.Gates.MinRequests != 0 || r.Spec.Target.Name != "" {
		t.Fatalf("agent rollout spec %+v", r.Spec)
	}
}

// TestAgentRolloutOneAtATime: a second agent rollout while one is active is
// a 409 that says so; a model rollout is not in its way.
func TestAgentRolloutOneAtATime(t *testing.T) {
	e := startSigningAPI(t)
	bin := "\x7fELF edge-agent 2"
	if code, resp, _ := e.req("POST", pushPath("2", "linux/amd64", bin), e.admin, bin, "Content-Type: "+apitype.AgentBodyType); code != 200 {
		t.Fatalf("push: %d %s", code, resp)
	}
	body := func(id string) string {
		b, _ := json.Marshal(apitype.RolloutRequest{ID: id, Kind: rollout.KindAgent, Version: "2"})
		return string(b)
	}
	if code, resp, _ := e.req("POST", "/api/v1/rollouts", e.admin, body("a1")); code != 200 {
		t.Fatalf("first: %d %s", code, resp)
	}
	if code, resp, _ := e.req("POST", "/api/v1/rollouts", e.admin, body("a2")); code != 409 || !strings.Contains(resp, "one edge-agent rollout at a time") {
		t.Fatalf("second: %d %s", code, resp)
	}
}
