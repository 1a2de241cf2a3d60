package rest

import (
	"net/http"
	"testing"
)

// HEAD works wherever GET does (RFC 9110 9.3.2; curl -I), without a body,
// and with the headers GET would send.
func TestHeadOnReadRoutes(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: x\r\n", "hi")
	for _, p := range []string{
		"/api/v1/mailboxes", "/api/v1/mailboxes/bob@example.com/messages", "/api/v1/messages/search",
		"/api/v1/messages/" + id, "/api/v1/messages/" + id + "/raw", "/api/v1/messages/" + id + "/parts/1",
		"/api/v1/relay/queue", "/api/v1/openapi.json", "/healthz", "/metrics",
	} {
		get := e.do(http.MethodGet, p, nil, "")
		head := e.do(http.MethodHead, p, nil, "")
		if head.status != http.StatusOK || len(head.body) != 0 {
			t.Errorf("HEAD %s = %d with %d body bytes, want 200 and none", p, head.status, len(head.body))
			continue
		}
		if g, h := get.header.Get("Content-Type"), head.header.Get("Content-Type"); g != h {
			t.Errorf("HEAD %s: content type %q, GET says %q", p, h, g)
		}
	}
	if r := e.do(http.MethodHead, "/api/v1/messages/NOPE", nil, ""); r.status != http.StatusNotFound {
		t.Errorf("HEAD of a missing message = %d", r.status)
	}
}

// Every JSON answer, success or error, has the same Content-Type.
func TestJSONContentTypeConsistent(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	for _, p := range []string{"/api/v1/messages/search", "/api/v1/messages/NOPE", "/nothing", "/healthz"} {
		if ct := e.do(http.MethodGet, p, nil, "").header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q", p, ct)
		}
	}
}
