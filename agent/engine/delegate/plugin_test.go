//go:build tflite && cgo

package delegate

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"
)

// buildLib compiles testdata/src into a shared library with the system C
// compiler ($CC, else gcc) and returns its path.
func buildLib(t *testing.T, src string, defines ...string) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		t.Skipf("no C compiler (%s) to build the test plugin: %v", cc, err)
	}
	out := filepath.Join(t.TempDir(), "lib"+strings.TrimSuffix(src, ".c")+".so")
	args := append([]string{"-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", out, filepath.Join("testdata", src)}, defines...)
	if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", cc, args, err, b)
	}
	return out
}

func cString(p unsafe.Pointer) string {
	if p == nil {
		return ""
	}
	var b []byte
	for i := uintptr(0); ; i++ {
		c := *(*byte)(unsafe.Add(p, i))
		if c == 0 {
			return string(b)
		}
		b = append(b, c)
	}
}

func TestPluginCreatePassesOptionsAndDestroys(t *testing.T) {
	lib := buildLib(t, "test_plugin.c")
	p, err := Open(lib)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := Open(lib); err != nil || again != p {
		t.Errorf("second Open = %p, %v; want the same plugin %p", again, err, p)
	}
	marker := filepath.Join(t.TempDir(), "destroyed")
	opts, err := ParseOptions([]string{"device=usb:0", "performance=max", "destroy_marker=" + marker})
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	if d.Ptr() == nil {
		t.Fatal("nil delegate")
	}
	want := "device=usb:0;performance=max;destroy_marker=" + marker + ";"
	if got := cString(d.data()); got != want {
		t.Errorf("plugin saw options %q, want %q", got, want)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("destroyed before Close")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "destroyed" {
		t.Errorf("after Close the plugin's destroy did not run: %q, %v", b, err)
	}
	if err := d.Close(); err != nil { // idempotent, no double destroy
		t.Fatal(err)
	}
	// No options at all is a valid call.
	d2, err := p.Create(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cString(d2.data()); got != "" {
		t.Errorf("options echo = %q, want empty", got)
	}
	d2.Close()
}

func TestPluginFailureIsAnError(t *testing.T) {
	p, err := Open(buildLib(t, "test_plugin.c"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Create([]Option{{"fail", "no Edge TPU attached"}})
	if !errors.Is(err, ErrBadPlugin) || !strings.Contains(err.Error(), "returned no delegate: plugin reported: no Edge TPU attached") {
		t.Errorf("failing create: %v", err)
	}
	_, err = p.Create([]Option{{"null_prepare", "1"}})
	if !errors.Is(err, ErrBadPlugin) || !strings.Contains(err.Error(), "neither Prepare nor an opaque delegate builder") {
		t.Errorf("empty delegate: %v", err)
	}
	// The plugin still works after those failures (control).
	d, err := p.Create(nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
}

func TestOpenRejectsNonPlugins(t *testing.T) {
	noSyms := buildLib(t, "not_a_plugin.c")
	noDestroy := buildLib(t, "test_plugin.c", "-DNO_DESTROY")
	notELF := filepath.Join(t.TempDir(), "libtext.so")
	os.WriteFile(notELF, []byte("this is not an ELF file\n"), 0o644)
	cases := []struct {
		path string
		err  error
		msg  string
	}{
		{noSyms, ErrBadPlugin, "does not export [tflite_plugin_create_delegate tflite_plugin_destroy_delegate]"},
		{noDestroy, ErrBadPlugin, "does not export [tflite_plugin_destroy_delegate]"},
		{filepath.Join(t.TempDir(), "libmissing.so"), ErrPluginNotFound, "No such file"},
		{"libedgefleet-no-such-plugin.so.1", ErrPluginNotFound, "cannot open shared object file"},
		{notELF, ErrPluginNotFound, "libtext.so"},
	}
	for _, c := range cases {
		p, err := Open(c.path)
		if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Open(%s) = %v, %v; want %v containing %q", filepath.Base(c.path), p, err, c.err, c.msg)
		}
	}
}
