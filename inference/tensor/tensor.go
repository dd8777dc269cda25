// Package tensor defines the Tensor type shared by the TensorFlow Lite
// runtime, its kernels and its callers: element type, shape, raw
// little-endian bytes and affine quantization parameters.
package tensor

import (
	"fmt"
	"math"
	"strings"
	"unsafe"
)

// DType is a tensor element type. Values match TFLite's TensorType enum.
type DType int8

// Element types, numbered as in the TFLite schema.
const (
	Float32    DType = 0
	Float16    DType = 1
	Int32      DType = 2
	Uint8      DType = 3
	Int64      DType = 4
	String     DType = 5
	Bool       DType = 6
	Int16      DType = 7
	Complex64  DType = 8
	Int8       DType = 9
	Float64    DType = 10
	Complex128 DType = 11
	Uint64     DType = 12
	Resource   DType = 13
	Variant    DType = 14
	Uint32     DType = 15
	Uint16     DType = 16
	Int4       DType = 17
)

var dtypeNames = map[DType]string{
	Float32: "float32", Float16: "float16", Int32: "int32", Uint8: "uint8",
	Int64: "int64", String: "string", Bool: "bool", Int16: "int16",
	Complex64: "complex64", Int8: "int8", Float64: "float64",
	Complex128: "complex128", Uint64: "uint64", Resource: "resource",
	Variant: "variant", Uint32: "uint32", Uint16: "uint16", Int4: "int4",
}

// String returns the TFLite-style lower-case name ("int8", "float32").
func (d DType) String() string {
	if n, ok := dtypeNames[d]; ok {
		return n
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// ParseDType maps a name such as "int8" or "FLOAT32" to its DType.
func ParseDType(name string) (DType, error) {
	l := strings.ToLower(name)
	for d, n := range dtypeNames {
		if n == l {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown dtype %q", name)
}

// Size returns the size in bytes of one element, or 0 for types without a
// fixed element size (string, resource, variant, int4).
func (d DType) Size() int {
	switch d {
	case Float32, Int32, Uint32:
		return 4
	case Int64, Float64, Uint64, Complex64:
		return 8
	case Complex128:
		return 16
	case Int16, Uint16, Float16:
		return 2
	case Uint8, Int8, Bool:
		return 1
	}
	return 0
}

// QuantRange returns the values a quantized integer dtype can hold: the
// range of int8, uint8 and int16, int32's otherwise.
func (d DType) QuantRange() (lo, hi int32) {
	switch d {
	case Int8:
		return math.MinInt8, math.MaxInt8
	case Uint8:
		return 0, math.MaxUint8
	case Int16:
		return math.MinInt16, math.MaxInt16
	}
	return math.MinInt32, math.MaxInt32
}

// Quantization holds affine quantization parameters: real = Scale*(q-ZeroPoint).
// With more than one scale, the tensor is quantized per channel along Dim.
type Quantization struct {
	Scale     []float32
	ZeroPoint []int64
	Dim       int
}

// PerChannel reports whether the parameters hold more than one scale.
func (q *Quantization) PerChannel() bool { return q != nil && len(q.Scale) > 1 }

// Allocation tells where a tensor's bytes live.
type Allocation uint8

// Allocation kinds.
const (
	// ArenaAlloc tensors share the interpreter's planned arena.
	ArenaAlloc Allocation = iota
	// ConstantAlloc tensors point at (read-only) model buffers.
	ConstantAlloc
	// PersistentAlloc tensors own their memory for the interpreter's life
	// (variables, values computed at prepare time).
	PersistentAlloc
	// DynamicAlloc tensors get their shape and memory during Invoke.
	DynamicAlloc
)

// Tensor is an n-dimensional array of one element type.
type Tensor struct {
	Name  string
	Type  DType
	Shape []int
	// Data holds the elements, little-endian, row-major. len(Data) is the
	// byte size once memory has been planned.
	Data  []byte
	Quant *Quantization
	// Alloc tells where Data lives.
	Alloc Allocation
	// IsVariable marks state that persists across Invoke (LSTM, SVDF).
	IsVariable bool
	// KnownAtPrepare marks tensors whose values are fixed before Invoke
	// (constants and values folded at prepare time).
	KnownAtPrepare bool
}

// NumElements returns the product of the dimensions (1 for a scalar).
func (t *Tensor) NumElements() int { return NumElements(t.Shape) }

// NumElements returns the product of shape's dimensions (1 for a scalar).
func NumElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// ByteSize returns the byte size implied by type and shape.
func (t *Tensor) ByteSize() int { return t.NumElements() * t.Type.Size() }

// Rank returns the number of dimensions.
func (t *Tensor) Rank() int { return len(t.Shape) }

// Dim returns dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.Shape)
	}
	return t.Shape[i]
}

// Scale returns the first (per-tensor) scale, or 0 when unquantized.
func (t *Tensor) Scale() float64 {
	if t.Quant == nil || len(t.Quant.Scale) == 0 {
		return 0
	}
	return float64(t.Quant.Scale[0])
}

// ZeroPoint returns the first (per-tensor) zero point, or 0 when unquantized.
func (t *Tensor) ZeroPoint() int32 {
	if t.Quant == nil || len(t.Quant.ZeroPoint) == 0 {
		return 0
	}
	return int32(t.Quant.ZeroPoint[0])
}

// IsQuantized reports whether the tensor carries a scale.
func (t *Tensor) IsQuantized() bool { return t.Quant != nil && len(t.Quant.Scale) > 0 }

// Float32s views the bytes as float32 values.
func (t *Tensor) Float32s() []float32 { return view[float32](t.Data) }

// Int8s views the bytes as int8 values.
func (t *Tensor) Int8s() []int8 { return view[int8](t.Data) }

// Uint8s views the bytes as uint8 values.
func (t *Tensor) Uint8s() []uint8 { return t.Data }

// Int16s views the bytes as int16 values.
func (t *Tensor) Int16s() []int16 { return view[int16](t.Data) }

// Int32s views the bytes as int32 values.
func (t *Tensor) Int32s() []int32 { return view[int32](t.Data) }

// Int64s views the bytes as int64 values.
func (t *Tensor) Int64s() []int64 { return view[int64](t.Data) }

// Bools views the bytes as bool values.
func (t *Tensor) Bools() []bool { return view[bool](t.Data) }

// Float64s views the bytes as float64 values.
func (t *Tensor) Float64s() []float64 { return view[float64](t.Data) }

// View reinterprets little-endian bytes as a slice of T without copying.
// All supported targets (amd64, arm64, arm, riscv64) are little-endian; the
// runtime aligns tensor memory so that the view is aligned for T.
func View[T any](b []byte) []T { return view[T](b) }

func view[T any](b []byte) []T {
	var z T
	sz := int(unsafe.Sizeof(z))
	if len(b) < sz {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/sz)
}

// Bytes views values as their little-endian bytes without copying (the
// inverse of View).
func Bytes[T any](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*int(unsafe.Sizeof(v[0])))
}

// Info describes a tensor without its data.
type Info struct {
	Name  string
	Type  DType
	Shape []int
	Quant *Quantization
}

// Info returns the tensor's description (shape copied).
func (t *Tensor) Info() Info {
	return Info{Name: t.Name, Type: t.Type, Shape: append([]int(nil), t.Shape...), Quant: t.Quant}
}

// ShapeString formats a shape as "[1,224,224,3]".
func ShapeString(shape []int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range shape {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, d)
	}
	b.WriteByte(']')
	return b.String()
}

// SameShape reports whether two shapes are equal.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// SetReal quantizes (or stores) real values into the tensor: float types
// take the values as they are, quantized integer types use the tensor's
// scale and zero point (round half away from zero, then saturate).
func (t *Tensor) SetReal(values []float64) error {
	if len(values) != t.NumElements() {
		return fmt.Errorf("tensor %q: got %d values, expected %d for shape %s", t.Name, len(values), t.NumElements(), ShapeString(t.Shape))
	}
	scale, zp := t.Scale(), float64(t.ZeroPoint())
	q := func(v float64) float64 {
		if scale == 0 {
			return math.Round(v)
		}
		return math.Round(v/scale) + zp
	}
	switch t.Type {
	case Float32:
		d := t.Float32s()
		for i, v := range values {
			d[i] = float32(v)
		}
	case Float64:
		copy(t.Float64s(), values)
	case Int8:
		d := t.Int8s()
		for i, v := range values {
			d[i] = int8(clamp(q(v), math.MinInt8, math.MaxInt8))
		}
	case Uint8:
		d := t.Uint8s()
		for i, v := range values {
			d[i] = uint8(clamp(q(v), 0, math.MaxUint8))
		}
	case Int16:
		d := t.Int16s()
		for i, v := range values {
			d[i] = int16(clamp(q(v), math.MinInt16, math.MaxInt16))
		}
	case Int32:
		d := t.Int32s()
		for i, v := range values {
			d[i] = int32(clamp(q(v), math.MinInt32, math.MaxInt32))
		}
	case Int64:
		d := t.Int64s()
		for i, v := range values {
			d[i] = int64(q(v))
		}
	case Bool:
		d := t.Bools()
		for i, v := range values {
			d[i] = v != 0
		}
	default:
		return fmt.Errorf("tensor %q: cannot set real values on %s", t.Name, t.Type)
	}
	return nil
}

// Real returns the tensor's values as real numbers, dequantizing integer
// types that carry a (per-tensor or per-channel) scale.
func (t *Tensor) Real() ([]float64, error) {
	n := t.NumElements()
	out := make([]float64, n)
	deq := func(i int, q float64) float64 {
		if !t.IsQuantized() {
			return q
		}
		if t.Quant.PerChannel() {
			ch := channelOf(t.Shape, t.Quant.Dim, i)
			return float64(t.Quant.Scale[ch]) * (q - float64(t.Quant.ZeroPoint[ch]))
		}
		return t.Scale() * (q - float64(t.ZeroPoint()))
	}
	switch t.Type {
	case Float32:
		for i, v := range t.Float32s()[:n] {
			out[i] = float64(v)
		}
	case Float64:
		copy(out, t.Float64s())
	case Int8:
		for i, v := range t.Int8s()[:n] {
			out[i] = deq(i, float64(v))
		}
	case Uint8:
		for i, v := range t.Uint8s()[:n] {
			out[i] = deq(i, float64(v))
		}
	case Int16:
		for i, v := range t.Int16s()[:n] {
			out[i] = deq(i, float64(v))
		}
	case Int32:
		for i, v := range t.Int32s()[:n] {
			out[i] = deq(i, float64(v))
		}
	case Int64:
		for i, v := range t.Int64s()[:n] {
			out[i] = deq(i, float64(v))
		}
	case Bool:
		for i, v := range t.Bools()[:n] {
			if v {
				out[i] = 1
			}
		}
	default:
		return nil, fmt.Errorf("tensor %q: cannot read %s as real values", t.Name, t.Type)
	}
	return out, nil
}

func channelOf(shape []int, dim, flat int) int {
	inner := 1
	for _, d := range shape[dim+1:] {
		inner *= d
	}
	return (flat / inner) % shape[dim]
}

func clamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
