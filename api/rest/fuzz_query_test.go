package rest

import (
	"bytes"
	"context"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// FuzzQuery sends arbitrary query strings, path segments and bodies to
// the real handler over a real store. Bad input must be a 4xx: the
// handler may never answer 5xx or panic.
//
// Run: go test -run '^$' -fuzz '^FuzzQuery$' -fuzztime 10m ./api/rest/
func FuzzQuery(f *testing.F) {
	seeds := []struct {
		route      uint8
		seg, query string
		body       string
	}{
		{0, "", "to=bob&from=alice&subject=Hi&text=x&limit=10&offset=0", ""},
		{0, "", "since=2026-01-02T03:04:05Z&before=2027-01-01T00:00:00%2B01:00", ""},
		{0, "", "since=yesterday&limit=-1&offset=99999999999999999999", ""},
		{1, "Bob@Example.com", "folder=INBOX&limit=1000&offset=1", ""},
		{1, "%00", "folder=", ""},
		{2, "", "to=bob@example.com&timeout=10ms&count=2", ""},
		{2, "", "timeout=-5&count=0", ""},
		{2, "", "since=2026-01-02T03:04:05Z&timeout=1h&count=99999999999", ""},
		{3, "ID", "", ""},
		{4, "ID", "", ""},
		{5, "ID/parts/2", "", ""},
		{5, "ID/parts/1.2.3.4", "", ""},
		{5, "ID/parts/..%2F", "", ""},
		{6, "ID", "mailbox=bob@example.com", `{"seen":true}`},
		{6, "ID", "", `{"seen":"yes"}`},
		{7, "", "", `{"from":"a@x","to":["b@x"],"subject":"s","text":"t","attachments":[{"filename":"a","content_type":"text/plain","content_base64":"eA=="}]}`},
		{7, "", "", `{"to":[]}`},
		{8, "", "", "From: a@x\r\nTo: b@x\r\n\r\nhi\r\n"},
		{9, "ID", "", `{"to":["x@real.example"]}`},
		{10, "12", "", ""},
		{11, "abc", "", ""},
		{15, "", "", `{"IDs":["ID","nope"]}`},
		{15, "", "", `{"IDs":`},
	}
	for _, s := range seeds {
		f.Add(s.route, s.seg, s.query, []byte(s.body))
	}
	st := openStore(f)
	ctx := context.Background()
	const multipart = "From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: parts\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment; filename=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n"
	seed := func() string {
		id, err := st.Ingest(ctx, store.Envelope{From: "alice@example.com", To: []string{"bob@example.com", "carol@example.com"}}, []byte(multipart))
		if err != nil {
			f.Fatal(err)
		}
		return id
	}
	id := seed()
	srv := New(st, Options{WaitTimeoutMax: 20 * time.Millisecond, MaxMessageBytes: 1 << 20}, quietLogger())
	h := srv.Handler()
	routes := []struct{ method, path string }{
		{"GET", "/api/v1/messages/search"},
		{"GET", "/api/v1/mailboxes/SEG/messages"},
		{"GET", "/api/v1/messages/wait"},
		{"GET", "/api/v1/messages/SEG"},
		{"GET", "/api/v1/messages/SEG/raw"},
		{"GET", "/api/v1/messages/SEG"},
		{"PATCH", "/api/v1/messages/SEG"},
		{"POST", "/api/v1/messages"}, // JSON
		{"POST", "/api/v1/messages"}, // message/rfc822
		{"POST", "/api/v1/messages/SEG/release"},
		{"DELETE", "/api/v1/relay/queue/SEG"},
		{"POST", "/api/v1/relay/queue/SEG/retry"},
		{"GET", "/api/v1/mailboxes"},
		{"DELETE", "/api/v1/messages/SEG"},
		{"DELETE", "/api/v1/mailboxes/SEG"},
		{"DELETE", "/api/v1/messages"}, // all, or Mailpit's {"IDs":[…]}
	}
	f.Fuzz(func(t *testing.T, route uint8, seg, query string, body []byte) {
		r := routes[int(route)%len(routes)]
		seg = strings.ReplaceAll(seg, "ID", id)
		p := strings.ReplaceAll(r.path, "SEG", seg)
		req := httptest.NewRequest(r.method, "/", bytes.NewReader(body))
		u, err := url.Parse("http://sandbox.test" + p)
		if err != nil {
			// The raw path is not a URL a client could send; send it
			// escaped instead.
			u = &url.URL{Scheme: "http", Host: "sandbox.test", Path: p}
		}
		u.RawQuery = query
		req.URL = u
		req.RequestURI = u.RequestURI()
		switch int(route) % len(routes) {
		case 8:
			req.Header.Set("Content-Type", "message/rfc822")
		case 6, 7, 9:
			req.Header.Set("Content-Type", "application/json")
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		req = req.WithContext(rctx)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s?%s (body %q): %d %s", r.method, p, query, body, rec.Code, rec.Body.String())
		}
		// Deletions must not starve later inputs of a message to read.
		if _, err := st.Get(ctx, id); err != nil {
			id = seed()
		}
	})
}
