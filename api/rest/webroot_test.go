package rest

import (
	"bytes"
	"net/http"
	"net/url"
	"testing"
)

func TestNormalizeWebroot(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "/", "/": "/", "mail": "/mail/", "/mail": "/mail/", "/mail/": "/mail/", " /a/b/ ": "/a/b/"} {
		if got := NormalizeWebroot(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// TestWebroot: everything moves under the prefix, escaped path segments
// included; the bare prefix redirects; the root answers 404.
func TestWebroot(t *testing.T) {
	t.Parallel()
	e := newTestServer(t, func(o *Options) { o.Webroot = "/mail/" })
	e.ingest("a@example.com", []string{"odd/name@example.com"}, "Subject: w\r\n", "x")
	r := e.expect(http.MethodGet, "/mail/api/v1/mailboxes/"+url.PathEscape("odd/name@example.com")+"/messages", nil, "", 200)
	checkSchema(t, "MessageList", r.body)
	if !bytes.Contains(r.body, []byte(`"total":1`)) {
		t.Errorf("escaped mailbox under the webroot: %s", r.body)
	}
	e.expect(http.MethodGet, "/mail/healthz", nil, "", 200)
	e.expect(http.MethodGet, "/healthz", nil, "", 404)
	e.expect(http.MethodGet, "/api/v1/messages/search", nil, "", 404)
	e.expect(http.MethodGet, "/mailx/api/v1/messages/search", nil, "", 404)
	req, _ := http.NewRequest(http.MethodGet, e.url+"/mail?x=1", nil)
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 301 || res.Header.Get("Location") != "/mail/?x=1" {
		t.Errorf("/mail: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
}
