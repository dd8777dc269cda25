package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgefleet/edgefleet/agent/modelstore"
	"github.com/edgefleet/edgefleet/agent/serving/servingtest"
)

// FuzzHandlers feeds arbitrary bodies to every endpoint that parses one:
// no panic, and every answer is 200 or a well-formed error body.
func FuzzHandlers(f *testing.F) {
	for _, s := range []string{
		`{"instances":[[5.1,3.5,1.4,0.2]]}`, `{"instances":[{"b64":"AAAAAAAAAAAAAAAAAAAAAA=="}]}`,
		`{"instances":[{"image_b64":"iVBORw0KGgo="}]}`, `{"instances":[[[1,[2]]]]}`, `{"instances":[1e400]}`,
		`{"inputs":[{"name":"dense_input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`,
		`{"inputs":[{"name":"x","shape":[-1,4],"datatype":"FP32","data":[]}]}`,
		`{"inputs":[{"name":"x","shape":[0,4],"datatype":"FP32","data":[]}]}`,
		"[1,2,3,4]\n[1]\n{\n", `{"shadow":"1","candidate":"1","candidate_percent":50}`, "",
		`{"instances":[[3e38,3e38,3e38,3e38]]}`, `{"instances":[[1e400,1,1,1]]}`, `{"instances":[[-0,1E2,1e-2,true]]}`,
		`{"instances": [ [1,2,3,4] , "x" ,{"a":[1,"]"]}, null ]}`, `{"instances":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"inputs":[]}`, `{}`, `{"inputs":[{"name":"wrong","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`,
		`{"inputs":[{"name":"dense_input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"outputs":[{"name":"nope"}]}`,
		`{"inputs":[{"name":"serving_default_dense_input:0","shape":[1,1],"datatype":"INT8","data":[300]}]}`,
		`{"inputs":[{"name":"dense_input","shape":[16777216,4],"datatype":"FP32","data":[1]}]}`,
		`{"inputs":[{"name":"dense_input","shape":[1,4],"datatype":"FP32","data":[[1,2],[3,4]]}]}`,
		`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`,
	} {
		f.Add(s)
	}
	e := start(f, opts{extra: func(s *modelstore.Store) { installGenerated(f, s, "const", servingtest.ConstModel) }})
	s := e.srv.Handler()
	paths := []string{"/api/v1/models/iris/predict", "/api/v1/models/iris/batch-predict", "/api/v1/models/sine/stream",
		"/v2/models/iris/infer", "/v2/models/sine/infer", "/v2/models/const/infer", "/api/v1/models/iris/route", "/api/v1/models/iris/jobs"}
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range paths {
			method := "POST"
			if strings.HasSuffix(p, "/route") {
				method = "PUT"
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(method, p, strings.NewReader(body)))
			if rec.Code != http.StatusOK && rec.Code != http.StatusAccepted && !strings.Contains(rec.Body.String(), `"error":{"code":`) {
				t.Fatalf("%s: status %d without error body: %s", p, rec.Code, rec.Body.String())
			}
		}
	})
}
