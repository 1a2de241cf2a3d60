package mailpit_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mailsandbox/mailsandbox/api/mailpit"
	"github.com/mailsandbox/mailsandbox/api/rest"
	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
	"github.com/mailsandbox/mailsandbox/sdk"
	"github.com/mailsandbox/mailsandbox/sdk/sandboxtest"
)

type api struct {
	t    *testing.T
	base string
}

func (a api) call(method, path, body string) (int, string, string) {
	a.t.Helper()
	c := &collector{t: a.t, base: a.base}
	code, h, b := c.do(method, path, body)
	return code, h.Get("Content-Type"), string(b)
}

func (a api) list(query string) (l struct {
	Total          int `json:"total"`
	Unread         int `json:"unread"`
	MessagesCount  int `json:"messages_count"`
	MessagesUnread int `json:"messages_unread"`
	Messages       []struct {
		ID   string
		Read bool
		Bcc  []struct{ Address string }
	} `json:"messages"`
}) {
	a.t.Helper()
	path := "/api/v1/messages"
	if query != "" {
		path = "/api/v1/search?query=" + url.QueryEscape(query)
	}
	code, _, b := a.call("GET", path, "")
	if code != 200 {
		a.t.Fatalf("GET %s: %d %s", path, code, b)
	}
	json.Unmarshal([]byte(b), &l)
	return l
}

// onBackends runs fn against a sandbox on SQLite and on PostgreSQL (the
// latter skips, saying so, without MAILSANDBOX_TEST_PG).
// fn calls db for each sandbox it starts: a fresh database each time, so
// all run in parallel.
func onBackends(t *testing.T, fn func(t *testing.T, db func() []sandboxtest.Option)) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, func() []sandboxtest.Option { return nil })
	})
	t.Run("postgres", func(t *testing.T) {
		storetest.RequirePostgres(t)
		t.Parallel()
		fn(t, func() []sandboxtest.Option { return []sandboxtest.Option{sandboxtest.WithDB(storetest.PostgresDSN(t))} })
	})
}

// TestMessageLevelView: one summary per stored message whatever its
// recipients; Read only when every copy is seen; reading, marking and
// deleting through Mailpit's API act on every copy.
func TestMessageLevelView(t *testing.T) { onBackends(t, testMessageLevelView) }

func testMessageLevelView(t *testing.T, db func() []sandboxtest.Option) {
	sb := sandboxtest.New(t, db()...)
	a := api{t, sb.URL()}
	ctx := context.Background()
	id, _ := smtpSend(t, sb.SMTPAddr(), corpusMsg{name: "x", from: "s@example.test", to: []string{"ann@example.test", "bob@example.test", "hid@example.test"},
		raw: []byte("From: s@example.test\r\nTo: ann@example.test, bob@example.test\r\nSubject: Copies\r\n\r\nthree copies\r\n")})
	l := a.list("")
	if l.Total != 1 || len(l.Messages) != 1 || l.Messages[0].ID != id || len(l.Messages[0].Bcc) != 1 || l.Messages[0].Bcc[0].Address != "hid@example.test" {
		t.Fatalf("list: %+v", l)
	}
	// One copy seen (natively): still unread at the message level.
	if err := sb.Client().MarkSeenIn(ctx, id, "ann@example.test", true); err != nil {
		t.Fatal(err)
	}
	if l := a.list("is:unread"); l.MessagesCount != 1 || l.Messages[0].Read {
		t.Errorf("one copy of three seen: %+v", l)
	}
	unreadCopies := func() int {
		mbs, err := sb.Client().Mailboxes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mb := range mbs {
			n += mb.Unread
		}
		return n
	}
	if code, _, _ := a.call("GET", "/api/v1/message/"+id, ""); code != 200 {
		t.Fatalf("read: %d", code)
	}
	if n := unreadCopies(); n != 0 {
		t.Errorf("after reading through Mailpit's API: %d unread copies", n)
	}
	if l := a.list(""); l.Unread != 0 || !l.Messages[0].Read {
		t.Errorf("after reading: %+v", l)
	}
	if code, ct, body := a.call("PUT", "/api/v1/messages", `{"IDs":["`+id+`"],"Read":false}`); code != 200 || ct != "text/plain" || body != "ok" {
		t.Errorf("PUT: %d %q %q", code, ct, body)
	}
	if n := unreadCopies(); n != 3 {
		t.Errorf("after marking unread: %d unread copies, want 3", n)
	}
	if code, _, body := a.call("DELETE", "/api/v1/search?query="+url.QueryEscape("subject:copies"), ""); code != 200 || body != "ok" {
		t.Errorf("DELETE search: %d %q", code, body)
	}
	if mbs, _ := sb.Client().Mailboxes(ctx); len(mbs) != 3 || mbs[0].Total+mbs[1].Total+mbs[2].Total != 0 {
		t.Errorf("after deleting through Mailpit's API: %+v", mbs)
	}
}

// TestRefusedRequestsChangeNothing: bad input gets Mailpit's status and a
// plain reason, never a 500, and the store is as it was.
func TestRefusedRequestsChangeNothing(t *testing.T) { onBackends(t, testRefusedRequestsChangeNothing) }

func testRefusedRequestsChangeNothing(t *testing.T, db func() []sandboxtest.Option) {
	sb := sandboxtest.New(t, append(db(), sandboxtest.WithConfig(func(c *sandbox.Config) { c.MaxMessageBytes = 64 << 10 }))...)
	a := api{t, sb.URL()}
	for i := 0; i < 3; i++ {
		smtpSend(t, sb.SMTPAddr(), corpusMsg{name: "x", from: "s@example.test", to: []string{"ann@example.test"},
			raw: []byte("From: s@example.test\r\nTo: ann@example.test\r\nSubject: Keep me\r\n\r\nkeep\r\n")})
	}
	before := a.list("")
	big := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), 100<<10))
	for _, tc := range []struct {
		method, path, body string
		code               int
	}{
		{"PUT", "/api/v1/messages", `{"IDs":["x"],"Search":"keep","Read":true}`, 400},
		{"PUT", "/api/v1/messages", `{"Read":true`, 400},
		{"PUT", "/api/v1/messages", `{"Read":true}{"Read":false}`, 400},
		{"PUT", "/api/v1/messages", `{"Search":"before:someday","Read":true}`, 400},
		{"DELETE", "/api/v1/search?query=" + url.QueryEscape("keep before:someday"), "", 400},
		{"DELETE", "/api/v1/search?query=keep&tz=Nowhere/Atlantis", "", 400},
		{"DELETE", "/api/v1/search?query=" + url.QueryEscape(strings.Repeat("keep ", 1000)), "", 400},
		{"DELETE", "/api/v1/search", "", 400},
		{"GET", "/api/v1/search?query=" + url.QueryEscape("after:2026-99-99"), "", 400},
		{"GET", "/api/v1/messages?before=yesterday", "", 400},
		{"POST", "/api/v1/send", `{"From":{"Email":"a@example.test"},"To":[{"Email":"b@example.test"}],"Attachments":[{"Content":"` + big + `","Filename":"big.bin"}]}`, 413},
		{"POST", "/api/v1/send", `{"From":{"Email":"not an address"},"To":[{"Email":"b@example.test"}]}`, 400},
		{"POST", "/api/v1/send", `{"From":{"Email":"a@example.test"},"To":[{"Email":"b@example.test"}],"Headers":{"X-Bad":"a\r\nBcc: evil@example.test"}}`, 400},
		{"POST", "/api/v1/send", `{"From":{"Email":"a@example.test"},"To":[{"Email":"b@example.test"}],"Attachments":[{"Content":"!!","Filename":"a"}]}`, 400},
		{"POST", "/api/v1/message/latest/release", `{"To":[]}`, 400},
	} {
		code, ct, body := a.call(tc.method, tc.path, tc.body)
		if code != tc.code || strings.TrimSpace(body) == "" || !strings.HasPrefix(ct, "text/plain") && !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %.60s %.60s: %d %q %q, want %d with a reason", tc.method, tc.path, tc.body, code, ct, body, tc.code)
		}
		if after := a.list(""); after.Total != before.Total || after.Unread != before.Unread {
			t.Errorf("%s %.60s changed the store: %+v → %+v", tc.method, tc.path, before, after)
		}
	}
}

// TestEvents: the /api/events WebSocket sends Mailpit's frames for what
// the store does.
func TestEvents(t *testing.T) { onBackends(t, testEvents) }

func testEvents(t *testing.T, db func() []sandboxtest.Option) {
	sb := sandboxtest.New(t, db()...)
	a := api{t, sb.URL()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(sb.URL(), "http")+"/api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	next := func(want string) map[string]any {
		t.Helper()
		for {
			_, b, err := conn.Read(ctx)
			if err != nil {
				t.Fatalf("waiting for %s: %v", want, err)
			}
			var f struct {
				Type string
				Data map[string]any
			}
			if err := json.Unmarshal(b, &f); err != nil {
				t.Fatalf("frame %s: %v", b, err)
			}
			if f.Type == want {
				return f.Data
			}
			if f.Type != "stats" {
				t.Fatalf("got frame %s while waiting for %s", b, want)
			}
		}
	}
	// The stream is live once a stats frame follows a change; send until
	// the first message is seen (the subscription may start just after).
	id, _ := smtpSend(t, sb.SMTPAddr(), corpusMsg{name: "x", from: "s@example.test", to: []string{"ann@example.test", "bob@example.test"},
		raw: []byte("From: s@example.test\r\nTo: ann@example.test\r\nSubject: Event\r\n\r\nhi\r\n")})
	if d := next("new"); d["ID"] != id || d["Subject"] != "Event" || d["Read"] != false {
		t.Errorf("new frame: %v", d)
	}
	if d := next("stats"); d["Total"] != float64(1) || d["Unread"] != float64(1) {
		t.Errorf("stats frame: %v", d)
	}
	a.call("GET", "/api/v1/message/"+id, "")
	if d := next("update"); d["ID"] != id || d["Read"] != true {
		t.Errorf("update frame: %v", d)
	}
	// Tags change: Mailpit's update frame carries them.
	if code, _, body := a.call("PUT", "/api/v1/tags", fmt.Sprintf(`{"IDs":[%q],"Tags":["Ev-Tag","b/c"]}`, id)); code != 200 {
		t.Fatalf("set tags: %d %s", code, body)
	}
	if d := next("update"); d["ID"] != id || fmt.Sprint(d["Tags"]) != "[b c Ev-Tag]" {
		t.Errorf("tags update frame: %v", d)
	}
	a.call("DELETE", "/api/v1/search?query=event", "")
	if d := next("delete"); d["ID"] != id {
		t.Errorf("delete frame: %v", d)
	}
	if code, _, _ := a.call("DELETE", "/api/v1/messages", ""); code >= 300 {
		t.Fatalf("delete all: %d", code)
	}
}

// TestHealth: /livez and /readyz answer 200 on the HTTP listener.
func TestHealth(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.New(t)
	for _, p := range []string{"/livez", "/readyz"} {
		res, err := http.Get(sb.URL() + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("%s: %d", p, res.StatusCode)
		}
	}
}

// TestRelease: POST /api/v1/message/{ID}/release puts the message on the
// relay queue, which delivers it (here to a second sandbox as smarthost).
func TestRelease(t *testing.T) {
	t.Parallel()
	dest := sandboxtest.New(t)
	sb := sandboxtest.New(t, sandboxtest.WithConfig(func(c *sandbox.Config) { c.Relay.Smarthost = dest.SMTPAddr() }))
	a := api{t, sb.URL()}
	id, _ := smtpSend(t, sb.SMTPAddr(), corpusMsg{name: "x", from: "s@example.test", to: []string{"ann@example.test"},
		raw: []byte("From: s@example.test\r\nTo: ann@example.test\r\nSubject: Release me\r\n\r\nhi\r\n")})
	if code, ct, body := a.call("POST", "/api/v1/message/"+id+"/release", `{"To":["out@example.test"]}`); code != 200 || ct != "text/plain" || body != "ok" {
		t.Fatalf("release: %d %q %q", code, ct, body)
	}
	if code, _, _ := a.call("POST", "/api/v1/message/ZZZZ/release", `{"To":["out@example.test"]}`); code != 404 {
		t.Errorf("release of an unknown message: %d, want 404", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := dest.Client().Search(ctx, sdkFilter("out@example.test"))
	for err == nil && got.Total == 0 && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		got, err = dest.Client().Search(ctx, sdkFilter("out@example.test"))
	}
	if err != nil || got.Total != 1 || got.Messages[0].Subject != "Release me" {
		t.Fatalf("relayed: %+v %v", got, err)
	}
}

func sdkFilter(to string) sdk.Filter { return sdk.Filter{To: to} }

// TestViewHTML: /view/{ID}.html points cid: images at their parts, runs
// no script (CSP), and with ?embed=1 opens links outside the frame.
func TestViewHTML(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.New(t)
	a := api{t, sb.URL()}
	var img corpusMsg
	for _, m := range loadCorpus(t) {
		if m.name == "inline-image.eml" {
			img = m
		}
	}
	id, _ := smtpSend(t, sb.SMTPAddr(), img)
	c := &collector{t: t, base: sb.URL()}
	code, h, body := c.do("GET", "/view/latest.html", "")
	part := "/api/v1/message/" + id + "/part/2"
	if code != 200 || !strings.Contains(string(body), `src="`+part+`"`) || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("view: %d %q %s", code, h.Get("Content-Security-Policy"), body)
	}
	if _, _, body := a.call("GET", "/view/"+id+".html?embed=1", ""); !strings.Contains(body, `<base target="_blank">`) {
		t.Errorf("embed: %s", body)
	}
	if code, ct, _ := a.call("GET", part, ""); code != 200 || ct != "image/png" {
		t.Errorf("part: %d %q", code, ct)
	}
	if code, ct, body := a.call("GET", "/view/"+id+".txt", ""); code != 200 || !strings.HasPrefix(ct, "text/plain") || body != "Look:" {
		t.Errorf("txt: %d %q %q", code, ct, body)
	}
}

// TestEventsOutliveWriteTimeout: the HTTP server's per-response write
// deadline does not cut the /api/events stream (net/http clears a
// connection's deadlines when the WebSocket hijacks it): a frame sent
// after the deadline still arrives. Not parallel: its upgrade must fit in
// a 200 ms write deadline.
func TestEventsOutliveWriteTimeout(t *testing.T) {
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(t.TempDir(), "m.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mp := mailpit.New(st, mailpit.Options{}, nil)
	srv := rest.New(st, rest.Options{WriteTimeout: 200 * time.Millisecond, Mounts: []rest.Mount{{Paths: mp.Paths(), Register: mp.Register}}}, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+l.Addr().String()+"/api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	time.Sleep(500 * time.Millisecond) // past the write deadline: what is being shown is that it no longer applies
	if _, err := st.Ingest(ctx, store.Envelope{From: "a@example.test", To: []string{"b@example.test"}}, []byte("Subject: late\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("stream cut after the write timeout: %v", err)
		}
		if strings.Contains(string(b), `"Type":"new"`) {
			return
		}
	}
}
