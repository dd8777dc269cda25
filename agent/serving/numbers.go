package serving

import (
	"encoding/json"
	"sort"
	"sync"

	"github.com/edgefleet/edgefleet/internal/jsonnum"
)

// floatPool recycles the value buffers of decoded instances: decoding a
// large batch allocates one buffer per concurrent decoder, not per
// instance.
var floatPool sync.Pool

// getFloats returns a buffer with room for n values; putFloats recycles it.
func getFloats(n int) []float64 {
	if p, ok := floatPool.Get().(*[]float64); ok && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]float64, 0, n)
}

func putFloats(b []float64) {
	if cap(b) > 0 && cap(b) <= 1<<22 { // do not pin huge buffers
		floatPool.Put(&b)
	}
}

// WithFloats parses b (as jsonnum.Parse, at most maxValues values) into a
// recycled buffer and calls fn with the values, which fn must not retain.
func WithFloats(b []byte, maxValues int, fn func(vals []float64, shape []int) error) error {
	buf := getFloats(min(maxValues, len(b)/2+1)) // a value takes 2 bytes at least
	vals, shape, err := jsonnum.ParseInto(buf, b, maxValues)
	defer putFloats(buf)
	if err != nil {
		return err
	}
	return fn(vals, shape)
}

// appendObject appends {"name": value, ...} with keys sorted.
func appendObject(dst []byte, m map[string][]byte) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		q, _ := json.Marshal(k) // strings always encode
		dst = append(dst, q...)
		dst = append(dst, ':')
		dst = append(dst, m[k]...)
	}
	return append(dst, '}')
}
