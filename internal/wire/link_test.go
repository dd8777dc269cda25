package wire

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestVerifyLinkSettings: only settings signed with the fleet's command
// key, for this device, within their validity, with QoS 0 or 1 and
// nothing else in the payload are accepted (control: the genuine one). A
// job's signed Command is not accepted as link settings, nor link settings
// as a job (strict decoding of each payload).
func TestVerifyLinkSettings(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	good := LinkSettings{V: Version, DeviceID: "dev-1", SubscribeQoS: 0, IssuedAt: now, Expires: now.Add(time.Hour), Nonce: "n1"}
	sign := func(k ed25519.PrivateKey, ls LinkSettings) *SignedCommand {
		sc, err := SignLinkSettings(k, ls)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	with := func(f func(*LinkSettings)) LinkSettings { ls := good; f(&ls); return ls }
	job := Job{JobID: "j1", Kind: JobRollback, ModelID: "m", Version: "1", State: JobQueued, Created: now}
	jobCmd, _ := SignCommand(key, CommandFor("dev-1", job, now, time.Hour, "n2"))
	tampered := sign(key, good)
	tampered.Payload = []byte(strings.Replace(string(tampered.Payload), `"subscribe_qos":0`, `"subscribe_qos":1`, 1))
	extra := sign(key, good)
	extra.Payload = append(extra.Payload[:len(extra.Payload)-1], []byte(`,"evil":1}`)...)
	extra.Sig = ed25519.Sign(key, extra.Payload)
	trailing := &SignedCommand{Payload: append(append([]byte{}, sign(key, good).Payload...), []byte(" {}")...)}
	trailing.Sig = ed25519.Sign(key, trailing.Payload)
	big := &SignedCommand{Payload: make([]byte, MaxLinkSettingsBytes+1)}
	big.Sig = ed25519.Sign(key, big.Payload)
	for _, tc := range []struct {
		name string
		sc   *SignedCommand
		want string // "" = accepted
	}{
		{"genuine (control)", sign(key, good), ""},
		{"genuine qos 1 (control)", sign(key, with(func(l *LinkSettings) { l.SubscribeQoS = 1 })), ""},
		{"nil", nil, "unsigned"},
		{"other key", sign(other, good), "bad signature"},
		{"tampered payload", tampered, "bad signature"},
		{"other device", sign(key, with(func(l *LinkSettings) { l.DeviceID = "dev-2" })), "signed for device"},
		{"expired", sign(key, with(func(l *LinkSettings) { l.IssuedAt, l.Expires = now.Add(-2*time.Hour), now.Add(-time.Hour) })), "expired"},
		{"future", sign(key, with(func(l *LinkSettings) { l.IssuedAt = now.Add(time.Hour) })), "in the future"},
		{"qos 2", sign(key, with(func(l *LinkSettings) { l.SubscribeQoS = 2 })), "want 0 or 1"},
		{"version", sign(key, with(func(l *LinkSettings) { l.V = 2 })), `"v" is 2`},
		{"unknown field", extra, "unknown field"},
		{"trailing data", trailing, "trailing data"},
		{"oversized", big, "at most"},
		{"a job's command", jobCmd, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls, err := VerifyLinkSettings(pub, tc.sc, "dev-1", now)
			if tc.want == "" {
				if err != nil || ls.DeviceID != "dev-1" {
					t.Fatalf("refused genuine settings: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrCommand) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrCommand mentioning %q", err, tc.want)
			}
		})
	}
	// The reverse: link settings are not a job.
	if _, err := VerifyCommand(pub, sign(key, good), "dev-1", now); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Fatalf("link settings accepted as a job command: %v", err)
	}
}

// TestJobsGetFeatures: the feature list is bounded and optional.
func TestJobsGetFeatures(t *testing.T) {
	long := strings.Repeat("x", MaxFeatureNameLen+1)
	many := `"a"` + strings.Repeat(`,"a"`, MaxFeatureNames)
	for _, tc := range []struct {
		in   string
		want string
	}{
		{`{"v":1,"device_id":"d"}`, ""},
		{`{"v":1,"device_id":"d","features":["link_settings","future_thing"]}`, ""},
		{`{"v":1,"device_id":"d","features":[""]}`, "features[0]"},
		{`{"v":1,"device_id":"d","features":["` + long + `"]}`, "features[0]"},
		{`{"v":1,"device_id":"d","features":[` + many + `]}`, "at most 16"},
		{`{"v":1,"device_id":"d","features":"link_settings"}`, "features"},
	} {
		g, err := DecodeJobsGet([]byte(tc.in))
		if tc.want == "" {
			if err != nil {
				t.Fatalf("%s: %v", tc.in, err)
			}
			if strings.Contains(tc.in, FeatureLinkSettings) != g.Has(FeatureLinkSettings) {
				t.Fatalf("%s: Has(%s) = %v", tc.in, FeatureLinkSettings, g.Has(FeatureLinkSettings))
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: err = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// FuzzVerifyLinkSettings: arbitrary payloads and signatures never panic;
// anything accepted is within bounds.
func FuzzVerifyLinkSettings(f *testing.F) {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := key.Public().(ed25519.PublicKey)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	sc, _ := SignLinkSettings(key, LinkSettings{V: Version, DeviceID: "dev-1", IssuedAt: now, Expires: now.Add(time.Hour), Nonce: "n"})
	f.Add(sc.Payload, sc.Sig)
	f.Add([]byte(`{"v":1}`), []byte{})
	f.Add([]byte(`{"v":1,"device_id":"dev-1","subscribe_qos":7}`), make([]byte, 64))
	f.Fuzz(func(t *testing.T, payload, sig []byte) {
		// Sign what the fuzzer made, so the decoder behind the signature
		// check is reached, and also try its own signature bytes.
		for _, s := range [][]byte{ed25519.Sign(key, payload), sig} {
			ls, err := VerifyLinkSettings(pub, &SignedCommand{Payload: payload, Sig: s}, "dev-1", now)
			if err == nil && (ls.DeviceID != "dev-1" || ls.SubscribeQoS < 0 || ls.SubscribeQoS > 1 || len(payload) > MaxLinkSettingsBytes) {
				t.Fatalf("accepted out-of-bounds settings %+v", ls)
			}
		}
	})
}
