package smtpd_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/smtp"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/faults"
	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/smtplog"
	"github.com/mailsandbox/mailsandbox/internal/need"
)

// Under TLS the session conn sees ciphertext: the stages go-smtp reports
// still apply, a data rule answers after the message, and the transcript
// notes where it stops.
func TestFaultsUnderTLS(t *testing.T) {
	t.Parallel()
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
	// After STARTTLS the transcript goes on from the session's side: the
	// commands acted on and their replies, a fault's marked, and the
	// envelope for filters.
	transcript := func(v smtplog.View) string {
		var b strings.Builder
		for _, l := range v.Lines {
			fmt.Fprintf(&b, "%s %s fault=%v\n", l.Dir, l.Text, l.Fault)
		}
		return b.String()
	}
	for i, want := range [][]string{
		{"C STARTTLS", "- TLS: from here", "C EHLO localhost", "C MAIL FROM:<a@ok.test>", "S 250 2.0.0 Roger", "C RCPT TO:<b@ok.test>", "C DATA", "S 354 ", "S 250 2.0.0 Ok: queued as"},
		{"C STARTTLS", "- TLS: from here", "C MAIL FROM:<a@ok.test>", "C RCPT TO:<b@data.test>", "S 250 2.0.0 I'll make sure <b@data.test>", "C DATA", "S 452 4.3.1 Full fault=true"},
		{"C STARTTLS", "- TLS: from here", "C MAIL FROM:<a@refused.test>", "S 451 4.7.1 Not now fault=true"},
	} {
		got := transcript(ss[i])
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("session %d lacks %q:\n%s", i, w, got)
			}
		}
	}
	if got := lg.List(smtplog.Filter{To: "b@data.test"}); len(got) != 1 || got[0].Faults != 1 {
		t.Fatalf("filter on a recipient sent under TLS: %+v", got)
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
	if got := lg.List(smtplog.Filter{Limit: 1}); !strings.Contains(got[0].Lines[0].Text, "implicit TLS") || got[0].Faults != 1 ||
		!strings.Contains(transcript(got[0]), "C MAIL FROM:<a@refused.test>") || !strings.Contains(transcript(got[0]), "S 451 4.7.1 Not now fault=true") {
		t.Fatalf("implicit TLS session: %s", transcript(got[0]))
	}
}

// swaks, a real client, over STARTTLS with AUTH: the session log shows
// what it did after the upgrade, its secret masked.
func TestSessionLogUnderSTARTTLSWithSwaks(t *testing.T) {
	t.Parallel()
	swaks := need.SwaksTLS(t)
	cfg, _ := selfSigned(t)
	lg := smtplog.New(smtplog.Options{})
	ts := newTestServer(t, func(o *smtpd.Options) { o.TLSConfig = cfg; o.SessionLog = lg })
	host, port, _ := net.SplitHostPort(ts.addr)
	out, err := exec.Command(swaks, "--server", host, "--port", port, "--from", "app@shop.test", "--to", "bob@example.com",
		"-tls", "--auth", "PLAIN", "--auth-user", "u", "--auth-password", "hunter2secret").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	var ss []smtplog.View
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ss = lg.List(smtplog.Filter{From: "app@shop.test", To: "bob@"}); len(ss) == 1 && ss[0].Ended != nil {
			break
		}
	}
	if len(ss) != 1 {
		t.Fatalf("no session with the envelope sent under TLS:\n%s", out)
	}
	var b strings.Builder
	for _, l := range ss[0].Lines {
		fmt.Fprintf(&b, "%s %s\n", l.Dir, l.Text)
	}
	got := b.String()
	for _, w := range []string{"C STARTTLS", "S 220 2.0.0 Ready to start TLS", "- TLS: from here", "C AUTH PLAIN ***", "S 235 2.0.0 Authentication succeeded",
		"C MAIL FROM:<app@shop.test>", "C RCPT TO:<bob@example.com>", "C DATA", "S 250 2.0.0 Ok: queued as "} {
		if !strings.Contains(got, w) {
			t.Errorf("transcript lacks %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "hunter2") || strings.Contains(got, "aHVudGVy") {
		t.Errorf("secret in the transcript:\n%s", got)
	}
}
