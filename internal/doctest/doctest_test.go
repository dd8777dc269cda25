package doctest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestExtract(t *testing.T) {
	md := "# t\n\n```sh\necho a\n```\n\n<!-- doctest: skip (needs make) -->\n```sh\nmake x\n```\n\n" +
		"```go\nfunc x() {}\n```\n\n<!-- doctest -->\n```bash\necho b\n```\n\n````\n```sh\nnot a block\n```\n````\n"
	bs, err := Extract("x.md", []byte(md))
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 3 {
		t.Fatalf("%d blocks, want 3: %+v", len(bs), bs)
	}
	if bs[0].Text != "echo a\n" || bs[0].Line != 3 || bs[0].Skip || bs[0].Marked {
		t.Errorf("block 0: %+v", bs[0])
	}
	if !bs[1].Skip || bs[1].SkipReason != "needs make" || bs[1].Runs(true) {
		t.Errorf("block 1: %+v", bs[1])
	}
	if !bs[2].Marked || bs[2].Text != "echo b\n" || !bs[2].Runs(false) {
		t.Errorf("block 2: %+v", bs[2])
	}
	if bs[0].Runs(false) || !bs[0].Runs(true) {
		t.Errorf("unmarked block: runs only where every block runs by default")
	}
	s := Script(bs, true)
	if !strings.Contains(s, "echo a\n") || !strings.Contains(s, "echo b\n") || strings.Contains(s, "make x") {
		t.Errorf("script:\n%s", s)
	}
}

func TestExtractErrors(t *testing.T) {
	for _, tc := range []struct{ md, want string }{
		{"```sh\necho\n", "x.md:2: code fence ``` never closed"},
		{"<!-- doctest: skip -->\n```sh\nx\n```\n", "x.md:1: doctest marker"},
		{"<!-- doctest: run -->\n```sh\nx\n```\n", "x.md:1: doctest marker"},
		{"<!-- doctest -->\ntext\n```sh\nx\n```\n", "x.md:1: doctest marker not followed by a shell block"},
		{"<!-- doctest -->\n```go\nx\n```\n", "want sh or bash"},
		{"<!-- doctest -->\n", "x.md:1: doctest marker not followed"},
	} {
		_, err := Extract("x.md", []byte(tc.md))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error containing %q", tc.md, err, tc.want)
		}
	}
}

func FuzzExtract(f *testing.F) {
	f.Add("```sh\necho a\n```\n")
	f.Add("<!-- doctest: skip (x) -->\n```sh\nmake\n```\n")
	f.Add("<!-- doctest -->\n~~~bash\necho\n~~~\n")
	f.Add("````\n```sh\n```\n````\n")
	f.Fuzz(func(t *testing.T, md string) {
		bs, err := Extract("f.md", []byte(md))
		if err != nil {
			return
		}
		for _, b := range bs {
			if b.Line < 1 || !strings.Contains(md, b.Text) {
				t.Fatalf("block %+v not in the input", b)
			}
		}
		Script(bs, true)
	})
}

// repoRoot is the module root, two levels above this package.
func repoRoot(t *testing.T) string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return root
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// TestREADME runs every shell block of README.md in order with bash, in a
// scratch directory holding bin/ built from the tree and the repository's
// testdata/: models, serving, and the whole fleet walkthrough (keys,
// server, enrollment, traffic, push, canary rollout to 100 % with --watch).
// The default ports in the text (8080, 8070, 8883) are mapped to free ones,
// and the same addresses are given to the binaries' defaults through their
// environment variables, so commands relying on defaults are exercised too.
func TestREADME(t *testing.T) {
	root := repoRoot(t)
	md, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := Extract("README.md", md)
	if err != nil {
		t.Fatal(err)
	}
	runDoc(t, root, Script(blocks, true))
}

// TestDocs runs the opted-in blocks of docs/*.md, one file per scratch
// directory.
func TestDocs(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		md, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := "docs/" + filepath.Base(f)
		blocks, err := Extract(name, md)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, b := range blocks {
			if b.Runs(false) {
				n++
			}
		}
		if n == 0 {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) { runDoc(t, root, Script(blocks, false)) })
	}
}

var builtBin string

// buildBinaries builds the three binaries once per test process.
func buildBinaries(t *testing.T, root string) string {
	if builtBin != "" {
		return builtBin
	}
	dir, err := os.MkdirTemp("", "doctest-bin-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/edge-agent", "./cmd/fleet-server", "./cmd/fleetctl")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	builtBin = dir
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(builtBin)
	}
	os.Exit(code)
}

// runDoc runs script with bash in a scratch directory and fails the test
// with the script's output if it exits non-zero or runs over the deadline.
// Whatever the script left running (its own process group) is killed.
func runDoc(t *testing.T, root, script string) {
	// The examples use these tools (build/setup-deps.sh installs them).
	for _, tool := range []string{"bash", "curl", "openssl", "jq", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the documentation examples need %s: %v (apt-get install %s)", tool, err, tool)
		}
	}
	bin := buildBinaries(t, root)
	work := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(work, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "testdata"), filepath.Join(work, "testdata")); err != nil {
		t.Fatal(err)
	}
	agent, srv, mqtt := freePort(t), freePort(t), freePort(t)
	script = strings.NewReplacer(":8080", ":"+agent, ":8070", ":"+srv, ":8883", ":"+mqtt).Replace(script)
	scriptFile := filepath.Join(t.TempDir(), "doc.sh")
	if err := os.WriteFile(scriptFile, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(t.TempDir(), "out.log")
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	const deadline = 5 * time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.Command("bash", scriptFile)
	cmd.Dir = work
	cmd.Env = append(os.Environ(),
		"EDGE_LISTEN=127.0.0.1:"+agent,
		"EDGEFLEET_LISTEN=127.0.0.1:"+srv,
		"EDGEFLEET_MQTT_LISTEN=127.0.0.1:"+mqtt,
		"EDGEFLEET_SERVER=https://127.0.0.1:"+srv,
		// docs/ examples call the binaries as installed (fleetctl, not bin/fleetctl).
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
	)
	// A file, not a pipe: background servers keep their stdout open, and
	// Wait must not wait for them.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// killGroup stops whatever the script left running and waits until the
	// group is gone (SIGKILL after 5 s), so the scratch directory can go.
	killGroup := func() {
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		for start := time.Now(); syscall.Kill(-pgid, 0) == nil; time.Sleep(50 * time.Millisecond) {
			if time.Since(start) > 5*time.Second {
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			}
			if time.Since(start) > 30*time.Second {
				t.Errorf("processes of the doc script still alive 30 s after SIGKILL")
				return
			}
		}
	}
	var runErr error
	select {
	case runErr = <-done:
	case <-ctx.Done():
		runErr = fmt.Errorf("still running after %s", deadline)
	}
	killGroup()
	if runErr != nil && ctx.Err() != nil {
		<-done
	}
	took := time.Since(start)
	text, _ := os.ReadFile(logFile)
	if runErr != nil {
		t.Fatalf("doc script failed after %s: %v\n--- output ---\n%s\n--- script ---\n%s", took.Round(time.Millisecond), runErr, text, script)
	}
	t.Logf("doc script passed in %s", took.Round(time.Millisecond))
	if testing.Verbose() {
		t.Logf("output:\n%s", text)
	}
}

// TestScriptStopsAtFirstFailure: a failing command (also inside a pipe)
// fails the script and nothing after it runs; the control passes.
func TestScriptStopsAtFirstFailure(t *testing.T) {
	for _, tc := range []struct {
		md   string
		fail bool
	}{
		{"```sh\necho one\n```\n```sh\nfalse\necho after\n```\n", true},
		{"```sh\nfalse | cat\necho after\n```\n", true},
		{"```sh\necho one\n```\n```sh\necho after\n```\n", false},
	} {
		bs, err := Extract("t.md", []byte(tc.md))
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("bash", "-c", Script(bs, true)).CombinedOutput()
		if (err != nil) != tc.fail || strings.Contains(string(out), "after") == tc.fail {
			t.Errorf("%q: err %v, output %q; want failure %v", tc.md, err, out, tc.fail)
		}
		if tc.fail && !strings.Contains(string(out), "### doctest: t.md:") {
			t.Errorf("%q: output %q does not say which block ran", tc.md, out)
		}
	}
}
