package jsonnum

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
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
		vals, shape, err := Parse([]byte(tc.in), tc.max)
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

// TestFlatten: any nesting, ragged too, is read row-major; booleans and
// everything else that is not a number are refused, as is one value more
// than allowed.
func TestFlatten(t *testing.T) {
	tests := []struct {
		in      string
		max     int
		vals    string
		wantErr string
	}{
		{`[[1, 2.5], [-3e2]]`, 4, "[1 2.5 -300]", ""},
		{`[[1], [[2, 3]], 4]`, 4, "[1 2 3 4]", ""},
		{` 7 `, 1, "[7]", ""},
		{`[]`, 1, "[]", ""},
		{`[1,2,3]`, 2, "", "more than the 2 values"},
		{`[1,true]`, 2, "", "expected numbers or arrays at byte 3"},
		{`[1,"a"]`, 2, "", "expected numbers"},
		{`[1e400]`, 1, "", "out of range"},
		{`[1] x`, 1, "", "after the value"},
		{strings.Repeat("[", 40) + "1" + strings.Repeat("]", 40), 1, "", "nested deeper than 32"},
	}
	for _, tc := range tests {
		var vals []float64
		n, err := Flatten([]byte(tc.in), tc.max, func(v float64) error { vals = append(vals, v); return nil })
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || n != len(vals) || fmt.Sprint(vals) != tc.vals && !(tc.vals == "[]" && len(vals) == 0) {
			t.Errorf("%s: %v (%d) %v, want %s", tc.in, vals, n, err, tc.vals)
		}
	}
}

// FuzzParse: never a panic, never more values than allowed, and
// agreement with encoding/json on what is valid, in both modes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`[1,2]`, `[[1],[2]]`, `-0.5e-3`, `[true,false]`, `[1e400]`, `[[[`, `[1,]`, `"x"`, `[ 1 , [2] ]`, `[[1],[2,3]]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		vals, _, err := Parse([]byte(s), 16)
		if len(vals) > 16 {
			t.Fatalf("%d values, max 16", len(vals))
		}
		if err == nil && !json.Valid([]byte(s)) {
			t.Fatalf("accepted invalid JSON %q", s)
		}
		n, err := Flatten([]byte(s), 16, func(float64) error { return nil })
		if n > 16 {
			t.Fatalf("Flatten: %d values, max 16", n)
		}
		if err == nil && !json.Valid([]byte(s)) {
			t.Fatalf("Flatten accepted invalid JSON %q", s)
		}
	})
}

// TestAppendNonFinite: NaN and infinities are encoded as strings, never a
// failed encoding; finite values as encoding/json encodes them.
func TestAppendNonFinite(t *testing.T) {
	got := string(AppendNested(nil, []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e-7, 0.5}, []int{5}))
	if got != `["NaN","Infinity","-Infinity",1e-7,0.5]` {
		t.Fatalf("encoded %s", got)
	}
	for _, v := range []float64{0, 1, -2.5, 1e21, 1e-6, 123456789, 3.4e38, 5e-324} {
		want, _ := json.Marshal(v)
		if got := string(AppendFloat(nil, v)); got != string(want) {
			t.Errorf("AppendFloat(%v) = %s, encoding/json %s", v, got, want)
		}
	}
}
