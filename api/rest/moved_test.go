package rest

import (
	"net/http"
	"slices"
	"testing"
)

// TestSearchMovedBesideWait: native search answers at /messages/search
// (GET and HEAD), and the static segments search and wait win over
// /messages/{id}; GET /messages is no longer native (Mailpit's list takes
// that path when api/mailpit is mounted).
func TestSearchMovedBesideWait(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	a := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: alpha\r\n", "one")
	e.ingest("a@example.com", []string{"carol@example.com"}, "Subject: beta\r\n", "two")

	var l summaryList
	e.getJSON("/messages/search?subject=alpha", "MessageList", &l)
	if l.Total != 1 || !slices.Equal(ids(l.Messages), []string{a}) {
		t.Fatalf("search: %+v", l)
	}
	if r := e.do(http.MethodHead, "/api/v1/messages/search?subject=alpha", nil, ""); r.status != 200 || len(r.body) != 0 {
		t.Fatalf("HEAD search: %s", r)
	}
	// Same parameters, same errors.
	e.expect(http.MethodGet, "/api/v1/messages/search?limit=-1", nil, "", 400)
	r := e.expect(http.MethodGet, "/api/v1/messages/wait?subject=beta&timeout=1s", nil, "", 200)
	checkSchema(t, "WaitResult", r.body)
	// The old native path answers no list any more.
	if r := e.do(http.MethodGet, "/api/v1/messages?subject=alpha", nil, ""); r.status == 200 {
		t.Fatalf("GET /messages still answers natively: %s", r)
	}
	// /messages/{id} still works for real ids.
	e.expect(http.MethodGet, "/api/v1/messages/"+a, nil, "", 200)
}

// TestDeleteMessagesBodies: DELETE /messages without a body deletes all;
// with Mailpit's {"IDs":[…]} only those (unknown ids skipped, as Mailpit
// does); bad JSON is a 400 that deletes nothing. Success is Mailpit's
// 200 text/plain "ok".
func TestDeleteMessagesBodies(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	a := e.ingest("a@example.com", []string{"bob@example.com", "carol@example.com"}, "Subject: a\r\n", "a")
	b := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: b\r\n", "b")
	c := e.ingest("a@example.com", []string{"dan@example.com"}, "Subject: c\r\n", "c")
	total := func() []string {
		var l summaryList
		e.getJSON("/messages/search", "MessageList", &l)
		got := ids(l.Messages)
		slices.Sort(got)
		return got
	}

	for _, bad := range []string{`{"IDs":`, `{"IDs":"x"}`, `[1]`, `{"IDs":[]} {}`} {
		e.expect(http.MethodDelete, "/api/v1/messages", []byte(bad), "application/json", 400)
	}
	if got := total(); len(got) != 3 {
		t.Fatalf("a refused delete deleted something: %v", got)
	}

	r := e.expect(http.MethodDelete, "/api/v1/messages", []byte(`{"IDs":["`+a+`","no-such-id"]}`), "application/json", 200)
	if string(r.body) != "ok" || r.header.Get("Content-Type")[:10] != "text/plain" {
		t.Fatalf("delete IDs answered %q (%s)", r.body, r.header.Get("Content-Type"))
	}
	want := []string{b, c}
	slices.Sort(want)
	if got := total(); !slices.Equal(got, want) {
		t.Fatalf("after deleting %s: %v, want %v", a, got, want)
	}
	// Gone from every mailbox, not just one.
	var l summaryList
	e.getJSON("/mailboxes/carol@example.com/messages", "MessageList", &l)
	if l.Total != 0 {
		t.Fatalf("carol still has %v", ids(l.Messages))
	}

	r = e.expect(http.MethodDelete, "/api/v1/messages", nil, "", 200)
	if string(r.body) != "ok" {
		t.Fatalf("delete all answered %q", r.body)
	}
	if got := total(); len(got) != 0 {
		t.Fatalf("delete all left %v", got)
	}
}
