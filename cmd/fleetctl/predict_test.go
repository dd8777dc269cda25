package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefleet/edgefleet/agent/enroll"
	"github.com/edgefleet/edgefleet/agent/fleetlink"
	"github.com/edgefleet/edgefleet/fleet/broker"
	"github.com/edgefleet/edgefleet/fleet/pki"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/internal/waitfor"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestDevicesPredictCLI drives `fleetctl devices predict` against a real
// fleet-server over HTTPS with real devices on its embedded broker: an
// online device answers through its fleet link (control); an enrolled
// device that is not connected is refused at once with device_offline,
// one connected but not subscribed to prediction requests with
// device_not_ready after the server's --predict-ready-wait (nothing sent);
// an unknown device is a 404; a body that is not a JSON object is refused
// before anything is sent.
func TestDevicesPredictCLI(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	const enrollToken = "predict-cli-enrollment-token-0123456789"
	connected := make(chan string, 16)
	srv, err := server.Start(ctx, server.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", EmbeddedAddr: "127.0.0.1:0",
		Tokens: []string{enrollToken}, PredictTimeout: 10 * time.Minute,
		OnBrokerEvent: func(ev broker.ClientEvent) {
			if ev.Connected && ev.Principal.DeviceID != "" {
				select { // never holds the broker back
				case connected <- ev.Principal.DeviceID:
				default:
				}
			}
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	runDone := make(chan struct{})
	go func() { srv.Run(ctx, nil); close(runDone) }()
	defer func() { cancel(); <-runDone }()
	caFile := filepath.Join(dir, server.PKIDir, pki.CACertFile)
	for _, k := range []string{"FLEET_TOKEN", "EDGEFLEET_TOKEN", "FLEET_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("FLEET_CA_FILE", caFile)

	var devDirs []string
	for _, id := range []string{"dev-on", "dev-off", "dev-quiet"} {
		d := t.TempDir()
		if _, err := enroll.Enroll(ctx, srv.URL(), d, wire.EnrollRequest{Token: enrollToken, DeviceID: id, Hardware: wire.Hardware{Arch: "amd64"}},
			enroll.EnrollOptions{CAFile: caFile}); err != nil {
			t.Fatalf("enroll %s: %v", id, err)
		}
		devDirs = append(devDirs, d)
	}
	enr, err := enroll.LoadEnrollment(devDirs[0])
	if err != nil {
		t.Fatal(err)
	}
	double := func(_ context.Context, model string, body []byte) ([]byte, error) {
		var req struct{ Instances [][]float64 }
		if err := json.Unmarshal(body, &req); err != nil || len(req.Instances) != 1 || len(req.Instances[0]) != 1 {
			return nil, err
		}
		return json.Marshal(map[string]any{"model": model, "predictions": [][]float64{{2 * req.Instances[0][0]}}})
	}
	link, err := fleetlink.New(fleetlink.Config{Enrollment: *enr, DataDir: devDirs[0], Predict: double,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxReconnectInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	linkCtx, stopLink := context.WithCancel(ctx)
	linkDone := make(chan struct{})
	go func() { link.Run(linkCtx); close(linkDone) }()
	defer func() { stopLink(); <-linkDone }()

	// dev-quiet connects and never subscribes.
	tc, err := enroll.TLSConfig(devDirs[2])
	if err != nil {
		t.Fatal(err)
	}
	quiet := paho.NewClient(paho.NewClientOptions().AddBroker("ssl://" + strings.TrimPrefix(enr.BrokerURL, "mqtts://")).
		SetClientID("dev-quiet").SetTLSConfig(tc).SetCleanSession(false).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second))
	if tok := quiet.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect dev-quiet: %v", tok.Error())
	}
	defer quiet.Disconnect(10)
	for id := range connected { // the server has taken in its connection
		if id == "dev-quiet" {
			break
		}
	}

	admin := []string{"--server", srv.URL(), "--token-file", srv.AdminTokenFile()}
	predict := func(args ...string) (string, error) {
		return fleetctl(t, append(append(append([]string{}, admin...), "devices", "predict"), args...)...)
	}
	// Control: the online device answers (once it is subscribed and the
	// server has seen it online).
	waitfor.Until(t, "dev-on online", link.Online)
	var out string
	waitfor.Until(t, "dev-on answers through the fleet server", func() bool {
		out, err = predict("dev-on", "m", "--data", `{"instances":[[21]]}`, "--timeout", "10s")
		return err == nil
	})
	var got struct {
		Model       string
		Predictions [][]float64
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Model != "m" || len(got.Predictions) != 1 || got.Predictions[0][0] != 42 {
		t.Fatalf("online device: %v\n%s", err, out)
	}
	// Attack-free failures, each clear and immediate.
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"offline device", []string{"dev-off", "m", "--data", `{"instances":[[1]]}`}, []string{"device_offline", "HTTP 409", "dev-off"}},
		{"connected, not subscribed", []string{"dev-quiet", "m", "--data", `{"instances":[[1]]}`},
			[]string{"device_not_ready", "HTTP 409", "has not subscribed to prediction requests yet", "not sent"}},
		{"unknown device", []string{"dev-nobody", "m", "--data", `{"instances":[[1]]}`}, []string{"HTTP 404"}},
		{"not JSON", []string{"dev-on", "m", "--data", `instances=1`}, []string{"not a JSON object"}},
		{"no body", []string{"dev-on", "m"}, []string{"no request body"}},
		{"bad model reference", []string{"dev-on", "../m", "--data", `{"instances":[[1]]}`}, []string{"HTTP 400"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			out, err := predict(append(c.args, "--timeout", "5m")...)
			if err == nil {
				t.Fatalf("no error; output %s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			// Not a timing assertion on the machine's speed: the server's
			// predict timeout is 10 minutes, so an answer within a minute
			// means nobody waited for the device.
			if d := time.Since(start); d > time.Minute {
				t.Errorf("took %v: the caller waited for an answer that could not come", d)
			}
		})
	}
}
