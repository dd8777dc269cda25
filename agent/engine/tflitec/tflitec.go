//go:build tflite && cgo

package tflitec

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// TfLiteStatus, TfLiteType and TfLiteQuantizationParams as the C API
// documents them; every other type is an opaque pointer.
typedef struct { float scale; int32_t zero_point; } ef_qparams;
typedef void (*ef_reporter)(void*, const char*, va_list);

// The functions of the C API the backend uses, resolved with dlsym.
typedef struct {
	const char* (*Version)(void);
	void* (*ModelCreate)(const void*, size_t);
	void (*ModelDelete)(void*);
	void* (*OptionsCreate)(void);
	void (*OptionsDelete)(void*);
	void (*OptionsSetNumThreads)(void*, int32_t);
	void (*OptionsAddDelegate)(void*, void*);
	void (*OptionsSetErrorReporter)(void*, ef_reporter, void*);
	void* (*InterpreterCreate)(const void*, const void*);
	void (*InterpreterDelete)(void*);
	int32_t (*GetInputTensorCount)(const void*);
	void* (*GetInputTensor)(const void*, int32_t);
	int (*ResizeInputTensor)(void*, int32_t, const int*, int32_t);
	int (*AllocateTensors)(void*);
	int (*Invoke)(void*);
	int32_t (*GetOutputTensorCount)(const void*);
	const void* (*GetOutputTensor)(const void*, int32_t);
	int (*TensorType)(const void*);
	int32_t (*TensorNumDims)(const void*);
	int32_t (*TensorDim)(const void*, int32_t);
	size_t (*TensorByteSize)(const void*);
	const char* (*TensorName)(const void*);
	ef_qparams (*TensorQuantizationParams)(const void*);
	int (*TensorCopyFromBuffer)(void*, const void*, size_t);
	int (*TensorCopyToBuffer)(const void*, void*, size_t);
	// Optional: the XNNPACK delegate built into the library.
	void* (*XNNPackCreate)(const void*);
	void (*XNNPackDelete)(void*);
	void* XNNPackOptionsDefault;
} ef_api;

static void* ef_sym(void* h, const char* name, char* missing, size_t len) {
	void* p = dlsym(h, name);
	if (p == NULL && missing != NULL) {
		size_t n = strlen(missing);
		snprintf(missing + n, len - n, "%s%s", n ? " " : "", name);
	}
	return p;
}

// ef_load dlopens path (RTLD_GLOBAL: plugins built against the C API, such
// as opaque delegates, resolve TfLite* symbols from it) and fills api. It
// returns NULL with err set when the library cannot be loaded or lacks a
// required function.
static void* ef_load(const char* path, ef_api* api, char* err, size_t len) {
	dlerror();
	void* h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	if (h == NULL) {
		const char* e = dlerror();
		snprintf(err, len, "%s", e ? e : "unknown dlopen error");
		return NULL;
	}
	char missing[2048] = "";
	size_t ml = sizeof missing;
#define REQ(field, name) *(void**)(&api->field) = ef_sym(h, name, missing, ml)
	REQ(Version, "TfLiteVersion");
	REQ(ModelCreate, "TfLiteModelCreate");
	REQ(ModelDelete, "TfLiteModelDelete");
	REQ(OptionsCreate, "TfLiteInterpreterOptionsCreate");
	REQ(OptionsDelete, "TfLiteInterpreterOptionsDelete");
	REQ(OptionsSetNumThreads, "TfLiteInterpreterOptionsSetNumThreads");
	REQ(OptionsAddDelegate, "TfLiteInterpreterOptionsAddDelegate");
	REQ(OptionsSetErrorReporter, "TfLiteInterpreterOptionsSetErrorReporter");
	REQ(InterpreterCreate, "TfLiteInterpreterCreate");
	REQ(InterpreterDelete, "TfLiteInterpreterDelete");
	REQ(GetInputTensorCount, "TfLiteInterpreterGetInputTensorCount");
	REQ(GetInputTensor, "TfLiteInterpreterGetInputTensor");
	REQ(ResizeInputTensor, "TfLiteInterpreterResizeInputTensor");
	REQ(AllocateTensors, "TfLiteInterpreterAllocateTensors");
	REQ(Invoke, "TfLiteInterpreterInvoke");
	REQ(GetOutputTensorCount, "TfLiteInterpreterGetOutputTensorCount");
	REQ(GetOutputTensor, "TfLiteInterpreterGetOutputTensor");
	REQ(TensorType, "TfLiteTensorType");
	REQ(TensorNumDims, "TfLiteTensorNumDims");
	REQ(TensorDim, "TfLiteTensorDim");
	REQ(TensorByteSize, "TfLiteTensorByteSize");
	REQ(TensorName, "TfLiteTensorName");
	REQ(TensorQuantizationParams, "TfLiteTensorQuantizationParams");
	REQ(TensorCopyFromBuffer, "TfLiteTensorCopyFromBuffer");
	REQ(TensorCopyToBuffer, "TfLiteTensorCopyToBuffer");
#undef REQ
	*(void**)(&api->XNNPackCreate) = ef_sym(h, "TfLiteXNNPackDelegateCreate", NULL, 0);
	*(void**)(&api->XNNPackDelete) = ef_sym(h, "TfLiteXNNPackDelegateDelete", NULL, 0);
	api->XNNPackOptionsDefault = ef_sym(h, "TfLiteXNNPackDelegateOptionsDefault", NULL, 0);
	if (missing[0] != 0) {
		snprintf(err, len, "missing C API functions: %s", missing);
		dlclose(h);
		return NULL;
	}
	return h;
}

// Error messages TensorFlow Lite reports for one interpreter are appended
// to a per-interpreter buffer (ef_log), newest kept when it fills up.
typedef struct { char buf[2048]; } ef_log;

static void ef_report(void* user, const char* format, va_list args) {
	ef_log* l = (ef_log*)user;
	char msg[512];
	vsnprintf(msg, sizeof msg, format, args);
	size_t n = strlen(l->buf);
	if (n + strlen(msg) + 3 >= sizeof l->buf) { l->buf[0] = 0; n = 0; }
	snprintf(l->buf + n, sizeof l->buf - n, "%s%s", n ? "; " : "", msg);
}

static const char* ef_version(ef_api* a) { return a->Version(); }
static void* ef_model_create(ef_api* a, const void* d, size_t n) { return a->ModelCreate(d, n); }
static void ef_model_delete(ef_api* a, void* m) { a->ModelDelete(m); }

static void* ef_interpreter_create(ef_api* a, void* model, int32_t threads, void** delegates, int ndelegates, ef_log* log) {
	void* o = a->OptionsCreate();
	if (o == NULL) return NULL;
	a->OptionsSetNumThreads(o, threads);
	a->OptionsSetErrorReporter(o, ef_report, log);
	for (int i = 0; i < ndelegates; i++) a->OptionsAddDelegate(o, delegates[i]);
	void* ip = a->InterpreterCreate(model, o);
	a->OptionsDelete(o);
	return ip;
}
static void ef_interpreter_delete(ef_api* a, void* ip) { a->InterpreterDelete(ip); }
static int32_t ef_input_count(ef_api* a, void* ip) { return a->GetInputTensorCount(ip); }
static int32_t ef_output_count(ef_api* a, void* ip) { return a->GetOutputTensorCount(ip); }
static void* ef_input(ef_api* a, void* ip, int32_t i) { return a->GetInputTensor(ip, i); }
static const void* ef_output(ef_api* a, void* ip, int32_t i) { return a->GetOutputTensor(ip, i); }
static int ef_resize(ef_api* a, void* ip, int32_t i, const int* dims, int32_t n) { return a->ResizeInputTensor(ip, i, dims, n); }
static int ef_allocate(ef_api* a, void* ip) { return a->AllocateTensors(ip); }
static int ef_invoke(ef_api* a, void* ip) { return a->Invoke(ip); }
static int ef_tensor_type(ef_api* a, const void* t) { return a->TensorType(t); }
static int32_t ef_tensor_num_dims(ef_api* a, const void* t) { return a->TensorNumDims(t); }
static int32_t ef_tensor_dim(ef_api* a, const void* t, int32_t i) { return a->TensorDim(t, i); }
static size_t ef_tensor_byte_size(ef_api* a, const void* t) { return a->TensorByteSize(t); }
static const char* ef_tensor_name(ef_api* a, const void* t) { return a->TensorName(t); }
static ef_qparams ef_tensor_quant(ef_api* a, const void* t) { return a->TensorQuantizationParams(t); }
static int ef_tensor_copy_from(ef_api* a, void* t, const void* d, size_t n) { return a->TensorCopyFromBuffer(t, d, n); }
static int ef_tensor_copy_to(ef_api* a, const void* t, void* d, size_t n) { return a->TensorCopyToBuffer(t, d, n); }

// TfLiteXNNPackDelegateOptionsDefault returns a struct whose size grew over
// TensorFlow Lite versions: {num_threads} (4 bytes, before 2.7),
// {num_threads, flags} (8 bytes, 2.7-2.9), + weights_cache (16 bytes,
// 2.10-2.11), then more fields. The C ABIs return small structs in
// registers and larger ones through a buffer whose address the caller
// passes (x86-64, 32-bit Arm, RISC-V: as a hidden first argument; arm64: in
// x8), so no single C declaration is right for every version (with 2.9's
// 8-byte struct, a 1 KiB declaration read stack garbage as flags and
// XNNPACK refused every model). ef_xnnpack_defaults calls it once, passing
// a sentinel-filled buffer where a large struct's address goes and keeping
// the first return register: a register-returning version leaves the
// buffer untouched and its num_threads and flags (the leading fields of
// every version) are in that register; a memory-returning version fills the
// buffer. Later fields of the register-sized versions stay zero, which is
// their default (weights_cache NULL).
typedef struct { int32_t num_threads; uint32_t flags; char rest[1016]; } ef_xnnpack_options;

static uint64_t ef_call_with_result_buffer(void* fn, void* buf) {
#if defined(__aarch64__)
	register void* x8 __asm__("x8") = buf;
	register uint64_t x0 __asm__("x0");
	__asm__ volatile("blr %[fn]"
		: "=r"(x0), "+r"(x8)
		: [fn] "r"(fn)
		: "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x9", "x10", "x11", "x12", "x13", "x14", "x15",
		  "x16", "x17", "x18", "x30", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17",
		  "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30",
		  "v31", "cc", "memory");
	return x0;
#else
	return ((uint64_t (*)(void*))fn)(buf);
#endif
}

// ef_xnnpack_defaults fills o; it returns 1 when the options came back in
// registers, 0 when through memory.
static int ef_xnnpack_defaults(ef_api* a, ef_xnnpack_options* o) {
	memset(o, 0xA5, sizeof *o);
	uint64_t r = ef_call_with_result_buffer(a->XNNPackOptionsDefault, o);
	static const unsigned char sentinel[16] = {0xA5,0xA5,0xA5,0xA5,0xA5,0xA5,0xA5,0xA5,0xA5,0xA5,0xA5,0xA5,0xA5,0xA5,0xA5,0xA5};
	if (memcmp(o, sentinel, sizeof sentinel) != 0) return 0;
	memset(o, 0, sizeof *o);
	memcpy(o, &r, sizeof r);
	return 1;
}

// ef_xnnpack_create creates the delegate with the library's defaults,
// num_threads = threads and, when extra_flags != 0, those flag bits added
// (TFLITE_XNNPACK_DELEGATE_FLAG_QS8 = 1, _QU8 = 2: quantized operators,
// opt-in before TensorFlow Lite 2.10).
static void* ef_xnnpack_create(ef_api* a, int32_t threads, uint32_t extra_flags, uint32_t* flags_out) {
	if (a->XNNPackCreate == NULL || a->XNNPackDelete == NULL) return NULL;
	if (a->XNNPackOptionsDefault == NULL) return a->XNNPackCreate(NULL);
	ef_xnnpack_options o;
	ef_xnnpack_defaults(a, &o);
	o.num_threads = threads > 1 ? threads : 0; // as TensorFlow Lite does: no thread pool for one thread
	o.flags |= extra_flags;
	*flags_out = o.flags;
	return a->XNNPackCreate(&o);
}
static void ef_xnnpack_delete(ef_api* a, void* d) { a->XNNPackDelete(d); }
*/
import "C"

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unsafe"

	"github.com/edgefleet/edgefleet/inference/tensor"
)

// Errors callers branch on.
var (
	// ErrLibraryNotFound: libtensorflowlite_c cannot be loaded.
	ErrLibraryNotFound = errors.New("libtensorflowlite_c not found")
	// ErrBadLibrary: the library loaded but lacks C API functions.
	ErrBadLibrary = errors.New("incompatible libtensorflowlite_c")
	// ErrNoXNNPACK: the library does not export the XNNPACK delegate.
	ErrNoXNNPACK = errors.New("libtensorflowlite_c has no XNNPACK delegate")
	// ErrDelegateRejected: an interpreter could not be created because a
	// delegate failed to take the graph (TensorFlow Lite reported a
	// delegate error); without the delegate the model may still run.
	ErrDelegateRejected = errors.New("delegate could not be applied")
)

// dedupe shortens TensorFlow Lite's "; "-joined error log: messages that
// differ only in their numbers (one per tensor or node) are kept once, the
// first of them, with how many there were, in order of first appearance.
func dedupe(log string) string {
	if log == "" {
		return ""
	}
	var order []string
	first := map[string]string{}
	count := map[string]int{}
	for _, m := range strings.Split(log, "; ") {
		k := digits.ReplaceAllString(m, "#")
		if count[k] == 0 {
			order = append(order, k)
			first[k] = m
		}
		count[k]++
	}
	out := make([]string, len(order))
	for i, k := range order {
		out[i] = first[k]
		if n := count[k]; n > 1 {
			out[i] += fmt.Sprintf(" (%d such messages)", n)
		}
	}
	return strings.Join(out, "; ")
}

var digits = regexp.MustCompile(`[0-9]+`)

// Lib is a loaded libtensorflowlite_c. It stays loaded for the life of the
// process.
type Lib struct {
	// Path is what was loaded; Version is TfLiteVersion().
	Path, Version string
	api           *C.ef_api
}

var (
	libMu sync.Mutex
	libs  = map[string]*Lib{}
)

// Open loads the library at path (a path, or a soname such as LibraryName
// searched by the dynamic loader) once per process. Errors wrap
// ErrLibraryNotFound or ErrBadLibrary.
func Open(path string) (*Lib, error) {
	if path == "" {
		path = LibraryName
	}
	libMu.Lock()
	defer libMu.Unlock()
	if l, ok := libs[path]; ok {
		return l, nil
	}
	api := (*C.ef_api)(C.calloc(1, C.size_t(unsafe.Sizeof(C.ef_api{}))))
	const errLen = 4096
	cerr := (*C.char)(C.calloc(errLen, 1))
	defer C.free(unsafe.Pointer(cerr))
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if h := C.ef_load(cpath, api, cerr, errLen); h == nil {
		C.free(unsafe.Pointer(api))
		msg := C.GoString(cerr)
		if len(msg) > 24 && msg[:24] == "missing C API functions:" {
			return nil, fmt.Errorf("%w: %s: %s", ErrBadLibrary, path, msg)
		}
		if strings.Contains(msg, path) {
			return nil, fmt.Errorf("%w: %s", ErrLibraryNotFound, msg)
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrLibraryNotFound, path, msg)
	}
	l := &Lib{Path: path, Version: C.GoString(C.ef_version(api)), api: api}
	libs[path] = l
	return l, nil
}

// Status is a TfLiteStatus.
type Status int

var statusNames = []string{"ok", "error", "delegate error", "application error", "delegate data not found",
	"delegate data write error", "delegate data read error", "unresolved ops", "cancelled"}

func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status %d", int(s))
}

// Model is a TfLiteModel over a C copy of the model bytes (TensorFlow Lite
// reads the buffer for the model's whole life).
type Model struct {
	lib  *Lib
	m    unsafe.Pointer
	data unsafe.Pointer
}

// NewModel hands a copy of data to TfLiteModelCreate. TensorFlow Lite
// verifies the flatbuffer; a nil model is an error.
func (l *Lib) NewModel(data []byte) (*Model, error) {
	if len(data) == 0 {
		return nil, errors.New("tflite: empty model")
	}
	buf := C.CBytes(data)
	m := C.ef_model_create(l.api, buf, C.size_t(len(data)))
	if m == nil {
		C.free(buf)
		return nil, errors.New("tflite: TfLiteModelCreate rejected the model (not a valid TensorFlow Lite flatbuffer)")
	}
	return &Model{lib: l, m: m, data: buf}, nil
}

// Delete releases the model; its interpreters must be deleted first.
func (m *Model) Delete() {
	if m == nil || m.m == nil {
		return
	}
	C.ef_model_delete(m.lib.api, m.m)
	C.free(m.data)
	m.m, m.data = nil, nil
}

// Interpreter is a TfLiteInterpreter; not safe for concurrent use.
type Interpreter struct {
	lib *Lib
	ip  unsafe.Pointer
	log *C.ef_log
}

// NewInterpreter creates an interpreter for m with threads CPU threads and
// the given delegates (TfLiteDelegate pointers that must outlive it).
// TensorFlow Lite's own error messages are part of the error.
func (m *Model) NewInterpreter(threads int, delegates []unsafe.Pointer) (*Interpreter, error) {
	log := (*C.ef_log)(C.calloc(1, C.size_t(unsafe.Sizeof(C.ef_log{}))))
	var arr *unsafe.Pointer
	if len(delegates) > 0 {
		arr = (*unsafe.Pointer)(C.calloc(C.size_t(len(delegates)), C.size_t(unsafe.Sizeof(unsafe.Pointer(nil)))))
		defer C.free(unsafe.Pointer(arr))
		copy(unsafe.Slice(arr, len(delegates)), delegates)
	}
	ip := C.ef_interpreter_create(m.lib.api, m.m, C.int32_t(max(1, threads)), arr, C.int(len(delegates)), log)
	if ip == nil {
		msg := dedupe(C.GoString(&log.buf[0]))
		C.free(unsafe.Pointer(log))
		if msg == "" {
			msg = "no message"
		}
		err := fmt.Errorf("tflite: cannot create an interpreter: %s", msg)
		if len(delegates) > 0 && strings.Contains(msg, "delegate") {
			err = fmt.Errorf("%w: %w", ErrDelegateRejected, err)
		}
		return nil, err
	}
	return &Interpreter{lib: m.lib, ip: ip, log: log}, nil
}

func (ip *Interpreter) fail(what string, st C.int) error {
	msg := C.GoString(&ip.log.buf[0])
	ip.log.buf[0] = 0
	if msg != "" {
		msg = ": " + msg
	}
	return fmt.Errorf("tflite: %s: %v%s", what, Status(st), msg)
}

// Delete releases the interpreter.
func (ip *Interpreter) Delete() {
	if ip == nil || ip.ip == nil {
		return
	}
	C.ef_interpreter_delete(ip.lib.api, ip.ip)
	C.free(unsafe.Pointer(ip.log))
	ip.ip, ip.log = nil, nil
}

// InputCount and OutputCount count the primary subgraph's tensors.
func (ip *Interpreter) InputCount() int  { return int(C.ef_input_count(ip.lib.api, ip.ip)) }
func (ip *Interpreter) OutputCount() int { return int(C.ef_output_count(ip.lib.api, ip.ip)) }

// Input and Output return tensor i.
func (ip *Interpreter) Input(i int) Tensor {
	return Tensor{ip.lib, unsafe.Pointer(C.ef_input(ip.lib.api, ip.ip, C.int32_t(i)))}
}
func (ip *Interpreter) Output(i int) Tensor {
	return Tensor{ip.lib, unsafe.Pointer(C.ef_output(ip.lib.api, ip.ip, C.int32_t(i)))}
}

// ResizeInput sets input i's shape (AllocateTensors must follow).
func (ip *Interpreter) ResizeInput(i int, shape []int) error {
	dims := (*C.int)(C.calloc(C.size_t(max(1, len(shape))), C.size_t(unsafe.Sizeof(C.int(0)))))
	defer C.free(unsafe.Pointer(dims))
	for k, d := range shape {
		unsafe.Slice(dims, len(shape))[k] = C.int(d)
	}
	if st := C.ef_resize(ip.lib.api, ip.ip, C.int32_t(i), dims, C.int32_t(len(shape))); st != 0 {
		return ip.fail(fmt.Sprintf("resize input %d to %v", i, shape), st)
	}
	return nil
}

// AllocateTensors plans and allocates tensor memory.
func (ip *Interpreter) AllocateTensors() error {
	if st := C.ef_allocate(ip.lib.api, ip.ip); st != 0 {
		return ip.fail("allocate tensors", st)
	}
	return nil
}

// Invoke runs the model.
func (ip *Interpreter) Invoke() error {
	if st := C.ef_invoke(ip.lib.api, ip.ip); st != 0 {
		return ip.fail("invoke", st)
	}
	return nil
}

// Tensor is a TfLiteTensor owned by its interpreter.
type Tensor struct {
	lib *Lib
	t   unsafe.Pointer
}

// cTypes maps TfLiteType (C API enum, kTfLiteNoType = 0) to tensor.DType
// (the flatbuffer's TensorType).
var cTypes = map[int]tensor.DType{
	1: tensor.Float32, 2: tensor.Int32, 3: tensor.Uint8, 4: tensor.Int64, 5: tensor.String,
	6: tensor.Bool, 7: tensor.Int16, 8: tensor.Complex64, 9: tensor.Int8, 10: tensor.Float16,
	11: tensor.Float64, 12: tensor.Complex128, 13: tensor.Uint64, 14: tensor.Resource,
	15: tensor.Variant, 16: tensor.Uint32, 17: tensor.Uint16, 18: tensor.Int4,
}

// Info describes the tensor (per-tensor quantization only: the C API has no
// per-channel parameters).
func (t Tensor) Info() tensor.Info {
	n := int(C.ef_tensor_num_dims(t.lib.api, t.t))
	shape := make([]int, max(0, n))
	for k := range shape {
		shape[k] = int(C.ef_tensor_dim(t.lib.api, t.t, C.int32_t(k)))
	}
	info := tensor.Info{Name: C.GoString(C.ef_tensor_name(t.lib.api, t.t)), Type: cTypes[int(C.ef_tensor_type(t.lib.api, t.t))], Shape: shape}
	if q := C.ef_tensor_quant(t.lib.api, t.t); q.scale != 0 {
		info.Quant = &tensor.Quantization{Scale: []float32{float32(q.scale)}, ZeroPoint: []int64{int64(q.zero_point)}}
	}
	return info
}

// ByteSize is the tensor's size in bytes.
func (t Tensor) ByteSize() int { return int(C.ef_tensor_byte_size(t.lib.api, t.t)) }

// CopyFrom copies b (exactly ByteSize bytes) into the tensor.
func (t Tensor) CopyFrom(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if st := C.ef_tensor_copy_from(t.lib.api, t.t, unsafe.Pointer(&b[0]), C.size_t(len(b))); st != 0 {
		return fmt.Errorf("tflite: copy %d bytes into tensor: %v", len(b), Status(st))
	}
	return nil
}

// CopyTo copies the tensor into b (exactly ByteSize bytes).
func (t Tensor) CopyTo(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if st := C.ef_tensor_copy_to(t.lib.api, t.t, unsafe.Pointer(&b[0]), C.size_t(len(b))); st != 0 {
		return fmt.Errorf("tflite: copy tensor into %d bytes: %v", len(b), Status(st))
	}
	return nil
}

// XNNPACK is the library's built-in XNNPACK delegate.
type XNNPACK struct {
	lib *Lib
	d   unsafe.Pointer
	// Flags are the delegate flags it was created with (the library's
	// defaults plus those asked for).
	Flags uint32
}

// NewXNNPACK creates an XNNPACK delegate with threads threads. Errors wrap
// ErrNoXNNPACK when the library does not export it.
func (l *Lib) NewXNNPACK(threads int) (*XNNPACK, error) {
	return l.NewXNNPACKFlags(threads, 0)
}

// XNNPACK delegate flags (TFLITE_XNNPACK_DELEGATE_FLAG_*).
const (
	// XNNPACKQS8 lets XNNPACK run signed 8-bit quantized operators.
	XNNPACKQS8 = 1
	// XNNPACKQU8 lets XNNPACK run unsigned 8-bit quantized operators.
	XNNPACKQU8 = 2
)

// NewXNNPACKFlags is NewXNNPACK with flag bits added to the library's
// default flags (e.g. XNNPACKQS8|XNNPACKQU8: quantized operators, which
// TensorFlow Lite before 2.10 leaves to its builtin kernels unless asked).
func (l *Lib) NewXNNPACKFlags(threads int, flags uint32) (*XNNPACK, error) {
	var got C.uint32_t
	d := C.ef_xnnpack_create(l.api, C.int32_t(max(1, threads)), C.uint32_t(flags), &got)
	if d == nil && l.api.XNNPackCreate != nil && l.api.XNNPackDelete != nil {
		return nil, fmt.Errorf("tflite: %s: TfLiteXNNPackDelegateCreate returned no delegate", l.Path)
	}
	if d == nil {
		return nil, fmt.Errorf("%w: %s does not export TfLiteXNNPackDelegateCreate/Delete (TensorFlow Lite builds with XNNPACK apply it to float models by themselves: use --delegate none)", ErrNoXNNPACK, l.Path)
	}
	return &XNNPACK{lib: l, d: d, Flags: uint32(got)}, nil
}

// Ptr is the TfLiteDelegate pointer.
func (x *XNNPACK) Ptr() unsafe.Pointer { return x.d }

// Close deletes the delegate (after the interpreters using it).
func (x *XNNPACK) Close() error {
	if x != nil && x.d != nil {
		C.ef_xnnpack_delete(x.lib.api, x.d)
		x.d = nil
	}
	return nil
}
