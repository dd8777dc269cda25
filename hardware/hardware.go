// Package hardware detects what a board offers for inference: CPU
// architecture and SIMD features, memory, GPUs, Edge TPUs and the
// TensorFlow Lite libraries needed to use them, and picks the inference
// backend accordingly. Detection reads /proc, /sys and /dev under a root
// directory, so tests run it against fake trees.
package hardware

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/cpu"
)

// Accelerator is one inference accelerator found on the board.
type Accelerator struct {
	// Kind is "edgetpu" or "gpu".
	Kind string `json:"kind"`
	// Bus is "usb", "pcie" or "platform".
	Bus string `json:"bus"`
	// Device is the device node or sysfs path that revealed it.
	Device string `json:"device"`
	// Vendor describes the vendor when known.
	Vendor string `json:"vendor,omitempty"`
}

// Info describes the board.
type Info struct {
	OS          string        `json:"os"`
	Arch        string        `json:"arch"`
	ARMVersion  string        `json:"arm_version,omitempty"`
	CPUModel    string        `json:"cpu_model,omitempty"`
	Cores       int           `json:"cores"`
	CPUFeatures []string      `json:"cpu_features"`
	MemoryBytes uint64        `json:"memory_bytes,omitempty"`
	Accelerator []Accelerator `json:"accelerators"`
	// TFLiteLibrary is the path of libtensorflowlite_c when present.
	TFLiteLibrary string `json:"tflite_library,omitempty"`
	// EdgeTPULibrary is the path of libedgetpu when present.
	EdgeTPULibrary string `json:"edgetpu_library,omitempty"`
	// GPUDelegateLibrary is the path of a GPU external-delegate plugin
	// (one of GPUDelegatePlugins) when present.
	GPUDelegateLibrary string `json:"gpu_delegate_library,omitempty"`
}

// Detect inspects the running machine.
func Detect() Info { return DetectRoot("/") }

// DetectRoot inspects the machine whose /proc, /sys, /dev and library
// folders live under root (tests pass a fake tree).
func DetectRoot(root string) Info {
	info := Info{OS: runtime.GOOS, Arch: runtime.GOARCH, Cores: runtime.NumCPU(), CPUFeatures: cpuFeatures()}
	if runtime.GOARCH == "arm" {
		info.ARMVersion = "7"
	}
	info.CPUModel, info.Cores = cpuInfo(root, info.Cores)
	info.MemoryBytes = memTotal(root)
	info.Accelerator = append(info.Accelerator, edgeTPUs(root)...)
	info.Accelerator = append(info.Accelerator, gpus(root)...)
	info.TFLiteLibrary = FindLibrary(root, TFLiteLibraryName)
	info.EdgeTPULibrary = FindLibrary(root, EdgeTPULibraryName)
	for _, name := range GPUDelegatePlugins {
		if info.GPUDelegateLibrary = FindLibrary(root, name); info.GPUDelegateLibrary != "" {
			break
		}
	}
	return info
}

// cpuFeatures lists the SIMD features that matter for inference kernels.
func cpuFeatures() []string {
	var f []string
	add := func(ok bool, name string) {
		if ok {
			f = append(f, name)
		}
	}
	switch runtime.GOARCH {
	case "amd64", "386":
		add(cpu.X86.HasSSE41, "sse4.1")
		add(cpu.X86.HasAVX, "avx")
		add(cpu.X86.HasAVX2, "avx2")
		add(cpu.X86.HasFMA, "fma")
		add(cpu.X86.HasAVX512F, "avx512f")
		add(cpu.X86.HasAVX512VNNI, "avx512vnni")
		add(cpu.X86.HasAVXVNNI, "avxvnni")
	case "arm64":
		add(cpu.ARM64.HasASIMD, "asimd")
		add(cpu.ARM64.HasASIMDDP, "asimddp")
		add(cpu.ARM64.HasFPHP, "fphp")
		add(cpu.ARM64.HasASIMDHP, "asimdhp")
		add(cpu.ARM64.HasI8MM, "i8mm")
		add(cpu.ARM64.HasSVE, "sve")
	case "arm":
		add(cpu.ARM.HasNEON, "neon")
		add(cpu.ARM.HasVFPv4, "vfpv4")
	case "riscv64":
		add(cpu.RISCV64.HasV, "v")
	}
	if f == nil {
		f = []string{}
	}
	return f
}

func cpuInfo(root string, cores int) (string, int) {
	b, err := os.ReadFile(filepath.Join(root, "proc/cpuinfo"))
	if err != nil {
		return "", cores
	}
	model := ""
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			n++
		case "model name", "Model", "Hardware", "uarch":
			if model == "" {
				model = v
			}
		}
	}
	if n == 0 {
		n = cores
	}
	return model, n
}

func memTotal(root string) uint64 {
	b, err := os.ReadFile(filepath.Join(root, "proc/meminfo"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// Coral USB accelerators enumerate as 1a6e:089a before the runtime loads
// their firmware and 18d1:9302 after.
var edgeTPUUSB = map[string]bool{"1a6e:089a": true, "18d1:9302": true}

func edgeTPUs(root string) []Accelerator {
	var out []Accelerator
	devs, _ := filepath.Glob(filepath.Join(root, "sys/bus/usb/devices/*"))
	sort.Strings(devs)
	for _, d := range devs {
		v := readTrim(filepath.Join(d, "idVendor"))
		p := readTrim(filepath.Join(d, "idProduct"))
		if edgeTPUUSB[v+":"+p] {
			out = append(out, Accelerator{Kind: "edgetpu", Bus: "usb", Device: strings.TrimPrefix(d, root), Vendor: "Google Coral (" + v + ":" + p + ")"})
		}
	}
	apex, _ := filepath.Glob(filepath.Join(root, "dev/apex_*"))
	sort.Strings(apex)
	for _, a := range apex {
		out = append(out, Accelerator{Kind: "edgetpu", Bus: "pcie", Device: "/" + strings.TrimPrefix(strings.TrimPrefix(a, root), "/"), Vendor: "Google Coral"})
	}
	return out
}

var gpuVendors = map[string]string{"0x8086": "Intel", "0x1002": "AMD", "0x10de": "NVIDIA", "0x13b5": "ARM"}

func gpus(root string) []Accelerator {
	var out []Accelerator
	nodes, _ := filepath.Glob(filepath.Join(root, "dev/dri/renderD*"))
	sort.Strings(nodes)
	for _, n := range nodes {
		name := filepath.Base(n)
		vendor := readTrim(filepath.Join(root, "sys/class/drm", name, "device/vendor"))
		drv := filepath.Base(readLink(filepath.Join(root, "sys/class/drm", name, "device/driver")))
		desc := gpuVendors[vendor]
		if desc == "" {
			desc = vendor
		}
		if drv != "" && drv != "." {
			desc = strings.TrimSpace(desc + " " + drv)
		}
		out = append(out, Accelerator{Kind: "gpu", Bus: "platform", Device: "/dev/dri/" + name, Vendor: desc})
	}
	if _, err := os.Stat(filepath.Join(root, "dev/mali0")); err == nil {
		out = append(out, Accelerator{Kind: "gpu", Bus: "platform", Device: "/dev/mali0", Vendor: "ARM Mali"})
	}
	return out
}

// Library file names the detection looks for.
const (
	// TFLiteLibraryName is TensorFlow Lite's C library.
	TFLiteLibraryName = "libtensorflowlite_c.so"
	// EdgeTPULibraryName is the Edge TPU runtime, which is also the Edge
	// TPU's external-delegate plugin.
	EdgeTPULibraryName = "libedgetpu.so.1"
)

// GPUDelegatePlugins are the GPU external-delegate plugin libraries that
// --delegate gpu looks for, in order: Arm NN's TensorFlow Lite delegate
// (Mali and other OpenCL GPUs through its GpuAcc backend) in its classic
// and opaque forms.
var GPUDelegatePlugins = []string{"libarmnnDelegate.so", "libarmnnOpaqueDelegate.so"}

// LibraryDirs are the folders (relative to the root) searched for shared
// libraries and delegate plugins, in order.
var LibraryDirs = []string{"usr/lib", "usr/local/lib", "lib", "usr/lib/aarch64-linux-gnu", "usr/lib/arm-linux-gnueabihf", "usr/lib/x86_64-linux-gnu", "usr/lib/riscv64-linux-gnu"}

// FindLibrary returns the absolute path (as seen from root) of the first
// file called name in LibraryDirs under root, or "".
func FindLibrary(root, name string) string {
	for _, d := range LibraryDirs {
		p := filepath.Join(root, d, name)
		if _, err := os.Stat(p); err == nil {
			return "/" + filepath.Join(d, name)
		}
	}
	return ""
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readLink(p string) string {
	s, err := os.Readlink(p)
	if err != nil {
		return ""
	}
	return s
}

// Has reports whether an accelerator of kind was found.
func (i Info) Has(kind string) bool {
	for _, a := range i.Accelerator {
		if a.Kind == kind {
			return true
		}
	}
	return false
}

// Backend names an inference engine and delegate.
type Backend string

// Backends, most specialized first.
const (
	// BackendEdgeTPU runs Edge TPU-compiled models through TensorFlow Lite
	// with the Edge TPU delegate.
	BackendEdgeTPU Backend = "tflite-edgetpu"
	// BackendGPU runs through TensorFlow Lite with the GPU delegate.
	BackendGPU Backend = "tflite-gpu"
	// BackendXNNPACK runs through TensorFlow Lite with XNNPACK.
	BackendXNNPACK Backend = "tflite-xnnpack"
	// BackendNative is edgefleet's pure-Go runtime: always available.
	BackendNative Backend = "native"
)

// Choice is a backend decision with its reason.
type Choice struct {
	Backend Backend `json:"backend"`
	Reason  string  `json:"reason"`
}

// Pick chooses the backend for a model given the board, whether the model
// is compiled for the Edge TPU, whether this agent was built with the
// TensorFlow Lite backend (build tag tflite), and an optional preference
// ("" or "auto" for automatic).
func Pick(info Info, edgeTPUModel, tfliteBuilt bool, prefer string) (Choice, bool) {
	haveTFLite := tfliteBuilt && info.TFLiteLibrary != ""
	if prefer != "" && prefer != "auto" {
		b := Backend(prefer)
		switch b {
		case BackendNative:
			if edgeTPUModel {
				return Choice{b, "model is compiled for the Edge TPU; the native runtime cannot run it"}, false
			}
			return Choice{b, "requested"}, true
		case BackendXNNPACK, BackendGPU, BackendEdgeTPU:
			if !haveTFLite {
				return Choice{b, "requested, but this agent lacks the TensorFlow Lite backend or libtensorflowlite_c"}, false
			}
			if b == BackendEdgeTPU && (!info.Has("edgetpu") || info.EdgeTPULibrary == "") {
				return Choice{b, "requested, but no Edge TPU or libedgetpu was found"}, false
			}
			if b == BackendGPU && (!info.Has("gpu") || info.GPUDelegateLibrary == "") {
				return Choice{b, "requested, but no GPU or GPU delegate plugin (" + strings.Join(GPUDelegatePlugins, ", ") + ") was found"}, false
			}
			return Choice{b, "requested"}, true
		}
		return Choice{b, "unknown backend " + prefer}, false
	}
	if edgeTPUModel {
		if haveTFLite && info.Has("edgetpu") && info.EdgeTPULibrary != "" {
			return Choice{BackendEdgeTPU, "Edge TPU model and an Edge TPU is attached"}, true
		}
		return Choice{BackendEdgeTPU, "model is compiled for the Edge TPU but no usable Edge TPU (device, libedgetpu, tflite backend) was found"}, false
	}
	// Not XNNPACK by default, even where TensorFlow Lite is present: the
	// pure-Go runtime matches TensorFlow Lite's reference kernels bit for
	// bit, which the releases' golden checks (sha256 of the outputs, made
	// with that runtime) rely on, while TensorFlow Lite's kernels and
	// XNNPACK round differently per version and architecture
	// (docs/acceleration.md); and on the quantized vision models measured
	// with TensorFlow Lite 2.9 the pure-Go runtime is as fast as XNNPACK and
	// faster than the builtin kernels. It is one explicit preference away
	// (BackendXNNPACK, --delegate xnnpack).
	if haveTFLite {
		return Choice{BackendNative, "pure-Go runtime (bit-exact with the release's golden check; --delegate xnnpack opts into XNNPACK)"}, true
	}
	return Choice{BackendNative, "pure-Go runtime (no TensorFlow Lite library)"}, true
}
