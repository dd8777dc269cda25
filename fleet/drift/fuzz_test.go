package drift

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/internal/wire"
)

// FuzzCompare decodes two monitoring objects from arbitrary bytes (split
// at the first NUL), merges them into distributions and compares them: no
// panic, bounded sizes, finite non-negative PSI and KS in [0,1].
func FuzzCompare(f *testing.F) {
	a := `{"predictions":10,"classes":[{"class":0,"count":7},{"class":3,"count":3}],"class_other":1,"confidence":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,3,7],"features":[{"index":0,"count":10,"mean":0.5,"std":0.1,"min":0.2,"max":0.9,"sketch":{"exp":0,"counts":[0,0,0,0,0,0,0,1,1,1,1,1,1,1,1,1,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}}]}`
	b := `{"predictions":4,"classes":[{"class":3,"count":4}],"confidence":[4,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"features":[{"index":0,"count":4,"mean":-3,"std":1,"min":-5,"max":-1,"sketch":{"exp":3,"signed":true,"counts":[0,0,0,0,0,0,1,1,1,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}}]}`
	f.Add([]byte(a + "\x00" + b))
	f.Add([]byte(a + "\x00" + a))
	huge := `{"features":[{"index":0,"count":18446744073709551615,"mean":1e308,"std":1e308,"min":-1e308,"max":1e308,"sketch":{"exp":127}}],"resources":{"process_rss_bytes":1,"process_cpu_seconds":1e308,"device_mem_total_bytes":1,"device_mem_available_bytes":1,"device_cpu_percent":1,"load1":1e308}}`
	f.Add([]byte(huge + "\x00" + strings.Replace(huge, `"mean":1e308`, `"mean":-1e308`, 1)))
	f.Fuzz(func(t *testing.T, in []byte) {
		x, y, _ := bytes.Cut(in, []byte{0})
		mx, err1 := wire.DecodeMonitoring(x)
		my, err2 := wire.DecodeMonitoring(y)
		if err1 != nil || err2 != nil {
			return
		}
		var cur, ref Dist
		for i := 0; i < 3; i++ {
			cur.Add(mx)
			ref.Add(my)
			ref.Merge(&cur)
		}
		if len(cur.Classes) > MaxClasses || len(ref.Classes) > MaxClasses || len(cur.Features) > MaxFeatures || len(ref.Features) > MaxFeatures {
			t.Fatalf("unbounded: %d/%d classes, %d/%d features", len(cur.Classes), len(ref.Classes), len(cur.Features), len(ref.Features))
		}
		r := Compare(&cur, &ref)
		for _, v := range append([]float64{r.Drift}, r.MaxFeaturePSI()) {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < -1e-9 {
				t.Fatalf("drift %v: %+v", v, r)
			}
		}
		if k := r.KSConfidence; k != nil && (*k < 0 || *k > 1+1e-9) {
			t.Fatalf("KS %v", *k)
		}
		for _, v := range []any{cur.View(), ref.View(), &cur, r} {
			if _, err := json.Marshal(v); err != nil {
				t.Fatalf("does not encode: %v", err)
			}
		}
	})
}
