package api_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// statusByName resolves http.StatusXxx by its text (StatusText without
// spaces, hyphens and apostrophes).
func statusByName(name string) (int, bool) {
	for code := 100; code < 600; code++ {
		txt := http.StatusText(code)
		if txt == "" {
			continue
		}
		if "Status"+strings.NewReplacer(" ", "", "-", "", "'", "").Replace(txt) == name {
			return code, true
		}
	}
	return 0, false
}

// emittedCodes parses the package's non-test sources and returns every
// error code passed to errf, or in agent/predict's codeStatus table, with its
// HTTP status.
func emittedCodes(t *testing.T) map[string]int {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	// The prediction service's codes and their statuses (codeStatus) are
	// the API's too.
	svcFiles, err := filepath.Glob("../predict/*.go")
	if err != nil || len(svcFiles) == 0 {
		t.Fatalf("agent/predict sources: %v %v", svcFiles, err)
	}
	files = append(files, svcFiles...)
	fset := token.NewFileSet()
	out := map[string]int{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Names) == 1 && vs.Names[0].Name == "codeStatus" {
				// toError's table: "code": http.StatusXxx (or a number).
				for _, e := range vs.Values[0].(*ast.CompositeLit).Elts {
					kv := e.(*ast.KeyValueExpr)
					lit, ok := kv.Key.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Errorf("%s: codeStatus key is not a string literal: the test cannot see it", fset.Position(kv.Pos()))
						continue
					}
					code, _ := strconv.Unquote(lit.Value)
					status := 0
					switch a := kv.Value.(type) {
					case *ast.BasicLit:
						status, _ = strconv.Atoi(a.Value)
					case *ast.SelectorExpr:
						status, _ = statusByName(a.Sel.Name)
					}
					if status == 0 {
						t.Errorf("%s: status of code %q not resolved", fset.Position(kv.Pos()), code)
						continue
					}
					if old, ok := out[code]; ok && old != status && code != "bad_request" {
						t.Errorf("code %q is emitted with statuses %d and %d", code, old, status)
					}
					if _, ok := out[code]; !ok {
						out[code] = status
					}
				}
				return false
			}
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); !ok || id.Name != "errf" || len(call.Args) < 2 {
				return true
			}
			lit, ok := call.Args[1].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				// errf(status, code, ...) with computed arguments
				// (errf's own body uses its parameters).
				if _, isIdent := call.Args[1].(*ast.Ident); isIdent {
					return true
				}
				t.Errorf("%s: errf with a non-literal code: the test cannot see it", fset.Position(call.Pos()))
				return true
			}
			code, _ := strconv.Unquote(lit.Value)
			status := 0
			switch a := call.Args[0].(type) {
			case *ast.BasicLit:
				status, _ = strconv.Atoi(a.Value)
			case *ast.SelectorExpr:
				status, _ = statusByName(a.Sel.Name)
			case *ast.Ident:
				return true // a variable status (writeJSON's fallback uses "internal" too)
			}
			if status == 0 {
				t.Errorf("%s: errf status of code %q not resolved", fset.Position(call.Pos()), code)
				return true
			}
			if old, ok := out[code]; ok && old != status && code != "bad_request" {
				t.Errorf("code %q is emitted with statuses %d and %d", code, old, status)
			}
			if _, ok := out[code]; !ok {
				out[code] = status
			}
			return true
		})
	}
	return out
}

// TestOpenAPIErrorCodes: every error code the API emits (every errf in
// the package, errors.go's mapping included) is in openapi.json's Error
// code enum with its status, every documented code is emitted, and the
// 413/429/503/504 responses of the prediction routes are documented, 429
// and 503 with Retry-After.
func TestOpenAPIErrorCodes(t *testing.T) {
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas struct {
				Error struct {
					Properties struct {
						Error struct {
							Properties struct {
								Code struct {
									Enum        []string `json:"enum"`
									Description string   `json:"description"`
								} `json:"code"`
							} `json:"properties"`
						} `json:"error"`
					} `json:"properties"`
				} `json:"Error"`
			} `json:"schemas"`
			Responses map[string]struct {
				Ref     string         `json:"$ref"`
				Headers map[string]any `json:"headers"`
			} `json:"responses"`
		} `json:"components"`
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Ref string `json:"$ref"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	code := doc.Components.Schemas.Error.Properties.Error.Properties.Code
	emitted := emittedCodes(t)
	if len(emitted) < 20 {
		t.Fatalf("found only %d error codes in the sources: %v", len(emitted), emitted)
	}
	for _, want := range []string{"invalid_webhook", "batch_too_large", "rate_limited", "overloaded", "model_unavailable", "timeout"} {
		if _, ok := emitted[want]; !ok {
			t.Errorf("source scan did not find code %q", want)
		}
	}
	for c, status := range emitted {
		if !slices.Contains(code.Enum, c) {
			t.Errorf("error code %q (%d) is missing from openapi.json's Error code enum", c, status)
		}
		if !strings.Contains(code.Description, fmt.Sprintf("%s (%d)", c, status)) {
			t.Errorf("openapi.json's Error code description does not give %q its status %d", c, status)
		}
	}
	for _, c := range code.Enum {
		if _, ok := emitted[c]; !ok {
			t.Errorf("openapi.json documents code %q that the API never emits", c)
		}
	}
	resolve := func(ref string) (string, map[string]any) {
		name := strings.TrimPrefix(ref, "#/components/responses/")
		r, ok := doc.Components.Responses[name]
		if !ok {
			t.Errorf("response %s is not defined", ref)
		}
		return name, r.Headers
	}
	for _, p := range []string{"/api/v1/models/{model_id}/predict", "/api/v1/models/{model_id}/batch-predict", "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"} {
		rs := doc.Paths[p]["post"].Responses
		for _, st := range []string{"400", "413", "429", "503", "504"} {
			r, ok := rs[st]
			if !ok {
				t.Errorf("POST %s: no %s response", p, st)
				continue
			}
			name, hdr := resolve(r.Ref)
			if (st == "429" || st == "503") && hdr["Retry-After"] == nil {
				t.Errorf("POST %s: %s response %s has no Retry-After header", p, st, name)
			}
		}
	}
	if r, ok := doc.Paths["/api/v1/models/{model_id}/jobs"]["post"].Responses["400"]; !ok || !strings.Contains(string(raw), "invalid_webhook (jobs)") || r.Ref == "" {
		t.Errorf("POST jobs: 400 invalid_webhook not documented")
	}
}
