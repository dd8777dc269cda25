package ota_test

// Each TestAttack* plays one TUF attack class against a device and checks it
// is rejected, with a positive control where that shows the test could fail.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/edgefleet/edgefleet/internal/clock"
	"github.com/edgefleet/edgefleet/ota"
	"github.com/edgefleet/edgefleet/ota/download"
	"github.com/edgefleet/edgefleet/ota/release"
)

var ctx = context.Background()

func signer(t *testing.T, path string) signature.Signer {
	t.Helper()
	s, _, err := release.LoadSigner(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func attackerKey(t *testing.T) (signature.Signer, *metadata.Key) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadED25519Signer(priv)
	if err != nil {
		t.Fatal(err)
	}
	k, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

// forge publishes, as a malicious mirror would, a new targets/snapshot/
// timestamp chain in f.repo: mutate edits targets, which is then signed by
// targetSigners; snapshot and timestamp are signed by snap and ts.
func forge(t *testing.T, f *fixture, mutate func(*metadata.TargetsType), targetSigners []signature.Signer, snap, ts signature.Signer) {
	t.Helper()
	md := filepath.Join(f.repo, "metadata")
	tg, err := metadata.Targets().FromFile(filepath.Join(md, "targets.json"))
	if err != nil {
		t.Fatal(err)
	}
	sn, err := metadata.Snapshot().FromFile(filepath.Join(md, "snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	tm, err := metadata.Timestamp().FromFile(filepath.Join(md, "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	mutate(&tg.Signed)
	tg.Signed.Version++
	tg.ClearSignatures()
	for _, s := range targetSigners {
		if _, err := tg.Sign(s); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name string, raw []byte) {
		if err := os.WriteFile(filepath.Join(md, name), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := tg.ToBytes(true)
	write(strconv.FormatInt(tg.Signed.Version, 10)+".targets.json", raw)
	sn.Signed.Meta["targets.json"] = metadata.MetaFile(tg.Signed.Version)
	sn.Signed.Version++
	sn.ClearSignatures()
	if _, err := sn.Sign(snap); err != nil {
		t.Fatal(err)
	}
	snRaw, _ := sn.ToBytes(true)
	write(strconv.FormatInt(sn.Signed.Version, 10)+".snapshot.json", snRaw)
	sum := sha256.Sum256(snRaw)
	mf := metadata.MetaFile(sn.Signed.Version)
	mf.Length = int64(len(snRaw))
	mf.Hashes = metadata.Hashes{"sha256": sum[:]}
	tm.Signed.Meta["snapshot.json"] = mf
	tm.Signed.Version++
	tm.ClearSignatures()
	if _, err := tm.Sign(ts); err != nil {
		t.Fatal(err)
	}
	tmRaw, _ := tm.ToBytes(true)
	write("timestamp.json", tmRaw)
}

// evilTarget adds a target for model "cam"@"6.6.6" pointing at attacker bytes.
func evilTarget(t *testing.T, f *fixture) func(*metadata.TargetsType) {
	return func(tg *metadata.TargetsType) {
		evil := []byte("attacker model")
		sum := sha256.Sum256(evil)
		custom := json.RawMessage(`{"kind":"model","id":"cam","version":"6.6.6"}`)
		p := ota.ModelTargetPath("cam", "6.6.6")
		tg.Targets[p] = &metadata.TargetFiles{Length: int64(len(evil)), Hashes: metadata.Hashes{"sha256": sum[:]}, Custom: &custom, Path: p}
	}
}

func onlineSigners(t *testing.T, f *fixture) (snap, ts signature.Signer) {
	return signer(t, filepath.Join(f.keys, "online", "snapshot-1.key")), signer(t, filepath.Join(f.keys, "online", "timestamp-1.key"))
}

func wantTUF[E error](t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ota.ErrUntrusted) {
		t.Fatalf("err = %v, want ErrUntrusted", err)
	}
	var e E
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T chain), want go-tuf %T", err, err, e)
	}
}

// TestAttackArbitraryArtifact: a mirror serving tampered target bytes, or
// metadata signed by a key the root does not list, gets nothing installed.
func TestAttackArbitraryArtifact(t *testing.T) {
	t.Run("tampered bytes", func(t *testing.T) {
		f := newFixture(t, release.KeyOptions{})
		good := modelBytes(1, 4096)
		info := f.releaseModel("cam", "1.0", good, true, "", nil)
		// the mirror flips one byte of the stored artifact (same length)
		stored := filepath.Join(f.repo, "targets", "models", "cam", "1.0", info.SHA256+".model.tflite")
		bad := bytes.Clone(good)
		bad[100] ^= 0xff
		if err := os.WriteFile(stored, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		data := t.TempDir()
		u := f.device(data, nil)
		_, err := u.FetchModel(ctx, "cam", "1.0", nil)
		if !errors.Is(err, download.ErrHashMismatch) {
			t.Fatalf("FetchModel of tampered bytes: %v, want ErrHashMismatch", err)
		}
		left, _ := filepath.Glob(filepath.Join(data, "staging", "*"))
		if len(left) != 0 {
			t.Fatalf("tampered bytes left in staging: %v", left)
		}
		// control: honest bytes are accepted
		os.WriteFile(stored, good, 0o644)
		if _, err := f.device(t.TempDir(), nil).FetchModel(ctx, "cam", "1.0", nil); err != nil {
			t.Fatalf("control FetchModel: %v", err)
		}
	})
	t.Run("whole chain signed by unknown key", func(t *testing.T) {
		f := newFixture(t, release.KeyOptions{})
		f.releaseModel("cam", "1.0", modelBytes(1, 1000), true, "", nil)
		evil, _ := attackerKey(t)
		forge(t, f, evilTarget(t, f), []signature.Signer{evil}, evil, evil)
		_, err := f.device(t.TempDir(), nil).ResolveModel(ctx, "cam", "6.6.6")
		wantTUF[*metadata.ErrUnsignedMetadata](t, err)
	})
	t.Run("online keys stolen, targets signed by unknown key", func(t *testing.T) {
		f := newFixture(t, release.KeyOptions{})
		f.releaseModel("cam", "1.0", modelBytes(1, 1000), true, "", nil)
		evil, _ := attackerKey(t)
		snap, ts := onlineSigners(t, f)
		forge(t, f, evilTarget(t, f), []signature.Signer{evil}, snap, ts)
		_, err := f.device(t.TempDir(), nil).ResolveModel(ctx, "cam", "6.6.6")
		wantTUF[*metadata.ErrUnsignedMetadata](t, err)
	})
	t.Run("control: real targets key is accepted", func(t *testing.T) {
		f := newFixture(t, release.KeyOptions{})
		snap, ts := onlineSigners(t, f)
		forge(t, f, evilTarget(t, f), []signature.Signer{signer(t, filepath.Join(f.keys, "targets", "targets-1.key"))}, snap, ts)
		if _, err := f.device(t.TempDir(), nil).ResolveModel(ctx, "cam", "6.6.6"); err != nil {
			t.Fatalf("control ResolveModel: %v", err)
		}
	})
}

// replay serves recorded bytes for one metadata file name.
func replay(f *fixture, name string, raw []byte) {
	honest := release.NewRepo("", f.repo).Handler()
	f.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metadata/"+name {
			w.Write(raw)
			return
		}
		honest.ServeHTTP(w, r)
	}))
}

// TestAttackRollback: after a device has seen newer metadata, a mirror
// replaying older (validly signed, unexpired) timestamp or snapshot is
// refused, so the device cannot be steered back to an older release set.
func TestAttackRollback(t *testing.T) {
	f := newFixture(t, release.KeyOptions{})
	f.releaseModel("cam", "1.0", modelBytes(1, 1000), true, "", nil)
	oldTS, _ := os.ReadFile(filepath.Join(f.repo, "metadata", "timestamp.json"))
	oldSnapName := "3.snapshot.json" // InitKeys wrote 1, AddModel 2 … checked below
	f.releaseModel("cam", "2.0", modelBytes(2, 1000), true, "", nil)
	newSnap, _ := os.ReadFile(filepath.Join(f.repo, "metadata", oldSnapName))
	oldSnap, err := os.ReadFile(filepath.Join(f.repo, "metadata", "2.snapshot.json"))
	if err != nil || len(newSnap) == 0 {
		t.Fatalf("expected snapshot versions 2 and 3 in repo: %v", err)
	}
	data := t.TempDir()
	if _, err := f.device(data, nil).ResolveModel(ctx, "cam", "2.0"); err != nil {
		t.Fatalf("device sees 2.0: %v", err)
	}
	t.Run("old timestamp", func(t *testing.T) {
		replay(f, "timestamp.json", oldTS)
		defer f.honest()
		err := f.device(data, nil).Refresh(ctx)
		wantTUF[*metadata.ErrBadVersionNumber](t, err)
	})
	t.Run("stolen timestamp key points at old snapshot", func(t *testing.T) {
		tm, err := metadata.Timestamp().FromFile(filepath.Join(f.repo, "metadata", "timestamp.json"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(oldSnap)
		mf := metadata.MetaFile(2)
		mf.Length, mf.Hashes = int64(len(oldSnap)), metadata.Hashes{"sha256": sum[:]}
		tm.Signed.Meta["snapshot.json"] = mf
		tm.Signed.Version++
		tm.ClearSignatures()
		_, ts := onlineSigners(t, f)
		if _, err := tm.Sign(ts); err != nil {
			t.Fatal(err)
		}
		raw, _ := tm.ToBytes(true)
		replay(f, "timestamp.json", raw)
		defer f.honest()
		err = f.device(data, nil).Refresh(ctx)
		wantTUF[*metadata.ErrBadVersionNumber](t, err)
		t.Logf("rejected: %v", err)
	})
	t.Run("control: honest mirror", func(t *testing.T) {
		if err := f.device(data, nil).Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestAttackFreeze: metadata past its expiry is refused even though every
// signature is valid (a mirror that stops updating cannot hold devices on
// stale releases); re-signing with release.Refresh cures it. Time is driven
// through the updater's Clock.
func TestAttackFreeze(t *testing.T) {
	f := newFixture(t, release.KeyOptions{TimestampExpiry: time.Hour, SnapshotExpiry: 48 * time.Hour})
	f.releaseModel("cam", "1.0", modelBytes(1, 1000), true, "", nil)
	later := time.Now().Add(3 * time.Hour)
	clk := clock.NewFake(later)
	data := t.TempDir()
	if err := f.device(data, nil).Refresh(ctx); err != nil {
		t.Fatalf("fresh metadata: %v", err)
	}
	err := f.device(data, clk).Refresh(ctx)
	wantTUF[*metadata.ErrExpiredMetadata](t, err)
	if !strings.Contains(err.Error(), "timestamp") {
		t.Errorf("error should name the timestamp role: %v", err)
	}
	if err := release.NewRepo(f.keys, f.repo).Refresh(later); err != nil {
		t.Fatalf("release.Refresh: %v", err)
	}
	if err := f.device(data, clk).Refresh(ctx); err != nil {
		t.Fatalf("after re-signing: %v", err)
	}
	// snapshot expiry is enforced too: a thief holding only the timestamp
	// key keeps signing fresh timestamps for the frozen snapshot.
	muchLater := time.Now().Add(72 * time.Hour) // snapshot expired at +48h
	tm, err := metadata.Timestamp().FromFile(filepath.Join(f.repo, "metadata", "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	tm.Signed.Version++
	tm.Signed.Expires = muchLater.Add(time.Hour)
	tm.ClearSignatures()
	_, tsKey := onlineSigners(t, f)
	if _, err := tm.Sign(tsKey); err != nil {
		t.Fatal(err)
	}
	if err := tm.ToFile(filepath.Join(f.repo, "metadata", "timestamp.json"), true); err != nil {
		t.Fatal(err)
	}
	err = f.device(t.TempDir(), clock.NewFake(muchLater)).Refresh(ctx)
	wantTUF[*metadata.ErrExpiredMetadata](t, err)
	if !strings.Contains(err.Error(), "snapshot") {
		t.Errorf("error should name the snapshot role: %v", err)
	}
}

// TestAttackMixAndMatch: files of one repository state served under the
// names of another are refused: snapshot pins targets' version, timestamp
// pins snapshot's version, length and hash.
func TestAttackMixAndMatch(t *testing.T) {
	f := newFixture(t, release.KeyOptions{})
	f.releaseModel("cam", "1.0", modelBytes(1, 1000), true, "", nil) // targets 2, snapshot 2
	f.releaseModel("cam", "2.0", modelBytes(2, 1000), true, "", nil) // targets 3, snapshot 3
	md := filepath.Join(f.repo, "metadata")
	read := func(n string) []byte {
		b, err := os.ReadFile(filepath.Join(md, n))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name, path string
		raw        []byte
		check      func(*testing.T, error)
	}{
		{"targets of snapshot 2 served as 3.targets.json", "3.targets.json", read("2.targets.json"),
			func(t *testing.T, err error) { wantTUF[*metadata.ErrBadVersionNumber](t, err) }},
		{"snapshot 2 served as 3.snapshot.json", "3.snapshot.json", read("2.snapshot.json"),
			func(t *testing.T, err error) {
				// the timestamp pins length and hash; which check fires first
				// depends on whether the two snapshots differ in length
				var lh *metadata.ErrLengthOrHashMismatch
				var dl *metadata.ErrDownloadLengthMismatch
				if !errors.Is(err, ota.ErrUntrusted) || !(errors.As(err, &lh) || errors.As(err, &dl)) {
					t.Fatalf("err = %v, want a length or hash mismatch", err)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			replay(f, tc.path, tc.raw)
			defer f.honest()
			tc.check(t, f.device(t.TempDir(), nil).Refresh(ctx))
		})
	}
	t.Run("control", func(t *testing.T) {
		if _, err := f.device(t.TempDir(), nil).ResolveModel(ctx, "cam", "2.0"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestAttackEndlessData: an endless artifact body stops at the signed length
// (plus one byte) and an endless metadata file at go-tuf's size limit.
func TestAttackEndlessData(t *testing.T) {
	f := newFixture(t, release.KeyOptions{})
	f.releaseModel("cam", "1.0", modelBytes(1, 1000), true, "", nil)
	endless := func(w http.ResponseWriter) {
		buf := make([]byte, 8192)
		for i := 0; i < 1<<16; i++ { // up to 512 MiB if nobody stops reading
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}
	honest := release.NewRepo("", f.repo).Handler()
	t.Run("artifact", func(t *testing.T) {
		f.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/targets/") {
				endless(w)
				return
			}
			honest.ServeHTTP(w, r)
		}))
		defer f.honest()
		data := t.TempDir()
		_, err := f.device(data, nil).FetchModel(ctx, "cam", "1.0", nil)
		if !errors.Is(err, download.ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
		part, _ := filepath.Glob(filepath.Join(data, "staging", "*"))
		for _, p := range part {
			if st, _ := os.Stat(p); st != nil && st.Size() > 1001 {
				t.Fatalf("%s holds %d bytes, more than signed length+1", p, st.Size())
			}
		}
	})
	t.Run("timestamp metadata", func(t *testing.T) {
		f.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/metadata/timestamp.json" {
				endless(w)
				return
			}
			honest.ServeHTTP(w, r)
		}))
		defer f.honest()
		err := f.device(t.TempDir(), nil).Refresh(ctx)
		wantTUF[*metadata.ErrDownloadLengthMismatch](t, err)
	})
}

// TestAttackKeyCompromiseBelowThreshold: with root and targets thresholds of
// 2 of 2, an attacker holding one key of a role (plus the online keys)
// cannot get a device to accept new targets or a new root.
func TestAttackKeyCompromiseBelowThreshold(t *testing.T) {
	newF := func(t *testing.T) *fixture {
		return newFixture(t, release.KeyOptions{RootKeys: 2, RootThreshold: 2, TargetsKeys: 2, TargetsThreshold: 2})
	}
	t.Run("one of two targets keys", func(t *testing.T) {
		f := newF(t)
		snap, ts := onlineSigners(t, f)
		forge(t, f, evilTarget(t, f), []signature.Signer{signer(t, filepath.Join(f.keys, "targets", "targets-1.key"))}, snap, ts)
		_, err := f.device(t.TempDir(), nil).ResolveModel(ctx, "cam", "6.6.6")
		wantTUF[*metadata.ErrUnsignedMetadata](t, err)
	})
	t.Run("control: both targets keys", func(t *testing.T) {
		f := newF(t)
		snap, ts := onlineSigners(t, f)
		forge(t, f, evilTarget(t, f), []signature.Signer{
			signer(t, filepath.Join(f.keys, "targets", "targets-1.key")),
			signer(t, filepath.Join(f.keys, "targets", "targets-2.key"))}, snap, ts)
		if _, err := f.device(t.TempDir(), nil).ResolveModel(ctx, "cam", "6.6.6"); err != nil {
			t.Fatalf("control: %v", err)
		}
	})
	forgeRoot := func(t *testing.T, f *fixture, rootKeys ...string) {
		root, err := metadata.Root().FromFile(filepath.Join(f.repo, "metadata", "root.json"))
		if err != nil {
			t.Fatal(err)
		}
		evil, evilKey := attackerKey(t)
		_ = evil
		for _, id := range append([]string(nil), root.Signed.Roles[metadata.TARGETS].KeyIDs...) {
			root.Signed.RevokeKey(id, metadata.TARGETS)
		}
		root.Signed.AddKey(evilKey, metadata.TARGETS)
		root.Signed.Roles[metadata.TARGETS].Threshold = 1
		root.Signed.Version++
		root.ClearSignatures()
		for _, k := range rootKeys {
			if _, err := root.Sign(signer(t, filepath.Join(f.keys, "root", k))); err != nil {
				t.Fatal(err)
			}
		}
		raw, _ := root.ToBytes(true)
		os.WriteFile(filepath.Join(f.repo, "metadata", "2.root.json"), raw, 0o644)
	}
	t.Run("one of two root keys", func(t *testing.T) {
		f := newF(t)
		forgeRoot(t, f, "root-1.key")
		err := f.device(t.TempDir(), nil).Refresh(ctx)
		wantTUF[*metadata.ErrUnsignedMetadata](t, err)
	})
	t.Run("control: both root keys", func(t *testing.T) {
		f := newF(t)
		forgeRoot(t, f, "root-1.key", "root-2.key")
		// the new root is accepted; the old targets signatures then no
		// longer meet it, which go-tuf reports, proving root v2 was trusted.
		err := f.device(t.TempDir(), nil).Refresh(ctx)
		wantTUF[*metadata.ErrUnsignedMetadata](t, err)
		if !strings.Contains(err.Error(), "targets") {
			t.Fatalf("expected the targets role to fail under the new root, got %v", err)
		}
	})
}

// TestRotateOnlineKeys: rotating the snapshot/timestamp keys needs only the
// offline root keys; an enrolled device follows the root chain without being
// re-flashed, and the retired timestamp key is refused afterwards.
func TestRotateOnlineKeys(t *testing.T) {
	f := newFixture(t, release.KeyOptions{})
	f.releaseModel("cam", "1.0", modelBytes(1, 1000), true, "", nil)
	data := t.TempDir()
	if err := f.device(data, nil).Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	oldSnap, oldTS := onlineSigners(t, f)
	if err := release.NewRepo(f.keys, f.repo).RotateOnlineKeys(); err != nil {
		t.Fatalf("RotateOnlineKeys: %v", err)
	}
	f.releaseModel("cam", "2.0", modelBytes(2, 1000), true, "", nil)
	if _, err := f.device(data, nil).ResolveModel(ctx, "cam", "2.0"); err != nil {
		t.Fatalf("device after rotation: %v", err)
	}
	cached, err := metadata.Root().FromFile(filepath.Join(data, "tuf", "root.json"))
	if err != nil || cached.Signed.Version != 2 {
		t.Fatalf("device root version = %v (%v), want 2", cached, err)
	}
	// a thief with the retired online keys can no longer sign
	forge(t, f, evilTarget(t, f), []signature.Signer{signer(t, filepath.Join(f.keys, "targets", "targets-1.key"))}, oldSnap, oldTS)
	err = f.device(data, nil).Refresh(ctx)
	wantTUF[*metadata.ErrUnsignedMetadata](t, err)
}

// TestCorruptCachedRoot: a damaged cached root.json does not brick the
// device; it re-walks the signed root chain from the enrolled root.
func TestCorruptCachedRoot(t *testing.T) {
	f := newFixture(t, release.KeyOptions{})
	f.releaseModel("cam", "1.0", modelBytes(1, 1000), true, "", nil)
	if err := release.NewRepo(f.keys, f.repo).RotateOnlineKeys(); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	if err := f.device(data, nil).Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "tuf", "root.json"), []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.device(data, nil).ResolveModel(ctx, "cam", "1.0"); err != nil {
		t.Fatalf("after corrupting the cached root: %v", err)
	}
	cached, err := metadata.Root().FromFile(filepath.Join(data, "tuf", "root.json"))
	if err != nil || cached.Signed.Version != 2 {
		t.Fatalf("cached root after recovery: %v, %v", cached, err)
	}
}
