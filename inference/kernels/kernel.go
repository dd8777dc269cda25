// Package kernels implements TensorFlow Lite operators for the pure-Go
// runtime. Each op family lives in its own file and registers itself by op
// code; the interpreter looks kernels up at load, calls Prepare once per
// node whenever shapes change (validate types and shapes, compute output
// shapes, pre-pack weights, precompute quantization multipliers), and Eval
// on every Invoke (no allocation on the steady-state path).
//
// Kernels follow TensorFlow Lite's builtin CPU kernels bit for bit on
// integer types; see quant.Rounding for the requantization rounding rules.
package kernels

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

// Node is one operator instance as a kernel sees it.
type Node struct {
	// Index is the operator's position in its subgraph (for errors).
	Index   int
	Op      schema.BuiltinOperator
	Custom  string
	Version int
	// Inputs holds nil where the model omits an optional input (-1).
	Inputs        []*tensor.Tensor
	Outputs       []*tensor.Tensor
	Intermediates []*tensor.Tensor
	// Options is the decoded builtin options (e.g. *schema.Conv2DOptions),
	// nil for ops without options.
	Options       any
	CustomOptions []byte
	// Data is kernel-private state set by Prepare (packed weights,
	// multipliers); it persists across Invoke.
	Data any
}

// Name returns the op's name for messages.
func (n *Node) Name() string {
	if n.Op == schema.OpCustom {
		return n.Custom
	}
	return n.Op.String()
}

// Errorf formats an error that names the node.
func (n *Node) Errorf(format string, args ...any) error {
	return fmt.Errorf("node %d (%s): %s", n.Index, n.Name(), fmt.Sprintf(format, args...))
}

// Input returns input i, or nil when it is absent or omitted.
func (n *Node) Input(i int) *tensor.Tensor {
	if i < 0 || i >= len(n.Inputs) {
		return nil
	}
	return n.Inputs[i]
}

// Output returns output i, or nil when absent.
func (n *Node) Output(i int) *tensor.Tensor {
	if i < 0 || i >= len(n.Outputs) {
		return nil
	}
	return n.Outputs[i]
}

// CheckArity validates the number of inputs (at least minIn, at most maxIn)
// and outputs, and that required inputs [0, minIn) are present.
func (n *Node) CheckArity(minIn, maxIn, outs int) error {
	if len(n.Inputs) < minIn || len(n.Inputs) > maxIn {
		if minIn == maxIn {
			return n.Errorf("has %d inputs, expected %d", len(n.Inputs), minIn)
		}
		return n.Errorf("has %d inputs, expected %d to %d", len(n.Inputs), minIn, maxIn)
	}
	for i := 0; i < minIn; i++ {
		if n.Inputs[i] == nil {
			return n.Errorf("required input %d is missing", i)
		}
	}
	if outs >= 0 && len(n.Outputs) != outs {
		return n.Errorf("has %d outputs, expected %d", len(n.Outputs), outs)
	}
	for i, o := range n.Outputs {
		if o == nil {
			return n.Errorf("output %d is missing", i)
		}
	}
	return nil
}

// Context is what the interpreter offers kernels.
type Context struct {
	// Rounding selects requantization rounding (TFLite builtin or reference).
	Rounding quant.Rounding
	// Threads is the number of goroutines a kernel may use (>= 1).
	Threads int
	// SplitThreshold is the work (multiply-accumulates) from which
	// Parallel splits a node across threads; NewContext sets
	// MinParallelMACs, 0 splits every node that can be split (tests).
	SplitThreshold int64
	// ModelSplitThreshold is the work per Invoke (the sum of the work
	// every node hands Parallel, as counted on the previous Invoke) below
	// which no node is split: a model that small gains nothing from a
	// second thread (each split node pays a hand-off) and runs on the
	// goroutine calling Invoke alone. NewContext sets MinParallelModelWork;
	// 0 turns the bound off.
	ModelSplitThreshold int64
	// PortableFloat makes float32 kernels sum in the portable kernels'
	// order instead of the SIMD (FMA, multi-accumulator) order, so float
	// results are the same on every CPU (the quantizer calibrates with it).
	PortableFloat bool
	// Preparing is true during Prepare.
	Preparing bool
	// InEval is true when Prepare runs during Invoke (the node is dynamic):
	// then every input holds its data, so shape-defining inputs that were
	// unknown at plan time can be read.
	InEval bool

	scratchNeed int
	scratch     []byte
	// stride is the distance between workers' scratch regions (see
	// WorkerScratch), maxWorkers and maxShared the largest requests.
	stride, maxWorkers, maxShared int
	maxBytes                      int64
	pool                          *Pool
	// work sums the work handed to Parallel in the current Invoke,
	// lastWork the previous Invoke's sum (-1 before the first); solo makes
	// Parallel run every node on the caller (see ModelSplitThreshold).
	work, lastWork int64
	solo           bool
	threads        int     // Threads as configured (Threads is 1 in a solo Invoke)
	region         *Region // capturing a region's jobs (see BeginRegion)
}

// NewContext returns a context whose kernels may use up to threads
// goroutines: with more than one, it starts a worker Pool that Close (or
// the garbage collector, once the context is unreachable) stops.
func NewContext(r quant.Rounding, threads int) *Context {
	if threads < 1 {
		threads = 1
	}
	c := &Context{Rounding: r, Threads: threads, SplitThreshold: MinParallelMACs, ModelSplitThreshold: MinParallelModelWork, maxBytes: 1 << 40, lastWork: -1, threads: threads}
	if c.pool = NewPool(threads); c.pool != nil {
		runtime.AddCleanup(c, (*Pool).Close, c.pool)
	}
	return c
}

// SetActive marks the start (true) and end (false) of an Invoke: between
// the two, idle workers wait for the next node without parking. At the
// start it decides whether this Invoke splits nodes at all (see
// ModelSplitThreshold): when it does not, kernels see Threads 1 (they
// take the one-thread paths) and the workers are not told an Invoke is
// running, so they park at once and take no CPU time.
func (c *Context) SetActive(on bool) {
	if on {
		c.solo = c.threads > 1 && c.ModelSplitThreshold > 0 && c.lastWork >= 0 && c.lastWork < c.ModelSplitThreshold
		c.work = 0
		if c.solo {
			c.Threads = 1
			return
		}
		c.Threads = c.threads
	} else {
		c.lastWork = c.work
		c.Threads = c.threads // a Prepare between Invokes sizes for all
		if c.solo {
			return
		}
	}
	c.pool.SetActive(on)
}

// InvokeWork returns the work (multiply-accumulate units, see
// MinParallelMACs) the last complete Invoke handed to Parallel: what
// ModelSplitThreshold is compared with.
func (c *Context) InvokeWork() int64 { return c.lastWork }

// ChunksRun returns how many chunks of split nodes worker w (0 is the
// goroutine calling Invoke) has run so far, for profiles.
func (c *Context) ChunksRun(w int) int64 { return c.pool.ChunksRun(w) }

// Close stops the context's worker pool; kernels then run on the calling
// goroutine only. It is idempotent.
func (c *Context) Close() {
	c.pool.Close()
	c.pool = nil
}

// SetMaxTensorBytes bounds the size of any tensor a kernel may allocate.
func (c *Context) SetMaxTensorBytes(n int64) { c.maxBytes = n }

// SingleRounding reports whether an int8 CONV_2D / FULLY_CONNECTED kernel
// should round once (TFLite builtin) rather than twice (reference).
func (c *Context) SingleRounding() bool { return c.Rounding == quant.RoundingTFLite }

// RequestScratch records, during Prepare, that Eval will need n bytes of
// scratch memory. One buffer, sized for the largest request, is shared by
// all nodes (they run one at a time).
func (c *Context) RequestScratch(n int) {
	if n > c.scratchNeed {
		c.scratchNeed = n
	}
}

// Scratch returns at least n bytes of scratch memory, 64-byte aligned.
// Contents are undefined. Eval must request the same size it asked for in
// Prepare to stay allocation-free.
func (c *Context) Scratch(n int) []byte {
	if n > len(c.scratch) {
		c.scratch = AlignedBytes(max(n, c.scratchNeed))
	}
	return c.scratch[:n]
}

// RequestWorkerScratch records, during Prepare, that Eval will need a
// region of perWorker bytes for each of workers threads and shared bytes
// after them (see WorkerScratch).
func (c *Context) RequestWorkerScratch(workers, perWorker, shared int) {
	c.stride = max(c.stride, align64(perWorker))
	c.maxWorkers = max(c.maxWorkers, workers)
	c.maxShared = max(c.maxShared, shared)
	c.RequestScratch(c.maxWorkers*c.stride + c.maxShared)
}

// WorkerScratch returns scratch memory for workers regions of at least
// perWorker bytes followed by shared bytes, and the distance between the
// regions: worker w's region is buf[w*stride:][:perWorker], its shared
// part buf[workers*stride:]. The stride is the largest perWorker any node
// requested, the same for every node, so each worker's region starts at
// the same place in every node: the lines a thread writes there stay in
// its core's cache instead of moving to the other core at the next node
// (with a stride per node, worker 1's region of one node is worker 0's
// of the next).
func (c *Context) WorkerScratch(workers, perWorker, shared int) (buf []byte, stride int) {
	c.stride = max(c.stride, align64(perWorker)) // a node prepared during Invoke
	return c.Scratch(workers*c.stride + shared), c.stride
}

// align64 rounds n up to a multiple of 64 bytes.
func align64(n int) int { return (n + 63) &^ 63 }

// ScratchNeed is the largest scratch request so far.
func (c *Context) ScratchNeed() int { return c.scratchNeed }

// ErrTooLarge is returned when a tensor would exceed the interpreter's
// memory bound.
var ErrTooLarge = errors.New("tensor exceeds the memory limit")

// ResizeOutput sets an output's shape. During Prepare it only records the
// shape (memory is planned afterwards); during Eval (dynamic tensors) it
// also (re)allocates the tensor's memory if needed.
func (c *Context) ResizeOutput(t *tensor.Tensor, shape []int) error {
	if (t.Alloc == tensor.ConstantAlloc || t.IsVariable) && !tensor.SameShape(t.Shape, shape) {
		// Their memory is fixed (model buffer, persistent state).
		return fmt.Errorf("tensor %q is a constant or variable of shape %v and cannot become %v", t.Name, t.Shape, shape)
	}
	elems := int64(1)
	for i, d := range shape {
		if d < 0 {
			return fmt.Errorf("tensor %q: dimension %d is %d, expected >= 0", t.Name, i, d)
		}
		elems *= int64(d)
		if elems > schema.MaxTensorElements {
			return fmt.Errorf("tensor %q: shape %v: %w", t.Name, shape, ErrTooLarge)
		}
	}
	if size := elems * int64(t.Type.Size()); size > c.maxBytes {
		return fmt.Errorf("tensor %q: shape %v needs %d bytes, limit %d: %w", t.Name, shape, size, c.maxBytes, ErrTooLarge)
	}
	if cap(t.Shape) >= len(shape) {
		t.Shape = t.Shape[:len(shape)]
	} else {
		t.Shape = make([]int, len(shape))
	}
	copy(t.Shape, shape)
	if c.Preparing {
		return nil
	}
	need := t.ByteSize()
	if t.Alloc == tensor.DynamicAlloc {
		if cap(t.Data) < need {
			t.Data = AlignedBytes(need)
		}
		t.Data = t.Data[:need]
		return nil
	}
	if len(t.Data) != need {
		return fmt.Errorf("tensor %q: resize to %v at run time needs %d bytes, planned %d", t.Name, shape, need, len(t.Data))
	}
	return nil
}

// MarkDynamic tells the interpreter that t's shape is only known during
// Eval (it then lives outside the arena and Eval must ResizeOutput it).
// A value folded at an earlier prepare (persistent, not a variable) also
// becomes dynamic again.
func (c *Context) MarkDynamic(t *tensor.Tensor) {
	switch {
	case t.Alloc == tensor.ArenaAlloc:
		t.Alloc = tensor.DynamicAlloc
	case t.Alloc == tensor.PersistentAlloc && !t.IsVariable:
		t.Alloc = tensor.DynamicAlloc
		t.KnownAtPrepare = false
	}
}

// MakePersistent gives t its own memory for the interpreter's lifetime
// (for values a kernel computes at prepare time, such as SHAPE's output),
// and marks it known at prepare. Call it after setting t's shape.
func (c *Context) MakePersistent(t *tensor.Tensor) {
	t.Alloc = tensor.PersistentAlloc
	if need := t.ByteSize(); cap(t.Data) < need {
		t.Data = AlignedBytes(need)
	} else {
		t.Data = t.Data[:need]
	}
	t.KnownAtPrepare = true
}

// Known reports whether t's values can be read now: constants and
// prepare-time values always, any tensor when Prepare runs during Invoke.
func (c *Context) Known(t *tensor.Tensor) bool {
	return t != nil && (t.KnownAtPrepare || c.InEval || !c.Preparing)
}

// AlignedBytes allocates n zeroed bytes aligned to 64 bytes, so that typed
// views of any element type are aligned.
func AlignedBytes(n int) []byte {
	if n == 0 {
		return []byte{}
	}
	words := make([]uint64, (n+63)/8+8)
	b := tensor.View[byte](wordBytes(words))
	off := 0
	if r := addr(b) % 64; r != 0 {
		off = int(64 - r)
	}
	return b[off : off+n : off+n]
}

// Kernel is the implementation of one op.
type Kernel struct {
	// Prepare validates the node, sets output shapes with ctx.ResizeOutput,
	// and stores precomputed state in n.Data. It may be called again when
	// input shapes change.
	Prepare func(ctx *Context, n *Node) error
	// Eval computes the outputs.
	Eval func(ctx *Context, n *Node) error
}

var (
	registryMu sync.RWMutex
	builtins   = map[schema.BuiltinOperator]Kernel{}
	customs    = map[string]Kernel{}
)

// RegisterBuiltin installs the kernel for a builtin op (from init funcs).
func RegisterBuiltin(op schema.BuiltinOperator, k Kernel) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := builtins[op]; dup {
		panic("kernels: duplicate registration of " + op.String())
	}
	builtins[op] = k
}

// RegisterCustom installs the kernel for a custom op code.
func RegisterCustom(name string, k Kernel) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := customs[name]; dup {
		panic("kernels: duplicate registration of custom op " + name)
	}
	customs[name] = k
}

// Lookup returns the kernel for an operator code.
func Lookup(code schema.OperatorCode) (Kernel, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	if code.Builtin == schema.OpCustom {
		k, ok := customs[code.Custom]
		return k, ok
	}
	k, ok := builtins[code.Builtin]
	return k, ok
}

// Builtins lists the builtin ops with a kernel.
func Builtins() []schema.BuiltinOperator {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]schema.BuiltinOperator, 0, len(builtins))
	for op := range builtins {
		out = append(out, op)
	}
	return out
}

// Customs lists the custom ops with a kernel.
func Customs() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]string, 0, len(customs))
	for name := range customs {
		out = append(out, name)
	}
	return out
}
