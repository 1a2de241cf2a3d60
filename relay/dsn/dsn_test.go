package dsn

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"
)

func TestStatusOf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		r    Recipient
		want string
	}{
		{Recipient{Diagnostic: "550 5.1.1 no such user"}, "5.1.1"},
		{Recipient{Diagnostic: "550 no such user"}, "5.0.0"},
		{Recipient{Diagnostic: "452 4.2.2 mailbox full"}, "4.2.2"},
		{Recipient{Diagnostic: "451 try later"}, "4.0.0"},
		{Recipient{Status: "5.4.7", Diagnostic: "451 4.3.0 later"}, "5.4.7"},
		{Recipient{Diagnostic: "dial tcp: connection refused"}, "5.0.0"},
		{Recipient{}, "5.0.0"},
		{Recipient{Diagnostic: "550 5.1.1x odd"}, "5.0.0"},
	}
	for _, c := range cases {
		if got := c.r.StatusOf(); got != c.want {
			t.Errorf("StatusOf(%+v) = %q, want %q", c.r, got, c.want)
		}
	}
}

func TestDiagnosticCode(t *testing.T) {
	t.Parallel()
	cases := []struct{ diag, want string }{
		{"550 5.1.1 no such\r\n user", "smtp; 550 5.1.1 no such user"},
		{"connection refused", "X-mailsandbox; connection refused"},
		{"", ""},
	}
	for _, c := range cases {
		if got := (Recipient{Diagnostic: c.diag}).diagnosticCode(); got != c.want {
			t.Errorf("diagnosticCode(%q) = %q, want %q", c.diag, got, c.want)
		}
	}
}

func TestBuild(t *testing.T) {
	t.Parallel()
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	orig := []byte("From: alice@sender.test\r\nTo: bob@dest.test\r\nSubject: Hello\r\nMessage-ID: <m1@sender.test>\r\n\r\nbody not included\r\n")
	raw := Build(Report{
		ReportingMTA: "sandbox.test",
		To:           "alice@sender.test",
		Arrival:      date,
		Date:         date,
		Recipients: []Recipient{
			{Address: "bob@dest.test", RemoteMTA: "mx.dest.test", Diagnostic: "550 5.1.1 user unknown " + strings.Repeat("long ", 30), LastAttempt: date},
			{Address: "carol@dest.test", Status: "5.4.7", Diagnostic: "451 4.3.0 later"},
		},
		OriginalHeader: Header(orig),
	})
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("To") != "<alice@sender.test>" || m.Header.Get("Auto-Submitted") != "auto-replied" || !strings.Contains(m.Header.Get("From"), "MAILER-DAEMON@sandbox.test") {
		t.Fatalf("header %v", m.Header)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("content type %q %v %v", mt, params, err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var types []string
	var parts [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		types = append(types, p.Header.Get("Content-Type"))
		parts = append(parts, b)
	}
	if len(types) != 3 || !strings.HasPrefix(types[0], "text/plain") || types[1] != "message/delivery-status" || types[2] != "text/rfc822-headers" {
		t.Fatalf("parts %v", types)
	}
	if !bytes.Contains(parts[0], []byte("bob@dest.test")) || !bytes.Contains(parts[0], []byte("mx.dest.test said: 550 5.1.1")) {
		t.Errorf("human part:\n%s", parts[0])
	}
	status := string(parts[1])
	// Per-message fields, then one block per recipient.
	blocks := strings.Split(strings.TrimSpace(strings.ReplaceAll(status, "\r\n", "\n")), "\n\n")
	if len(blocks) != 3 {
		t.Fatalf("want 3 field groups, got %d:\n%s", len(blocks), status)
	}
	for _, want := range []string{"Reporting-MTA: dns; sandbox.test", "Arrival-Date: Fri, 02 Jan 2026 03:04:05 +0000"} {
		if !strings.Contains(blocks[0], want) {
			t.Errorf("per-message fields lack %q", want)
		}
	}
	for _, want := range []string{"Final-Recipient: rfc822; bob@dest.test", "Action: failed", "Status: 5.1.1", "Remote-MTA: dns; mx.dest.test", "Diagnostic-Code: smtp; 550 5.1.1 user unknown long", "Last-Attempt-Date: "} {
		if !strings.Contains(blocks[1], want) {
			t.Errorf("bob's fields lack %q:\n%s", want, blocks[1])
		}
	}
	for _, line := range strings.Split(blocks[1], "\n") {
		if len(line) > 78 {
			t.Errorf("unfolded line %q", line)
		}
	}
	for _, want := range []string{"Final-Recipient: rfc822; carol@dest.test", "Status: 5.4.7", "Diagnostic-Code: smtp; 451 4.3.0 later"} {
		if !strings.Contains(blocks[2], want) {
			t.Errorf("carol's fields lack %q:\n%s", want, blocks[2])
		}
	}
	if !strings.Contains(string(parts[2]), "Subject: Hello") || strings.Contains(string(parts[2]), "body not included") {
		t.Errorf("headers part:\n%s", parts[2])
	}
}
