package rest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// A wait's 408 says plainly what it did not find.
func TestWaitTimeoutMessage(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: x\r\n", "hi")
	for q, want := range map[string]string{
		"to=nobody@&timeout=20ms":                      "no matching message within 20ms",
		"mailbox=bob@example.com&count=3&timeout=20ms": "fewer than 3 matching messages within 20ms (1 found)",
	} {
		r := e.expect(http.MethodGet, "/api/v1/messages/wait?"+q, nil, "", 408)
		var eb errorBody
		json.Unmarshal(r.body, &eb)
		if eb.Error != want {
			t.Errorf("%s: %q, want %q", q, eb.Error, want)
		}
	}
}

// An attachment submitted as JSON without a content_type gets the type its
// file name implies, as mail clients do.
func TestSubmitJSONAttachmentTypeFromName(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	r := e.expect(http.MethodPost, "/api/v1/messages", []byte(`{"to":"a@example.com","text":"t","attachments":[`+
		`{"filename":"report.pdf","content_base64":"JVBERg=="},{"filename":"notes.txt","content_base64":"aGk="},`+
		`{"filename":"blob","content_base64":"AAE="}]}`), "application/json", 201)
	var c struct{ ID string }
	json.Unmarshal(r.body, &c)
	var m messageJSON
	e.getJSON("/messages/"+c.ID, "Message", &m)
	var got []string
	for _, a := range m.Attachments {
		got = append(got, a.ContentType)
	}
	if strings.Join(got, " ") != "application/pdf text/plain application/octet-stream" {
		t.Errorf("content types %v", got)
	}
}

// POST /messages caps recipients as SMTP does (1000 by default), so one
// request cannot file a message into an unbounded number of mailboxes.
func TestSubmitRecipientCap(t *testing.T) {
	t.Parallel()
	e := newTestServer(t, func(o *Options) { o.MaxRecipients = 3 })
	many := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("r%d@example.com", i))
		}
		return out
	}
	ok, _ := json.Marshal(map[string]any{"to": many(2), "bcc": "r9@example.com"})
	e.expect(http.MethodPost, "/api/v1/messages", ok, "application/json", 201)
	tooMany, _ := json.Marshal(map[string]any{"to": many(3), "cc": "r9@example.com"})
	r := e.expect(http.MethodPost, "/api/v1/messages", tooMany, "application/json", 400)
	if !strings.Contains(string(r.body), "at most 3") {
		t.Errorf("400 body %s", r.body)
	}
	raw := "From: a@example.com\r\nTo: " + strings.Join(many(4), ", ") + "\r\nSubject: x\r\n\r\nhi\r\n"
	e.expect(http.MethodPost, "/api/v1/messages", []byte(raw), "message/rfc822", 400)
	var l summaryList
	e.getJSON("/messages/search", "MessageList", &l)
	if l.Total != 1 {
		t.Errorf("%d messages stored, want 1", l.Total)
	}
}

// A part's download name is a plain file name: the directories a sender
// put in it (either slash) are dropped from Content-Disposition.
func TestPartFilenameHasNoPath(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	r := e.expect(http.MethodPost, "/api/v1/messages", []byte(`{"to":"a@example.com","text":"t","attachments":[`+
		`{"filename":"../../etc/passwd","content_base64":"aGk="},{"filename":"C:\\Users\\x\\evil.exe","content_base64":"aGk="},`+
		`{"filename":"..","content_base64":"aGk="}]}`), "application/json", 201)
	var c struct{ ID string }
	json.Unmarshal(r.body, &c)
	for part, want := range map[string]string{"2": `attachment; filename=passwd`, "3": `attachment; filename=evil.exe`, "4": `attachment; filename=part-4`} {
		p := e.expect(http.MethodGet, "/api/v1/messages/"+c.ID+"/parts/"+part, nil, "", 200)
		if got := p.header.Get("Content-Disposition"); got != want {
			t.Errorf("part %s: Content-Disposition %q, want %q", part, got, want)
		}
	}
}

// Recipients of a raw POST come out of address headers that Go's parser
// refuses (a leading comment, which RFC 5322 allows; a stray ";") as plain
// addresses, never as mailboxes named after the header's leftovers.
func TestSubmitRawOddAddressHeaders(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	raw := "From: a@example.com\r\nTo: \"Last, First\" <LF@example.com>; oops g1@example.com\r\n" +
		"Cc: (comment) cc@example.com (Name)\r\nBcc: <<b@example.com>>\r\nSubject: odd\r\n\r\nhi\r\n"
	r := e.expect(http.MethodPost, "/api/v1/messages", []byte(raw), "message/rfc822", 201)
	var c struct{ ID string }
	json.Unmarshal(r.body, &c)
	var m messageJSON
	e.getJSON("/messages/"+c.ID, "Message", &m)
	if got := strings.Join(m.Mailboxes, " "); got != "lf@example.com g1@example.com cc@example.com b@example.com" {
		t.Errorf("mailboxes %q", got)
	}
	if got := strings.Join(m.Envelope.RcptTo, " "); got != "LF@example.com g1@example.com cc@example.com b@example.com" {
		t.Errorf("envelope %q", got)
	}
}

func TestEMLName(t *testing.T) {
	t.Parallel()
	for subject, want := range map[string]string{
		"Welcome to Acme!":          "Welcome to Acme",
		"../../etc/passwd":          "etcpasswd",
		"Re: Invoice #42 (paid)":    "Re Invoice 42 paid",
		"":                          "ID1",
		"!!!":                       "ID1",
		"...":                       "ID1",
		strings.Repeat("ä", 80):     strings.Repeat("ä", 60),
		"line\r\nbreak\x00nul\ttab": "linebreaknultab",
	} {
		if got := emlName(subject, "ID1"); got != want {
			t.Errorf("emlName(%q) = %q, want %q", subject, got, want)
		}
	}
}
