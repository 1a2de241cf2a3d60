package rest

import (
	"net/http"
	"net/url"
	"testing"
)

// IMAP names the inbox case-insensitively (RFC 3501 5.1): folder=inbox is
// the INBOX, not an empty folder.
func TestFolderInboxAnyCase(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: x\r\n", "hi")
	for _, f := range []string{"INBOX", "inbox", "Inbox"} {
		var l summaryList
		e.getJSON("/mailboxes/bob@example.com/messages?folder="+f, "MessageList", &l)
		if l.Total != 1 || len(l.Messages) != 1 || l.Messages[0].ID != id {
			t.Errorf("folder=%s: %+v", f, l)
		}
	}
	var l summaryList
	e.getJSON("/mailboxes/bob@example.com/messages?folder=Sent", "MessageList", &l)
	if l.Total != 0 {
		t.Errorf("folder=Sent lists %+v", l)
	}
}

// RFC 3339 (5.6) allows a lower-case "t" and "z", and a space in place of
// the "T".
func TestTimesRFC3339Variants(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: x\r\n", "hi")
	for _, v := range []string{"2000-01-02t03:04:05z", "2000-01-02 03:04:05Z", "2000-01-02 03:04:05+01:00", "2000-01-02T03:04:05.5+01:00"} {
		var l summaryList
		e.getJSON("/messages/search?since="+url.QueryEscape(v), "MessageList", &l)
		if l.Total != 1 || l.Messages[0].ID != id {
			t.Errorf("since=%s: %+v", v, l)
		}
		e.getJSON("/messages/search?before="+url.QueryEscape(v), "MessageList", &l)
		if l.Total != 0 {
			t.Errorf("before=%s: %+v", v, l)
		}
	}
	// An unescaped "+" arrives as a space; it is still the offset.
	var l summaryList
	e.getJSON("/messages/search?since=2000-01-02T03:04:05+01:00", "MessageList", &l)
	if l.Total != 1 {
		t.Errorf("unescaped offset: %+v", l)
	}
	for _, v := range []string{"2000-01-02", "2000-01-02T03:04:05", "2000-01-02x03:04:05Z", "2000-01-02  03:04:05Z"} {
		e.expect(http.MethodGet, "/api/v1/messages/search?since="+url.QueryEscape(v), nil, "", 400)
	}
}
