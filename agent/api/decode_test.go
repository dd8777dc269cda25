package api

import (
	"encoding/json"
	"testing"

	"github.com/edgefleet/edgefleet/agent/predict"
)

// FuzzDecodePredict: the zero-copy instance splitter agrees with
// encoding/json on every document, never panics, and bounds the count.
func FuzzDecodePredict(f *testing.F) {
	for _, s := range []string{`{"instances":[[1,2],[3]]}`, `{"instances":[ "a,b" , {"x":"]"} ,null,true, -1e3 ]}`, `{"instances":null}`,
		`{"instances":[]}`, `{"instances":["\"]"]}`, `{"instances":{}}`, `{"instances":[1,2,3,4,5]}`, `[`, `{"instances":[[[]]], "parameters":{"top_k":2}}`} {
		f.Add(s)
	}
	s := &Server{cfg: Config{MaxBatchInstances: 4}}
	f.Fuzz(func(t *testing.T, doc string) {
		var got predict.Request
		err := s.decodeJSON([]byte(doc), &got)
		var want struct {
			Instances []json.RawMessage `json:"instances"`
		}
		werr := json.Unmarshal([]byte(doc), &want)
		if err != nil {
			if werr == nil && len(want.Instances) <= 4 {
				t.Fatalf("refused %q (%v), encoding/json accepts it", doc, err)
			}
			return
		}
		if werr != nil {
			t.Fatalf("accepted %q, encoding/json: %v", doc, werr)
		}
		if len(got.Instances) != len(want.Instances) {
			t.Fatalf("%q: %d instances, encoding/json %d", doc, len(got.Instances), len(want.Instances))
		}
		for i := range got.Instances {
			var a, b any
			if json.Unmarshal(got.Instances[i], &a) != nil {
				t.Fatalf("%q: instance %d %q is not valid JSON", doc, i, got.Instances[i])
			}
			json.Unmarshal(want.Instances[i], &b)
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if string(ja) != string(jb) {
				t.Fatalf("%q: instance %d is %s, encoding/json %s", doc, i, ja, jb)
			}
		}
	})
}
