package mailpit_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/api/mailpit"
)

// TestSwaggerListsEveryRoute: /api/v1/swagger.json is valid OpenAPI 2 JSON
// and describes every route Register adds, with its method.
func TestSwaggerListsEveryRoute(t *testing.T) {
	t.Parallel()
	e := echo.New()
	mp := mailpit.New(nil, mailpit.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	mp.Register(e)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/swagger.json", nil))
	var doc struct {
		Swagger string
		Paths   map[string]map[string]any
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || rec.Code != 200 {
		t.Fatalf("swagger.json: %d %v", rec.Code, err)
	}
	if doc.Swagger != "2.0" {
		t.Errorf("swagger %q, want 2.0", doc.Swagger)
	}
	for _, r := range e.Routes() {
		p := strings.NewReplacer(":id", "{ID}", ":part", "{PartID}", ":tag", "{Tag}").Replace(r.Path)
		paths := []string{p}
		if p == "/view/:file" {
			paths = []string{"/view/{ID}.html", "/view/{ID}.txt"}
		}
		for _, p := range paths {
			if _, ok := doc.Paths[p][strings.ToLower(r.Method)]; !ok {
				t.Errorf("%s %s is not described", r.Method, p)
			}
		}
	}
}
