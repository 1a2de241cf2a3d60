package sandboxtest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
	"github.com/mailsandbox/mailsandbox/sdk"
	"github.com/mailsandbox/mailsandbox/sdk/sandboxtest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func sendSMTP(t *testing.T, addr, from string, to []string, msg string) {
	t.Helper()
	if err := smtp.SendMail(addr, nil, from, to, []byte(strings.ReplaceAll(msg, "\n", "\r\n"))); err != nil {
		t.Fatalf("send mail: %v", err)
	}
}

// TestReadmeUsage is the README's first usage, as written there.
func TestReadmeUsage(t *testing.T) {
	t.Parallel()
	s := sandboxtest.New(t)

	// The application under test sends mail to s.SMTPAddr().
	msg := "From: noreply@app.example\r\nTo: bob@example.com\r\nSubject: Welcome\r\n\r\n" +
		"Hi! Confirm: https://app.example/confirm?t=abc\r\nCode: 123456\r\n"
	err := smtp.SendMail(s.SMTPAddr(), nil, "noreply@app.example", []string{"bob@example.com"}, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := s.Client().Wait(ctx, sdk.Filter{To: "bob@example.com", Subject: "Welcome"})
	if err != nil {
		t.Fatal(err)
	}
	link, err := m.FindLink("/confirm")
	if err != nil {
		t.Fatal(err)
	}
	code, err := m.ExtractCode(`Code: (\d+)`)
	if err != nil {
		t.Fatal(err)
	}
	if link != "https://app.example/confirm?t=abc" || code != "123456" {
		t.Errorf("link %q, code %q", link, code)
	}
}

// TestStartClose measures what one sandbox costs a test: start, one
// request, close. The number is logged, not asserted (see the benchmark).
func TestStartClose(t *testing.T) {
	const n = 5
	var total time.Duration
	for range n {
		start := time.Now()
		s, err := sandboxtest.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Client().Health(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		total += time.Since(start)
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	t.Logf("sandboxtest start+health+close: %s on average over %d", total/n, n)
}

func BenchmarkStartClose(b *testing.B) {
	for b.Loop() {
		s := sandboxtest.New(b)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAddresses(t *testing.T) {
	t.Parallel()
	s := sandboxtest.New(t)
	for name, addr := range map[string]string{"SMTP": s.SMTPAddr(), "HTTP": s.HTTPAddr(), "POP3": s.POP3Addr(), "IMAP": s.IMAPAddr()} {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" || port == "0" {
			t.Errorf("%s address %q", name, addr)
		}
	}
	if s.URL() != "http://"+s.HTTPAddr() {
		t.Errorf("URL %q", s.URL())
	}
	if s.TLSConfig() != nil || s.CertPool() != nil || s.SMTPSAddr() != "" {
		t.Error("TLS set up without WithTLS")
	}
	// No STARTTLS without a certificate: net/smtp (which upgrades whenever
	// offered and verifies) must work, which TestReadmeUsage shows.
	c, err := smtp.Dial(s.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered without a certificate")
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	s := sandboxtest.New(t, sandboxtest.WithTLS())
	ctx := ctxT(t, 20*time.Second)

	// STARTTLS, verified against the sandbox's certificate.
	c, err := smtp.Dial(s.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(s.TLSConfig()); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if err := c.Mail("a@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("tls@example.com"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: over starttls\r\n\r\nhi\r\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()

	// Implicit TLS.
	conn, err := tls.Dial("tcp", s.SMTPSAddr(), s.TLSConfig())
	if err != nil {
		t.Fatalf("SMTPS dial: %v", err)
	}
	host, _, _ := net.SplitHostPort(s.SMTPSAddr())
	c2, err := smtp.NewClient(conn, host)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Mail("a@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c2.Rcpt("tls@example.com"); err != nil {
		t.Fatal(err)
	}
	w, _ = c2.Data()
	io.WriteString(w, "Subject: over smtps\r\n\r\nhi\r\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c2.Quit()

	if _, err := s.Client().WaitN(ctx, sdk.Filter{To: "tls@example.com"}, 2); err != nil {
		t.Fatal(err)
	}

	// POP3 STLS and IMAPS with the same trust.
	p, err := net.Dial("tcp", s.POP3Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tp := textproto.NewConn(p)
	expectOK(t, tp, "POP3 greeting")
	tp.PrintfLine("STLS")
	expectOK(t, tp, "STLS")
	tc := tls.Client(p, s.TLSConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		t.Fatalf("POP3 STLS handshake: %v", err)
	}
	ic, err := tls.Dial("tcp", s.IMAPSAddr(), s.TLSConfig())
	if err != nil {
		t.Fatalf("IMAPS: %v", err)
	}
	ic.Close()
}

func expectOK(t *testing.T, tp *textproto.Conn, what string) string {
	t.Helper()
	line, err := tp.ReadLine()
	if err != nil || !strings.HasPrefix(line, "+OK") {
		t.Fatalf("%s: %q, %v", what, line, err)
	}
	return line
}

// TestClientRoutes drives every SDK call against the real REST API.
func TestClientRoutes(t *testing.T) {
	t.Parallel()
	s := sandboxtest.New(t)
	c := s.Client()
	ctx := ctxT(t, 30*time.Second)

	// Send (JSON) with an attachment and HTML.
	id, err := c.Send(ctx, sdk.SendRequest{
		From: "Alice <alice@example.com>", To: []string{"Bob@Example.com"}, Cc: []string{"carol@example.com"},
		Bcc: []string{"dave@example.com"}, Subject: "Report", Text: "see attached",
		HTML:        `<p>Open <a href="https://app.example/r?id=1&amp;x=2">the report</a></p>`,
		Attachments: []sdk.SendAttachment{{Filename: "r.csv", ContentType: "text/csv", Content: []byte("a,b\n1,2\n")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if id == "" {
		t.Fatal("Send returned no id")
	}
	m, err := c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Report" || !m.HasAttachments || len(m.Attachments) != 1 {
		t.Errorf("Get: subject %q, has_attachments %v, attachments %+v", m.Subject, m.HasAttachments, m.Attachments)
	}
	if got := strings.Join(m.Mailboxes, ","); !strings.Contains(got, "bob@example.com") || !strings.Contains(got, "dave@example.com") {
		t.Errorf("mailboxes %v", m.Mailboxes)
	}
	if len(m.Bcc) != 1 || m.Bcc[0].Address != "dave@example.com" {
		t.Errorf("bcc %+v", m.Bcc)
	}
	if l, err := m.FindLink("/r?"); err != nil || l != "https://app.example/r?id=1&x=2" {
		t.Errorf("FindLink = %q, %v", l, err)
	}
	b, err := m.AttachmentBytes(ctx, "r.csv")
	if err != nil || string(b) != "a,b\n1,2\n" {
		t.Errorf("AttachmentBytes = %q, %v", b, err)
	}
	if len(m.Attachments) == 1 {
		p, err := c.Part(ctx, id, m.Attachments[0].Part)
		if err != nil || !strings.HasPrefix(p.ContentType, "text/csv") || p.Filename != "r.csv" {
			t.Errorf("Part = %+v, %v", p, err)
		}
	}
	raw, err := c.Raw(ctx, id)
	if err != nil || !bytes.Contains(raw, []byte("Subject: Report")) {
		t.Errorf("Raw: %v\n%s", err, raw)
	}

	// SendRaw: recipients from the headers.
	rawID, err := c.SendRaw(ctx, []byte("From: x@example.com\r\nTo: eve@example.com\r\nSubject: Raw one\r\n\r\nbody\r\n"))
	if err != nil || rawID == "" {
		t.Fatalf("SendRaw = %q, %v", rawID, err)
	}

	// Mailboxes and listing.
	mbs, err := c.Mailboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byAddr := map[string]sdk.Mailbox{}
	for _, mb := range mbs {
		byAddr[mb.Address] = mb
	}
	if mb := byAddr["bob@example.com"]; mb.Total != 1 || mb.Unread != 1 {
		t.Errorf("bob's mailbox %+v (all: %+v)", mb, mbs)
	}
	list, err := c.ListMailbox(ctx, "bob@example.com", sdk.ListOptions{})
	if err != nil || list.Total != 1 || list.Messages[0].ID != id {
		t.Fatalf("ListMailbox = %+v, %v", list, err)
	}

	// Seen state per mailbox.
	if err := c.MarkSeenIn(ctx, id, "bob@example.com", true); err != nil {
		t.Fatal(err)
	}
	list, _ = c.ListMailbox(ctx, "bob@example.com", sdk.ListOptions{})
	carol, _ := c.ListMailbox(ctx, "carol@example.com", sdk.ListOptions{})
	if !list.Messages[0].Seen || carol.Messages[0].Seen {
		t.Errorf("seen: bob %v carol %v; want true false", list.Messages[0].Seen, carol.Messages[0].Seen)
	}
	if err := c.MarkSeen(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	carol, _ = c.ListMailbox(ctx, "carol@example.com", sdk.ListOptions{})
	if !carol.Messages[0].Seen {
		t.Error("MarkSeen did not mark carol's copy")
	}

	// Search.
	res, err := c.Search(ctx, sdk.Filter{Subject: "raw"})
	if err != nil || res.Total != 1 || res.Messages[0].ID != rawID {
		t.Errorf("Search subject=raw = %+v, %v", res, err)
	}
	res, err = c.Search(ctx, sdk.Filter{To: "carol@"})
	if err != nil || res.Total != 1 {
		t.Errorf("Search to=carol@ = %+v, %v", res, err)
	}
	res, err = c.Search(ctx, sdk.Filter{Since: time.Now().Add(time.Hour)})
	if err != nil || res.Total != 0 {
		t.Errorf("Search since=future = %+v, %v", res, err)
	}

	// Release needs a configured relay (409 otherwise, with the reason).
	if err := c.Release(ctx, id, "x@real.example"); sdk.StatusCode(err) != http.StatusConflict || !strings.Contains(err.Error(), "relay") {
		t.Errorf("Release without relay = %v, want 409 naming the relay", err)
	}

	// Relay queue: empty, and unknown deliveries are 404s.
	q, err := c.RelayQueue(ctx)
	if err != nil || len(q) != 0 {
		t.Errorf("RelayQueue = %+v, %v", q, err)
	}
	if err := c.RetryDelivery(ctx, "999999"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("RetryDelivery(unknown) = %v, want not found", err)
	}
	if err := c.DropDelivery(ctx, "999999"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("DropDelivery(unknown) = %v, want not found", err)
	}

	// Deletion.
	if err := c.DeleteMailbox(ctx, "eve@example.com"); err != nil {
		t.Fatal(err)
	}
	if l, err := c.ListMailbox(ctx, "eve@example.com", sdk.ListOptions{}); err == nil && l.Total != 0 {
		t.Errorf("eve's mailbox after delete: %+v", l)
	}
	if err := c.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, id); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want not found", err)
	}
	if err := c.Delete(ctx, id); sdk.StatusCode(err) != http.StatusNotFound {
		t.Errorf("second Delete = %v, want 404", err)
	}
	if _, err := c.SendRaw(ctx, []byte("From: x@example.com\r\nTo: z@example.com\r\nSubject: z\r\n\r\nz\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := c.Search(ctx, sdk.Filter{}); err != nil || res.Total != 0 {
		t.Errorf("Search after DeleteAll = %+v, %v", res, err)
	}

	// Bad input is a 4xx with the server's text.
	_, err = c.Search(ctx, sdk.Filter{Limit: -1})
	_ = err // a negative limit is not sent (zero values do not filter)
	_, err = c.SendRaw(ctx, []byte("not a message"))
	if code := sdk.StatusCode(err); code < 400 || code >= 500 {
		t.Errorf("SendRaw(garbage) = %v, want a 4xx", err)
	}
}

func TestWait(t *testing.T) {
	t.Parallel()
	s := sandboxtest.New(t)
	c := s.Client()
	ctx := ctxT(t, 30*time.Second)

	// A message that arrives while Wait blocks.
	done := make(chan *sdk.Message, 1)
	errc := make(chan error, 1)
	go func() {
		m, err := c.Wait(ctx, sdk.Filter{To: "late@example.com"})
		if err != nil {
			errc <- err
			return
		}
		done <- m
	}()
	sendSMTP(t, s.SMTPAddr(), "a@example.com", []string{"late@example.com"}, "Subject: late\n\nhello\n")
	select {
	case m := <-done:
		if m.Subject != "late" || m.Text == "" {
			t.Errorf("Wait got subject %q text %q", m.Subject, m.Text)
		}
	case err := <-errc:
		t.Fatal(err)
	}

	// WaitN.
	for i := range 3 {
		sendSMTP(t, s.SMTPAddr(), "a@example.com", []string{"many@example.com"}, fmt.Sprintf("Subject: n%d\n\nx\n", i))
	}
	ms, err := c.WaitN(ctx, sdk.Filter{To: "many@example.com"}, 3)
	if err != nil || len(ms) != 3 {
		t.Fatalf("WaitN = %d messages, %v", len(ms), err)
	}

	// A wait that times out says what it looked for and what there is.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = c.Wait(short, sdk.Filter{To: "nobody@example.com", Subject: "Welcome"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait for nothing = %v, want deadline exceeded", err)
	}
	for _, want := range []string{`to="nobody@example.com"`, `subject="Welcome"`, `"late"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("timeout error lacks %s:\n%v", want, err)
		}
	}
	t.Logf("timeout error reads:\n%v", err)

	// Since: only mail received at or after it.
	since := time.Now()
	short2, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if _, err := c.Wait(short2, sdk.Filter{To: "late@example.com", Since: since}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with since after the only match = %v, want timeout", err)
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	s := sandboxtest.New(t)
	ctx := ctxT(t, 20*time.Second)
	es, err := s.Client().Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	sendSMTP(t, s.SMTPAddr(), "a@example.com", []string{"ev@example.com"}, "Subject: evented\n\nx\n")
	for {
		ev, err := es.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if ev.Type != "message" {
			continue
		}
		var m struct {
			Subject   string
			Mailboxes []string
		}
		if err := ev.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if m.Subject != "evented" || len(m.Mailboxes) != 1 || m.Mailboxes[0] != "ev@example.com" {
			t.Fatalf("message event %s: want subject %q and mailbox ev@example.com", ev.Data, "evented")
		}
		return
	}
}

func TestPOP3AndIMAPSeeSameMail(t *testing.T) {
	t.Parallel()
	s := sandboxtest.New(t)
	sendSMTP(t, s.SMTPAddr(), "a@example.com", []string{"pop@example.com"}, "Subject: for pop\n\nx\n")
	ctx := ctxT(t, 20*time.Second)
	if _, err := s.Client().Wait(ctx, sdk.Filter{To: "pop@example.com"}); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", s.POP3Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tp := textproto.NewConn(conn)
	expectOK(t, tp, "greeting")
	tp.PrintfLine("USER pop@example.com")
	expectOK(t, tp, "USER")
	tp.PrintfLine("PASS x")
	expectOK(t, tp, "PASS")
	tp.PrintfLine("STAT")
	if stat := expectOK(t, tp, "STAT"); !strings.HasPrefix(stat, "+OK 1 ") {
		t.Errorf("STAT = %q", stat)
	}
	tp.PrintfLine("QUIT")
	expectOK(t, tp, "QUIT")

	ic, err := net.Dial("tcp", s.IMAPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	itp := textproto.NewConn(ic)
	if l, _ := itp.ReadLine(); !strings.HasPrefix(l, "* OK") {
		t.Fatalf("IMAP greeting %q", l)
	}
	itp.PrintfLine("a1 LOGIN pop@example.com x")
	readTagged(t, itp, "a1")
	itp.PrintfLine("a2 SELECT INBOX")
	lines := readTagged(t, itp, "a2")
	if !strings.Contains(strings.Join(lines, "\n"), "* 1 EXISTS") {
		t.Errorf("SELECT INBOX: %q", lines)
	}
	itp.PrintfLine("a3 LOGOUT")
}

func readTagged(t *testing.T, tp *textproto.Conn, tag string) []string {
	t.Helper()
	var lines []string
	for {
		l, err := tp.ReadLine()
		if err != nil {
			t.Fatalf("IMAP %s: %v (so far %q)", tag, err, lines)
		}
		lines = append(lines, l)
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				t.Fatalf("IMAP %s: %q", tag, l)
			}
			return lines
		}
	}
}

// smarthost is an in-process go-smtp server standing in for a real
// destination; it records what it receives.
type smarthost struct {
	mu   sync.Mutex
	got  chan string
	rcpt []string
}

func (h *smarthost) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return &shSession{h: h}, nil }

type shSession struct {
	h    *smarthost
	rcpt []string
}

func (s *shSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *shSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	s.rcpt = append(s.rcpt, to)
	return nil
}
func (s *shSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.h.mu.Lock()
	s.h.rcpt = append(s.h.rcpt, s.rcpt...)
	s.h.mu.Unlock()
	s.h.got <- string(b)
	return nil
}
func (s *shSession) Reset()        { s.rcpt = nil }
func (s *shSession) Logout() error { return nil }

func TestReleaseThroughRelay(t *testing.T) {
	t.Parallel()
	h := &smarthost{got: make(chan string, 4)}
	srv := gosmtp.NewServer(h)
	srv.Domain = "smarthost.test"
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	s := sandboxtest.New(t, sandboxtest.WithConfig(func(c *sandbox.Config) {
		c.Relay.Smarthost = l.Addr().String()
		c.Relay.RetryMin = 100 * time.Millisecond
		c.Relay.RetryMax = time.Second
	}))
	c := s.Client()
	ctx := ctxT(t, 30*time.Second)
	sendSMTP(t, s.SMTPAddr(), "a@example.com", []string{"held@example.com"}, "Subject: hold me\n\nx\n")
	m, err := c.Wait(ctx, sdk.Filter{To: "held@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.got:
		t.Fatal("relay delivered mail nobody released (open relay)")
	default:
	}
	if err := c.Release(ctx, m.ID, "real@dest.example"); err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-h.got:
		if !strings.Contains(body, "Subject: hold me") {
			t.Errorf("smarthost got %q", body)
		}
	case <-ctx.Done():
		q, _ := c.RelayQueue(context.Background())
		t.Fatalf("smarthost got nothing; queue: %+v", q)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.rcpt) != 1 || h.rcpt[0] != "real@dest.example" {
		t.Errorf("smarthost recipients %v", h.rcpt)
	}
}

// TestMailboxNamesAreEscaped: addresses with characters that mean
// something in a URL path or query still name their mailbox.
func TestMailboxNamesAreEscaped(t *testing.T) {
	t.Parallel()
	s := sandboxtest.New(t)
	c := s.Client()
	ctx := ctxT(t, 20*time.Second)
	for _, a := range []string{"we+ird/x@example.com", "a%20b@example.com", "q?x#y@example.com"} {
		if _, err := c.Send(ctx, sdk.SendRequest{From: "a@example.com", To: []string{a}, Subject: "s", Text: "x"}); err != nil {
			t.Errorf("send to %s: %v", a, err)
			continue
		}
		l, err := c.ListMailbox(ctx, a, sdk.ListOptions{})
		if err != nil || l.Total != 1 {
			t.Errorf("ListMailbox(%q) = %+v, %v", a, l, err)
		}
		if err := c.DeleteMailbox(ctx, a); err != nil {
			t.Errorf("DeleteMailbox(%q): %v", a, err)
		}
		if l, err := c.ListMailbox(ctx, a, sdk.ListOptions{}); err == nil && l.Total != 0 {
			t.Errorf("after DeleteMailbox(%q): %+v", a, l)
		}
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "http.htpasswd")
	if err := os.WriteFile(path, []byte("tester:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := sandboxtest.New(t, sandboxtest.WithConfig(func(c *sandbox.Config) { c.HTTPAuthFile = path }))
	ctx := ctxT(t, 20*time.Second)

	if _, err := s.Client().Mailboxes(ctx); sdk.StatusCode(err) != http.StatusUnauthorized {
		t.Errorf("without credentials: %v, want 401", err)
	}
	if _, err := sdk.New(s.URL(), sdk.WithBasicAuth("tester", "wrong")).Mailboxes(ctx); sdk.StatusCode(err) != http.StatusUnauthorized {
		t.Errorf("wrong password: %v, want 401", err)
	}
	c := sdk.New(s.URL(), sdk.WithBasicAuth("tester", "s3cret"))
	sendSMTP(t, s.SMTPAddr(), "a@example.com", []string{"auth@example.com"}, "Subject: behind auth\n\nx\n")
	if _, err := c.Wait(ctx, sdk.Filter{To: "auth@example.com"}); err != nil {
		t.Fatal(err)
	}
}

// Wait takes the same Filter as Search; its paging fields mean nothing to
// a wait and must not make the server refuse it.
func TestWaitWithPagingFilter(t *testing.T) {
	t.Parallel()
	s := sandboxtest.New(t)
	c := s.Client()
	ctx := ctxT(t, 20*time.Second)
	sendSMTP(t, s.SMTPAddr(), "a@example.com", []string{"paged@example.com"}, "Subject: paged\n\nhello\n")
	f := sdk.Filter{To: "paged@example.com", Limit: 5, Offset: 2}
	m, err := c.Wait(ctx, f)
	if err != nil || m.Subject != "paged" {
		t.Fatalf("Wait with Limit and Offset = %v, %v", m, err)
	}
	if ms, err := c.WaitN(ctx, f, 1); err != nil || len(ms) != 1 {
		t.Fatalf("WaitN with Limit and Offset = %d messages, %v", len(ms), err)
	}
}
