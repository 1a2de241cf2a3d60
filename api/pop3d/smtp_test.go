package pop3d_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/smtp"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/smtpd"
)

// TestMailSentBySMTP sends through the real SMTP endpoint into the same
// store and reads it back over POP3, byte for byte.
func TestMailSentBySMTP(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtpd.New(ts.st, smtpd.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-errc; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Logf("smtp Serve: %v", err)
		}
	})

	// Bcc carol: she gets a copy too; bob's POP3 session must not touch it.
	if err := smtp.SendMail(ln.Addr().String(), nil, "alice@example.com", []string{"Bob@Example.com", "carol@example.com"}, []byte(msgFirst)); err != nil {
		t.Fatalf("send: %v", err)
	}
	c := ts.dial()
	if got := c.login("bob@example.com"); got != "+OK bob@example.com has 1 messages" {
		t.Fatalf("login: %q", got)
	}
	c.ok("RETR 1")
	if got := c.lines(); !equal(got, stuffed(msgFirst)) {
		t.Fatalf("RETR = %q, want %q", got, stuffed(msgFirst))
	}
	c.ok("DELE 1")
	c.ok("QUIT")
	c.expectClosed()
	if n := len(ts.inbox("bob@example.com")); n != 0 {
		t.Fatalf("bob has %d messages", n)
	}
	if n := len(ts.inbox("carol@example.com")); n != 1 {
		t.Fatalf("carol has %d messages, want 1", n)
	}
}
