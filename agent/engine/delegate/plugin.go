//go:build tflite && cgo

package delegate

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The leading fields of TfLiteDelegate as documented for the TensorFlow Lite
// C ABI (tensorflow/lite/core/c/common.h, 2.13 and later; earlier versions
// end after flags). Declared here so the loader needs no TensorFlow headers;
// only the fields the checks read are named.
typedef struct {
	void* data_;
	void* Prepare;
	void* CopyFromBufferHandle;
	void* CopyToBufferHandle;
	void* FreeBufferHandle;
	int64_t flags;
	void* opaque_delegate_builder;
} ef_delegate;

typedef void* (*ef_create_fn)(char**, char**, size_t, void (*)(const char*));
typedef void (*ef_destroy_fn)(void*);

// Messages the plugin reports while creating a delegate. Create calls are
// serialized on the Go side (createMu), so one buffer suffices.
static char ef_report_buf[1024];

static void ef_report(const char* msg) {
	size_t n = strlen(ef_report_buf);
	if (msg == NULL || n + 3 >= sizeof ef_report_buf) return;
	snprintf(ef_report_buf + n, sizeof ef_report_buf - n, "%s%s", n ? "; " : "", msg);
}

static void* ef_open(const char* path, char* err, size_t errlen) {
	dlerror();
	void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char* e = dlerror();
		snprintf(err, errlen, "%s", e ? e : "unknown dlopen error");
	}
	return h;
}

static void* ef_sym(void* h, const char* name) { return dlsym(h, name); }

static void* ef_create(void* fn, char** keys, char** values, size_t n, char* report, size_t reportlen) {
	ef_report_buf[0] = 0;
	void* d = ((ef_create_fn)fn)(keys, values, n, ef_report);
	snprintf(report, reportlen, "%s", ef_report_buf);
	return d;
}

static void ef_destroy(void* fn, void* d) { ((ef_destroy_fn)fn)(d); }

// ef_usable: TensorFlow Lite needs Prepare (classic delegates) or an opaque
// delegate builder; a delegate with neither crashes the interpreter.
static int ef_usable(void* d) {
	ef_delegate* x = (ef_delegate*)d;
	return x->Prepare != NULL || x->opaque_delegate_builder != NULL;
}

static void* ef_data(void* d) { return ((ef_delegate*)d)->data_; }
*/
import "C"

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// The external-delegate plugin entry points.
const (
	CreateSymbol  = "tflite_plugin_create_delegate"
	DestroySymbol = "tflite_plugin_destroy_delegate"
)

// Plugin is a loaded external-delegate library. Plugins stay loaded for the
// life of the process (a delegate's code must outlive every interpreter
// that used it), so Open returns the same Plugin for the same path.
type Plugin struct {
	Path            string
	create, destroy unsafe.Pointer
}

var (
	openMu   sync.Mutex
	opened   = map[string]*Plugin{}
	createMu sync.Mutex // serializes plugin create calls (one report buffer)
)

// Open loads the plugin library at path (a path or a soname for the
// dynamic loader) and checks that it exports tflite_plugin_create_delegate
// and tflite_plugin_destroy_delegate. Errors wrap ErrPluginNotFound (the
// library cannot be loaded) or ErrBadPlugin (a symbol is missing).
func Open(path string) (*Plugin, error) {
	openMu.Lock()
	defer openMu.Unlock()
	if p, ok := opened[path]; ok {
		return p, nil
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	const errLen = 1024
	cerr := (*C.char)(C.calloc(errLen, 1))
	defer C.free(unsafe.Pointer(cerr))
	h := C.ef_open(cpath, cerr, errLen)
	if h == nil {
		if msg := C.GoString(cerr); strings.Contains(msg, path) {
			return nil, fmt.Errorf("%w: %s", ErrPluginNotFound, msg)
		} else {
			return nil, fmt.Errorf("%w: %s: %s", ErrPluginNotFound, path, msg)
		}
	}
	p := &Plugin{Path: path}
	var missing []string
	for _, s := range []struct {
		name string
		dst  *unsafe.Pointer
	}{{CreateSymbol, &p.create}, {DestroySymbol, &p.destroy}} {
		cs := C.CString(s.name)
		*s.dst = C.ef_sym(h, cs)
		C.free(unsafe.Pointer(cs))
		if *s.dst == nil {
			missing = append(missing, s.name)
		}
	}
	if len(missing) > 0 {
		C.dlclose(h) // nothing from it was used
		return nil, fmt.Errorf("%w: %s does not export %v: it is not a TensorFlow Lite external-delegate plugin", ErrBadPlugin, path, missing)
	}
	opened[path] = p
	return p, nil
}

// Delegate is one TfLiteDelegate created by a plugin. It must outlive the
// interpreters it was added to and is released with Close after them.
type Delegate struct {
	plugin *Plugin
	ptr    unsafe.Pointer
	// C copies of the options, kept until Close: plugins may keep pointers.
	keys, values **C.char
	n            int
	closed       bool
}

// Create calls the plugin's create function with opts. A NULL delegate or
// one TensorFlow Lite could not use is an ErrBadPlugin error carrying what
// the plugin reported.
func (p *Plugin) Create(opts []Option) (*Delegate, error) {
	if len(opts) > MaxOptions {
		return nil, fmt.Errorf("%w: %d options, at most %d", ErrBadOption, len(opts), MaxOptions)
	}
	d := &Delegate{plugin: p, n: len(opts)}
	// The arrays and strings live in C memory: no Go pointer is passed to C.
	ptrSize := C.size_t(unsafe.Sizeof((*C.char)(nil)))
	d.keys = (**C.char)(C.calloc(C.size_t(max(1, len(opts))), ptrSize))
	d.values = (**C.char)(C.calloc(C.size_t(max(1, len(opts))), ptrSize))
	keys := unsafe.Slice(d.keys, max(1, len(opts)))
	values := unsafe.Slice(d.values, max(1, len(opts)))
	for i, o := range opts {
		keys[i] = C.CString(o.Key)
		values[i] = C.CString(o.Value)
	}
	const reportLen = 1024
	report := (*C.char)(C.calloc(reportLen, 1))
	defer C.free(unsafe.Pointer(report))
	createMu.Lock()
	d.ptr = C.ef_create(p.create, d.keys, d.values, C.size_t(len(opts)), report, reportLen)
	createMu.Unlock()
	msg := C.GoString(report)
	if msg != "" {
		msg = ": plugin reported: " + msg
	}
	if d.ptr == nil {
		d.freeOptions()
		return nil, fmt.Errorf("%w: %s: %s returned no delegate%s", ErrBadPlugin, p.Path, CreateSymbol, msg)
	}
	if C.ef_usable(d.ptr) == 0 {
		C.ef_destroy(p.destroy, d.ptr)
		d.freeOptions()
		return nil, fmt.Errorf("%w: %s: the delegate has neither Prepare nor an opaque delegate builder (TensorFlow Lite would crash on it)%s", ErrBadPlugin, p.Path, msg)
	}
	return d, nil
}

// Ptr is the TfLiteDelegate* to hand to TfLiteInterpreterOptionsAddDelegate.
func (d *Delegate) Ptr() unsafe.Pointer { return d.ptr }

// Plugin is the library the delegate came from.
func (d *Delegate) Plugin() *Plugin { return d.plugin }

// data returns the delegate's data_ field (tests read what the test
// plugin stored there).
func (d *Delegate) data() unsafe.Pointer { return C.ef_data(d.ptr) }

// Close destroys the delegate with the plugin's destroy function (once);
// every interpreter using it must be deleted first.
func (d *Delegate) Close() error {
	if d == nil || d.closed {
		return nil
	}
	d.closed = true
	C.ef_destroy(d.plugin.destroy, d.ptr)
	d.ptr = nil
	d.freeOptions()
	return nil
}

func (d *Delegate) freeOptions() {
	n := max(1, d.n)
	for _, arr := range []**C.char{d.keys, d.values} {
		if arr == nil {
			continue
		}
		for _, s := range unsafe.Slice(arr, n) {
			C.free(unsafe.Pointer(s))
		}
		C.free(unsafe.Pointer(arr))
	}
	d.keys, d.values = nil, nil
}
