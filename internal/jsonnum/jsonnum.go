// Package jsonnum reads and writes numbers in nested JSON arrays without a
// generic JSON tree: the agent's request decoding (tensors: rectangular
// arrays) and the quantizer's calibration samples (row-major flattening)
// both parse through it, and the agent's responses are written with it.
package jsonnum

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unsafe"
)

// maxNesting bounds the array nesting of an instance (tensors have at most
// a handful of dimensions; the bound keeps hostile input from recursing
// deeply).
const maxNesting = 32

// Parse parses nested JSON arrays of numbers (true and false count as
// 1 and 0) straight into float64 values and returns them with the arrays'
// shape. It never builds a generic JSON tree: encoding/json into `any` costs
// ~40 bytes per number, this costs 8. It accepts at most maxValues values
// (an error beyond, so memory is bounded by the caller's expectation), and
// rejects ragged arrays, other JSON values, numbers outside float64 range
// and trailing data with the byte offset where it went wrong.
//
// Written by hand because neither encoding/json nor the well-kept
// alternatives decode numbers into a preallocated typed buffer without an
// intermediate value per token.
func Parse(b []byte, maxValues int) ([]float64, []int, error) {
	return ParseInto(nil, b, maxValues)
}

// ParseInto is Parse appending to dst[:0] (a buffer to reuse).
func ParseInto(dst []float64, b []byte, maxValues int) ([]float64, []int, error) {
	p := numParser{b: b, max: maxValues, vals: dst[:0]}
	if maxValues > 0 && cap(p.vals) == 0 {
		p.vals = make([]float64, 0, min(maxValues, len(b)/2+1))
	}
	p.ws()
	shape, err := p.value(0)
	if err != nil {
		return nil, nil, err
	}
	p.ws()
	if p.i != len(p.b) {
		return nil, nil, fmt.Errorf("unexpected %s after the value at byte %d", p.found(), p.i)
	}
	return p.vals, shape, nil
}

type numParser struct {
	b    []byte
	i    int
	max  int
	n    int
	vals []float64
	// emit, when set, receives each value instead of vals.
	emit func(float64) error
	// flat accepts arrays of any shape (ragged) and numbers only (Flatten).
	flat bool
}

// ParseFunc is Parse handing each value to emit, in order,
// instead of collecting them: memory stays constant whatever the input.
// It returns the shape.
func ParseFunc(b []byte, maxValues int, emit func(float64) error) ([]int, error) {
	p := numParser{b: b, max: maxValues, emit: emit}
	p.ws()
	shape, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i != len(p.b) {
		return nil, fmt.Errorf("unexpected %s after the value at byte %d", p.found(), p.i)
	}
	return shape, nil
}

// Flatten hands the numbers of b, nested JSON arrays of any shape (ragged
// arrays too; booleans are not numbers here), to emit in row-major order,
// at most maxValues of them, and returns how many there were. It is the
// reading of a calibration sample, whose only constraint is its count.
func Flatten(b []byte, maxValues int, emit func(float64) error) (int, error) {
	p := numParser{b: b, max: maxValues, emit: emit, flat: true}
	p.ws()
	if _, err := p.value(0); err != nil {
		return 0, err
	}
	p.ws()
	if p.i != len(p.b) {
		return 0, fmt.Errorf("unexpected %s after the value at byte %d", p.found(), p.i)
	}
	return p.n, nil
}

func (p *numParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *numParser) found() string {
	if p.i >= len(p.b) {
		return "end of input"
	}
	end := min(len(p.b), p.i+12)
	return strconv.Quote(string(p.b[p.i:end]))
}

func (p *numParser) push(v float64) error {
	if p.n >= p.max {
		return fmt.Errorf("more than the %d values expected (at byte %d)", p.max, p.i)
	}
	p.n++
	if p.emit != nil {
		return p.emit(v)
	}
	p.vals = append(p.vals, v)
	return nil
}

func (p *numParser) value(depth int) ([]int, error) {
	if p.i >= len(p.b) {
		return nil, errors.New("expected a number or an array, found end of input")
	}
	switch c := p.b[p.i]; {
	case c == '[':
		if depth >= maxNesting {
			return nil, fmt.Errorf("arrays nested deeper than %d at byte %d", maxNesting, p.i)
		}
		p.i++
		p.ws()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			return []int{0}, nil
		}
		var inner []int
		n := 0
		for {
			start := p.i
			es, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				inner = es
			} else if !p.flat && !sameInts(es, inner) {
				return nil, fmt.Errorf("ragged array: element %d (byte %d) has shape %v, element 0 has %v", n, start, shapeOr(es), shapeOr(inner))
			}
			n++
			p.ws()
			if p.i < len(p.b) && p.b[p.i] == ',' {
				p.i++
				p.ws()
				continue
			}
			if p.i < len(p.b) && p.b[p.i] == ']' {
				p.i++
				return append([]int{n}, inner...), nil
			}
			return nil, fmt.Errorf("expected ',' or ']' at byte %d, found %s", p.i, p.found())
		}
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		if !p.number() {
			return nil, fmt.Errorf("malformed number at byte %d: %s", start, strconv.Quote(string(p.b[start:min(len(p.b), start+24)])))
		}
		tok := p.b[start:p.i]
		// The token is only read, never retained: no copy needed.
		v, err := strconv.ParseFloat(unsafe.String(&tok[0], len(tok)), 64)
		if err != nil || math.IsInf(v, 0) {
			return nil, fmt.Errorf("number %s at byte %d is out of range (float64)", strconv.Quote(string(tok)), start)
		}
		return nil, p.push(v)
	case p.flat:
	case c == 't' && hasPrefix(p.b[p.i:], "true"):
		p.i += 4
		return nil, p.push(1)
	case c == 'f' && hasPrefix(p.b[p.i:], "false"):
		p.i += 5
		return nil, p.push(0)
	}
	return nil, fmt.Errorf("expected numbers or arrays at byte %d, found %s", p.i, p.found())
}

// number advances over a JSON number (RFC 8259 grammar).
func (p *numParser) number() bool {
	b, i := p.b, p.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	p.i = i
	return true
}

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }

func sameInts(a, b []int) bool {
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

func shapeOr(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}

// AppendFloat appends v as a JSON value. Non-finite values, which JSON
// numbers cannot hold, are written as the strings "NaN", "Infinity" and
// "-Infinity" (the convention of the Open Inference Protocol's JSON
// clients and of JavaScript's Number parsing); finite values are formatted
// as encoding/json formats float64.
func AppendFloat(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(v, -1):
		return append(dst, `"-Infinity"`...)
	}
	abs := math.Abs(v)
	f := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		f = 'e'
	}
	dst = strconv.AppendFloat(dst, v, f, -1, 64)
	if f == 'e' { // e-09 → e-9, as encoding/json
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// AppendFloats appends vals as a flat JSON array (see AppendFloat).
func AppendFloats(dst []byte, vals []float64) []byte {
	dst = append(dst, '[')
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendFloat(dst, v)
	}
	return append(dst, ']')
}

// AppendNested appends vals shaped as nested JSON arrays (a scalar for an
// empty shape, null when there is no value).
func AppendNested(dst []byte, vals []float64, shape []int) []byte {
	if len(shape) == 0 {
		if len(vals) == 0 {
			return append(dst, "null"...)
		}
		return AppendFloat(dst, vals[0])
	}
	if len(shape) == 1 {
		return AppendFloats(dst, vals)
	}
	step := 1
	for _, d := range shape[1:] {
		step *= d
	}
	dst = append(dst, '[')
	for i := 0; i < shape[0]; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		lo, hi := min(len(vals), i*step), min(len(vals), (i+1)*step)
		dst = AppendNested(dst, vals[lo:hi], shape[1:])
	}
	return append(dst, ']')
}
