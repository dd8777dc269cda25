package delegate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/hardware"
)

func TestParseOptions(t *testing.T) {
	got, err := ParseOptions([]string{"device=usb:0", "performance=max", " device = pci:0", "empty="})
	if err != nil {
		t.Fatal(err)
	}
	want := "device= pci:0,performance=max,empty="
	var s []string
	for _, o := range got {
		s = append(s, o.String())
	}
	if strings.Join(s, ",") != want {
		t.Errorf("options = %s, want %s", strings.Join(s, ","), want)
	}
	bad := []string{"novalue", "=v", "k=a\x00b", "k=" + strings.Repeat("x", MaxOptionBytes)}
	for _, b := range bad {
		if _, err := ParseOptions([]string{b}); !errors.Is(err, ErrBadOption) {
			t.Errorf("ParseOptions(%.20q) = %v, want ErrBadOption", b, err)
		}
	}
	if _, err := ParseOptions(make([]string, MaxOptions+1)); !errors.Is(err, ErrBadOption) {
		t.Errorf("too many options: %v", err)
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	plugin := filepath.Join(dir, "libmy_delegate.so")
	if err := os.WriteFile(plugin, []byte("not loaded by Resolve"), 0o644); err != nil {
		t.Fatal(err)
	}
	coral := hardware.DetectRoot("../../../hardware/testdata/rpi")
	bare := hardware.DetectRoot(dir)
	opt := []Option{{"device", "usb"}}
	cases := []struct {
		name string
		info hardware.Info
		opts []Option
		kind Kind
		lib  string
		nopt int
		err  error
	}{
		{"", bare, nil, KindNone, "", 0, nil},
		{"none", bare, nil, KindNone, "", 0, nil},
		{"none", bare, opt, "", "", 0, ErrBadOption},
		{"xnnpack", bare, nil, KindXNNPACK, "", 0, nil},
		{"xnnpack", bare, opt, "", "", 0, ErrBadOption},
		{"xnnpack", bare, []Option{{XNNPACKQuantized, "true"}}, KindXNNPACK, "", 1, nil},
		{"xnnpack", bare, []Option{{XNNPACKQuantized, "yes"}}, "", "", 0, ErrBadOption},
		{"edgetpu", coral, opt, KindPlugin, "/usr/lib/aarch64-linux-gnu/libedgetpu.so.1", 1, nil},
		{"edgetpu", bare, nil, KindPlugin, "libedgetpu.so.1", 0, nil},
		{"gpu", coral, nil, KindPlugin, "/usr/lib/aarch64-linux-gnu/libarmnnDelegate.so", 1, nil},
		{"gpu", bare, []Option{{"backends", "CpuAcc"}}, KindPlugin, "libarmnnDelegate.so", 1, nil},
		{plugin, bare, opt, KindPlugin, plugin, 1, nil},
		{filepath.Join(dir, "missing.so"), bare, nil, "", "", 0, ErrPluginNotFound},
		{dir + "/", bare, nil, "", "", 0, ErrPluginNotFound},
		{"tpu", bare, nil, "", "", 0, ErrUnknownDelegate},
	}
	for _, c := range cases {
		s, err := Resolve(c.name, c.opts, c.info)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Resolve(%q) = %+v, %v; want %v", c.name, s, err, c.err)
			}
			continue
		}
		if err != nil || s.Kind != c.kind || s.Library != c.lib || len(s.Options) != c.nopt {
			t.Errorf("Resolve(%q) = %+v, %v; want kind %s lib %q, %d options", c.name, s, err, c.kind, c.lib, c.nopt)
		}
	}
}

func FuzzParseOptions(f *testing.F) {
	f.Add("device=usb:0", "backends=GpuAcc,CpuAcc")
	f.Add("=", "k=\x00")
	f.Add("novalue", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		opts, err := ParseOptions([]string{a, b})
		if err != nil {
			if !errors.Is(err, ErrBadOption) {
				t.Fatalf("error %v does not wrap ErrBadOption", err)
			}
			return
		}
		for _, o := range opts {
			if o.Key == "" || strings.ContainsRune(o.Key+o.Value, 0) {
				t.Fatalf("accepted option %q", o)
			}
		}
	})
}
