// Package cmd holds edgefleet's binaries; this test enforces the project's
// dependency direction over `go list -deps`.
package cmd

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/edgefleet/edgefleet/"

type pkgInfo struct {
	ImportPath string
	Imports    []string
	Deps       []string
	CgoFiles   []string
	Standard   bool
}

func listDeps(t *testing.T, env []string, patterns ...string) []pkgInfo {
	t.Helper()
	args := append([]string{"list", "-json"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", patterns, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkgInfo
	for {
		var p pkgInfo
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(path string) string { return strings.TrimPrefix(path, module) }

func under(path, prefix string) bool {
	r := rel(path)
	return r == prefix || strings.HasPrefix(r, prefix+"/")
}

// forbidden are dependencies between packages of the same layer that
// would tie a job to another's: the package under from (or its
// subpackages) must not depend on the one under to, directly or not.
var forbidden = []struct{ from, to, why string }{
	{"agent/batch", "agent/api", "batch files predict through agent/predict, not the HTTP API"},
	{"agent/jobs", "agent/api", "jobs predict through agent/predict (jobs.Predictor), not the HTTP API"},
	{"agent/predict", "agent/api", "the prediction service is below the HTTP API"},
	{"agent/serving", "agent/api", "serving is below the HTTP API (HTTP statuses are agent/api's)"},
	{"agent/serving", "agent/predict", "serving is below the prediction service"},
	{"agent/update", "agent/fleetlink", "enrollment is agent/enroll; updates by hand do not need the fleet link"},
	{"agent/enroll", "agent/fleetlink", "the link uses the enrollment, not the other way round"},
	{"inference", "quant/ptq", "the post-training quantizer drives the runtime, it is above it"},
	{"quant", "quant/ptq", "quant is the runtime's fixed-point math, below the quantizer"},
	{"ota/release", "ota/selfupdate", "publishing releases (fleet-server) must not link the agent's self-update"},
}

// forbiddenImports are direct imports that would tie a job to another's
// where a dependency through the wiring remains: agent/fleetlink reaches
// agent/api only through agent/daemon's FleetDeps (the daemon wires both).
var forbiddenImports = []struct{ from, to, why string }{
	{"agent/fleetlink", "agent/api", "the MQTT predict topic predicts through agent/predict, not the HTTP API"},
}

// predictClients are the packages that predict through the prediction
// service (agent/predict) itself, none through another's adapter.
var predictClients = []string{"agent/api", "agent/batch", "agent/jobs", "agent/fleetlink"}

// TestDependencyDirection: cmd → agent/fleet → ota, inference, hardware,
// quant, internal → standard library (quant/ptq, the post-training
// quantizer, drives the runtime and so sits above inference); the agent
// imports nothing under fleet/ (the shared agent↔fleet contract is
// internal/wire);
// the pairs in forbidden and forbiddenImports; and the prediction service's
// clients import it.
func TestDependencyDirection(t *testing.T) {
	pkgs := listDeps(t, nil, "./...")
	lower := []string{"inference", "ota", "hardware", "quant", "internal"}
	clients := map[string]bool{}
	for _, p := range pkgs {
		if !strings.HasPrefix(p.ImportPath, module) {
			continue
		}
		for _, d := range p.Imports {
			for _, f := range forbiddenImports {
				if under(p.ImportPath, f.from) && under(d, f.to) {
					t.Errorf("%s imports %s: %s", rel(p.ImportPath), rel(d), f.why)
				}
			}
			if rel(d) == "agent/predict" {
				clients[rel(p.ImportPath)] = true
			}
		}
		for _, d := range p.Deps {
			if !strings.HasPrefix(d, module) {
				continue
			}
			for _, l := range lower {
				if under(p.ImportPath, l) && (under(d, "agent") || under(d, "fleet") || under(d, "cmd")) {
					t.Errorf("%s (a lower layer) depends on %s", rel(p.ImportPath), rel(d))
				}
			}
			// The quantization math sits below the runtime; the post-training
			// quantizer (quant/ptq) drives the runtime and sits above it.
			if rel(p.ImportPath) == "quant" {
				t.Errorf("quant must depend only on the standard library, imports %s", rel(d))
			}
			if under(p.ImportPath, "agent") && under(d, "fleet") {
				t.Errorf("%s depends on the fleet's %s (the shared contract is internal/wire)", rel(p.ImportPath), rel(d))
			}
			// The agent↔fleet contract belongs to neither side.
			if under(p.ImportPath, "internal/wire") {
				t.Errorf("wire must depend only on the standard library, imports %s", rel(d))
			}
			if !under(p.ImportPath, "cmd") && under(d, "cmd") {
				t.Errorf("%s depends on a command %s", rel(p.ImportPath), rel(d))
			}
			for _, f := range forbidden {
				if under(p.ImportPath, f.from) && under(d, f.to) {
					t.Errorf("%s depends on %s: %s", rel(p.ImportPath), rel(d), f.why)
				}
			}
		}
	}
	for _, c := range predictClients {
		if !clients[c] {
			t.Errorf("%s does not import agent/predict: it should predict through the prediction service", c)
		}
	}
}

// TestBinaryDependencies: what each binary must not link. No binary links
// test-support packages. fleet-server and
// fleetctl publish releases but never apply one, so they must not link the
// agent's self-update (minio/selfupdate); the control is edge-agent, which
// must.
func TestBinaryDependencies(t *testing.T) {
	links := map[string]map[string]bool{}
	for _, p := range listDeps(t, nil, "./cmd/fleet-server", "./cmd/fleetctl", "./cmd/edge-agent") {
		links[rel(p.ImportPath)] = map[string]bool{}
		for _, d := range p.Deps {
			links[rel(p.ImportPath)][rel(d)] = true
		}
	}
	// Test support is never linked into a binary.
	for bin, deps := range links {
		for _, d := range []string{"internal/kerneltest", "internal/kerneltest/singleop", "inference/internal/zoo", "inference/internal/opfuzz"} {
			if deps[d] {
				t.Errorf("%s links the test-support package %s", bin, d)
			}
		}
	}
	selfupdate := []string{"github.com/minio/selfupdate", "ota/selfupdate"}
	for _, d := range selfupdate {
		for _, bin := range []string{"cmd/fleet-server", "cmd/fleetctl"} {
			if links[bin][d] {
				t.Errorf("%s links %s (only the agent applies updates)", bin, d)
			}
		}
		if !links["cmd/edge-agent"][d] {
			t.Errorf("control: edge-agent does not link %s: the check above sees nothing", d)
		}
	}
}

// heavy are the packages a fleet API client must not link: the server, the
// brokers and the database engines behind the store.
var heavy = []string{
	module + "fleet/server",
	module + "fleet/broker", // mochi-mqtt and paho; fleet/broker/mosquitto is light
	module + "fleet/broker/natscluster",
	module + "fleet/store/boltstore",
	module + "fleet/store/postgres",
	"go.etcd.io/bbolt",
	"github.com/mochi-mqtt/server/v2",
	"github.com/eclipse/paho.mqtt.golang",
	"github.com/nats-io/nats-server/v2/server",
	"github.com/jackc/pgx/v5",
}

// TestAPIClientIsLight: fleet/apitype (the HTTP API's types) and
// fleet/client import nothing heavy, so fleetctl links the server, the
// brokers and the store engines only where a command really needs them:
// MQTT (paho) only through fleet/simulate, which talks to brokers as
// simulated devices.
func TestAPIClientIsLight(t *testing.T) {
	for _, p := range listDeps(t, nil, "./fleet/apitype", "./fleet/client") {
		for _, d := range p.Deps {
			for _, h := range heavy {
				if d == h {
					t.Errorf("%s depends on %s", rel(p.ImportPath), d)
				}
			}
		}
	}
	cmd := exec.Command("go", "list", "-deps", "-json", "./cmd/fleetctl")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./cmd/fleetctl: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	n := 0
	for {
		var p pkgInfo
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		for _, h := range heavy {
			if p.ImportPath == h && h != "github.com/eclipse/paho.mqtt.golang" && h != "go.etcd.io/bbolt" {
				t.Errorf("fleetctl links %s", h)
			}
		}
		for _, imp := range p.Imports {
			switch {
			case imp == "github.com/eclipse/paho.mqtt.golang" && p.ImportPath != module+"fleet/simulate":
				t.Errorf("fleetctl links paho through %s (only fleet/simulate talks MQTT)", p.ImportPath)
			case imp == "go.etcd.io/bbolt" && p.ImportPath != module+"ota":
				// ota/release (models push, agents push) reaches the device-side installer
				// in ota, which keeps its state in bbolt; nothing else may.
				t.Errorf("fleetctl links bbolt through %s", p.ImportPath)
			}
		}
	}
	if n < 10 {
		t.Fatalf("go list returned only %d packages", n)
	}
}

// TestAgentIsCGOFree: the device binary builds without cgo.
func TestAgentIsCGOFree(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-json", "./cmd/edge-agent")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list with CGO_ENABLED=0: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	n := 0
	for {
		var p pkgInfo
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		if len(p.CgoFiles) > 0 {
			t.Errorf("edge-agent dependency %s uses cgo (%v)", p.ImportPath, p.CgoFiles)
		}
		if strings.HasPrefix(p.ImportPath, "github.com/mattn/go-tflite") {
			t.Errorf("edge-agent links %s without the tflite build tag", p.ImportPath)
		}
	}
	if n < 10 {
		t.Fatalf("go list returned only %d packages", n)
	}
}
