package sdk

// These tests cover what needs no sandbox: helpers on decoded messages,
// query building, error texts, SSE parsing and the dependency promise. The
// client against a real sandbox is tested in sdk/sandboxtest and e2e.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestFilterValues(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))
	tests := []struct {
		name string
		f    Filter
		want string
	}{
		{"empty", Filter{}, ""},
		{"fields", Filter{To: "Bob@Example.com", Subject: "Hi there", Limit: 5, Offset: 10},
			"limit=5&offset=10&subject=Hi+there&to=Bob%40Example.com"},
		{"times", Filter{Since: since}, "since=2026-01-02T02%3A04%3A05.0000006Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.values().Encode(); got != tt.want {
				t.Errorf("values() = %q, want %q", got, tt.want)
			}
		})
	}
	if got := (Filter{To: "bob@example.com", Subject: "Welcome"}).String(); got != `to="bob@example.com" subject="Welcome"` {
		t.Errorf("String() = %s", got)
	}
	if got := (Filter{}).String(); got != "any message" {
		t.Errorf("String() = %s", got)
	}
}

func TestURL(t *testing.T) {
	tests := []struct{ base, path, want string }{
		{"http://127.0.0.1:8025", "/messages", "http://127.0.0.1:8025/api/v1/messages"},
		{"127.0.0.1:8025/", "/messages", "http://127.0.0.1:8025/api/v1/messages"},
		{"https://proxy.example/sandbox/", "//healthz", "https://proxy.example/sandbox/healthz"},
		{"http://h", "/mailboxes/" + esc("a/b+c@x.org") + "/messages", "http://h/api/v1/mailboxes/a%2Fb+c@x.org/messages"},
	}
	for _, tt := range tests {
		if got := New(tt.base).url(tt.path, nil); got != tt.want {
			t.Errorf("New(%q).url(%q) = %q, want %q", tt.base, tt.path, got, tt.want)
		}
	}
}

func TestLinks(t *testing.T) {
	m := &Message{
		Summary: Summary{ID: "m1", Subject: "Welcome"},
		HTML: `<p>Hi <a class="x" href="https://app.example/verify?token=abc&amp;u=1">verify</a>
			<a href='/relative'>r</a> <A HREF=https://app.example/unquoted>u</A></p>`,
		Text: "Verify: https://app.example/verify?token=abc&u=1\nHelp (https://help.example/faq).\n",
	}
	want := []string{
		"https://app.example/verify?token=abc&u=1",
		"/relative",
		"https://app.example/unquoted",
		"https://help.example/faq",
	}
	got := m.Links()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Links() = %q, want %q", got, want)
	}
	l, err := m.FindLink("/verify")
	if err != nil || l != want[0] {
		t.Errorf("FindLink = %q, %v", l, err)
	}
	l, err = m.FindLinkRegexp(`faq$`)
	if err != nil || l != want[3] {
		t.Errorf("FindLinkRegexp = %q, %v", l, err)
	}
	_, err = m.FindLink("/reset")
	if err == nil || !strings.Contains(err.Error(), `"/reset"`) || !strings.Contains(err.Error(), "https://help.example/faq") {
		t.Errorf("FindLink error does not name what was looked for and what exists: %v", err)
	}
}

func TestExtractCode(t *testing.T) {
	m := &Message{
		Summary: Summary{ID: "m1", Subject: "Your code 111111"},
		Text:    "Hello,\nyour code is 482913.\n",
		HTML:    "<p>code <b>777777</b></p>",
	}
	tests := []struct{ pattern, want string }{
		{`\b\d{6}\b`, "482913"},
		{`code is (\d+)`, "482913"},
		{`Your code (\d+)`, "111111"},
		{`(7{6})`, "777777"}, // only in the HTML body, found with tags removed
	}
	for _, tt := range tests {
		got, err := m.ExtractCode(tt.pattern)
		if err != nil || got != tt.want {
			t.Errorf("ExtractCode(%q) = %q, %v; want %q", tt.pattern, got, err, tt.want)
		}
	}
	if _, err := m.ExtractCode(`PIN (\d{4})`); err == nil || !strings.Contains(err.Error(), "PIN") {
		t.Errorf("error does not name the pattern: %v", err)
	}
	if _, err := m.ExtractCode(`(`); err == nil {
		t.Error("bad pattern accepted")
	}
}

func TestAttachmentLookup(t *testing.T) {
	m := &Message{Summary: Summary{ID: "m1"}, Attachments: []Attachment{
		{Part: "2", Filename: "Invoice.pdf", ContentType: "application/pdf"},
		{Part: "3", Filename: "logo.png", ContentID: "<logo@x>", Inline: true},
	}}
	for name, part := range map[string]string{"Invoice.pdf": "2", "invoice.PDF": "2", "3": "3", "logo@x": "3"} {
		a, err := m.Attachment(name)
		if err != nil || a.Part != part {
			t.Errorf("Attachment(%q) = %+v, %v; want part %s", name, a, err, part)
		}
	}
	_, err := m.Attachment("missing.txt")
	if err == nil || !strings.Contains(err.Error(), "Invoice.pdf") {
		t.Errorf("error should list attachments: %v", err)
	}
	if _, err := m.AttachmentBytes(context.Background(), "logo.png"); err == nil {
		t.Error("AttachmentBytes without a client should fail")
	}
}

// TestDecodeContractShapes checks that the JSON shapes written in
// CONTRACT.md decode into the SDK types. It uses a fixed handler only to
// serve those literal documents.
func TestDecodeContractShapes(t *testing.T) {
	const summary = `{"id":"abc","mailboxes":["bob@example.com"],"from":{"name":"Alice","address":"alice@example.com"},
 "to":[{"name":"","address":"bob@example.com"}],"cc":[],"subject":"Hello",
 "date":"2026-01-02T03:04:05Z","received_at":"2026-01-02T03:04:06Z","size":1234,"seen":false,
 "has_attachments":true,"snippet":"first words of the text…"}`
	full := summary[:len(summary)-1] + `,"envelope":{"mail_from":"alice@example.com","rcpt_to":["bob@example.com","carol@example.com"]},
 "bcc":[{"name":"","address":"carol@example.com"}],"message_id":"x@y","headers":{"Subject":["Hello"]},
 "text":"see https://x.example/a","html":"","attachments":[{"part":"2","filename":"a.txt","content_type":"text/plain","size":3,"content_id":"","inline":false}]}`
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/mailboxes", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"mailboxes":[{"address":"bob@example.com","total":2,"unread":1,"latest_at":"2026-01-02T03:04:06Z"}]}`)
	})
	mux.HandleFunc("GET /api/v1/messages/search", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"total":1,"messages":[`+summary+`]}`)
	})
	mux.HandleFunc("GET /api/v1/messages/abc", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, full) })
	mux.HandleFunc("GET /api/v1/messages/abc/parts/2", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Disposition", `attachment; filename="a.txt"`)
		io.WriteString(w, "abc")
	})
	mux.HandleFunc("GET /api/v1/messages/nope", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		io.WriteString(w, `{"error":"message not found"}`)
	})
	mux.HandleFunc("GET /api/v1/relay/queue", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"deliveries":[{"id":"7","message_id":"abc","recipients":["x@real.example"],"destination":"mx.real.example:25","status":"queued","attempts":2,"next_attempt_at":"2026-01-02T03:05:00Z","last_error":"421 busy","created_at":"2026-01-02T03:04:06Z"}]}`)
	})
	mux.HandleFunc("POST /api/v1/messages", func(w http.ResponseWriter, r *http.Request) {
		var req SendRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || string(req.Attachments[0].Content) != "hi" {
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(201)
		io.WriteString(w, `{"id":"new1"}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := New(srv.URL)
	ctx := context.Background()

	mbs, err := c.Mailboxes(ctx)
	if err != nil || len(mbs) != 1 || mbs[0].Unread != 1 || mbs[0].LatestAt.IsZero() {
		t.Fatalf("Mailboxes = %+v, %v", mbs, err)
	}
	list, err := c.Search(ctx, Filter{To: "bob"})
	if err != nil || list.Total != 1 || list.Messages[0].From.Name != "Alice" || !list.Messages[0].HasAttachments {
		t.Fatalf("Search = %+v, %v", list, err)
	}
	m, err := c.Get(ctx, "abc")
	if err != nil {
		t.Fatal(err)
	}
	if m.Envelope.RcptTo[1] != "carol@example.com" || m.Bcc[0].Address != "carol@example.com" || m.Header("subject") != "Hello" {
		t.Errorf("Get = %+v", m)
	}
	b, err := m.AttachmentBytes(ctx, "a.txt")
	if err != nil || string(b) != "abc" {
		t.Errorf("AttachmentBytes = %q, %v", b, err)
	}
	p, err := c.Part(ctx, "abc", "2")
	if err != nil || p.Filename != "a.txt" || p.ContentType != "text/plain" {
		t.Errorf("Part = %+v, %v", p, err)
	}
	_, err = c.Get(ctx, "nope")
	if !errors.Is(err, ErrNotFound) || StatusCode(err) != 404 || !strings.Contains(err.Error(), "message not found") || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Get(nope) error = %v", err)
	}
	q, err := c.RelayQueue(ctx)
	if err != nil || len(q) != 1 || q[0].Attempts != 2 || q[0].Status != "queued" || q[0].ID != "7" || q[0].NextAttemptAt.IsZero() {
		t.Errorf("RelayQueue = %+v, %v", q, err)
	}
	id, err := c.Send(ctx, SendRequest{From: "a@x", To: []string{"b@x"}, Subject: "s", Attachments: []SendAttachment{{Filename: "a.txt", Content: []byte("hi")}}})
	if err != nil || id != "new1" {
		t.Errorf("Send = %q, %v", id, err)
	}
}

func TestEventStream(t *testing.T) {
	const stream = ": keep-alive\n\nevent: message\nid: 1\ndata: {\"id\":\"a\",\ndata: \"subject\":\"x\"}\n\nevent: deleted\r\ndata: {\"id\":\"a\"}\r\n\r\ndata: plain\n\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, stream)
	}))
	defer srv.Close()
	es, err := New(srv.URL).Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	ev, err := es.Next()
	if err != nil || ev.Type != "message" || ev.ID != "1" {
		t.Fatalf("first = %+v, %v", ev, err)
	}
	var s Summary
	if err := ev.Decode(&s); err != nil || s.ID != "a" || s.Subject != "x" {
		t.Fatalf("decode = %+v, %v", s, err)
	}
	if ev, err = es.Next(); err != nil || ev.Type != "deleted" || string(ev.Data) != `{"id":"a"}` {
		t.Fatalf("second = %+v, %v", ev, err)
	}
	if ev, err = es.Next(); err != nil || ev.Type != "message" || string(ev.Data) != "plain" {
		t.Fatalf("third = %+v, %v", ev, err)
	}
	if _, err = es.Next(); err != io.EOF {
		t.Fatalf("end = %v, want EOF", err)
	}
}

// TestNoServerDeps keeps the promise that importing sdk pulls in none of
// the server's packages (no SQLite, no SMTP server).
func TestNoServerDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, ".") && !strings.HasPrefix(dep, "vendor/") && dep != "github.com/mailsandbox/mailsandbox/sdk" {
			if !strings.HasPrefix(dep, "crypto/internal/") {
				t.Errorf("sdk depends on %s; it must stay standard-library only", dep)
			}
		}
	}
}

// TestWaitRepeatsAfter408 checks the long-poll loop: the server's 408 while
// the caller's context is alive means "ask again", and each request's
// timeout stays inside the caller's deadline.
func TestWaitRepeatsAfter408(t *testing.T) {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/messages/wait":
			calls++
			d, err := time.ParseDuration(r.URL.Query().Get("timeout"))
			if err != nil || d <= 0 || d > 5*time.Second || r.URL.Query().Get("count") != "1" || r.URL.Query().Get("to") != "bob@example.com" {
				w.WriteHeader(400)
				fmt.Fprintf(w, `{"error":"bad query %s"}`, r.URL.RawQuery)
				return
			}
			if calls < 3 {
				w.WriteHeader(http.StatusRequestTimeout)
				io.WriteString(w, `{"error":"timeout"}`)
				return
			}
			io.WriteString(w, `{"messages":[{"id":"m1","subject":"Welcome"}]}`)
		case "/api/v1/messages/m1":
			io.WriteString(w, `{"id":"m1","subject":"Welcome","text":"hi"}`)
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := New(srv.URL).Wait(ctx, Filter{To: "bob@example.com"})
	if err != nil || m.ID != "m1" || m.Text != "hi" || calls != 3 {
		t.Fatalf("Wait = %+v, %v after %d calls", m, err, calls)
	}
}
