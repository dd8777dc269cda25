package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"image"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/fleet/wire"
)

const chromium = "/usr/bin/chromium"

// browser runs headless Chromium against one server, trusting exactly
// that server's certificate (by its public key hash).
type browser struct {
	t    *testing.T
	args []string
}

func newBrowser(t *testing.T, srv *server.Server, caPEM []byte) *browser {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("chromium not installed (run build/setup-deps.sh): %v", err)
	}
	b := &browser{t: t, args: []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
	}}
	if u, _ := url.Parse(srv.URL()); u.Scheme == "https" {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		conn, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatalf("TLS to the server: %v", err)
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
		b.args = append(b.args, "--ignore-certificate-errors-spki-list="+base64.StdEncoding.EncodeToString(spki[:]))
	}
	return b
}

// run starts Chromium with budgetMs of virtual time for the page's scripts.
func (b *browser) run(budgetMs int, extra ...string) []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append(append([]string{"--user-data-dir=" + b.t.TempDir(), "--virtual-time-budget=" + strconv.Itoa(budgetMs)}, b.args...), extra...)
	cmd := exec.CommandContext(ctx, chromium, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return out
}

// load opens url, lets its scripts run for budgetMs of virtual time, and
// returns the resulting DOM and a 1280x900 screenshot.
func (b *browser) load(budgetMs int, url string) (string, image.Image) {
	b.t.Helper()
	p := filepath.Join(b.t.TempDir(), "shot.png")
	dom := b.run(budgetMs, "--window-size=1280,900", "--hide-scrollbars", "--screenshot="+p, "--dump-dom", url)
	raw, err := os.ReadFile(p)
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if dir := os.Getenv("CONSOLE_SCREENSHOTS"); dir != "" {
		os.WriteFile(filepath.Join(dir, b.t.Name()+"-"+time.Now().Format("150405.000")+".png"), raw, 0o644)
	}
	return string(dom), img
}

// darkRows counts pixel rows of img that contain dark (text-like) pixels
// inside the given horizontal band.
func darkRows(img image.Image, x0, x1 int) int {
	n := 0
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := max(x0, bd.Min.X); x < min(x1, bd.Max.X); x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 < 90 && g>>8 < 90 && bl>>8 < 90 {
				n++
				break
			}
		}
	}
	return n
}

func mustContain(t *testing.T, what, dom string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(dom, w) {
			t.Errorf("%s: DOM lacks %q", what, w)
		}
	}
	if t.Failed() {
		t.Logf("%s DOM:\n%s", what, dom)
	}
}

// TestConsoleInChromium drives the real console against a live server with
// enrolled devices, a finished canary, a rolled-back release and telemetry:
// without a token it shows only the login page, a wrong token is refused
// with an error, and the admin token shows the fleet (the page used to stick
// on "loading…" with an admin token).
func TestConsoleInChromium(t *testing.T) {
	// An operator-chosen admin token with "+" and "/" (as openssl rand
	// -base64 makes): decoding the page's URL used to turn "+" into a space,
	// and the page stuck on "loading…".
	const flagToken = "Zm9v+YmFy/dG9rZW4+d2l0aC9zbGFzaGVz+cGx1cw=="
	e := startServer(t, server.Config{AdminToken: flagToken})
	e.enroll(3)
	e.startLinks()
	e.waitFor("devices online", 20*time.Second, func() bool { return e.online() == 3 })
	spec := func(id, v string) rollout.Spec {
		return rollout.Spec{ID: id, ModelID: "m", Version: v, Target: wire.Target{Name: "models/m/" + v + "/model.tflite", Length: 1},
			Strategy: rollout.Canary, Stages: []int{34, 100}, Soak: 300 * time.Millisecond, DeviceDeadline: 10 * time.Second, BaselineWindow: time.Minute, Gates: gates()}
	}
	e.release("2")
	e.runRollout(spec("good", "2"), rollout.Succeeded)
	e.release("bad")
	e.runRollout(spec("broken", "bad"), rollout.RolledBack)
	b := newBrowser(t, e.srv, e.srv.CAPEM())
	base := e.srv.URL() + "/"

	// Attack: no token. Only the login form, no fleet data.
	dom, login := b.load(1500, base)
	mustContain(t, "no token", dom, `data-view="login"`, `id="login-form"`, `id="login-token"`, `type="password"`, `id="login-submit"`)
	for _, leak := range []string{`data-loaded="true"`, `data-device="dev-0"`, `data-id="good"`} {
		if strings.Contains(dom, leak) {
			t.Errorf("no token: DOM shows %q", leak)
		}
	}

	// Attack: a wrong token is refused with a visible error.
	dom, _ = b.load(1500, base+"#token=eft_0011223344556677_"+strings.Repeat("A", 43))
	mustContain(t, "wrong token", dom, `data-view="login"`, "Token refused: unknown or malformed token")
	if strings.Contains(dom, `data-device="dev-0"`) {
		t.Error("wrong token: DOM shows devices")
	}

	// Control: an admin token logs in and shows everything.
	dom, app := b.load(3000, base+"#token="+flagToken)
	mustContain(t, "admin", dom,
		`data-view="app"`, `data-loaded="true"`, `--admin-token (admin)`, `id="logout"`,
		`3 devices, 3 online`,
		`data-device="dev-0"`, `data-device="dev-2"`,
		`m@2`,                // active version shown per device
		`avx2`,               // CPU features
		`data-model="m@bad"`, // model registry
		`data-id="good"`, `class="phase succeeded"`,
		`data-id="broken"`, `class="phase rolled_back"`,
		`gate failed: install failures`, // the failed gate's reason
		`data-gate="install_failures"`,
		`data-action="promote"`,
		`<polyline`, `data-version="m@2"`, // latency chart per version
	)
	if strings.Contains(dom, flagToken) {
		t.Error("the token is left in the DOM")
	}
	if strings.Contains(dom, `id="logout" type="button" data-action="logout" hidden`) {
		t.Error("logged in, but no logout button")
	}

	// Screenshots: the login page shows its form (a white box with text in
	// the middle of the page), the logged-in page shows the fleet tables
	// (text across the full width, many rows).
	if login.Bounds().Dx() != 1280 || app.Bounds().Dx() != 1280 {
		t.Fatalf("screenshot sizes %v %v", login.Bounds(), app.Bounds())
	}
	loginCentre, loginLeft := darkRows(login, 420, 860), darkRows(login, 0, 300)
	appLeft := darkRows(app, 0, 300)
	t.Logf("text rows: login centre %d, login left margin %d, app left %d", loginCentre, loginLeft, appLeft)
	if loginCentre < 40 {
		t.Errorf("login screenshot: only %d text rows in the centre (no login form?)", loginCentre)
	}
	if appLeft < 3*loginLeft+60 {
		t.Errorf("logged-in screenshot: %d text rows on the left vs %d on the login page (no fleet tables?)", appLeft, loginLeft)
	}
}
