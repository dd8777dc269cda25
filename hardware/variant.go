package hardware

import (
	"errors"
	"fmt"
	"strings"
)

// Model variants: one model version can be released as several files, each
// compiled for a kind of hardware. The names are the "hardware" field of a
// release (ota.TargetCustom.Hardware).
const (
	// VariantCPU is the plain .tflite file every device can run ("" means
	// the same).
	VariantCPU = "cpu"
	// VariantEdgeTPU is the file compiled by edgetpu_compiler (it contains
	// edgetpu-custom-op nodes and needs an Edge TPU).
	VariantEdgeTPU = "edgetpu"
)

// ErrNoVariant is returned by SelectVariant when the device can run none of
// a release's variants.
var ErrNoVariant = errors.New("no model variant this device can run")

// Variants lists the model variants this board can run, best first.
// tfliteBuilt says whether the running agent has the TensorFlow Lite
// backend (build tag tflite); an Edge TPU variant also needs an attached
// Edge TPU, libedgetpu and libtensorflowlite_c. VariantCPU is always last.
func (i Info) Variants(tfliteBuilt bool) []string {
	var v []string
	if tfliteBuilt && i.TFLiteLibrary != "" && i.EdgeTPULibrary != "" && i.Has("edgetpu") {
		v = append(v, VariantEdgeTPU)
	}
	return append(v, VariantCPU)
}

// SelectVariant picks the variant to install: the first of runnable (the
// device's variants, best first, as from Info.Variants) that the release
// offers in available. An empty name in either list means VariantCPU. It is
// a pure function of its arguments.
func SelectVariant(runnable, available []string) (string, error) {
	offered := make(map[string]bool, len(available))
	for _, a := range available {
		offered[normVariant(a)] = true
	}
	for _, r := range runnable {
		if r = normVariant(r); offered[r] {
			return r, nil
		}
	}
	return "", fmt.Errorf("%w: the release offers [%s], the device runs [%s]", ErrNoVariant, strings.Join(available, ", "), strings.Join(runnable, ", "))
}

func normVariant(v string) string {
	if v == "" {
		return VariantCPU
	}
	return v
}
