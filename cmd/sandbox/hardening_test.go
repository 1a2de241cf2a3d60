package sandbox_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

// hardenStart starts a sandbox with one credentials file for SMTP,
// mailboxes and HTTP (bob@example.com / secret) and every listener on a
// free loopback port.
func hardenStart(t *testing.T, configure func(*sandbox.Config)) *sandbox.Sandbox {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	auth := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(auth, []byte("bob@example.com:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := sandbox.Config{
		SMTPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", POP3Addr: "127.0.0.1:0", IMAPAddr: "127.0.0.1:0",
		DB:           filepath.Join(t.TempDir(), "mail.db"),
		SMTPAuthFile: auth, MailboxAuthFile: auth, HTTPAuthFile: auth,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if configure != nil {
		configure(&cfg)
	}
	sb, err := sandbox.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

// hardenSession is a line-based client for SMTP, POP3 and IMAP.
type hardenSession struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func hardenOpen(t *testing.T, addr string) *hardenSession {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	s := &hardenSession{t: t, c: c, br: bufio.NewReader(c)}
	s.line()
	return s
}

func (s *hardenSession) line() string {
	s.t.Helper()
	l, err := s.br.ReadString('\n')
	if err != nil {
		s.t.Fatalf("read: %v (%q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// smtp sends a command and returns the last line of the reply.
func (s *hardenSession) smtp(cmd string) string {
	s.t.Helper()
	fmt.Fprintf(s.c, "%s\r\n", cmd)
	for {
		l := s.line()
		if len(l) < 4 || l[3] != '-' {
			return l
		}
	}
}

// smtpAll sends a command and returns every line of the reply.
func (s *hardenSession) smtpAll(cmd string) string {
	s.t.Helper()
	fmt.Fprintf(s.c, "%s\r\n", cmd)
	var all []string
	for {
		l := s.line()
		all = append(all, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(all, "\n")
		}
	}
}

func (s *hardenSession) imap(tag, cmd string) string {
	s.t.Helper()
	fmt.Fprintf(s.c, "%s %s\r\n", tag, cmd)
	for {
		if l := s.line(); strings.HasPrefix(l, tag+" ") {
			return l
		}
	}
}

func plain(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

// With auth files, a wrong password and an unknown user get the very same
// answer on every protocol (no user enumeration), the right password
// works, and nothing is readable without credentials.
func TestHardeningAuthNoEnumeration(t *testing.T) {
	t.Parallel()
	sb := hardenStart(t, func(c *sandbox.Config) {
		c.SMTPAuthAllowInsecure, c.MailboxAuthAllowInsecure = true, true
	})
	// Each attempt uses its own session; failures for one name are slowed
	// down, so the names differ per protocol.
	t.Run("smtp", func(t *testing.T) {
		try := func(user, pass string) string {
			s := hardenOpen(t, sb.SMTPAddr())
			s.smtp("EHLO x")
			return s.smtp("AUTH PLAIN " + plain(user, pass))
		}
		wrong, unknown := try("bob@example.com", "nope"), try("nobody-smtp@example.com", "nope")
		if wrong != unknown || !strings.HasPrefix(wrong, "535") {
			t.Fatalf("wrong password %q, unknown user %q: want the same 535", wrong, unknown)
		}
		if ok := try("bob@example.com", "secret"); !strings.HasPrefix(ok, "235") {
			t.Fatalf("right password: %q", ok)
		}
		s := hardenOpen(t, sb.SMTPAddr())
		s.smtp("EHLO x")
		if r := s.smtp("MAIL FROM:<a@example.com>"); !strings.HasPrefix(r, "530") {
			t.Fatalf("MAIL without AUTH: %q, want 530", r)
		}
	})
	t.Run("pop3", func(t *testing.T) {
		try := func(user, pass string) string {
			s := hardenOpen(t, sb.POP3Addr())
			s.smtp("USER " + user) // one-line replies, like SMTP's
			return s.smtp("PASS " + pass)
		}
		wrong, unknown := try("bob@example.com", "nope"), try("nobody-pop3@example.com", "nope")
		if wrong != unknown || !strings.HasPrefix(wrong, "-ERR") {
			t.Fatalf("wrong password %q, unknown user %q: want the same -ERR", wrong, unknown)
		}
		if ok := try("bob@example.com", "secret"); !strings.HasPrefix(ok, "+OK") {
			t.Fatalf("right password: %q", ok)
		}
	})
	t.Run("imap", func(t *testing.T) {
		try := func(user, pass string) string {
			s := hardenOpen(t, sb.IMAPAddr())
			return strings.TrimPrefix(s.imap("a", "LOGIN "+user+" "+pass), "a ")
		}
		wrong, unknown := try("bob@example.com", "nope"), try("nobody-imap@example.com", "nope")
		if wrong != unknown || !strings.HasPrefix(wrong, "NO") {
			t.Fatalf("wrong password %q, unknown user %q: want the same NO", wrong, unknown)
		}
		if ok := try("bob@example.com", "secret"); !strings.HasPrefix(ok, "OK") {
			t.Fatalf("right password: %q", ok)
		}
	})
	t.Run("http", func(t *testing.T) {
		try := func(user, pass string) (int, string) {
			req, _ := http.NewRequest("GET", sb.URL()+"/api/v1/messages/search", nil)
			if user != "" {
				req.SetBasicAuth(user, pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(b)
		}
		wc, wb := try("bob@example.com", "nope")
		uc, ub := try("nobody-http@example.com", "nope")
		nc, _ := try("", "")
		if wc != 401 || uc != 401 || nc != 401 || wb != ub {
			t.Fatalf("wrong password %d %q, unknown user %d %q, none %d: want the same 401", wc, wb, uc, ub, nc)
		}
		if c, b := try("bob@example.com", "secret"); c != 200 {
			t.Fatalf("right password: %d %s", c, b)
		}
		for _, p := range []string{"/api/v1/mailboxes", "/api/v1/messages/x/raw", "/api/v1/events", "/metrics", "/"} {
			resp, err := http.Get(sb.URL() + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Errorf("GET %s without credentials: %d, want 401", p, resp.StatusCode)
			}
		}
	})
}

// With auth files and a certificate, plain-text credentials are not taken
// before TLS: SMTP offers no AUTH, IMAP announces LOGINDISABLED and
// refuses LOGIN, POP3 refuses USER/PASS.
func TestHardeningNoPlaintextAuthBeforeTLS(t *testing.T) {
	t.Parallel()
	sb := hardenStart(t, func(c *sandbox.Config) { c.TLSSelfSigned = true })
	s := hardenOpen(t, sb.SMTPAddr())
	if ehlo := s.smtpAll("EHLO x"); strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("EHLO before TLS: %q, want STARTTLS and no AUTH", ehlo)
	}
	if r := s.smtp("AUTH PLAIN " + plain("bob@example.com", "secret")); strings.HasPrefix(r, "235") {
		t.Errorf("AUTH before TLS accepted: %q", r)
	}
	im := hardenOpen(t, sb.IMAPAddr())
	fmt.Fprintf(im.c, "c CAPABILITY\r\n")
	caps := im.line()
	if !strings.Contains(caps, "LOGINDISABLED") {
		t.Errorf("IMAP capabilities before TLS: %q, want LOGINDISABLED", caps)
	}
	if r := im.imap("a", "LOGIN bob@example.com secret"); strings.HasPrefix(r, "a OK") {
		t.Errorf("IMAP LOGIN before TLS accepted: %q", r)
	}
	pop := hardenOpen(t, sb.POP3Addr())
	u := pop.smtp("USER bob@example.com")
	p := pop.smtp("PASS secret")
	if strings.HasPrefix(p, "+OK") {
		t.Errorf("POP3 USER/PASS before TLS accepted: %q / %q", u, p)
	}
}
