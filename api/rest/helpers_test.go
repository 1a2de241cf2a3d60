package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// testEnv is a REST server on a real loopback listener over a real store.
type testEnv struct {
	t   testing.TB
	st  *store.Store
	srv *Server
	url string // base, e.g. http://127.0.0.1:1234
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(t.TempDir(), "mail.db"), Logger: quietLogger()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newTestServer starts a Server with opts (after configure funcs) on
// 127.0.0.1:0 and stops it with the test.
func newTestServer(t testing.TB, configure ...func(*Options)) *testEnv {
	t.Helper()
	st := openStore(t)
	var opts Options
	for _, f := range configure {
		f(&opts)
	}
	srv := New(st, opts, quietLogger())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &testEnv{t: t, st: st, srv: srv, url: "http://" + l.Addr().String()}
}

// ingest stores a simple message through the store's capture path.
func (e *testEnv) ingest(from string, to []string, headers string, body string) string {
	e.t.Helper()
	raw := fmt.Sprintf("From: %s\r\n%sMessage-ID: <%d@test>\r\nDate: Fri, 02 Jan 2026 03:04:05 +0000\r\n\r\n%s\r\n",
		from, headers, time.Now().UnixNano(), body)
	id, err := e.st.Ingest(context.Background(), store.Envelope{From: from, To: to}, []byte(raw))
	if err != nil {
		e.t.Fatalf("ingest: %v", err)
	}
	return id
}

// with returns e reporting to another (sub)test.
func (e *testEnv) with(t testing.TB) *testEnv {
	c := *e
	c.t = t
	return &c
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.status, r.body)
}

// do sends one request; path is below the server root.
func (e *testEnv) do(method, path string, body []byte, contentType string) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return response{res.StatusCode, res.Header, b}
}

// getJSON GETs an API path, expects 200, checks the body against the
// OpenAPI schema named, and decodes it into v.
func (e *testEnv) getJSON(path, schema string, v any) {
	e.t.Helper()
	r := e.do(http.MethodGet, "/api/v1"+path, nil, "")
	if r.status != http.StatusOK {
		e.t.Fatalf("GET %s = %s", path, r)
	}
	checkSchema(e.t, schema, r.body)
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			e.t.Fatalf("GET %s: decode: %v", path, err)
		}
	}
}

// expect sends a request and checks the status; error statuses must carry
// a JSON error body.
func (e *testEnv) expect(method, path string, body []byte, contentType string, status int) response {
	e.t.Helper()
	r := e.do(method, path, body, contentType)
	if r.status != status {
		e.t.Fatalf("%s %s = %s, want %d", method, path, r, status)
	}
	if status >= 400 && method != http.MethodHead {
		checkSchema(e.t, "Error", r.body)
	}
	return r
}

type summaryList struct {
	Total    int           `json:"total"`
	Messages []summaryJSON `json:"messages"`
}

func ids(ms []summaryJSON) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// ---- OpenAPI schema checking: the subset openapi.json uses ----

func openAPIComponents(t testing.TB) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc["components"].(map[string]any)["schemas"].(map[string]any)
}

// checkSchema validates body against components/schemas/<name>.
func checkSchema(t testing.TB, name string, body []byte) {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("response is not JSON (%v): %s", err, body)
	}
	schemas := openAPIComponents(t)
	s, ok := schemas[name]
	if !ok {
		t.Fatalf("openapi.json has no schema %q", name)
	}
	if errs := validate(schemas, s.(map[string]any), v, name, true); len(errs) > 0 {
		t.Fatalf("response does not match schema %s:\n%s\nbody: %.2000s", name, strings.Join(errs, "\n"), body)
	}
}

// validate checks v against s. strict flags properties the schema does not
// name (the members of an allOf are checked together, not each alone).
func validate(schemas map[string]any, s map[string]any, v any, at string, strict bool) []string {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		rs, ok := schemas[name].(map[string]any)
		if !ok {
			return []string{at + ": unknown $ref " + ref}
		}
		return validate(schemas, rs, v, at, strict)
	}
	var errs []string
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			errs = append(errs, validate(schemas, sub.(map[string]any), v, at, false)...)
		}
		if obj, ok := v.(map[string]any); ok && strict {
			known := knownProps(schemas, s)
			for k := range obj {
				if !known[k] {
					errs = append(errs, fmt.Sprintf("%s: property %q is not in the schema", at, k))
				}
			}
		}
	}
	if v == nil {
		if s["nullable"] == true || s["type"] == nil {
			return errs
		}
		return append(errs, at+": null but not nullable")
	}
	typ, _ := s["type"].(string)
	switch typ {
	case "string":
		str, ok := v.(string)
		if !ok {
			return append(errs, fmt.Sprintf("%s: want string, got %T", at, v))
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %q is not RFC 3339", at, str))
			}
		}
		if enum, ok := s["enum"].([]any); ok {
			found := false
			for _, e := range enum {
				found = found || e == str
			}
			if !found {
				errs = append(errs, fmt.Sprintf("%s: %q not in %v", at, str, enum))
			}
		}
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return append(errs, fmt.Sprintf("%s: want integer, got %T", at, v))
		}
		if _, err := n.Int64(); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %s is not an integer", at, n))
		}
	case "number":
		if _, ok := v.(json.Number); !ok {
			return append(errs, fmt.Sprintf("%s: want number, got %T", at, v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return append(errs, fmt.Sprintf("%s: want boolean, got %T", at, v))
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return append(errs, fmt.Sprintf("%s: want array, got %T", at, v))
		}
		if items, ok := s["items"].(map[string]any); ok {
			for i, x := range arr {
				errs = append(errs, validate(schemas, items, x, fmt.Sprintf("%s[%d]", at, i), true)...)
			}
		}
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return append(errs, fmt.Sprintf("%s: want object, got %T", at, v))
		}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					errs = append(errs, fmt.Sprintf("%s: missing required %q", at, r))
				}
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, x := range obj {
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, validate(schemas, ps, x, at+"."+k, true)...)
			} else if ap, ok := s["additionalProperties"].(map[string]any); ok {
				errs = append(errs, validate(schemas, ap, x, at+"."+k, true)...)
			} else if props != nil && strict {
				errs = append(errs, fmt.Sprintf("%s: property %q is not in the schema", at, k))
			}
		}
	}
	return errs
}

func knownProps(schemas map[string]any, s map[string]any) map[string]bool {
	out := map[string]bool{}
	if ref, ok := s["$ref"].(string); ok {
		rs, _ := schemas[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)
		return knownProps(schemas, rs)
	}
	props, _ := s["properties"].(map[string]any)
	for k := range props {
		out[k] = true
	}
	all, _ := s["allOf"].([]any)
	for _, sub := range all {
		for k := range knownProps(schemas, sub.(map[string]any)) {
			out[k] = true
		}
	}
	return out
}
