package serving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/agent/engine"
	"github.com/edgefleet/edgefleet/inference/tensor"
)

func loadModel(t testing.TB, file string, limits Limits) *Loaded {
	t.Helper()
	data, err := os.ReadFile("../../testdata/models/" + file)
	if err != nil {
		t.Fatal(err)
	}
	l, err := load(context.Background(), engine.Native{}, "m", "1", "sha", data, limits, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestDecodeInstance(t *testing.T) {
	l := loadModel(t, "hello_world_int8.tflite", Limits{})
	tests := []struct {
		in      string
		want    []byte
		wantErr string
	}{
		{`[1.0]`, []byte{0xA9}, ""}, // 1/0.02448 = 40.85 → 41, zp -128
		{`1.0`, nil, "given shape []"},
		{`[[1.0]]`, nil, "expected shape [1]"},
		{`{"b64":"gA=="}`, []byte{0x80}, ""},
		{`{"b64":"gIA="}`, nil, "expected 1 bytes"},
		{`{"serving_default_dense_input:0":[0]}`, []byte{0x80}, ""},
		{`{"x":[0]}`, nil, "needs \"b64\""},
		{`[true]`, []byte{0xA9}, ""},
		{`["a"]`, nil, "expected numbers"},
		{`[1e300]`, []byte{127}, ""}, // saturates
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := DecodeInstance(l, json.RawMessage(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got[0]) != string(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestNestAndTopK(t *testing.T) {
	if got := fmt.Sprint(Nest([]float64{1, 2, 3, 4, 5, 6}, []int{2, 3})); got != "[[1 2 3] [4 5 6]]" {
		t.Fatalf("Nest = %s", got)
	}
	if got := Nest([]float64{7}, nil); got != 7.0 {
		t.Fatalf("scalar Nest = %v", got)
	}
	top := topK([]float64{0.1, 0.7, 0.2}, []string{"a", "b", "c"}, 2)
	if len(top) != 2 || top[0].Label != "b" || top[1].Label != "c" || top[0].Index != 1 {
		t.Fatalf("topK = %+v", top)
	}
}

// TestConvertBetweenInputTypes: an int8 instance re-encoded for a float
// version carries the same real value.
func TestConvertBetweenInputTypes(t *testing.T) {
	i8 := loadModel(t, "hello_world_int8.tflite", Limits{})
	f32 := loadModel(t, "hello_world_float.tflite", Limits{})
	in, err := DecodeInstance(i8, json.RawMessage(`[2.0]`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Convert(i8, f32, []Instance{in})
	if err != nil {
		t.Fatal(err)
	}
	v := tensor.View[float32](out[0][0])[0]
	if v < 1.98 || v > 2.02 {
		t.Fatalf("converted value %v, want about 2", v)
	}
	iris := loadModel(t, "iris.tflite", Limits{})
	if _, err := Convert(i8, iris, []Instance{in}); err == nil {
		t.Fatal("converted between different shapes")
	}
}

func TestQueueFullAndClose(t *testing.T) {
	l := loadModel(t, "iris.tflite", Limits{Pool: 1, Queue: 2})
	row := make([]byte, 16)
	if _, err := l.Run(context.Background(), []Instance{{row}, {row}, {row}}); !errors.Is(err, ErrBatchTooLarge) || !strings.Contains(err.Error(), "at most 2") {
		t.Fatalf("3 instances in a queue of 2: %v, want ErrBatchTooLarge with the limit", err)
	}
	if res, err := l.Run(context.Background(), []Instance{{row}, {row}}); err != nil || len(res) != 2 {
		t.Fatalf("2 instances: %v", err)
	}
	if _, err := l.Run(context.Background(), []Instance{{row[:3]}}); err == nil || !strings.Contains(err.Error(), "expected float32[4] (16 bytes), given 3 bytes") {
		t.Fatalf("short instance: %v", err)
	}
	l.Close()
	if _, err := l.Run(context.Background(), []Instance{{row}}); err != ErrStopped {
		t.Fatalf("after Close: %v", err)
	}
}

// TestFormatNonFinite: a NaN score is encoded as a string, never a failed
// encoding (values: internal/jsonnum).
func TestFormatNonFinite(t *testing.T) {
	b, err := json.Marshal(TopK{Index: 1, Label: "x", Score: math.NaN()})
	if err != nil || string(b) != `{"index":1,"label":"x","score":"NaN"}` {
		t.Fatalf("TopK %s %v", b, err)
	}
}
