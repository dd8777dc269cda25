package wire

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"
)

func testCommand(now time.Time) Command {
	j := Job{JobID: "j1", Kind: JobInstall, ModelID: "m", Version: "2", Target: &Target{Name: "models/m/2/model.tflite", Length: 3}}
	return CommandFor("d1", j, now, time.Hour, "nonce")
}

func TestVerifyCommand(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sc, err := SignCommand(key, testCommand(now))
	if err != nil {
		t.Fatal(err)
	}
	c, err := VerifyCommand(pub, sc, "d1", now.Add(time.Minute))
	if err != nil || c.JobID != "j1" || c.Job().Version != "2" {
		t.Fatalf("control: %v %+v", err, c)
	}
	tampered := *sc
	tampered.Payload = append([]byte{}, sc.Payload...)
	tampered.Payload[len(tampered.Payload)-3] ^= 1
	for name, tc := range map[string]struct {
		sc  *SignedCommand
		dev string
		at  time.Time
	}{
		"unsigned":        {nil, "d1", now},
		"tampered":        {&tampered, "d1", now},
		"other device":    {sc, "d2", now},
		"expired":         {sc, "d1", now.Add(2 * time.Hour)},
		"from the future": {sc, "d1", now.Add(-time.Hour)},
	} {
		if _, err := VerifyCommand(pub, tc.sc, tc.dev, tc.at); !errors.Is(err, ErrCommand) {
			t.Errorf("%s: %v, want ErrCommand", name, err)
		}
	}
	if _, err := VerifyCommand(nil, sc, "d1", now); !errors.Is(err, ErrCommand) {
		t.Errorf("no key: %v", err)
	}
}

func FuzzVerifyCommand(f *testing.F) {
	pub, key, _ := ed25519.GenerateKey(nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sc, _ := SignCommand(key, testCommand(now))
	f.Add(sc.Payload, sc.Sig)
	f.Add([]byte(`{"v":1}`), sc.Sig)
	f.Add([]byte(`{}`), []byte{})
	f.Fuzz(func(t *testing.T, payload, sig []byte) {
		c, err := VerifyCommand(pub, &SignedCommand{Payload: payload, Sig: sig}, "d1", now)
		if err == nil && (c.DeviceID != "d1" || !ed25519.Verify(pub, payload, sig)) {
			t.Fatalf("accepted %q", payload)
		}
		// Every payload the fleet key signs is verified or refused cleanly.
		sc := &SignedCommand{Payload: payload, Sig: ed25519.Sign(key, payload)}
		if c, err := VerifyCommand(pub, sc, "d1", now); err == nil {
			if j := c.Job(); j.Validate() != nil || c.DeviceID != "d1" || !now.Before(c.Expires) {
				t.Fatalf("accepted invalid command %+v", c)
			}
		}
	})
}

func FuzzDecodeEnrollRequestCSR(f *testing.F) {
	f.Add([]byte(`{"v":1,"token":"t","device_id":"d1","hardware":{"arch":"amd64"},"csr":"-----BEGIN CERTIFICATE REQUEST-----\nAA==\n-----END CERTIFICATE REQUEST-----\n"}`))
	f.Add([]byte(`{"v":1,"device_id":"d1","hardware":{},"csr":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeEnrollRequest(b)
		if err == nil && (len(r.CSR) > MaxCSRBytes || ValidateID("device_id", r.DeviceID) != nil) {
			t.Fatalf("accepted %+v", r)
		}
	})
}
