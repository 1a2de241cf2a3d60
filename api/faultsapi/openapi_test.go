package faultsapi

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/faults"
)

// The native routes are documented in the REST server's openapi.json,
// marked x-mount: this package; exactly those are routed.
func TestOpenAPIDocumentsNativeRoutes(t *testing.T) {
	b, err := os.ReadFile("../rest/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m, op := range ops {
			if op["x-mount"] == "api/faultsapi" {
				documented[strings.ToUpper(m)+" /api/v1"+strings.ReplaceAll(p, "{id}", ":id")] = true
			}
		}
	}
	e := echo.New()
	register(e, Options{Engine: faults.New(faults.Options{})})
	routed := map[string]bool{}
	for _, r := range e.Routes() {
		// Mailpit's and MailHog's routes are theirs, documented by them.
		if strings.HasPrefix(r.Path, "/api/v1/chaos") || strings.HasPrefix(r.Path, "/api/v2/") || r.Method == http.MethodHead {
			continue
		}
		routed[r.Method+" "+r.Path] = true
	}
	for k := range routed {
		if !documented[k] {
			t.Errorf("%s is not in openapi.json", k)
		}
	}
	for k := range documented {
		if !routed[k] {
			t.Errorf("openapi.json documents %s, which is not routed", k)
		}
	}
}
