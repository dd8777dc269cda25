package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefleet/edgefleet/fleet/apitype"
	"github.com/edgefleet/edgefleet/fleet/auth"
	"github.com/edgefleet/edgefleet/fleet/rollout"
	"github.com/edgefleet/edgefleet/fleet/server"
	"github.com/edgefleet/edgefleet/fleet/telemetry"
	"github.com/edgefleet/edgefleet/internal/wire"
	"github.com/edgefleet/edgefleet/ota/release"
)

const chromium = "/usr/bin/chromium"

// page is one headless Chromium tab driven over the DevTools protocol on
// a pipe (--remote-debugging-pipe: commands on fd 3, answers on fd 4,
// each message NUL-terminated), so the test needs no chromedriver and no
// port. The browser trusts exactly the test server's certificate.
type page struct {
	t       *testing.T
	cmd     *exec.Cmd
	w       *os.File
	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpMsg
	session string
	logs    []string // console messages and uncaught exceptions
	done    chan struct{}
}

type cdpMsg struct {
	ID        int                       `json:"id,omitempty"`
	Method    string                    `json:"method,omitempty"`
	Params    json.RawMessage           `json:"params,omitempty"`
	Result    json.RawMessage           `json:"result,omitempty"`
	Error     *struct{ Message string } `json:"error,omitempty"`
	SessionID string                    `json:"sessionId,omitempty"`
}

func newPage(t *testing.T, srv *server.Server) *page {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("chromium not installed (run build/setup-deps.sh): %v", err)
	}
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--remote-debugging-pipe",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--hide-scrollbars", "--user-data-dir=" + t.TempDir()}
	if u, _ := url.Parse(srv.URL()); u.Scheme == "https" {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(srv.CAPEM())
		conn, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatalf("TLS to the server: %v", err)
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
		args = append(args, "--ignore-certificate-errors-spki-list="+base64.StdEncoding.EncodeToString(spki[:]))
	}
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &page{t: t, w: cmdW, pending: map[int]chan cdpMsg{}, done: make(chan struct{})}
	p.cmd = exec.Command(chromium, append(args, "about:blank")...)
	p.cmd.ExtraFiles = []*os.File{cmdR, outW}
	var stderr bytes.Buffer
	p.cmd.Stderr = &stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmdR.Close()
	outW.Close()
	go p.read(outR)
	t.Cleanup(func() {
		p.call("Browser.close", nil)
		cmdW.Close()
		waited := make(chan error, 1)
		go func() { waited <- p.cmd.Wait() }()
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-waited
		}
		if t.Failed() {
			t.Logf("browser console:\n%s", strings.Join(p.logs, "\n"))
		}
	})
	var target struct{ TargetID string }
	p.decode(p.call("Target.createTarget", map[string]any{"url": "about:blank"}), &target)
	var att struct{ SessionID string }
	p.decode(p.call("Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}), &att)
	p.session = att.SessionID
	for _, m := range []string{"Page.enable", "Runtime.enable", "DOM.enable"} {
		p.call(m, nil)
	}
	p.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false})
	return p
}

func (p *page) read(r *os.File) {
	defer close(p.done)
	br := bufio.NewReader(r)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			p.mu.Lock()
			for id, ch := range p.pending {
				close(ch)
				delete(p.pending, id)
			}
			p.mu.Unlock()
			return
		}
		var m cdpMsg
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		p.mu.Lock()
		if m.ID != 0 {
			if ch, ok := p.pending[m.ID]; ok {
				ch <- m
				delete(p.pending, m.ID)
			}
		} else if m.Method == "Runtime.consoleAPICalled" || m.Method == "Runtime.exceptionThrown" {
			p.logs = append(p.logs, string(m.Params))
		}
		p.mu.Unlock()
	}
}

// call sends one DevTools command (to the tab once attached) and returns
// its result; any error fails the test.
func (p *page) call(method string, params any) json.RawMessage {
	p.t.Helper()
	res, err := p.try(method, params)
	if err != nil {
		p.t.Fatal(err)
	}
	return res
}

// try is call returning the error (Browser.close never fails).
func (p *page) try(method string, params any) (json.RawMessage, error) {
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	ch := make(chan cdpMsg, 1)
	p.pending[id] = ch
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if p.session != "" && !strings.HasPrefix(method, "Target.") && !strings.HasPrefix(method, "Browser.") {
		msg["sessionId"] = p.session
	}
	b, _ := json.Marshal(msg)
	_, err := p.w.Write(append(b, 0))
	p.mu.Unlock()
	closing := method == "Browser.close"
	if err != nil {
		if closing {
			return nil, nil
		}
		return nil, fmt.Errorf("devtools %s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			if closing {
				return nil, nil
			}
			return nil, fmt.Errorf("devtools %s: browser gone", method)
		}
		if m.Error != nil {
			return nil, fmt.Errorf("devtools %s: %s", method, m.Error.Message)
		}
		return m.Result, nil
	case <-time.After(60 * time.Second):
		if closing {
			return nil, nil
		}
		return nil, fmt.Errorf("devtools %s: no answer in 60 s", method)
	}
}

func (p *page) decode(raw json.RawMessage, v any) {
	p.t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		p.t.Fatalf("devtools answer %s: %v", raw, err)
	}
}

// eval runs a JavaScript expression in the page (promises awaited) and
// decodes its value into v (if not nil).
func (p *page) eval(expr string, v any) {
	p.t.Helper()
	var res struct {
		Result           struct{ Value json.RawMessage }
		ExceptionDetails *struct {
			Text      string
			Exception struct{ Description string }
		}
	}
	p.decode(p.call("Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}), &res)
	if res.ExceptionDetails != nil {
		p.t.Fatalf("eval %s: %s %s", expr, res.ExceptionDetails.Text, res.ExceptionDetails.Exception.Description)
	}
	if v != nil && len(res.Result.Value) > 0 {
		if err := json.Unmarshal(res.Result.Value, v); err != nil {
			p.t.Fatalf("eval %s = %s: %v", expr, res.Result.Value, err)
		}
	}
}

func (p *page) str(expr string) string {
	p.t.Helper()
	var s string
	p.eval(expr, &s)
	return s
}

// waitFor polls a JavaScript condition until it is true (the page
// renders asynchronously after API calls); on timeout it fails with the
// visible text.
func (p *page) waitFor(what, cond string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		// A condition may throw while a page reloads (no body yet), and
		// an evaluation sent while the page navigates is dropped by the
		// browser ("Inspected target navigated or closed"): both false.
		res, err := p.try("Runtime.evaluate", map[string]any{"expression": "(() => { try { return !!(" + cond + ") } catch (e) { return false } })()", "returnByValue": true})
		if err != nil && !strings.Contains(err.Error(), "navigated or closed") && !strings.Contains(err.Error(), "context") {
			p.t.Fatal(err)
		}
		if err == nil {
			var r struct{ Result struct{ Value bool } }
			p.decode(res, &r)
			ok = r.Result.Value
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s (%s); page text:\n%s", what, cond, p.str("document.body.innerText"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *page) navigate(u string) {
	p.t.Helper()
	p.call("Page.navigate", map[string]any{"url": u})
	p.waitFor("page load of "+u, `document.readyState === "complete" && document.body && document.body.dataset.view`)
}

// setHash routes inside the console.
func (p *page) setHash(h string) {
	p.t.Helper()
	p.eval("location.hash = "+jsString(h), nil)
}

func (p *page) fill(sel, value string) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%s); e.value = %s; e.dispatchEvent(new Event("input", {bubbles: true})); return true })()`, jsString(sel), jsString(value)), nil)
}

func (p *page) click(sel string) {
	p.t.Helper()
	var ok bool
	p.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e || e.disabled) return false; e.click(); return true })()`, jsString(sel)), &ok)
	if !ok {
		p.t.Fatalf("click %s: no such enabled element; page text:\n%s", sel, p.str("document.body.innerText"))
	}
}

// setFile puts a real file into an <input type=file>.
func (p *page) setFile(sel, path string) {
	p.t.Helper()
	abs, _ := filepath.Abs(path)
	var doc struct{ Root struct{ NodeID int } }
	p.decode(p.call("DOM.getDocument", map[string]any{"depth": 0}), &doc)
	var q struct{ NodeID int }
	p.decode(p.call("DOM.querySelector", map[string]any{"nodeId": doc.Root.NodeID, "selector": sel}), &q)
	if q.NodeID == 0 {
		p.t.Fatalf("setFile: no %s", sel)
	}
	p.call("DOM.setFileInputFiles", map[string]any{"files": []string{abs}, "nodeId": q.NodeID})
}

// screenshot captures the page (up to height CSS pixels tall), saves it
// under $CONSOLE_SCREENSHOTS/name.png when that is set, and decodes it.
func (p *page) screenshot(name string, height int) image.Image {
	p.t.Helper()
	p.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": false})
	var shot struct{ Data string }
	p.decode(p.call("Page.captureScreenshot", map[string]any{"format": "png"}), &shot)
	p.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false})
	raw, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		p.t.Fatal(err)
	}
	if dir := os.Getenv("CONSOLE_SCREENSHOTS"); dir != "" {
		os.WriteFile(filepath.Join(dir, "console-"+name+".png"), raw, 0o644)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		p.t.Fatal(err)
	}
	return img
}

// rect is an element's box in CSS pixels (zero if absent or hidden).
type rect struct{ X, Y, W, H float64 }

func (p *page) rect(sel string) rect {
	p.t.Helper()
	var r rect
	p.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return {X:0,Y:0,W:0,H:0};
		e.scrollIntoView({block: "center"}); const b = e.getBoundingClientRect(); return {X: b.x, Y: b.y, W: b.width, H: b.height} })()`, jsString(sel)), &r)
	return r
}

func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }

// colorsIn counts the distinct strongly coloured (saturated) pixel colours
// inside r of img: distinct chart series show up as distinct colours.
func colorsIn(img image.Image, r rect, want map[string][3]uint8) map[string]int {
	found := map[string]int{}
	for y := int(r.Y); y < int(r.Y+r.H); y++ {
		for x := int(r.X); x < int(r.X+r.W); x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			for name, c := range want {
				if absDiff(uint8(cr>>8), c[0]) < 24 && absDiff(uint8(cg>>8), c[1]) < 24 && absDiff(uint8(cb>>8), c[2]) < 24 {
					found[name]++
				}
			}
		}
	}
	return found
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
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

// addRecord queues one telemetry record on a fake device (it reaches the
// server over MQTT like any other).
func (d *fakeDevice) addRecord(at time.Time, model, version string, requests, errors uint64, p95 float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	d.recs = append(d.recs, wire.TelemetryRecord{Seq: d.seq, Time: at.UTC(), ModelID: model, Version: version, Role: wire.RolePrimary,
		Requests: requests, Errors: errors, LatencyP50Ms: p95 / 2, LatencyP95Ms: p95, LatencyP99Ms: p95 * 1.5})
	close(d.wake)
	d.wake = make(chan struct{})
}

// TestConsoleInChromium drives the real console in headless Chromium
// against a live server with enrolled devices, a finished canary, a
// release rolled back by its install gate, and telemetry of two models
// (one version with a single point): the login page without a token and
// with a wrong one, the admin token signing in (the page used to stick on
// "loading…"), per-model charts with distinct percentile lines, a readable
// error-rate axis and the single point drawn, the failed rollout naming
// the device, gate and the device's reason, the device page, and the
// device filter. Checks are on the rendered DOM, element boxes and
// screenshot pixels.
func TestConsoleInChromium(t *testing.T) {
	// An operator-chosen admin token with "+" and "/" (as openssl rand
	// -base64 makes): decoding the page's URL used to turn "+" into a
	// space, and the page stuck on "loading…".
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
	// A latency regression: installs fine, fails the p95 gate.
	e.release("slow")
	e.runRollout(spec("slow", "slow"), rollout.RolledBack)
	// A second model: version 3 with errors over several records, then
	// version 4 with exactly one record (the regression that used to be
	// invisible).
	broken, _ := e.srv.Rollouts().Get("broken")
	var bad *fakeDevice
	for _, d := range e.devs {
		if ds := broken.Devices[d.id]; ds != nil && ds.JobState == wire.JobRolledBack {
			bad = d
		}
	}
	if bad == nil {
		t.Fatalf("no device failed the bad install: %+v", broken.Devices)
	}
	now := time.Now()
	for i := 0; i < 3; i++ {
		bad.addRecord(now.Add(time.Duration(i-4)*time.Minute), "n", "3", 200, uint64(i), 12+float64(i))
	}
	bad.addRecord(now, "n", "4", 150, 3, 95)
	e.waitFor("model n telemetry stored", 20*time.Second, func() bool {
		return len(e.srv.Telemetry().Records(telemetryQueryModel("n", "4"))) == 1
	})

	p := newPage(t, e.srv)
	base := e.srv.URL() + "/"

	// Attack: no token. Only the login form, no fleet data.
	p.navigate(base)
	p.waitFor("login page", `document.body.dataset.view === "login"`)
	if r := p.rect("#login-form"); r.W < 200 || r.H < 100 {
		t.Errorf("login form not visible: %+v", r)
	}
	if typ := p.str(`document.querySelector("#login-token").type`); typ != "password" {
		t.Errorf("token input type %q", typ)
	}
	var leaks bool
	p.eval(`!!document.querySelector("[data-device], [data-id], [data-model-charts]") || !document.getElementById("app").hidden`, &leaks)
	if leaks {
		t.Error("no token: the page shows fleet data")
	}
	login := p.screenshot("login", 900)
	if n := darkRows(login, 420, 860); n < 40 {
		t.Errorf("login screenshot: only %d text rows in the centre (no login form?)", n)
	}

	// Attack: a wrong token typed into the form is refused with a visible error.
	p.fill("#login-token", "eft_0011223344556677_"+strings.Repeat("A", 43))
	p.click("#login-submit")
	p.waitFor("refusal", `document.getElementById("login-error").textContent.includes("Token refused: unknown or malformed token")`)
	if s := p.str(`sessionStorage.getItem("edgefleet-token") || ""`); s != "" {
		t.Errorf("a refused token was kept: %q", s)
	}

	// Control: the admin token typed into the form signs in; it is kept in
	// sessionStorage only (no cookie: the API never reads one) and never
	// in the DOM.
	p.fill("#login-token", flagToken)
	p.click("#login-submit")
	p.waitFor("fleet loaded", `document.body.dataset.view === "app" && document.body.dataset.loaded === "true"`)
	if c := p.str("document.cookie"); c != "" {
		t.Errorf("cookies set: %q", c)
	}
	if s := p.str(`sessionStorage.getItem("edgefleet-token")`); s != flagToken {
		t.Errorf("sessionStorage token %q", s)
	}
	if strings.Contains(p.str("document.documentElement.outerHTML"), flagToken) {
		t.Error("the token is left in the DOM")
	}
	if who := p.str(`document.getElementById("whoami").textContent`); who != "--admin-token (admin)" {
		t.Errorf("whoami %q", who)
	}

	// Per-model chart sets, not one mixed chart.
	p.waitFor("charts of both models", `document.querySelector('[data-model-charts="m"]') && document.querySelector('[data-model-charts="n"] [data-series="n@4 p95"]')`)
	var models []string
	p.eval(`[...document.querySelectorAll("[data-model-charts]")].map(e => e.dataset.modelCharts)`, &models)
	if strings.Join(models, ",") != "m,n" {
		t.Errorf("chart sets %v, want one per model m,n", models)
	}
	var mixed bool
	p.eval(`!!document.querySelector('[data-model-charts="m"] [data-series^="n@"], [data-model-charts="n"] [data-series^="m@"]')`, &mixed)
	if mixed {
		t.Error("a model's charts show another model's series")
	}
	// p50/p95/p99 are distinct lines: three colours and three dash patterns.
	var lines []struct{ Stroke, Dash string }
	p.eval(`[...document.querySelectorAll('[data-model-charts="n"] [data-chart="latency"] polyline')].filter(l => l.dataset.series.startsWith("n@3 "))
		.map(l => ({Stroke: l.getAttribute("stroke"), Dash: l.getAttribute("stroke-dasharray") || "solid"}))`, &lines)
	strokes, dashes := map[string]bool{}, map[string]bool{}
	for _, l := range lines {
		strokes[l.Stroke], dashes[l.Dash] = true, true
	}
	if len(lines) != 3 || len(strokes) != 3 || len(dashes) != 3 {
		t.Errorf("latency lines of n@3: %+v, want 3 with distinct colours and dashes", lines)
	}
	var legendText string
	p.eval(`document.querySelector('[data-model-charts="n"] [data-figure="latency"] .legend').textContent`, &legendText)
	for _, w := range []string{"p50", "p95", "p99", "v3", "v4"} {
		if !strings.Contains(legendText, w) {
			t.Errorf("latency legend %q lacks %s", legendText, w)
		}
	}
	// The single point of n@4 is drawn: a marker with a visible box.
	var single struct {
		Points  string
		Markers int
		W, H    float64
	}
	p.eval(`(() => { const g = document.querySelector('[data-model-charts="n"] [data-chart="latency"] [data-series="n@4 p95"]');
		const m = g.querySelector("circle, rect, polygon"); const b = m.getBoundingClientRect();
		return {Points: g.dataset.points, Markers: g.querySelectorAll("circle, rect, polygon").length, W: b.width, H: b.height} })()`, &single)
	if single.Points != "1" || single.Markers != 1 || single.W < 4 || single.H < 4 {
		t.Errorf("single point of n@4: %+v, want one visible marker", single)
	}
	// The version change is marked.
	var events []string
	p.eval(`[...document.querySelectorAll('[data-model-charts="n"] [data-chart="latency"] [data-event]')].map(e => e.dataset.event)`, &events)
	if !containsStr(events, "v4") {
		t.Errorf("version change markers %v, want v4", events)
	}
	p.eval(`[...document.querySelectorAll('[data-model-charts="m"] [data-chart="latency"] [data-event]')].map(e => e.dataset.event)`, &events)
	if !containsStr(events, "vslow") || !containsStr(events, "rollback vslow") || !containsStr(events, "rollback vbad") {
		t.Errorf("model m markers %v, want vslow and the rollbacks of slow and bad", events)
	}
	// The error-rate axis tells its ticks apart (it used to read 0.0% 0.0% 0.0%).
	for _, model := range []string{"m", "n"} {
		var ticks []string
		p.eval(fmt.Sprintf(`[...document.querySelectorAll('[data-model-charts="%s"] [data-chart="errors"] .ytick')].map(e => e.textContent)`, model), &ticks)
		seen := map[string]bool{}
		for _, tk := range ticks {
			if seen[tk] || !strings.HasSuffix(tk, "%") {
				t.Errorf("model %s error axis %v: repeated or unitless tick %q", model, ticks, tk)
			}
			seen[tk] = true
		}
		if len(ticks) < 3 {
			t.Errorf("model %s error axis %v: fewer than 3 ticks", model, ticks)
		}
	}
	// The tick rule over ranges a fleet produces (error rates in %, ms).
	for _, hi := range []float64{0, 1e-7, 0.0004, 0.04, 0.3, 1, 7.5, 95, 1234, 250000} {
		var tk struct {
			Labels []string
			Lo, Hi float64
		}
		p.eval(fmt.Sprintf(`(() => { const t = niceTicks(0, %g, 4); return {Labels: t.ticks.map(v => v.toFixed(t.dec)), Lo: t.lo, Hi: t.hi} })()`, hi), &tk)
		seen := map[string]bool{}
		for _, l := range tk.Labels {
			if seen[l] {
				t.Errorf("niceTicks(0, %g): repeated label %q in %v", hi, l, tk.Labels)
			}
			seen[l] = true
		}
		if len(tk.Labels) < 2 || len(tk.Labels) > 7 || tk.Lo > 0 || tk.Hi < hi {
			t.Errorf("niceTicks(0, %g) = %+v: want 2-7 ticks covering the range", hi, tk)
		}
	}
	var throughput int
	p.eval(`document.querySelectorAll('[data-model-charts="n"] [data-chart="throughput"] [data-series] circle, [data-model-charts="n"] [data-chart="throughput"] [data-series] rect').length`, &throughput)
	if throughput != 4 {
		t.Errorf("throughput chart of n: %d markers", throughput)
	}
	// Confidence and drift charts follow the server's drift API
	// (docs/monitoring.md): with it, model m (whose records carry
	// monitoring distributions) gets both; without it, none and no error
	// for the missing route.
	hasDrift := false
	for _, rt := range server.RoutesOf(e.srv) {
		hasDrift = hasDrift || rt.Pattern == "GET /api/v1/models/{id}/{version}/drift/series"
	}
	if hasDrift {
		p.waitFor("confidence and drift charts", `document.querySelector('[data-model-charts="m"] [data-chart="confidence"] [data-series="m@2"] circle, [data-model-charts="m"] [data-chart="confidence"] [data-series="m@2"] rect')
			&& document.querySelector('[data-model-charts="m"] [data-chart="drift"] [data-series]')`)
		p.rect(`[data-model-charts="m"] [data-chart="drift"]`)
		p.screenshot("drift", 900)
	} else {
		var driftFigs int
		p.eval(`document.querySelectorAll('[data-figure="drift"], [data-figure="confidence"]').length`, &driftFigs)
		if driftFigs != 0 {
			t.Errorf("%d drift/confidence charts without a drift API", driftFigs)
		}
	}
	if msg := p.str(`document.getElementById("error").textContent`); msg != "" {
		t.Errorf("API error shown: %q", msg)
	}
	// The screenshot shows the three percentile colours in m's latency chart.
	chartBox := p.rect(`[data-model-charts="n"] [data-chart="latency"]`)
	shot := p.screenshot("charts", 900)
	got := colorsIn(shot, chartBox, map[string][3]uint8{
		"p50": {0x2b, 0x8a, 0x3e}, "p95": {0xe8, 0x59, 0x0c}, "p99": {0xc9, 0x2a, 0x2a}})
	for _, c := range []string{"p50", "p95", "p99"} {
		if got[c] < 20 {
			t.Errorf("screenshot: %s colour in the latency chart on %d pixels (%v)", c, got[c], got)
		}
	}

	// The failed rollout says which device failed which gate, and why (the
	// device's own reason).
	p.waitFor("failed devices of broken", `document.querySelector('[data-id="broken"] [data-failed-device]')`)
	var failed []struct{ Device, Gate, Text string }
	p.eval(`[...document.querySelectorAll('[data-id="broken"] [data-failed-device]')].map(e => ({Device: e.dataset.failedDevice, Gate: e.dataset.gate, Text: e.textContent}))`, &failed)
	if len(failed) == 0 {
		t.Fatal("no failed device listed")
	}
	for _, f := range failed {
		if f.Gate != "install_failures" || !strings.Contains(f.Text, f.Device+" failed install_failures: golden output mismatch: rolled back to 2") {
			t.Errorf("failed device line %+v", f)
		}
	}
	if txt := p.str(`document.querySelector('[data-id="broken"] .reason').textContent`); !strings.Contains(txt, "gate failed: install failures") {
		t.Errorf("broken reason %q", txt)
	}
	// The latency regression names the slow device(s) and their p95.
	p.waitFor("failed devices of slow", `document.querySelector('[data-id="slow"] [data-failed-device]')`)
	failed = nil
	p.eval(`[...document.querySelectorAll('[data-id="slow"] [data-failed-device]')].map(e => ({Device: e.dataset.failedDevice, Gate: e.dataset.gate, Text: e.textContent}))`, &failed)
	for _, f := range failed {
		if f.Gate != "p95_latency_ratio" || !strings.Contains(f.Text, f.Device+" failed p95_latency_ratio: p95 80.00ms is 8.00× the baseline 10.00ms") {
			t.Errorf("slow: failed device line %+v", f)
		}
	}
	if len(failed) == 0 {
		t.Error("slow: no failed device listed")
	}
	var goodFailed bool
	p.eval(`!!document.querySelector('[data-id="good"] [data-failed-device]')`, &goodFailed)
	if goodFailed {
		t.Error("the succeeded rollout lists failed devices")
	}
	if r := p.rect(`[data-id="broken"] [data-failed-device]`); r.W == 0 || r.H == 0 {
		t.Errorf("failed device line not visible: %+v", r)
	}
	p.screenshot("rollouts", 1400)

	// Device page: status, labels, hardware, models served, job history, health.
	p.setHash("#/devices/" + bad.id)
	p.waitFor("device page", `document.querySelector('[data-device-page="`+bad.id+`"] [data-presence]')`)
	dev := p.str(`document.getElementById("view-device").innerText`)
	for _, w := range []string{"online", "last seen", "ring=", "amd64", "avx2", "models served", "job history", "golden output mismatch", "rolled_back", "health (last hour)", "requests (1 h)"} {
		if !strings.Contains(dev, w) {
			t.Errorf("device page lacks %q:\n%s", w, dev)
		}
	}
	var served []string
	p.eval(`[...document.querySelectorAll("[data-served]")].map(e => e.dataset.served)`, &served)
	if !containsStr(served, "m@2") {
		t.Errorf("models served %v", served)
	}
	var jobs int
	p.eval(`document.querySelectorAll("[data-job]").length`, &jobs)
	if jobs < 2 {
		t.Errorf("job history has %d jobs, want the install of 2 and of bad", jobs)
	}
	p.waitFor("device telemetry chart", `document.querySelector('[data-device-page="`+bad.id+`"]') && document.querySelector('#device-page [data-model-charts="n"] [data-series="n@4 p95"]')`)
	devShot := p.screenshot("device", 1300)
	if n := darkRows(devShot, 0, 640); n < 150 {
		t.Errorf("device page screenshot: %d text rows", n)
	}

	// Filter by label selector and by id; a bad selector is explained.
	p.setHash("#/devices")
	p.waitFor("device list", `document.querySelectorAll("#devices [data-device]").length === 3`)
	shown := func() []string {
		var ids []string
		p.eval(`[...document.querySelectorAll("#devices tbody [data-device]")].map(e => e.dataset.device)`, &ids)
		return ids
	}
	p.fill("#filter-selector", "ring=0")
	p.click("#filter-apply")
	p.waitFor("selector filter", `location.hash.includes("selector=ring%3D0") && document.querySelectorAll("#devices tbody [data-device]").length === 2`)
	if ids := shown(); strings.Join(ids, ",") != "dev-0,dev-2" {
		t.Errorf("ring=0 shows %v", ids)
	}
	p.fill("#filter-id", "dev-2")
	p.click("#filter-apply")
	p.waitFor("id filter", `document.querySelectorAll("#devices tbody [data-device]").length === 1`)
	if ids := shown(); strings.Join(ids, ",") != "dev-2" {
		t.Errorf("ring=0 and id dev-2 show %v", ids)
	}
	p.fill("#filter-id", "")
	p.fill("#filter-selector", "=1")
	// A refresh lands between typing and applying: it must leave the typed,
	// not yet applied filter alone (it used to put the applied one back
	// when the field had no focus, and the click applied the old filter).
	p.eval(`(async () => { while (busy !== -1) await new Promise(r => setTimeout(r, 20)); await refresh(); return true })()`, nil)
	p.click("#filter-apply")
	p.waitFor("bad selector error", `document.getElementById("filter-error").textContent.startsWith("Filter refused")`)
	p.click("#filter-clear")
	p.waitFor("all devices again", `document.querySelectorAll("#devices tbody [data-device]").length === 3 && !document.getElementById("filter-error").textContent`)

	// Large fleets and long histories stay bounded: synthetic lists
	// rendered in one go (the next refresh redraws the real ones).
	var bounded struct {
		Rows, Cards int
		Count, More string
	}
	p.eval(`(() => {
		const devs = [...Array(600).keys()].map(i => ({id: "d" + i, presence: "online", hardware: {arch: "arm64"}, labels: {}}));
		renderDeviceRows(devs, "");
		const rows = document.querySelectorAll("#devices tbody [data-device]").length, count = document.getElementById("filter-count").textContent;
		const ro = (i, phase) => ({spec: {id: "r" + i, model_id: "m", version: String(i), strategy: "canary", stages: [100], gates: {}},
			phase, stage: 0, devices: {}, gates: [], events: [], new_health: {requests: 0}, baseline_health: {}, created: new Date(Date.now() - i * 1000).toISOString()});
		renderRollouts([ro(0, "running"), ...[...Array(14).keys()].map(i => ro(i + 1, "succeeded"))]);
		const cards = document.querySelectorAll("#rollouts [data-id]").length, more = document.querySelector('[data-action="show-older"]').textContent;
		return {Rows: rows, Cards: cards, Count: count, More: more} })()`, &bounded)
	if bounded.Rows != 500 || !strings.Contains(bounded.Count, "600 of 3 device(s); showing the first 500") || bounded.Cards != 11 || bounded.More != "show 4 older rollout(s)" {
		t.Errorf("bounded lists: %+v", bounded)
	}

	// A viewer sees everything but cannot act.
	viewer, _, err := e.srv.Tokens().Create(context.Background(), "watcher", auth.Viewer, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.click("#logout")
	p.waitFor("logged out", `document.body.dataset.view === "login"`)
	p.fill("#login-token", viewer)
	p.click("#login-submit")
	p.setHash("#/")
	p.waitFor("viewer sees rollouts", `document.body.dataset.loaded === "true" && document.querySelector('[data-id="broken"] [data-failed-device]')`)
	var enabled int
	p.eval(`[...document.querySelectorAll("[data-needs=operator]")].filter(b => !b.disabled).length`, &enabled)
	if enabled != 0 {
		t.Errorf("viewer: %d operator buttons enabled", enabled)
	}

	// A link carrying the admin token ("+" and "/" in it) signs in and
	// leaves the address bar at once.
	p.click("#logout")
	p.waitFor("logged out", `document.body.dataset.view === "login"`)
	// The reload through DevTools: a location.reload() inside an
	// evaluation may navigate before the evaluation's answer is sent.
	p.eval(`location.hash = "token=`+flagToken+`"`, nil)
	p.call("Page.reload", nil)
	p.waitFor("signed in by link", `document.body.dataset.loaded === "true" && document.getElementById("whoami").textContent === "--admin-token (admin)"`)
	if h := p.str("location.hash"); strings.Contains(h, "token") {
		t.Errorf("token left in the address bar: %q", h)
	}
}

func telemetryQueryModel(model, version string) telemetry.Query {
	return telemetry.Query{ModelID: model, Version: version}
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// TestConsolePushAndRollout pushes a real model file from the console
// (signed into the repository by the server), creates a rollout from the
// form, promotes it, rolls it back from its card, and shows the API's
// errors (a duplicate version, a bad selector, a server without signing
// keys) in the page.
func TestConsolePushAndRollout(t *testing.T) {
	data := t.TempDir()
	keys := filepath.Join(data, "keys")
	if err := release.NewRepo(keys, filepath.Join(data, "repo")).Init(release.KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	e := startServer(t, server.Config{DataDir: data, KeysDir: keys})
	e.release("1") // what the devices run: the card's rollback target
	e.enroll(2)
	e.startLinks()
	e.waitFor("devices online", 20*time.Second, func() bool { return e.online() == 2 })
	op, _, err := e.srv.Tokens().Create(context.Background(), "ops", auth.Operator, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := newPage(t, e.srv)
	p.navigate(e.srv.URL() + "/#token=" + url.PathEscape(op))
	p.waitFor("signed in", `document.body.dataset.loaded === "true"`)

	// Push a real model file.
	model := filepath.Join("..", "..", "testdata", "models", "hello_world_int8.tflite")
	push := func(version string) {
		p.setFile("#push-file", model)
		p.fill("#push-id", "m")
		p.fill("#push-version", version)
		p.fill("#push-notes", "from the console")
		p.click("#push-submit")
	}
	p.setHash("#/models")
	push("5")
	p.waitFor("pushed", `document.getElementById("push-result").dataset.pushed === "m@5"`)
	if txt := p.str(`document.getElementById("push-result").textContent`); !strings.Contains(txt, "Released m@5") || !strings.Contains(txt, "int8") {
		t.Errorf("push result %q", txt)
	}
	m, err := e.srv.Registry().Models.Get(context.Background(), "m", "5")
	if err != nil || m.Notes != "from the console" {
		t.Fatalf("registry after push: %+v %v", m, err)
	}
	hashed := filepath.Join(data, "repo", "targets", filepath.Dir(m.Target.Name), m.Target.SHA256+"."+filepath.Base(m.Target.Name))
	if st, err := os.Stat(hashed); err != nil || st.Size() != m.Target.Length {
		t.Fatalf("signed target in the repository: %v", err)
	}
	p.waitFor("model listed", `document.querySelector('[data-model="m@5"]')`)
	p.screenshot("push", 900)
	// A second push of the same version is refused, and the page says why.
	push("5")
	p.waitFor("duplicate refused", `document.getElementById("push-result").textContent.startsWith("Push failed")`)
	if txt := p.str(`document.getElementById("push-result").textContent`); !strings.Contains(txt, "m@5 already exists") {
		t.Errorf("duplicate push message %q", txt)
	}
	if cls := p.str(`document.getElementById("push-result").className`); !strings.Contains(cls, "error") {
		t.Errorf("error shown with class %q", cls)
	}

	// Create a rollout from the form: client-side and server-side errors
	// first, then a good one that waits for promote.
	p.setHash("#/rollouts/new?model=m%405")
	p.waitFor("rollout form", `document.getElementById("ro-model").value === "m@5"`)
	p.fill("#ro-stages", "50,abc")
	p.click("#ro-submit")
	p.waitFor("stage error", `document.getElementById("ro-result").textContent.includes("is not a whole percentage")`)
	p.fill("#ro-stages", "50,100")
	p.fill("#ro-selector", "ring=1")
	p.waitFor("selector preview", `document.getElementById("ro-selector-match").textContent === "matches 1 of 2 device(s)"`)
	p.fill("#ro-selector", "=0")
	p.waitFor("selector preview error", `document.getElementById("ro-selector-match").textContent.includes("selector label key")`)
	p.click("#ro-submit")
	p.waitFor("selector refused", `document.getElementById("ro-result").textContent.startsWith("Rollout refused")`)
	p.fill("#ro-selector", "")
	p.fill("#ro-id", "ui-v5")
	p.fill("#ro-soak", "0s")
	p.fill("#ro-min-requests", "0")
	p.eval(`document.getElementById("ro-manual").checked = true`, nil)
	p.click("#ro-submit")
	p.waitFor("created", `document.getElementById("ro-result").dataset.created === "ui-v5"`)
	ro, ok := e.srv.Rollouts().Get("ui-v5")
	if !ok || ro.Spec.Version != "5" || len(ro.Spec.Stages) != 2 || !ro.Spec.ManualPromote || ro.Spec.Gates.MinRequests != 0 || ro.Spec.Gates.MaxP95Ratio != 1.5 {
		t.Fatalf("created rollout %+v", ro)
	}
	p.setHash("#/")
	e.waitFor("awaiting promotion", 30*time.Second, func() bool {
		r, _ := e.srv.Rollouts().Get("ui-v5")
		return r.Phase == rollout.AwaitPromote
	})
	p.waitFor("promote enabled", `document.querySelector('[data-id="ui-v5"].awaiting_promotion [data-action="promote"]:not([disabled])')`)
	p.click(`[data-id="ui-v5"] [data-action="promote"]`)
	e.waitFor("second stage awaiting promotion", 30*time.Second, func() bool {
		r, _ := e.srv.Rollouts().Get("ui-v5")
		return r.Phase == rollout.AwaitPromote && r.Stage == 1
	})
	p.waitFor("promote enabled again", `document.querySelector('[data-id="ui-v5"].awaiting_promotion [data-stage="2"].current') && document.querySelector('[data-id="ui-v5"] [data-action="promote"]:not([disabled])')`)
	p.click(`[data-id="ui-v5"] [data-action="promote"]`)
	e.waitFor("rollout succeeded", 30*time.Second, func() bool {
		r, _ := e.srv.Rollouts().Get("ui-v5")
		return r.Phase == rollout.Succeeded
	})
	if a := e.actives(); a["5"] != 2 {
		t.Fatalf("after the console rollout: active versions %v", a)
	}
	// Promote on a finished rollout is refused by the server; the console
	// shows the error (the button is disabled, so call it as the page does).
	p.waitFor("card succeeded", `document.querySelector('[data-id="ui-v5"].succeeded [data-action="rollback"]')`)
	p.eval(`command("ui-v5", "promote", document.querySelector('[data-id="ui-v5"] .card-error'))`, nil)
	p.waitFor("conflict shown", `document.getElementById("notice").textContent.includes("promote ui-v5 failed: rollout ui-v5 is succeeded")`)

	// Roll back from the card: a new rollout puts version 1 back.
	if lbl := p.str(`document.querySelector('[data-id="ui-v5"] [data-action="rollback"]').textContent`); lbl != "roll back to v1" {
		t.Errorf("rollback button %q", lbl)
	}
	p.click(`[data-id="ui-v5"] [data-action="rollback"]`)
	e.waitFor("rolled back to 1", 30*time.Second, func() bool { return e.actives()["1"] == 2 })
	p.waitFor("rollback card", `document.querySelector('[data-id^="rollback-ui-v5-"].succeeded')`)
	p.screenshot("rollout-actions", 1100)

	// Abort from the card: the devices go back to 1.
	p.setHash("#/rollouts/new?model=m%405")
	p.fill("#ro-id", "ui-abort")
	p.fill("#ro-stages", "100")
	p.click("#ro-submit")
	p.waitFor("created", `document.getElementById("ro-result").dataset.created === "ui-abort"`)
	e.waitFor("ui-abort awaiting promotion", 30*time.Second, func() bool {
		r, _ := e.srv.Rollouts().Get("ui-abort")
		return r.Phase == rollout.AwaitPromote
	})
	p.setHash("#/")
	p.waitFor("abort enabled", `document.querySelector('[data-id="ui-abort"].awaiting_promotion [data-action="abort"]:not([disabled])')`)
	p.click(`[data-id="ui-abort"] [data-action="abort"]`)
	e.waitFor("ui-abort rolled back", 30*time.Second, func() bool {
		r, _ := e.srv.Rollouts().Get("ui-abort")
		return r.Phase == rollout.RolledBack && e.actives()["1"] == 2
	})
	p.waitFor("abort shown", `document.querySelector('[data-id="ui-abort"].rolled_back')`)

	// A server without signing keys explains why the console cannot push.
	e2 := startServer(t, server.Config{})
	op2, _, err := e2.srv.Tokens().Create(context.Background(), "ops", auth.Operator, 0)
	if err != nil {
		t.Fatal(err)
	}
	p2 := newPage(t, e2.srv)
	p2.navigate(e2.srv.URL() + "/#token=" + url.PathEscape(op2))
	p2.waitFor("signed in", `document.body.dataset.loaded === "true"`)
	p2.setHash("#/models")
	p2.setFile("#push-file", model)
	p2.fill("#push-id", "m")
	p2.fill("#push-version", "9")
	p2.click("#push-submit")
	p2.waitFor("no keys", `document.getElementById("push-result").textContent.startsWith("Push failed")`)
	if txt := p2.str(`document.getElementById("push-result").textContent`); !strings.Contains(txt, "no --keys-dir") {
		t.Errorf("push without keys: %q", txt)
	}
}

// TestConsoleEndpoints: the console's own routes are in the auth table
// with the intended scopes (TestEveryMutatingRouteNeedsAuth walks them
// with viewer, operator and admin tokens), and the upload refuses bad
// input with a clear error before anything is signed; a real model is the
// control.
func TestConsoleEndpoints(t *testing.T) {
	want := map[string]auth.Scope{"POST /api/v1/models/upload": auth.Operator, "GET /api/v1/rollouts/{id}/devices": auth.Viewer}
	data := t.TempDir()
	keys := filepath.Join(data, "keys")
	if err := release.NewRepo(keys, filepath.Join(data, "repo")).Init(release.KeyOptions{}); err != nil {
		t.Fatal(err)
	}
	e := startAPI(t, server.Config{DataDir: data, KeysDir: keys})
	for _, rt := range server.RoutesOf(e.srv) {
		if s, ok := want[rt.Pattern]; ok {
			if rt.Scope != s {
				t.Errorf("%s has scope %s, want %s", rt.Pattern, rt.Scope, s)
			}
			delete(want, rt.Pattern)
		}
	}
	if len(want) > 0 {
		t.Errorf("routes missing from the table: %v", want)
	}
	good, err := os.ReadFile(filepath.Join("..", "..", "testdata", "models", "hello_world_int8.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	body := func(id, version string, data []byte) string {
		b, _ := json.Marshal(apitype.ModelUpload{ID: id, Version: version, FileName: "x.tflite", Data: data})
		return string(b)
	}
	viewer := e.token("ro", auth.Viewer, "").Token
	tests := []struct {
		name, token, ctype, body string
		code                     int
		msg                      string
	}{
		{"viewer", viewer, "", body("m", "1", good), 403, "needs a operator token"},
		{"form post (CSRF)", e.admin, "application/x-www-form-urlencoded", "id=m&version=1", 415, "Content-Type: application/json"},
		{"bad json", e.admin, "", `{"id":"m",`, 400, "model upload"},
		{"unknown field", e.admin, "", `{"id":"m","version":"1","data":"AA==","x":1}`, 400, "unknown field"},
		{"bad id", e.admin, "", body("../m", "1", good), 400, "model id"},
		{"no data", e.admin, "", body("m", "1", nil), 400, "no file data"},
		{"not a model", e.admin, "", body("m", "1", []byte("not a tflite file at all")), 422, "x.tflite"},
		{"too large", e.admin, "", `{"id":"m","version":"1","data":"` + strings.Repeat("A", server.MaxModelUpload/3*4+200<<10) + `"}`, 413, "over 64 MiB"},
		{"control", e.admin, "", body("m", "1", good), 200, `"sha256"`},
		{"same version again", e.admin, "", body("m", "1", good), 409, "already exists"},
	}
	for _, tc := range tests {
		hdr := []string{}
		if tc.ctype != "" {
			hdr = append(hdr, "Content-Type: "+tc.ctype)
		}
		code, resp, _ := e.req("POST", "/api/v1/models/upload", tc.token, tc.body, hdr...)
		if code != tc.code || !strings.Contains(resp, tc.msg) {
			t.Errorf("%s: %d %.300s, want %d with %q", tc.name, code, resp, tc.code, tc.msg)
		}
	}
	if code, resp, _ := e.req("GET", "/api/v1/rollouts/nope/devices", viewer, ""); code != 404 {
		t.Errorf("devices of an unknown rollout: %d %s", code, resp)
	}
}
