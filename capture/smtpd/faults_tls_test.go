package smtpd_test

import (
	"crypto/tls"
	"net"
	"net/smtp"
	"strings"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/faults"
	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/smtplog"
)

// Under TLS the session conn sees ciphertext: the stages go-smtp reports
// still apply, a data rule answers after the message, and the transcript
// notes where it stops.
func TestFaultsUnderTLS(t *testing.T) {
	cfg, pool := selfSigned(t)
	eng := faults.New(faults.Options{})
	eng.Add(faults.Rule{Stage: faults.StageMail, From: "*@refused.test", Reply: "451 4.7.1 Not now"})
	eng.Add(faults.Rule{Stage: faults.StageData, To: "*@data.test", Reply: "452 4.3.1 Full"})
	lg := smtplog.New(smtplog.Options{})
	ts := newTestServer(t, func(o *smtpd.Options) { o.TLSConfig = cfg; o.Faults = eng; o.SessionLog = lg })
	clientTLS := &tls.Config{ServerName: "127.0.0.1", RootCAs: pool}

	starttls := func() *smtp.Client {
		cl, err := smtp.Dial(ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		if err := cl.StartTLS(clientTLS); err != nil {
			t.Fatalf("starttls: %v", err)
		}
		return cl
	}
	if err := starttls().Mail("a@refused.test"); err == nil || !strings.Contains(err.Error(), "451") {
		t.Fatalf("mail under STARTTLS: %v", err)
	}
	if err := sendOn(starttls(), "a@ok.test", "b@data.test", "Subject: x\r\n\r\nx\r\n"); err == nil || !strings.Contains(err.Error(), "452") {
		t.Fatalf("data under STARTTLS: %v", err)
	}
	if err := sendOn(starttls(), "a@ok.test", "b@ok.test", "Subject: x\r\n\r\nx\r\n"); err != nil {
		t.Fatalf("clean send under STARTTLS: %v", err)
	}
	if n := stored(t, ts.st); n != 1 {
		t.Fatalf("stored %d, want 1", n)
	}
	ss := lg.List(smtplog.Filter{})
	if len(ss) != 3 {
		t.Fatalf("%d sessions", len(ss))
	}
	if !strings.Contains(ss[0].Lines[len(ss[0].Lines)-1].Text, "STARTTLS") {
		t.Fatalf("no STARTTLS note: %+v", ss[0].Lines)
	}

	// Implicit TLS: the same server on a TLS listener.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ts.srv.Serve(tls.NewListener(l, cfg))
	conn, err := tls.Dial("tcp", l.Addr().String(), clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Mail("a@refused.test"); err == nil || !strings.Contains(err.Error(), "451") {
		t.Fatalf("mail under implicit TLS: %v", err)
	}
	if got := lg.List(smtplog.Filter{Limit: 1}); !strings.Contains(got[0].Lines[0].Text, "implicit TLS") || got[0].Faults != 0 {
		t.Fatalf("implicit TLS session: %+v", got[0])
	}
}
