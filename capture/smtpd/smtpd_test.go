package smtpd_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/internal/need"

	"github.com/mailsandbox/mailsandbox/capture/tlscert"

	"github.com/mailsandbox/mailsandbox/capture/authfile"
	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/store"
	"golang.org/x/crypto/bcrypt"
)

type testServer struct {
	addr string
	st   *store.Store
	srv  *smtpd.Server
}

func newTestServer(t testing.TB, configure ...func(*smtpd.Options)) *testServer {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(t.TempDir(), "mail.db")})
	if err != nil {
		t.Fatal(err)
	}
	var opts smtpd.Options
	for _, f := range configure {
		f(&opts)
	}
	srv := smtpd.New(st, opts, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		st.Close()
	})
	return &testServer{addr: l.Addr().String(), st: st, srv: srv}
}

// rawSession speaks SMTP line by line, as go-smtp's own tests do.
type rawSession struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawSession {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	s := &rawSession{t: t, c: c, br: bufio.NewReader(c)}
	s.expect("220")
	return s
}

// reply reads one (possibly multi-line) reply and returns its last line.
func (s *rawSession) reply() string {
	s.t.Helper()
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			s.t.Fatalf("read reply: %v", err)
		}
		if len(line) < 4 || line[3] != '-' {
			return strings.TrimRight(line, "\r\n")
		}
	}
}

func (s *rawSession) expect(code string) string {
	s.t.Helper()
	r := s.reply()
	if !strings.HasPrefix(r, code) {
		s.t.Fatalf("got %q, want %s", r, code)
	}
	return r
}

func (s *rawSession) cmd(line, code string) string {
	s.t.Helper()
	fmt.Fprintf(s.c, "%s\r\n", line)
	return s.expect(code)
}

func TestToCcBccLandInThreeMailboxesStoredOnce(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	body := "From: a@example.com\r\nTo: To@Example.com\r\nCc: cc@example.com\r\nSubject: three\r\n\r\nhello\r\n"
	if err := smtp.SendMail(ts.addr, nil, "a@example.com", []string{"To@Example.com", "cc@example.com", "hidden@example.com"}, []byte(body)); err != nil {
		t.Fatal(err)
	}
	list, total, err := ts.st.Search(context.Background(), store.Query{})
	if err != nil || total != 1 {
		t.Fatalf("stored %d messages (%v), want 1", total, err)
	}
	want := []string{"to@example.com", "cc@example.com", "hidden@example.com"}
	if strings.Join(list[0].Mailboxes, ",") != strings.Join(want, ",") {
		t.Fatalf("mailboxes %v, want %v", list[0].Mailboxes, want)
	}
	raw, _ := ts.st.Raw(context.Background(), list[0].ID)
	if string(raw) != body {
		t.Fatalf("raw %q", raw)
	}
}

func TestEightBitAndUTF8SurviveByteForByte(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	s := dialRaw(t, ts.addr)
	ehlo := s.cmd("EHLO client.test", "250")
	_ = ehlo
	body := "From: Jörg <jörg@bücher.example>\r\nTo: Zoë <zoë@例え.jp>\r\nSubject: Grüße – 你好\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nStraße \xff\xfe raw bytes ☃\r\n.leading dot\r\n"
	s.cmd("MAIL FROM:<jörg@bücher.example> SMTPUTF8 BODY=8BITMIME", "250")
	s.cmd("RCPT TO:<Zoë@例え.jp>", "250")
	s.cmd("DATA", "354")
	stuffed := strings.ReplaceAll(body, "\r\n.", "\r\n..")
	fmt.Fprintf(s.c, "%s.\r\n", stuffed)
	s.expect("250")
	s.cmd("QUIT", "221")
	list, _, _ := ts.st.Search(context.Background(), store.Query{Mailbox: "zoë@例え.jp"})
	if len(list) != 1 {
		t.Fatalf("mailbox zoë@例え.jp has %d messages", len(list))
	}
	raw, _ := ts.st.Raw(context.Background(), list[0].ID)
	if !bytes.Equal(raw, []byte(body)) {
		t.Fatalf("raw differs:\n%q\n%q", raw, body)
	}
	if list[0].Subject != "Grüße – 你好" || list[0].Envelope.From != "jörg@bücher.example" {
		t.Fatalf("summary %+v", list[0])
	}
}

func TestEHLOAdvertisesExtensionsWithoutSTARTTLSByDefault(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	s := dialRaw(t, ts.addr)
	fmt.Fprintf(s.c, "EHLO x\r\n")
	var lines []string
	for {
		line, _ := s.br.ReadString('\n')
		lines = append(lines, strings.TrimSpace(line))
		if len(line) < 4 || line[3] != '-' {
			break
		}
	}
	all := strings.Join(lines, "\n")
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 33554432", "CHUNKING", "AUTH PLAIN LOGIN"} {
		if !strings.Contains(all, ext) {
			t.Errorf("EHLO lacks %s:\n%s", ext, all)
		}
	}
	if strings.Contains(all, "STARTTLS") {
		t.Errorf("STARTTLS offered without a certificate")
	}
}

func TestLimitsKeepSessionGoing(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *smtpd.Options) { o.MaxMessageBytes = 1000; o.MaxRecipients = 3 })
	s := dialRaw(t, ts.addr)
	s.cmd("EHLO x", "250")
	s.cmd("MAIL FROM:<a@example.com> SIZE=5000", "552")
	s.cmd("MAIL FROM:<a@example.com>", "250")
	for i := 0; i < 3; i++ {
		s.cmd(fmt.Sprintf("RCPT TO:<r%d@example.com>", i), "250")
	}
	s.cmd("RCPT TO:<r4@example.com>", "452")
	s.cmd("DATA", "354")
	fmt.Fprintf(s.c, "Subject: big\r\n\r\n%s.\r\n", strings.Repeat("0123456789012345678901234567890123456789\r\n", 50))
	s.expect("552")
	// The session goes on: a small message is accepted on the same connection.
	s.cmd("MAIL FROM:<a@example.com>", "250")
	s.cmd("RCPT TO:<r0@example.com>", "250")
	s.cmd("DATA", "354")
	fmt.Fprintf(s.c, "Subject: small\r\n\r\nok\r\n.\r\n")
	s.expect("250")
	_, total, _ := ts.st.Search(context.Background(), store.Query{})
	if total != 1 {
		t.Fatalf("stored %d, want only the small one", total)
	}
}

func TestManyMessagesOverOneConnectionWithBDAT(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	s := dialRaw(t, ts.addr)
	s.cmd("EHLO x", "250")
	for i := 0; i < 10; i++ {
		s.cmd("MAIL FROM:<a@example.com>", "250")
		s.cmd("RCPT TO:<bob@example.com>", "250")
		msg := fmt.Sprintf("Subject: n%d\r\n\r\nbody\r\n", i)
		fmt.Fprintf(s.c, "BDAT %d LAST\r\n%s", len(msg), msg)
		s.expect("250")
	}
	_, total, _ := ts.st.Search(context.Background(), store.Query{Mailbox: "bob@example.com"})
	if total != 10 {
		t.Fatalf("stored %d", total)
	}
}

func TestConcurrentClientsLoseNothing(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	const clients, each = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			cl, err := smtp.Dial(ts.addr)
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			for i := 0; i < each; i++ {
				if err := sendOn(cl, "s@example.com", fmt.Sprintf("c%d@example.com", c), fmt.Sprintf("Subject: %d-%d\r\n\r\nx\r\n", c, i)); err != nil {
					errs <- err
					return
				}
			}
			errs <- cl.Quit()
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	_, total, _ := ts.st.Search(context.Background(), store.Query{})
	if total != clients*each {
		t.Fatalf("stored %d, want %d", total, clients*each)
	}
}

func sendOn(cl *smtp.Client, from, to, msg string) error {
	if err := cl.Mail(from); err != nil {
		return err
	}
	if err := cl.Rcpt(to); err != nil {
		return err
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	return w.Close()
}

func selfSigned(t testing.TB) (*tls.Config, *x509.CertPool) {
	return tlscert.ForTest(t)
}

func TestSTARTTLSAndAuthWithCredentialsFile(t *testing.T) {
	t.Parallel()
	cfg, pool := selfSigned(t)
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	creds, err := authfile.Parse([]byte("app:"+string(h)+"\n"), "creds")
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(o *smtpd.Options) { o.TLSConfig = cfg; o.Auth = creds })

	// Before TLS, AUTH is not offered and MAIL needs authentication.
	s := dialRaw(t, ts.addr)
	s.cmd("EHLO x", "250")
	s.cmd("AUTH PLAIN AGFwcABwdw==", "523")
	s.cmd("MAIL FROM:<a@example.com>", "530")

	dialTLS := func() *smtp.Client {
		cl, err := smtp.Dial(ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		if err := cl.StartTLS(&tls.Config{ServerName: "127.0.0.1", RootCAs: pool}); err != nil {
			t.Fatalf("starttls: %v", err)
		}
		return cl
	}
	// net/smtp quits after a failed AUTH, so the good try gets a new client.
	if err := dialTLS().Auth(smtp.PlainAuth("", "app", "wrong", "127.0.0.1")); err == nil || !strings.Contains(err.Error(), "535") {
		t.Fatalf("wrong password: %v", err)
	}
	cl := dialTLS()
	if err := cl.Auth(smtp.PlainAuth("", "app", "pw", "127.0.0.1")); err != nil {
		t.Fatalf("auth: %v", err)
	}
	if err := sendOn(cl, "a@example.com", "b@example.com", "Subject: tls\r\n\r\nx\r\n"); err != nil {
		t.Fatal(err)
	}
	cl.Quit()
	_, total, _ := ts.st.Search(context.Background(), store.Query{})
	if total != 1 {
		t.Fatalf("stored %d", total)
	}
}

func TestAuthAnyCredentialsByDefault(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	s := dialRaw(t, ts.addr)
	s.cmd("EHLO x", "250")
	s.cmd("AUTH LOGIN", "334")
	s.cmd("dXNlcg==", "334")
	s.cmd("cGFzcw==", "235")
	s.cmd("MAIL FROM:<a@example.com>", "250")
}

func TestConnectionCap(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *smtpd.Options) { o.MaxConnectionsPerIP = 2 })
	dialRaw(t, ts.addr)
	dialRaw(t, ts.addr)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "421") {
		t.Fatalf("third connection got %q", line)
	}
}

func TestIdleClientIsCutOff(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *smtpd.Options) { o.ReadTimeout = 200 * time.Millisecond })
	s := dialRaw(t, ts.addr)
	// Say nothing: the server must close the connection by itself.
	s.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(s.br); err != nil {
		t.Fatalf("expected the server to close, got %v", err)
	}
}

func TestPythonSmtplib(t *testing.T) {
	t.Parallel()
	py := need.Command(t, need.Python, "python3")
	ts := newTestServer(t)
	host, port, _ := net.SplitHostPort(ts.addr)
	script := `
import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "Py <py@example.com>"
m["To"] = "one@example.com, Two <two@example.com>"
m["Subject"] = "from python ünïcode"
m.set_content("héllo from smtplib\n")
m.add_attachment(b"\x00\x01binary", maintype="application", subtype="octet-stream", filename="a.bin")
with smtplib.SMTP(sys.argv[1], int(sys.argv[2])) as s:
    s.ehlo()
    s.login("any", "thing")
    s.send_message(m, to_addrs=["one@example.com", "two@example.com", "secret@example.com"])
`
	out, err := exec.Command(py, "-c", script, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	list, _, _ := ts.st.Search(context.Background(), store.Query{})
	if len(list) != 1 || len(list[0].Mailboxes) != 3 || !list[0].HasAttachments || list[0].Subject != "from python ünïcode" {
		t.Fatalf("stored %+v", list)
	}
}

func TestSwaks(t *testing.T) {
	t.Parallel()
	swaks := need.Command(t, need.Swaks, "swaks")
	ts := newTestServer(t)
	out, err := exec.Command(swaks, "--server", ts.addr, "--from", "sw@example.com", "--to", "dest@example.com",
		"--header", "Subject: via swaks", "--body", "swaks body", "--auth", "PLAIN", "--auth-user", "u", "--auth-password", "p").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	list, _, _ := ts.st.Search(context.Background(), store.Query{Mailbox: "dest@example.com"})
	if len(list) != 1 || list[0].Subject != "via swaks" {
		t.Fatalf("stored %+v", list)
	}
}

// TestClientAddressAndHeloStored: the message keeps the address it came
// from and the name the client greeted with (SPF in the authentication
// check uses both).
func TestClientAddressAndHeloStored(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	conn, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("app.example.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.com"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: where from\r\n\r\nhi\r\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	list, _, err := ts.st.Search(context.Background(), store.Query{})
	if err != nil || len(list) != 1 {
		t.Fatalf("stored %d (%v)", len(list), err)
	}
	m, err := ts.st.Get(context.Background(), list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Envelope.ClientIP != "127.0.0.2" || m.Envelope.Helo != "app.example.test" {
		t.Errorf("envelope %+v, want client 127.0.0.2 and helo app.example.test", m.Envelope)
	}
}
