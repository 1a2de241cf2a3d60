package rest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// loadOpenAPI reads the served openapi.json with kin-openapi and checks it
// is a valid OpenAPI 3 document.
func loadOpenAPI(t *testing.T, e *testEnv) *openapi3.T {
	t.Helper()
	r := e.expect("GET", "/api/v1/openapi.json", nil, "", 200)
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

func TestOpenAPIDocValidates(t *testing.T) {
	t.Parallel()
	loadOpenAPI(t, newTestServer(t))
}

// Every GET route the document lists is called on a server holding a
// multipart message and a relay delivery, and each real response (status,
// headers, body) is validated against the document by kin-openapi.
func TestOpenAPIResponsesMatchDocument(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	doc := loadOpenAPI(t, e)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	raw := "From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nCc: cy@example.com\r\nSubject: openapi\r\n" +
		"Date: Fri, 02 Jan 2026 03:04:05 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment; filename=a.bin\r\n\r\nbinary\r\n--b--\r\n"
	id, err := e.st.Ingest(ctx, store.Envelope{From: "ann@example.com", To: []string{"bob@example.com", "cy@example.com"}}, []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Enqueue(ctx, id, []store.NewDelivery{{Recipients: []string{"x@real.example"}, Destination: "real.example"}}); err != nil {
		t.Fatal(err)
	}
	params := map[string]string{"{id}": id, "{address}": "bob@example.com", "{part}": "2"}
	query := map[string]string{"/messages/wait": "?to=bob@example.com&timeout=1s"}
	var paths []string
	for p := range doc.Paths.Map() {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	checked := 0
	for _, p := range paths {
		get := doc.Paths.Value(p).Get
		if get == nil || p == "/events" { // a stream: its events are read in events tests
			continue
		}
		if _, mounted := get.Extensions["x-mount"]; mounted {
			continue // served through Options.Mounts: the mounting package's tests check it against this document
		}
		path := p
		for k, v := range params {
			path = strings.ReplaceAll(path, k, v)
		}
		if strings.Contains(path, "{") {
			t.Errorf("GET %s: no value for its path parameter in this test", p)
			continue
		}
		url := e.url + "/api/v1" + path + query[p]
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
			continue
		}
		route, pathParams, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("GET %s: not found in the document: %v", path, err)
			continue
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route}
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("GET %s: request does not match the document: %v", path, err)
		}
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Body:    io.NopCloser(bytes.NewReader(body)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		}
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("GET %s: response does not match the document: %v\n%.2000s", path, err, body)
		}
		checked++
	}
	if checked < 8 {
		t.Errorf("validated %d GET routes, want every one the document lists (at least 8)", checked)
	}
}
