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

func TestParseNumbers(t *testing.T) {
	tests := []struct {
		in      string
		max     int
		vals    string
		shape   string
		wantErr string
	}{
		{`[[1, 2.5], [-3e2, true]]`, 4, "[1 2.5 -300 1]", "[2 2]", ""},
		{` 7 `, 1, "[7]", "[]", ""},
		{`[]`, 1, "[]", "[0]", ""},
		{`[1,2,3]`, 2, "", "", "more than the 2 values"},
		{`[1e400]`, 1, "", "", "out of range"},
		{`[01]`, 1, "", "", "expected ',' or ']'"},
		{`[1.]`, 1, "", "", "malformed number"},
		{`[NaN]`, 1, "", "", "expected numbers or arrays at byte 1"},
		{`[[1],[2,3]]`, 3, "", "", "ragged"},
		{`[1] x`, 1, "", "", "after the value"},
		{`[1,`, 2, "", "", "end of input"},
		{strings.Repeat("[", 40) + "1" + strings.Repeat("]", 40), 1, "", "", "nested deeper than 32"},
		{`{"a":1}`, 1, "", "", "expected numbers"},
	}
	for _, tc := range tests {
		vals, shape, err := ParseNumbers([]byte(tc.in), tc.max)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || fmt.Sprint(vals) != tc.vals || fmt.Sprint(shapeOr(shape)) != tc.shape {
			t.Errorf("%s: %v %v %v", tc.in, vals, shape, err)
		}
	}
}

// FuzzParseNumbers: never a panic, never more values than allowed, and
// agreement with encoding/json on what is valid.
func FuzzParseNumbers(f *testing.F) {
	for _, s := range []string{`[1,2]`, `[[1],[2]]`, `-0.5e-3`, `[true,false]`, `[1e400]`, `[[[`, `[1,]`, `"x"`, `[ 1 , [2] ]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		vals, _, err := ParseNumbers([]byte(s), 16)
		if len(vals) > 16 {
			t.Fatalf("%d values, max 16", len(vals))
		}
		if err == nil && !json.Valid([]byte(s)) {
			t.Fatalf("accepted invalid JSON %q", s)
		}
	})
}

// TestFormatNonFinite: NaN and infinities are encoded as strings, never a
// failed encoding.
func TestFormatNonFinite(t *testing.T) {
	got := string(AppendNested(nil, []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e-7, 0.5}, []int{5}))
	if got != `["NaN","Infinity","-Infinity",1e-7,0.5]` {
		t.Fatalf("encoded %s", got)
	}
	b, err := json.Marshal(TopK{Index: 1, Label: "x", Score: math.NaN()})
	if err != nil || string(b) != `{"index":1,"label":"x","score":"NaN"}` {
		t.Fatalf("TopK %s %v", b, err)
	}
	for _, v := range []float64{0, 1, -2.5, 1e21, 1e-6, 123456789, 3.4e38, 5e-324} {
		want, _ := json.Marshal(v)
		if got := string(AppendFloat(nil, v)); got != string(want) {
			t.Errorf("AppendFloat(%v) = %s, encoding/json %s", v, got, want)
		}
	}
}
