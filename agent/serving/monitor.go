package serving

import (
	"encoding/binary"
	"math"

	"github.com/edgefleet/edgefleet/inference/tensor"
)

// Telemetry's view of a prediction, read straight from the tensor bytes
// without building slices: Predict calls these for every instance.

// realAt returns element i of data (row-major, little-endian, of info's
// type) as a real value (dequantized with per-tensor parameters); ok is
// false for types without a real value, per-channel quantization, or i
// out of range.
func realAt(info *tensor.Info, data []byte, i int) (v float64, ok bool) {
	sz := info.Type.Size()
	if sz <= 0 || i < 0 || (i+1)*sz > len(data) {
		return 0, false
	}
	b := data[i*sz:]
	switch info.Type {
	case tensor.Float32:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), true
	case tensor.Float64:
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), true
	case tensor.Int8:
		v = float64(int8(b[0]))
	case tensor.Uint8:
		v = float64(b[0])
	case tensor.Int16:
		v = float64(int16(binary.LittleEndian.Uint16(b)))
	case tensor.Int32:
		v = float64(int32(binary.LittleEndian.Uint32(b)))
	case tensor.Int64:
		v = float64(int64(binary.LittleEndian.Uint64(b)))
	case tensor.Bool:
		if b[0] != 0 {
			return 1, true
		}
		return 0, true
	default:
		return 0, false
	}
	if q := info.Quant; q != nil && len(q.Scale) > 0 {
		if len(q.Scale) > 1 {
			return 0, false
		}
		zp := 0.0
		if len(q.ZeroPoint) > 0 {
			zp = float64(q.ZeroPoint[0])
		}
		v = float64(q.Scale[0]) * (v - zp)
	}
	return v, true
}

// top1 returns the index and real value of the largest element of a
// one-dimensional output with at least two elements (a classification),
// as Format does (a NaN never wins over a number).
func top1(info *tensor.Info, data []byte) (class int, score float64, ok bool) {
	if len(info.Shape) != 1 || info.Shape[0] < 2 {
		return -1, 0, false
	}
	class = -1
	for i := 0; i < info.Shape[0]; i++ {
		v, ok := realAt(info, data, i)
		if !ok {
			return -1, 0, false
		}
		if class < 0 || v > score || math.IsNaN(score) && !math.IsNaN(v) {
			class, score = i, v
		}
	}
	return class, score, true
}

// featureValues fills dst with the first real values of one instance's
// input and returns how many it filled.
func featureValues(dst []float64, info *tensor.Info, data []byte) int {
	n := min(len(dst), tensor.NumElements(info.Shape))
	for i := 0; i < n; i++ {
		v, ok := realAt(info, data, i)
		if !ok {
			return i
		}
		dst[i] = v
	}
	return n
}
