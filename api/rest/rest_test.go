package rest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

func TestThreeMailboxCopiesSeenAndDelete(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	id := e.ingest("alice@example.com", []string{"Bob@Example.COM", "carol@example.com", "dave@example.com"},
		"To: Bob <bob@example.com>\r\nCc: carol@example.com\r\nSubject: Hello three\r\n", "Hi all")

	var mbs struct {
		Mailboxes []mailboxJSON `json:"mailboxes"`
	}
	e.getJSON("/mailboxes", "MailboxList", &mbs)
	var names []string
	for _, mb := range mbs.Mailboxes {
		names = append(names, mb.Address)
		if mb.Total != 1 || mb.Unread != 1 || mb.LatestAt == nil {
			t.Errorf("mailbox %+v", mb)
		}
	}
	if want := []string{"bob@example.com", "carol@example.com", "dave@example.com"}; !slices.Equal(names, want) {
		t.Fatalf("mailboxes = %v, want %v", names, want)
	}
	for _, mb := range names {
		var l summaryList
		e.getJSON("/mailboxes/"+url.PathEscape(mb)+"/messages", "MessageList", &l)
		if l.Total != 1 || len(l.Messages) != 1 || l.Messages[0].ID != id || l.Messages[0].Seen {
			t.Fatalf("%s: %+v", mb, l)
		}
	}

	// Seen per mailbox.
	e.expect(http.MethodPatch, "/api/v1/messages/"+id+"?mailbox=BOB@example.com", []byte(`{"seen":true}`), "application/json", 204)
	seenIn := func(mb string) bool {
		var l summaryList
		e.getJSON("/mailboxes/"+mb+"/messages?folder=INBOX", "MessageList", &l)
		return l.Messages[0].Seen
	}
	if !seenIn("bob@example.com") || seenIn("carol@example.com") || seenIn("dave@example.com") {
		t.Fatal("seen state leaked between mailboxes")
	}
	var all summaryList
	e.getJSON("/messages/search", "MessageList", &all)
	if all.Messages[0].Seen {
		t.Fatal("across all mail, seen must need every copy seen")
	}
	e.expect(http.MethodPatch, "/api/v1/messages/"+id, []byte(`{"seen":true}`), "application/json", 204)
	e.getJSON("/messages/search", "MessageList", &all)
	if !all.Messages[0].Seen || !seenIn("dave@example.com") {
		t.Fatal("seen without mailbox must mark every copy")
	}

	// The whole message: bcc is the envelope recipient not in To/Cc.
	var m messageJSON
	e.getJSON("/messages/"+id, "Message", &m)
	if len(m.Bcc) != 1 || m.Bcc[0].Address != "dave@example.com" {
		t.Errorf("bcc = %+v", m.Bcc)
	}
	if m.Envelope.MailFrom != "alice@example.com" || len(m.Envelope.RcptTo) != 3 || m.Subject != "Hello three" || m.Text != "Hi all\r\n" {
		t.Errorf("message = %+v", m)
	}
	if m.Date == nil || m.Date.Format(time.RFC3339) != "2026-01-02T03:04:05Z" || !strings.HasSuffix(m.MessageID, "@test") {
		t.Errorf("date %v message_id %q", m.Date, m.MessageID)
	}

	// Deleting one mailbox leaves the other copies.
	e.expect(http.MethodDelete, "/api/v1/mailboxes/carol@example.com", nil, "", 204)
	e.getJSON("/messages/"+id, "Message", &m)
	if !slices.Equal(m.Mailboxes, []string{"bob@example.com", "dave@example.com"}) {
		t.Fatalf("mailboxes after delete = %v", m.Mailboxes)
	}
	var l summaryList
	e.getJSON("/mailboxes/carol@example.com/messages", "MessageList", &l)
	if l.Total != 0 || len(l.Messages) != 0 {
		t.Fatalf("deleted mailbox still lists %+v", l)
	}
	e.expect(http.MethodDelete, "/api/v1/mailboxes/carol@example.com", nil, "", 204) // already empty: still fine

	// Deleting the message removes it everywhere.
	e.expect(http.MethodDelete, "/api/v1/messages/"+id, nil, "", 200)
	e.expect(http.MethodGet, "/api/v1/messages/"+id, nil, "", 404)
	e.expect(http.MethodGet, "/api/v1/messages/"+id+"/raw", nil, "", 404)
	e.getJSON("/messages/search", "MessageList", &all)
	if all.Total != 0 {
		t.Fatalf("after delete: %+v", all)
	}
}

// Addresses may hold characters that need escaping in a path.
func TestOddMailboxNames(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	for _, addr := range []string{"a/b+c@x.org", "Dots.And+Plus@Example.ORG", "percent%41@x.org", "sp ace@x.org"} {
		id := e.ingest("a@example.com", []string{addr}, "Subject: odd\r\n", "x")
		var l summaryList
		e.getJSON("/mailboxes/"+url.PathEscape(addr)+"/messages", "MessageList", &l)
		if l.Total != 1 || l.Messages[0].ID != id || l.Messages[0].Mailboxes[0] != store.NormalizeAddress(addr) {
			t.Fatalf("%s: %+v", addr, l)
		}
		e.expect(http.MethodDelete, "/api/v1/mailboxes/"+url.PathEscape(addr), nil, "", 204)
		e.getJSON("/mailboxes/"+url.PathEscape(addr)+"/messages", "MessageList", &l)
		if l.Total != 0 {
			t.Fatalf("%s after delete: %+v", addr, l)
		}
	}
}

func TestSearchFilters(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	a := e.ingest("alice@example.com", []string{"bob@example.com"}, "To: bob@example.com\r\nSubject: Reset your password\r\n", "Click the LINK below")
	b := e.ingest("Carol Smith <carol@shop.example>", []string{"dave@example.com", "erin@example.com"}, "To: Dave <dave@example.com>\r\nCc: Erin Jones <erin@example.com>\r\nSubject: Your order\r\n", "Thanks for shopping")
	c := e.ingest("alice@example.com", []string{"hidden@example.com"}, "To: list@example.com\r\nSubject: Newsletter 100%_off\r\n", "Deals inside")

	var got summaryList
	e.getJSON("/messages/"+c, "Message", nil)
	var mc messageJSON
	e.getJSON("/messages/"+c, "Message", &mc)
	received := mc.ReceivedAt

	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{c, b, a}},
		{"to=BOB@", []string{a}},
		{"to=erin+jones", []string{b}},             // To/Cc display name
		{"to=hidden@example.com", []string{c}},     // envelope only (Bcc)
		{"to=list@example.com", []string{c}},       // header only
		{"from=ALICE", []string{c, a}},             // from address
		{"from=carol+smith", []string{b}},          // from name
		{"subject=password", []string{a}},          // subject
		{"subject=100%25_off", []string{c}},        // LIKE metacharacters are literal
		{"subject=100%25x", nil},                   //
		{"text=link+below", []string{a}},           // body text
		{"text=newsletter", []string{c}},           // text also matches subject
		{"mailbox=Dave@Example.com", []string{b}},  // mailbox
		{"mailbox=nobody@example.com", nil},        // unknown mailbox: empty
		{"from=alice&subject=reset", []string{a}},  // combined
		{"to=example.com&text=deals", []string{c}}, // combined
		{"since=" + url.QueryEscape(received.Format(time.RFC3339Nano)), []string{c}},
		{"before=" + url.QueryEscape(received.Format(time.RFC3339Nano)), []string{b, a}},
		{"since=2000-01-01T00:00:00Z&before=2001-01-01T00:00:00Z", nil},
		{"since=" + strings.ReplaceAll(received.In(time.FixedZone("x", 3600)).Format(time.RFC3339Nano), "+", "%2B"), []string{c}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			e.with(t).getJSON("/messages/search?"+tt.query, "MessageList", &got)
			want := tt.want
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(ids(got.Messages), want) || got.Total != len(want) {
				t.Fatalf("got %v (total %d), want %v", ids(got.Messages), got.Total, want)
			}
		})
	}
	// The mailbox listing takes the same filters.
	e.getJSON("/mailboxes/erin@example.com/messages?subject=order", "MessageList", &got)
	if !slices.Equal(ids(got.Messages), []string{b}) {
		t.Fatalf("mailbox listing with filter = %v", ids(got.Messages))
	}
}

func TestPaging(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	var all []string
	for i := 0; i < 7; i++ {
		all = append(all, e.ingest("a@example.com", []string{"p@example.com"}, fmt.Sprintf("Subject: m%d\r\n", i), "x"))
	}
	slices.Reverse(all) // newest first
	tests := []struct {
		query string
		want  []string
	}{
		{"limit=3", all[:3]},
		{"limit=3&offset=3", all[3:6]},
		{"limit=3&offset=6", all[6:]},
		{"limit=3&offset=7", nil},
		{"offset=100", nil},
		{"limit=0", all},      // 0: the default page
		{"limit=100000", all}, // capped, not refused
		{"limit=99999999999999999999", all},
		{"offset=1", all[1:]},
	}
	for _, base := range []string{"/messages/search?", "/mailboxes/p@example.com/messages?"} {
		for _, tt := range tests {
			t.Run(base+tt.query, func(t *testing.T) {
				var got summaryList
				e.with(t).getJSON(base+tt.query, "MessageList", &got)
				want := tt.want
				if want == nil {
					want = []string{}
				}
				if got.Total != 7 || !slices.Equal(ids(got.Messages), want) {
					t.Fatalf("total %d, got %v, want %v", got.Total, ids(got.Messages), want)
				}
			})
		}
	}
}

// startWait runs GET /messages/wait in the background and returns once the
// server is waiting on events (or already answered).
func (e *testEnv) startWait(t *testing.T, query string) <-chan response {
	t.Helper()
	waiting := make(chan struct{}, 1)
	e.srv.waitingHook = func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	}
	out := make(chan response, 1)
	go func() {
		out <- e.do(http.MethodGet, "/api/v1/messages/wait?"+query, nil, "")
	}()
	select {
	case <-waiting:
	case r := <-out:
		out <- r
	case <-time.After(10 * time.Second):
		t.Fatal("wait request did not start waiting")
	}
	return out
}

func waitResult(t *testing.T, ch <-chan response) []summaryJSON {
	t.Helper()
	select {
	case r := <-ch:
		if r.status != 200 {
			t.Fatalf("wait = %s", r)
		}
		checkSchema(t, "WaitResult", r.body)
		var out struct {
			Messages []summaryJSON `json:"messages"`
		}
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		return out.Messages
	case <-time.After(20 * time.Second):
		t.Fatal("wait did not answer")
	}
	return nil
}

func TestWait(t *testing.T) {
	t.Parallel()
	t.Run("stored", func(t *testing.T) {
		e := newTestServer(t)
		id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: Welcome Bob\r\n", "hi")
		r := e.expect(http.MethodGet, "/api/v1/messages/wait?to=bob@&subject=welcome", nil, "", 200)
		checkSchema(t, "WaitResult", r.body)
		if !strings.Contains(string(r.body), id) {
			t.Fatalf("wait = %s", r)
		}
	})
	t.Run("later", func(t *testing.T) {
		e := newTestServer(t)
		e.ingest("a@example.com", []string{"other@example.com"}, "Subject: Welcome\r\n", "hi")
		ch := e.startWait(t, "to=bob@example.com&subject=welcome&timeout=20s")
		e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: Not it\r\n", "hi")
		id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: Welcome Bob\r\n", "hi")
		got := waitResult(t, ch)
		if len(got) != 1 || got[0].ID != id {
			t.Fatalf("wait = %+v, want %s", got, id)
		}
	})
	t.Run("count=3", func(t *testing.T) {
		e := newTestServer(t)
		first := e.ingest("a@example.com", []string{"c@example.com"}, "Subject: batch\r\n", "1")
		ch := e.startWait(t, "mailbox=c@example.com&count=3&timeout=20s")
		second := e.ingest("a@example.com", []string{"c@example.com"}, "Subject: batch\r\n", "2")
		e.ingest("a@example.com", []string{"d@example.com"}, "Subject: batch\r\n", "elsewhere")
		third := e.ingest("a@example.com", []string{"c@example.com"}, "Subject: batch\r\n", "3")
		got := waitResult(t, ch)
		if want := []string{third, second, first}; !slices.Equal(ids(got), want) {
			t.Fatalf("wait = %v, want newest first %v", ids(got), want)
		}
	})
	t.Run("mailbox and subject", func(t *testing.T) {
		e := newTestServer(t)
		ch := e.startWait(t, "mailbox=Bob@Example.com&subject=code&timeout=20s")
		e.ingest("a@example.com", []string{"carol@example.com"}, "Subject: Your code\r\n", "elsewhere")
		e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: Welcome\r\n", "not this")
		id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: Your CODE is 1234\r\n", "hi")
		if got := waitResult(t, ch); len(got) != 1 || got[0].ID != id {
			t.Fatalf("wait = %+v, want %s", got, id)
		}
	})
	t.Run("since", func(t *testing.T) {
		e := newTestServer(t)
		e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: old\r\n", "hi")
		var l summaryList
		e.getJSON("/messages/search", "MessageList", &l)
		since := l.Messages[0].ReceivedAt.Add(time.Microsecond).Format(time.RFC3339Nano)
		ch := e.startWait(t, "to=bob@example.com&since="+url.QueryEscape(since)+"&timeout=20s")
		id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: new\r\n", "hi")
		if got := waitResult(t, ch); len(got) != 1 || got[0].ID != id {
			t.Fatalf("wait = %+v, want %s", got, id)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		e := newTestServer(t)
		e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: x\r\n", "hi")
		r := e.expect(http.MethodGet, "/api/v1/messages/wait?to=nobody@&timeout=50ms", nil, "", 408)
		if !strings.Contains(string(r.body), "within 50ms") {
			t.Fatalf("408 body %s", r.body)
		}
		r = e.expect(http.MethodGet, "/api/v1/messages/wait?mailbox=bob@example.com&count=2&timeout=0.05", nil, "", 408)
		if !strings.Contains(string(r.body), "1 found") {
			t.Fatalf("408 body %s", r.body)
		}
	})
	t.Run("client goes away", func(t *testing.T) {
		e := newTestServer(t)
		waiting := make(chan struct{}, 1)
		e.srv.waitingHook = func() { waiting <- struct{}{} }
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/api/v1/messages/wait?to=x@&timeout=1m", nil)
		done := make(chan error, 1)
		go func() {
			_, err := http.DefaultClient.Do(req)
			done <- err
		}()
		<-waiting
		cancel()
		<-done
		// The handler notices and ends: the server shuts down promptly (the
		// cleanup's Shutdown would otherwise wait for it).
	})
}

func TestEventsStream(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	type sse struct{ event, data string }
	events := make(chan sse, 16)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(res.Body)
		var cur sse
		first := true
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if first {
					close(ready)
					first = false
				}
				if cur.event != "" {
					events <- cur
				}
				cur = sse{}
			case strings.HasPrefix(line, "event: "):
				cur.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				cur.data = strings.TrimPrefix(line, "data: ")
			}
		}
		close(events)
	}()
	<-ready // the server has subscribed before it sent its greeting
	// next returns the next event other than the "new entry" flags events
	// the store sends for IMAP after each ingest (they carry no message id).
	next := func() sse {
		t.Helper()
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatal("stream ended")
				}
				if ev.event == "flags" && strings.Contains(ev.data, `"id":""`) {
					continue
				}
				return ev
			case <-time.After(10 * time.Second):
				t.Fatal("no event")
			}
		}
	}
	var sent []string
	for i := 0; i < 3; i++ {
		sent = append(sent, e.ingest("a@example.com", []string{"bob@example.com", "carol@example.com"}, fmt.Sprintf("Subject: live %d\r\n", i), "x"))
	}
	for i := 0; i < 3; i++ {
		ev := next()
		if ev.event != "message" {
			t.Fatalf("event %d = %+v", i, ev)
		}
		checkSchema(t, "Summary", []byte(ev.data))
		var s summaryJSON
		json.Unmarshal([]byte(ev.data), &s)
		if s.ID != sent[i] || s.Subject != fmt.Sprintf("live %d", i) || len(s.Mailboxes) != 2 {
			t.Fatalf("event %d = %+v", i, s)
		}
	}
	e.expect(http.MethodPatch, "/api/v1/messages/"+sent[0]+"?mailbox=bob@example.com", []byte(`{"seen":true}`), "application/json", 204)
	if ev := next(); ev.event != "flags" || !strings.Contains(ev.data, sent[0]) {
		t.Fatalf("after PATCH: %+v", ev)
	}
	e.expect(http.MethodDelete, "/api/v1/messages/"+sent[1], nil, "", 200)
	ev := next()
	if ev.event != "deleted" || !strings.Contains(ev.data, sent[1]) {
		t.Fatalf("after DELETE: %+v", ev)
	}
	r := e.expect(http.MethodPut, "/api/v1/messages/"+sent[2]+"/tags", []byte(`{"tags":["Live","qa"]}`), "application/json", 200)
	checkSchema(t, "Tags", r.body)
	if ev := next(); ev.event != "tags" || ev.data != `{"id":"`+sent[2]+`","tags":["Live","qa"]}` {
		t.Fatalf("after PUT tags: %+v", ev)
	}
	e.expect(http.MethodPut, "/api/v1/messages/"+sent[2]+"/tags", []byte(`{"tags":["no/slash"]}`), "application/json", 400)
	e.expect(http.MethodPut, "/api/v1/messages/"+sent[2]+"/tags", []byte(`{"tag":["x"]}`), "application/json", 400)
	e.expect(http.MethodPut, "/api/v1/messages/nope/tags", []byte(`{"tags":["x"]}`), "application/json", 404)
}

func TestSubmitJSON(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	pdf := []byte("%PDF-1.4 not really\x00\xff")
	png := []byte("\x89PNG\r\n\x1a\nfake")
	body, _ := json.Marshal(map[string]any{
		"from":    "Shop <shop@example.com>",
		"to":      []string{"Bob <bob@example.com>"},
		"cc":      []string{"carol@example.com"},
		"bcc":     []string{"audit@example.com"},
		"subject": "Ihre Bestellung – Größe",
		"text":    "Hallo Bob, grüße!",
		"html":    "<p>Hallo <b>Bob</b> <img src=\"cid:logo\"></p>",
		"attachments": []map[string]any{
			{"filename": "rechnung ä.pdf", "content_type": "application/pdf", "content_base64": base64.StdEncoding.EncodeToString(pdf)},
			{"content_type": "image/png", "content_base64": base64.StdEncoding.EncodeToString(png), "content_id": "logo"},
		},
	})
	r := e.expect(http.MethodPost, "/api/v1/messages", body, "application/json", 201)
	checkSchema(t, "Created", r.body)
	var created struct{ ID string }
	json.Unmarshal(r.body, &created)
	if r.header.Get("Location") != "/api/v1/messages/"+created.ID {
		t.Errorf("Location %q", r.header.Get("Location"))
	}
	var m messageJSON
	e.getJSON("/messages/"+created.ID, "Message", &m)
	if m.Subject != "Ihre Bestellung – Größe" || m.Text != "Hallo Bob, grüße!" || !strings.Contains(m.HTML, "<b>Bob</b>") {
		t.Errorf("subject %q text %q html %q", m.Subject, m.Text, m.HTML)
	}
	if m.From.Name != "Shop" || len(m.To) != 1 || m.To[0].Name != "Bob" || len(m.Cc) != 1 {
		t.Errorf("addresses %+v %+v %+v", m.From, m.To, m.Cc)
	}
	if len(m.Bcc) != 1 || m.Bcc[0].Address != "audit@example.com" || !slices.Contains(m.Mailboxes, "audit@example.com") {
		t.Errorf("bcc %+v mailboxes %v", m.Bcc, m.Mailboxes)
	}
	if len(m.Headers["Date"]) != 1 || m.MessageID == "" || !m.HasAttachments {
		t.Errorf("headers %v message_id %q", m.Headers, m.MessageID)
	}
	if len(m.Attachments) != 2 {
		t.Fatalf("attachments %+v", m.Attachments)
	}
	att, img := m.Attachments[0], m.Attachments[1]
	if att.Filename != "rechnung ä.pdf" || att.ContentType != "application/pdf" || att.Size != len(pdf) || att.Inline {
		t.Errorf("attachment %+v", att)
	}
	if img.ContentID != "logo" || !img.Inline || img.ContentType != "image/png" {
		t.Errorf("inline image %+v", img)
	}
	p := e.expect(http.MethodGet, "/api/v1/messages/"+created.ID+"/parts/"+att.ID, nil, "", 200)
	if !bytes.Equal(p.body, pdf) || p.header.Get("Content-Type") != "application/pdf" ||
		p.header.Get("Content-Disposition") != `inline; filename*=utf-8''rechnung%20%C3%A4.pdf` ||
		p.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("part: %q %v", p.body, p.header)
	}
	p = e.expect(http.MethodGet, "/api/v1/messages/"+created.ID+"/parts/"+img.ID, nil, "", 200)
	if !bytes.Equal(p.body, png) || !strings.HasPrefix(p.header.Get("Content-Disposition"), "inline") {
		t.Errorf("image part: %v", p.header)
	}
	raw := e.expect(http.MethodGet, "/api/v1/messages/"+created.ID+"/raw", nil, "", 200)
	if bytes.Contains(raw.body, []byte("audit@example.com")) {
		t.Error("Bcc leaked into the message headers")
	}
	if raw.header.Get("Content-Type") != "message/rfc822" {
		t.Errorf("raw content type %q", raw.header.Get("Content-Type"))
	}
	// Saved, the message is named after its subject (curl -OJ, browsers).
	if cd := raw.header.Get("Content-Disposition"); cd != `inline; filename*=utf-8''Ihre%20Bestellung%20%20Gr%C3%B6%C3%9Fe.eml` {
		t.Errorf("raw Content-Disposition %q", cd)
	}

	// JSON without a content type (curl -d) is still JSON.
	e.expect(http.MethodPost, "/api/v1/messages", []byte(` {"to":["y@example.com"],"text":"t"}`), "", 201)

	// Text only: a single part; a lone string is accepted for "to".
	r = e.expect(http.MethodPost, "/api/v1/messages", []byte(`{"to":"x@example.com","subject":"plain","text":"just text"}`), "application/json", 201)
	json.Unmarshal(r.body, &created)
	e.getJSON("/messages/"+created.ID, "Message", &m)
	if m.Text != "just text" || m.HTML != "" || len(m.Attachments) != 0 || m.From.Address != defaultFrom {
		t.Errorf("plain message %+v", m)
	}
}

func TestSubmitRawAndHTMLPart(t *testing.T) {
	t.Parallel()
	e := newTestServer(t, func(o *Options) { o.MaxMessageBytes = 4096 })
	raw := []byte("From: a@example.com\r\nTo: b@example.com\r\nBcc: Secret <s@example.com>\r\nSubject: raw\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain\r\n\r\nbody\r\n" +
		"--X\r\nContent-Type: text/html\r\nContent-Disposition: attachment; filename=evil.html\r\n\r\n<script>alert(1)</script>\r\n--X--\r\n")
	r := e.expect(http.MethodPost, "/api/v1/messages", raw, "message/rfc822", 201)
	var created struct{ ID string }
	json.Unmarshal(r.body, &created)
	got := e.expect(http.MethodGet, "/api/v1/messages/"+created.ID+"/raw", nil, "", 200)
	if !bytes.Equal(got.body, raw) {
		t.Fatalf("raw changed:\n%q\n%q", got.body, raw)
	}
	var m messageJSON
	e.getJSON("/messages/"+created.ID, "Message", &m)
	if !slices.Equal(m.Envelope.RcptTo, []string{"b@example.com", "s@example.com"}) || len(m.Bcc) != 1 || m.Bcc[0].Name != "Secret" {
		t.Fatalf("envelope %+v bcc %+v", m.Envelope, m.Bcc)
	}
	p := e.expect(http.MethodGet, "/api/v1/messages/"+created.ID+"/parts/2", nil, "", 200)
	if !strings.HasPrefix(p.header.Get("Content-Disposition"), "attachment") || !strings.Contains(p.header.Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("HTML part may run script on our origin: %v", p.header)
	}
	e.expect(http.MethodPost, "/api/v1/messages", append(raw, bytes.Repeat([]byte("x"), 5000)...), "message/rfc822", 413)
	big, _ := json.Marshal(map[string]any{"to": []string{"a@example.com"}, "text": strings.Repeat("y", 5000)})
	e.expect(http.MethodPost, "/api/v1/messages", big, "application/json", 413)
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: x\r\n", "hi")
	tests := []struct {
		method, path, ct, body string
		status                 int
	}{
		{"GET", "/api/v1/messages/search?since=yesterday", "", "", 400},
		{"GET", "/api/v1/messages/search?before=2026-13-01T00:00:00Z", "", "", 400},
		{"GET", "/api/v1/messages/search?limit=-1", "", "", 400},
		{"GET", "/api/v1/messages/search?limit=ten", "", "", 400},
		{"GET", "/api/v1/messages/search?offset=-5", "", "", 400},
		{"GET", "/api/v1/mailboxes/bob@example.com/messages?limit=x", "", "", 400},
		{"GET", "/api/v1/messages/wait?timeout=forever", "", "", 400},
		{"GET", "/api/v1/messages/wait?timeout=-1s", "", "", 400},
		{"GET", "/api/v1/messages/wait?count=0", "", "", 400},
		{"GET", "/api/v1/messages/wait?count=abc", "", "", 400},
		{"GET", "/api/v1/messages/wait?limit=5", "", "", 400},
		{"GET", "/api/v1/messages/NOPE", "", "", 404},
		{"GET", "/api/v1/messages/" + strings.Repeat("z", 300), "", "", 404},
		{"GET", "/api/v1/messages/%00%ff'%22", "", "", 404},
		{"GET", "/api/v1/messages/NOPE/raw", "", "", 404},
		{"GET", "/api/v1/messages/" + id + "/parts/9", "", "", 404},
		{"GET", "/api/v1/messages/" + id + "/parts/1.x", "", "", 404},
		{"GET", "/api/v1/messages/" + id + "/parts/0", "", "", 404},
		{"PATCH", "/api/v1/messages/" + id, "application/json", `{"seen":"yes"}`, 400},
		{"PATCH", "/api/v1/messages/" + id, "application/json", `{}`, 400},
		{"PATCH", "/api/v1/messages/" + id, "application/json", `not json`, 400},
		{"PATCH", "/api/v1/messages/NOPE", "application/json", `{"seen":true}`, 404},
		{"PATCH", "/api/v1/messages/" + id + "?mailbox=nobody@example.com", "application/json", `{"seen":true}`, 404},
		{"DELETE", "/api/v1/messages/NOPE", "", "", 404},
		{"DELETE", "/api/v1/mailboxes/%20", "", "", 400},
		{"POST", "/api/v1/messages", "application/json", `{"to":[],"subject":"x"}`, 400},
		{"POST", "/api/v1/messages", "application/json", `{"to":["not an address"]}`, 400},
		{"POST", "/api/v1/messages", "application/json", `{"to":["a@b.c"],"attachments":[{"content_base64":"!!!"}]}`, 400},
		{"POST", "/api/v1/messages", "application/json", `{"to":["a@b.c"],"attachments":[{"content_type":"bad type/","content_base64":""}]}`, 400},
		{"POST", "/api/v1/messages", "application/json", `{"to":5}`, 400},
		{"POST", "/api/v1/messages", "application/json", `{"to":["a@b.c"],"headers":{"Bad Name":"x"}}`, 400},
		{"POST", "/api/v1/messages", "application/json", `[`, 400},
		{"POST", "/api/v1/messages", "message/rfc822", "", 400},
		{"POST", "/api/v1/messages", "message/rfc822", "Subject: no recipients\r\n\r\nhi\r\n", 400},
		{"POST", "/api/v1/messages", "image/png", "x", 415},
		{"POST", "/api/v1/messages/NOPE/release", "application/json", `{"to":["x@real.example"]}`, 404},
		{"POST", "/api/v1/messages/" + id + "/release", "application/json", `{"to":["x@real.example"]}`, 409},
		{"POST", "/api/v1/messages/" + id + "/release", "application/json", `{"to":`, 400},
		{"DELETE", "/api/v1/relay/queue/abc", "", "", 404},
		{"DELETE", "/api/v1/relay/queue/12345", "", "", 404},
		{"POST", "/api/v1/relay/queue/12345/retry", "", "", 404},
		{"GET", "/api/v1/nothing-here", "", "", 404},
		{"GET", "/api/v2/messages", "", "", 404},
		{"PUT", "/api/v1/messages", "", "", 405},
		{"POST", "/api/v1/mailboxes", "", "", 405},
		{"GET", "/elsewhere", "", "", 404}, // no UI configured
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			var body []byte
			if tt.body != "" || tt.method == "POST" {
				body = []byte(tt.body)
			}
			r := e.with(t).expect(tt.method, tt.path, body, tt.ct, tt.status)
			var eb errorBody
			if err := json.Unmarshal(r.body, &eb); err != nil || eb.Error == "" {
				t.Fatalf("error body %q", r.body)
			}
		})
	}
}

func TestRelease(t *testing.T) {
	t.Parallel()
	rel := &recordingRelay{}
	e := newTestServer(t, func(o *Options) { o.Relay = rel })
	id := e.ingest("a@example.com", []string{"bob@example.com", "carol@example.com"}, "Subject: x\r\n", "hi")
	r := e.expect(http.MethodPost, "/api/v1/messages/"+id+"/release", []byte(`{"to":["Real <x@real.example>"]}`), "application/json", 202)
	checkSchema(t, "Released", r.body)
	e.expect(http.MethodPost, "/api/v1/messages/"+id+"/release", nil, "", 202)
	want := []string{id + " [x@real.example]", id + " [bob@example.com carol@example.com]"}
	if !slices.Equal(rel.calls, want) {
		t.Fatalf("releases %q, want %q", rel.calls, want)
	}
	e.expect(http.MethodPost, "/api/v1/messages/"+id+"/release", []byte(`{"to":["bad"]}`), "application/json", 400)
}

type recordingRelay struct{ calls []string }

func (r *recordingRelay) Release(ctx context.Context, id string, to []string) error {
	r.calls = append(r.calls, fmt.Sprintf("%s %v", id, to))
	return nil
}

func TestRelayQueue(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	var q struct {
		Deliveries []deliveryJSON `json:"deliveries"`
		Enabled    bool           `json:"enabled"`
	}
	e.getJSON("/relay/queue", "DeliveryList", &q)
	if len(q.Deliveries) != 0 || q.Enabled {
		t.Fatalf("queue without a relay %+v", q)
	}
	withRelay := newTestServer(t, func(o *Options) { o.Relay = &recordingRelay{} })
	withRelay.getJSON("/relay/queue", "DeliveryList", &q)
	if !q.Enabled {
		t.Fatalf("queue with a relay %+v", q)
	}
	id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: x\r\n", "hi")
	dids, err := e.st.Enqueue(context.Background(), id, []store.NewDelivery{{Recipients: []string{"x@real.example"}, Destination: "real.example"}})
	if err != nil {
		t.Fatal(err)
	}
	e.getJSON("/relay/queue", "DeliveryList", &q)
	if len(q.Deliveries) != 1 || q.Deliveries[0].ID != fmt.Sprint(dids[0]) || q.Deliveries[0].MessageID != id ||
		q.Deliveries[0].Status != store.DeliveryQueued || !slices.Equal(q.Deliveries[0].Recipients, []string{"x@real.example"}) {
		t.Fatalf("queue %+v", q)
	}
	if d := q.Deliveries[0]; d.Subject != "x" || d.NextAttemptAt == nil || d.LastAttemptAt != nil || len(d.RecipientStatus) != 1 ||
		d.RecipientStatus[0] != (recipientStatusJSON{Address: "x@real.example", Status: store.DeliveryQueued}) {
		t.Fatalf("queued delivery %+v", d)
	}
	e.expect(http.MethodPost, fmt.Sprintf("/api/v1/relay/queue/%d/retry", dids[0]), nil, "", 202)
	e.expect(http.MethodDelete, fmt.Sprintf("/api/v1/relay/queue/%d", dids[0]), nil, "", 204)

	// A finished delivery: no next attempt, and each recipient's own result.
	ctx := context.Background()
	dids, err = e.st.Enqueue(ctx, id, []store.NewDelivery{{Recipients: []string{"ok@real.example", "no@real.example"}, Destination: "real.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := e.st.ClaimDue(ctx, time.Now(), "w", time.Minute, 10); err != nil || len(c) != 1 {
		t.Fatalf("claim %v %v", c, err)
	}
	if err := e.st.RecordAttempt(ctx, dids[0], "w", store.Attempt{Status: store.DeliveryFailed, LastError: "550 no such user",
		RecipientStatus: []store.RecipientStatus{
			{Address: "ok@real.example", Status: store.DeliveryDelivered, Attempts: 1, Reply: "250 ok"},
			{Address: "no@real.example", Status: store.DeliveryFailed, Attempts: 1, Reply: "550 no such user"},
		}}); err != nil {
		t.Fatal(err)
	}
	e.getJSON("/relay/queue", "DeliveryList", &q)
	want := []recipientStatusJSON{
		{Address: "ok@real.example", Status: store.DeliveryDelivered, Attempts: 1, Reply: "250 ok"},
		{Address: "no@real.example", Status: store.DeliveryFailed, Attempts: 1, Reply: "550 no such user"},
	}
	if d := q.Deliveries[0]; d.Status != store.DeliveryFailed || d.NextAttemptAt != nil || d.LastAttemptAt == nil ||
		!slices.Equal(d.RecipientStatus, want) {
		t.Fatalf("finished delivery %+v", d)
	}
	e.expect(http.MethodDelete, fmt.Sprintf("/api/v1/relay/queue/%d", dids[0]), nil, "", 204)
	e.getJSON("/relay/queue", "DeliveryList", &q)
	if len(q.Deliveries) != 0 {
		t.Fatalf("queue after drop %+v", q)
	}
}

type staticAuth struct{}

func (staticAuth) Check(ctx context.Context, user, pass string) error {
	if user == "u" && pass == "p" {
		return nil
	}
	return fmt.Errorf("bad credentials")
}

func TestAuthCORSUIAndHealth(t *testing.T) {
	t.Parallel()
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "UI "+r.URL.Path) })
	e := newTestServer(t, func(o *Options) {
		o.Auth = staticAuth{}
		o.CORSOrigin = "http://runner.example"
		o.UI = ui
	})
	e.expect(http.MethodGet, "/healthz", nil, "", 200)
	r := e.expect(http.MethodGet, "/api/v1/messages/search", nil, "", 401)
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("no basic challenge: %v", r.header)
	}
	e.expect(http.MethodGet, "/", nil, "", 401)
	e.expect(http.MethodGet, "/metrics", nil, "", 401)

	get := func(path, user, pass string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := get("/api/v1/messages/search", "u", "wrong", nil); res.StatusCode != 401 {
		t.Errorf("wrong password: %d", res.StatusCode)
	}
	res := get("/api/v1/messages/search", "u", "p", map[string]string{"Origin": "http://runner.example"})
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "http://runner.example" {
		t.Errorf("authorized CORS GET: %d %v", res.StatusCode, res.Header)
	}
	if res := get("/", "u", "p", nil); res.StatusCode != 200 {
		t.Errorf("UI: %d", res.StatusCode)
	}
	if res := get("/metrics", "u", "p", nil); res.StatusCode != 200 {
		t.Errorf("metrics: %d", res.StatusCode)
	}
	// Preflight needs no credentials.
	req, _ := http.NewRequest(http.MethodOptions, e.url+"/api/v1/messages", nil)
	req.Header.Set("Origin", "http://runner.example")
	req.Header.Set("Access-Control-Request-Method", "DELETE")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 || !strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "DELETE") {
		t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
	}
}

func TestMetricsAndOpenAPI(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: x\r\n", "hi")
	e.expect(http.MethodGet, "/api/v1/messages/wait?to=bob@", nil, "", 200)
	e.expect(http.MethodGet, "/api/v1/messages/search?limit=x", nil, "", 400)
	r := e.expect(http.MethodGet, "/metrics", nil, "", 200)
	for _, want := range []string{
		`mailsandbox_http_requests_total{code="400",method="GET",route="/api/v1/messages/search"} 1`,
		`mailsandbox_wait_requests_total{outcome="found"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	r = e.expect(http.MethodGet, "/api/v1/openapi.json", nil, "", 200)
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi: %v %q", err, doc.OpenAPI)
	}
	// Every API route is documented, and nothing else.
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m, op := range ops {
			if op["x-mount"] != nil {
				continue // served by a Mount (its package tests the route)
			}
			documented[strings.ToUpper(m)+" /api/v1"+p] = true
		}
	}
	routed := map[string]bool{}
	for _, rt := range e.srv.echo.Routes() {
		// HEAD comes with GET (HTTP semantics); OpenAPI lists GET alone.
		if !strings.HasPrefix(rt.Path, apiPrefix) || strings.HasSuffix(rt.Path, "/*") || rt.Method == http.MethodHead {
			continue
		}
		p := rt.Path
		for _, seg := range strings.Split(p, "/") {
			if strings.HasPrefix(seg, ":") {
				p = strings.Replace(p, seg, "{"+seg[1:]+"}", 1)
			}
		}
		routed[rt.Method+" "+p] = true
	}
	for k := range routed {
		if !documented[k] {
			t.Errorf("route %s is not in openapi.json", k)
		}
	}
	for k := range documented {
		if !routed[k] {
			t.Errorf("openapi.json documents %s, which is not routed", k)
		}
	}
	// Every $ref resolves.
	for _, m := range bytes.Split(openAPIDoc, []byte(`"$ref": "#/components/schemas/`))[1:] {
		name := string(m[:bytes.IndexByte(m, '"')])
		if _, ok := openAPIComponents(t)[name]; !ok {
			t.Errorf("dangling $ref %s", name)
		}
	}
}

func TestShutdownEndsStreams(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	res, err := http.Get(e.url + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	waitCh := e.startWait(t, "to=never@&timeout=1m")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with open stream and wait: %v", err)
	}
	if r := <-waitCh; r.status != http.StatusServiceUnavailable {
		t.Fatalf("wait during shutdown = %s", r)
	}
}

// TestMountPublicPaths: a mount's Public paths answer without credentials
// (health probes), its other paths need them like every route.
func TestMountPublicPaths(t *testing.T) {
	t.Parallel()
	env := newTestServer(t, func(o *Options) {
		o.Auth = staticAuth{}
		o.Mounts = []Mount{{
			Paths:  []string{"/probe", "/private"},
			Public: []string{"/probe"},
			Register: func(e *echo.Echo) {
				ok := func(c echo.Context) error { return c.String(http.StatusOK, "ok") }
				e.GET("/probe", ok)
				e.GET("/private", ok)
			},
		}}
	})
	env.expect(http.MethodGet, "/probe", nil, "", http.StatusOK)
	env.expect(http.MethodGet, "/private", nil, "", http.StatusUnauthorized)
}
