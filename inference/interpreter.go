package inference

import (
	"context"
	"fmt"
	"slices"

	"github.com/edgefleet/edgefleet/inference/kernels"
	"github.com/edgefleet/edgefleet/inference/schema"
	"github.com/edgefleet/edgefleet/inference/tensor"
	"github.com/edgefleet/edgefleet/quant"
)

// DefaultMaxMemory bounds the bytes an interpreter may allocate for
// activations unless WithMaxMemory says otherwise.
const DefaultMaxMemory = 1 << 30

type options struct {
	// planOnly validates and plans without allocating activation memory
	// (Load uses it to check a model without trusting its sizes).
	planOnly   bool
	threads    int
	split      int64
	modelSplit int64
	rounding   quant.Rounding
	maxMemory  int64
	portable   bool
	noBands    bool // run every node on its own, never a region (tests, benchmarks)
}

// Option configures an Interpreter.
type Option func(*options)

// WithThreads lets kernels use up to n goroutines (default 1): the
// interpreter then keeps n-1 worker goroutines that split the large nodes
// (convolutions, fully connected) with the goroutine calling Invoke; Close
// stops them.
func WithThreads(n int) Option { return func(o *options) { o.threads = max(1, n) } }

// WithSplitThreshold sets the work (multiply-accumulates) from which a
// node is split across the WithThreads goroutines; smaller nodes run on
// one, as waking a worker costs more than they take. The default,
// kernels.MinParallelMACs, was measured on amd64; 0 splits every node that
// can be split (tests use it to exercise the split paths on small models).
func WithSplitThreshold(macs int64) Option {
	return func(o *options) { o.split = max(0, macs) }
}

// WithModelSplitThreshold sets the work per Invoke (multiply-accumulates
// of the nodes that can be split, as counted on the previous Invoke) below
// which an interpreter with several threads splits no node at all: small
// models run on the goroutine calling Invoke alone, so WithThreads never
// makes them slower. The default is kernels.MinParallelModelWork
// (measured on amd64); 0 turns the bound off (tests use it with
// WithSplitThreshold(0) to exercise the split paths on small models).
func WithModelSplitThreshold(work int64) Option {
	return func(o *options) { o.modelSplit = max(0, work) }
}

// WithReferenceRounding makes every kernel round as TensorFlow Lite Micro
// and the reference kernels do (double rounding everywhere) instead of as
// TensorFlow Lite's builtin CPU kernels.
func WithReferenceRounding() Option {
	return func(o *options) { o.rounding = quant.RoundingDouble }
}

// WithPortableFloat makes float32 convolutions and fully connected
// layers sum in the portable kernels' order rather than the SIMD order:
// float results then do not depend on the CPU (slower; the post-training
// quantizer calibrates with it so a model quantizes the same everywhere).
func WithPortableFloat() Option { return func(o *options) { o.portable = true } }

// WithMaxMemory bounds the activation memory (arena plus dynamic tensors).
func WithMaxMemory(bytes int64) Option { return func(o *options) { o.maxMemory = bytes } }

// Interpreter runs one Model. It is not safe for concurrent use; create one
// per goroutine (they share the model's weights).
type Interpreter struct {
	model     *Model
	opts      options
	ctx       *kernels.Context
	subgraphs []*subgraph
	needPlan  bool
	depth     int
}

type controlKind uint8

const (
	controlNone controlKind = iota
	controlCall
	controlIf
	controlWhile
	controlCallOnce
)

type node struct {
	kn      kernels.Node
	kernel  kernels.Kernel
	control controlKind
	// dynamic nodes re-run Prepare during Invoke because an input's shape
	// or a shape-defining value is only known then.
	dynamic bool
	done    bool // CALL_ONCE has run
}

type subgraph struct {
	index   int
	tensors []*tensor.Tensor
	inputs  []int
	outputs []int
	nodes   []*node
	arena   []byte
	planned bool
	// bands are the runs of nodes that Invoke hands the worker pool as
	// one job (kernels.Region); bandAt[i] indexes the band starting at
	// node i, -1 for none.
	bands  []band
	bandAt []int
}

// band is a kernels.Region over nodes [start, end) of a subgraph.
type band struct {
	start, end int
	region     *kernels.Region
}

// NewInterpreter creates an interpreter and prepares it: every node is
// validated and memory is planned, so Invoke can run at once.
func NewInterpreter(m *Model, opts ...Option) (*Interpreter, error) {
	o := options{threads: 1, split: kernels.MinParallelMACs, modelSplit: kernels.MinParallelModelWork, rounding: quant.RoundingTFLite, maxMemory: DefaultMaxMemory}
	for _, f := range opts {
		f(&o)
	}
	if o.planOnly {
		o.threads = 1 // no Invoke: no workers
	}
	ip := &Interpreter{model: m, opts: o}
	ip.ctx = kernels.NewContext(o.rounding, o.threads)
	ip.ctx.SetMaxTensorBytes(o.maxMemory)
	ip.ctx.SplitThreshold = o.split
	ip.ctx.ModelSplitThreshold = o.modelSplit
	ip.ctx.PortableFloat = o.portable
	for si := range m.schema.Subgraphs {
		sg, err := ip.buildSubgraph(si)
		if err != nil {
			ip.Close()
			return nil, err
		}
		ip.subgraphs = append(ip.subgraphs, sg)
	}
	if err := ip.AllocateTensors(); err != nil {
		ip.Close()
		return nil, err
	}
	return ip, nil
}

// Close stops the interpreter's worker goroutines (WithThreads(n) with
// n > 1). An interpreter that is dropped without Close has them stopped by
// the garbage collector; Close makes it immediate. Close is idempotent;
// after it, Invoke still works, on the calling goroutine only.
func (ip *Interpreter) Close() error {
	ip.ctx.Close()
	return nil
}

func (ip *Interpreter) buildSubgraph(si int) (*subgraph, error) {
	s := ip.model.schema.Subgraphs[si]
	sg := &subgraph{index: si, inputs: s.Inputs, outputs: s.Outputs}
	var persistent int64
	for ti := range s.Tensors {
		st := &s.Tensors[ti]
		t := &tensor.Tensor{Name: st.Name, Type: st.Type, Shape: append([]int{}, st.Shape...), Quant: st.Quant, IsVariable: st.IsVariable}
		data := ip.model.constants[st.Buffer]
		switch {
		case len(data) > 0 && !st.IsVariable:
			if st.Sparse {
				return nil, fmt.Errorf("subgraph %d tensor %d (%q): sparse constant tensors are not supported", si, ti, st.Name)
			}
			t.Alloc = tensor.ConstantAlloc
			t.Data = data
			t.KnownAtPrepare = true
		case st.IsVariable:
			if t.Type.Size() == 0 {
				return nil, fmt.Errorf("subgraph %d variable tensor %d (%q) has type %s", si, ti, st.Name, st.Type)
			}
			persistent += int64(t.ByteSize())
			if persistent > ip.opts.maxMemory {
				return nil, fmt.Errorf("subgraph %d: variable tensors need more than %d bytes: %w", si, ip.opts.maxMemory, kernels.ErrTooLarge)
			}
			t.Alloc = tensor.PersistentAlloc
			if !ip.opts.planOnly {
				t.Data = kernels.AlignedBytes(t.ByteSize())
				resetVariable(t, data)
			}
		}
		sg.tensors = append(sg.tensors, t)
	}
	for ni, op := range s.Operators {
		code := ip.model.schema.OperatorCodes[op.OpcodeIndex]
		n := &node{kn: kernels.Node{
			Index: ni, Op: code.Builtin, Custom: code.Custom, Version: code.Version,
			Options: op.Options, CustomOptions: op.CustomOptions,
		}}
		n.kn.Inputs = sg.lookup(op.Inputs)
		n.kn.Outputs = sg.lookup(op.Outputs)
		for k, out := range n.kn.Outputs {
			// Kernels resize and write their outputs: a constant there
			// would be resized under its (shared, read-only) buffer.
			if out != nil && out.Alloc == tensor.ConstantAlloc {
				return nil, fmt.Errorf("%w: subgraph %d node %d (%s): output %d is constant tensor %d (%q)", ErrInvalidModel, si, ni, code.Name(), k, op.Outputs[k], out.Name)
			}
			// Nor may a node overwrite its own input or a subgraph input:
			// their shapes and values are fixed before the node runs.
			if slices.Contains(op.Inputs, op.Outputs[k]) || slices.Contains(s.Inputs, op.Outputs[k]) {
				return nil, fmt.Errorf("%w: subgraph %d node %d (%s): output %d is tensor %d (%q), which is also an input", ErrInvalidModel, si, ni, code.Name(), k, op.Outputs[k], out.Name)
			}
		}
		n.kn.Intermediates = sg.lookup(op.Intermediates)
		switch code.Builtin {
		case schema.OpCall:
			n.control = controlCall
		case schema.OpIf:
			n.control = controlIf
		case schema.OpWhile:
			n.control = controlWhile
		case schema.OpCallOnce:
			n.control = controlCallOnce
		default:
			k, ok := kernels.Lookup(code)
			if !ok {
				return nil, &UnsupportedOpError{Op: code.Name(), Custom: code.Builtin == schema.OpCustom, Version: code.Version, Subgraph: si, Node: ni}
			}
			n.kernel = k
		}
		sg.nodes = append(sg.nodes, n)
	}
	return sg, nil
}

func (sg *subgraph) lookup(idx []int) []*tensor.Tensor {
	out := make([]*tensor.Tensor, len(idx))
	for i, ti := range idx {
		if ti >= 0 {
			out[i] = sg.tensors[ti]
		}
	}
	return out
}

// resetVariable sets a variable to its initial value: the model's buffer if
// it has one, else zero (the zero point for int8, as TensorFlow Lite does).
func resetVariable(t *tensor.Tensor, initial []byte) {
	if len(initial) == len(t.Data) {
		copy(t.Data, initial)
		return
	}
	v := byte(0)
	if t.Type == tensor.Int8 && t.Quant != nil && len(t.Quant.ZeroPoint) > 0 {
		v = byte(int8(t.Quant.ZeroPoint[0]))
	}
	for i := range t.Data {
		t.Data[i] = v
	}
}

// ResetVariables restores every variable tensor (LSTM and SVDF state) to
// its initial value.
func (ip *Interpreter) ResetVariables() {
	for si, sg := range ip.subgraphs {
		st := ip.model.schema.Subgraphs[si].Tensors
		for ti, t := range sg.tensors {
			if t.IsVariable {
				resetVariable(t, ip.model.constants[st[ti].Buffer])
			}
		}
	}
}

// Model returns the interpreter's model.
func (ip *Interpreter) Model() *Model { return ip.model }

// Inputs returns the primary subgraph's input tensors. Write input data
// into their Data after AllocateTensors (NewInterpreter does it).
func (ip *Interpreter) Inputs() []*tensor.Tensor {
	return ip.subgraphs[0].lookup(ip.subgraphs[0].inputs)
}

// Outputs returns the primary subgraph's output tensors.
func (ip *Interpreter) Outputs() []*tensor.Tensor {
	return ip.subgraphs[0].lookup(ip.subgraphs[0].outputs)
}

// Input returns input tensor i.
func (ip *Interpreter) Input(i int) *tensor.Tensor {
	return ip.subgraphs[0].tensors[ip.subgraphs[0].inputs[i]]
}

// Output returns output tensor i.
func (ip *Interpreter) Output(i int) *tensor.Tensor {
	return ip.subgraphs[0].tensors[ip.subgraphs[0].outputs[i]]
}

// NumInputs returns the number of model inputs.
func (ip *Interpreter) NumInputs() int { return len(ip.subgraphs[0].inputs) }

// NumOutputs returns the number of model outputs.
func (ip *Interpreter) NumOutputs() int { return len(ip.subgraphs[0].outputs) }

// ResizeInput changes the shape of input i (for example its batch
// dimension). Memory is re-planned by the next AllocateTensors or Invoke;
// input data must be written after that.
func (ip *Interpreter) ResizeInput(i int, shape []int) error {
	sg := ip.subgraphs[0]
	if i < 0 || i >= len(sg.inputs) {
		return fmt.Errorf("resize input %d: the model has %d inputs", i, len(sg.inputs))
	}
	t := sg.tensors[sg.inputs[i]]
	if len(shape) != len(t.Shape) {
		return &InputError{Index: i, Name: t.Name, Expected: fmt.Sprintf("rank %d", len(t.Shape)), Given: fmt.Sprintf("shape %s", tensor.ShapeString(shape))}
	}
	if tensor.SameShape(shape, t.Shape) {
		return nil
	}
	ip.ctx.Preparing = true
	err := ip.ctx.ResizeOutput(t, shape)
	ip.ctx.Preparing = false
	if err != nil {
		return fmt.Errorf("resize input %d: %w", i, err)
	}
	ip.needPlan = true
	for _, s := range ip.subgraphs {
		s.planned = false
	}
	return nil
}

// SetInput copies raw little-endian bytes into input i, checking the size.
func (ip *Interpreter) SetInput(i int, data []byte) error {
	if err := ip.ensurePlanned(); err != nil {
		return err
	}
	sg := ip.subgraphs[0]
	if i < 0 || i >= len(sg.inputs) {
		return fmt.Errorf("set input %d: the model has %d inputs", i, len(sg.inputs))
	}
	t := sg.tensors[sg.inputs[i]]
	if len(data) != len(t.Data) {
		return &InputError{Index: i, Name: t.Name, Expected: describe(t), Given: fmt.Sprintf("%d bytes", len(data))}
	}
	copy(t.Data, data)
	return nil
}

// AllocateTensors prepares every node and plans memory for the current
// input shapes. NewInterpreter and ResizeInput+Invoke call it as needed.
func (ip *Interpreter) AllocateTensors() error {
	for _, sg := range ip.subgraphs {
		sg.planned = false
	}
	if err := ip.prepareSubgraph(ip.subgraphs[0]); err != nil {
		return err
	}
	// Subgraphs not reached from the primary one (unused, or only from
	// signatures) are prepared with their declared shapes.
	for _, sg := range ip.subgraphs[1:] {
		if !sg.planned {
			if err := ip.prepareSubgraph(sg); err != nil {
				return err
			}
		}
	}
	ip.needPlan = false
	return nil
}

func (ip *Interpreter) ensurePlanned() error {
	if ip.needPlan {
		return ip.AllocateTensors()
	}
	return nil
}

func (ip *Interpreter) prepareSubgraph(sg *subgraph) error {
	ctx := ip.ctx
	ctx.Preparing = true
	defer func() { ctx.Preparing = false }()
	for _, t := range sg.tensors {
		if t.Alloc == tensor.DynamicAlloc {
			t.Alloc = tensor.ArenaAlloc
		}
	}
	for _, n := range sg.nodes {
		n.dynamic = false
		for _, in := range n.kn.Inputs {
			if in != nil && in.Alloc == tensor.DynamicAlloc {
				n.dynamic = true
			}
		}
		if n.dynamic {
			for _, out := range n.kn.Outputs {
				if out != nil {
					ctx.MarkDynamic(out)
				}
			}
			// Shapes are unknown until Invoke; prepare then.
			continue
		}
		if err := ip.prepareNode(sg, n); err != nil {
			return err
		}
		for _, out := range n.kn.Outputs {
			if out != nil && out.Alloc == tensor.DynamicAlloc {
				n.dynamic = true
			}
		}
	}
	ip.formBands(sg)
	if err := ip.plan(sg); err != nil {
		return err
	}
	sg.planned = true
	return nil
}

func (ip *Interpreter) prepareNode(sg *subgraph, n *node) error {
	var err error
	if n.control != controlNone {
		err = ip.prepareControl(sg, n)
	} else {
		err = n.kernel.Prepare(ip.ctx, &n.kn)
	}
	if err != nil {
		return fmt.Errorf("prepare subgraph %d: %w", sg.index, err)
	}
	return nil
}

// Invoke runs the model on the current inputs.
func (ip *Interpreter) Invoke() error { return ip.InvokeContext(context.Background()) }

// InvokeContext runs the model, checking ctx for cancellation between nodes.
func (ip *Interpreter) InvokeContext(ctx context.Context) error {
	if err := ip.ensurePlanned(); err != nil {
		return err
	}
	ip.ctx.SetActive(true)
	defer ip.ctx.SetActive(false)
	return ip.invokeSubgraph(ctx, ip.subgraphs[0])
}

func (ip *Interpreter) invokeSubgraph(ctx context.Context, sg *subgraph) error {
	if !sg.planned {
		if err := ip.prepareSubgraph(sg); err != nil {
			return err
		}
	}
	kc := ip.ctx
	split := kc.Splitting()
	for i := 0; i < len(sg.nodes); i++ {
		n := sg.nodes[i]
		if err := ctx.Err(); err != nil {
			return err
		}
		if split && sg.bandAt[i] >= 0 {
			b := &sg.bands[sg.bandAt[i]]
			if err := ip.invokeBand(ctx, sg, b); err != nil {
				return err
			}
			i = b.end - 1
			continue
		}
		if n.dynamic {
			kc.Preparing = true
			kc.InEval = true
			err := ip.prepareNode(sg, n)
			kc.Preparing = false
			if err == nil {
				err = ip.allocDynamic(n)
			}
			if err != nil {
				kc.InEval = false
				return err
			}
		}
		var err error
		if n.control != controlNone {
			err = ip.evalControl(ctx, sg, n)
		} else {
			err = n.kernel.Eval(kc, &n.kn)
		}
		kc.InEval = false
		if err != nil {
			return fmt.Errorf("invoke subgraph %d: %w", sg.index, err)
		}
	}
	return nil
}

// allocDynamic gives dynamic outputs memory for the shapes Prepare set.
func (ip *Interpreter) allocDynamic(n *node) error {
	for _, out := range n.kn.Outputs {
		if out != nil && out.Alloc == tensor.DynamicAlloc {
			if err := ip.ctx.ResizeOutput(out, out.Shape); err != nil {
				return err
			}
		}
	}
	return nil
}
