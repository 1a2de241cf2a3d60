package smtpd_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/smtp"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/mailsandbox/mailsandbox/capture/authfile"
	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// On implicit TLS (SMTPS) the connection limiter keeps the *tls.Conn that
// go-smtp checks, so the session counts as secure: with an auth file AUTH
// is offered at once, without STARTTLS.
func TestSMTPSOffersAuthThroughLimiter(t *testing.T) {
	t.Parallel()
	cfg, pool := selfSigned(t)
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	creds, err := authfile.Parse([]byte("app:"+string(h)+"\n"), "creds")
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(o *smtpd.Options) { o.TLSConfig = cfg; o.Auth = creds })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ts.srv.Serve(tls.NewListener(ln, cfg)) }()
	t.Cleanup(func() { ln.Close() })
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "127.0.0.1", RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Hello("x"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := cl.Extension("AUTH"); !ok {
		t.Fatal("AUTH not offered on SMTPS")
	}
	if ok, _ := cl.Extension("STARTTLS"); ok {
		t.Fatal("STARTTLS offered on SMTPS")
	}
	if err := cl.Auth(smtp.PlainAuth("", "app", "pw", "127.0.0.1")); err != nil {
		t.Fatalf("auth: %v", err)
	}
	if err := sendOn(cl, "a@example.com", "b@example.com", "Subject: smtps\r\n\r\nx\r\n"); err != nil {
		t.Fatal(err)
	}
	cl.Quit()
	if _, total, _ := ts.st.Search(context.Background(), store.Query{}); total != 1 {
		t.Fatalf("stored %d", total)
	}
}
