package wire

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestStatusCarriesAccelerationCapabilities(t *testing.T) {
	in := Status{V: 1, DeviceID: "coral-1", State: Online, Hardware: &Hardware{Arch: "arm64",
		Accelerators: []string{"edgetpu/usb"}, ModelVariants: []string{"edgetpu", "cpu"}, Backends: []string{"native", "tflite", "tflite+edgetpu"}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"model_variants":["edgetpu","cpu"]`) {
		t.Errorf("json = %s", b)
	}
	out, err := DecodeStatus(b)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out.Hardware.ModelVariants, out.Hardware.Backends) != "[edgetpu cpu] [native tflite tflite+edgetpu]" {
		t.Errorf("decoded %+v", out.Hardware)
	}
	// An old device's status (no new fields) still decodes.
	if _, err := DecodeStatus([]byte(`{"v":1,"device_id":"d","state":"online","hardware":{"arch":"amd64"}}`)); err != nil {
		t.Errorf("old status: %v", err)
	}
}

func TestHardwareListsAreBounded(t *testing.T) {
	long := make([]string, MaxHardwareList+1)
	for i := range long {
		long[i] = "cpu"
	}
	for name, hw := range map[string]Hardware{
		"too many variants": {Arch: "arm64", ModelVariants: long},
		"too many backends": {Arch: "arm64", Backends: long},
		"huge entry":        {Arch: "arm64", Accelerators: []string{strings.Repeat("x", MaxHardwareEntry+1)}},
	} {
		st := Status{V: 1, DeviceID: "d", State: Online, Hardware: &hw}
		b, _ := json.Marshal(st)
		if _, err := DecodeStatus(b); err == nil || !strings.Contains(err.Error(), "hardware.") {
			t.Errorf("%s: status accepted (%v)", name, err)
		}
		enr := EnrollRequest{V: 1, Token: "t", DeviceID: "d", Hardware: hw}
		b, _ = json.Marshal(enr)
		if _, err := DecodeEnrollRequest(b); err == nil || !strings.Contains(err.Error(), "hardware.") {
			t.Errorf("%s: enroll request accepted (%v)", name, err)
		}
	}
	// Control: the largest allowed lists pass.
	ok := Hardware{Arch: "arm64", ModelVariants: long[:MaxHardwareList], Backends: []string{strings.Repeat("x", MaxHardwareEntry)}}
	b, _ := json.Marshal(Status{V: 1, DeviceID: "d", State: Online, Hardware: &ok})
	if _, err := DecodeStatus(b); err != nil {
		t.Errorf("bounded lists rejected: %v", err)
	}
}
