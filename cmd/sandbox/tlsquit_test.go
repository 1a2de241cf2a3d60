package sandbox_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
	"github.com/mailsandbox/mailsandbox/internal/need"
)

// TestQUITOverTLSGets221: after STARTTLS, and on the implicit-TLS port,
// QUIT is answered with 221 before the server closes; swaks exits 0.
func TestQUITOverTLSGets221(t *testing.T) {
	cfg := loopbackConfig()
	cfg.TLSSelfSigned = true
	cfg.SMTPSAddr = "127.0.0.1:0"
	sb, err := sandbox.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	quit := func(conn net.Conn, r *bufio.Reader) {
		t.Helper()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write([]byte("QUIT\r\n"))
		l, err := r.ReadString('\n')
		if !strings.HasPrefix(l, "221 ") {
			t.Errorf("QUIT over TLS answered %q (%v)", l, err)
		}
	}
	readReply := func(r *bufio.Reader) string {
		for {
			l, err := r.ReadString('\n')
			if err != nil || len(l) < 4 || l[3] == ' ' {
				return l
			}
		}
	}
	// STARTTLS
	raw, err := net.Dial("tcp", sb.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(raw)
	readReply(r)
	raw.Write([]byte("EHLO x\r\n"))
	readReply(r)
	raw.Write([]byte("STARTTLS\r\n"))
	if l := readReply(r); !strings.HasPrefix(l, "220 ") {
		t.Fatalf("STARTTLS: %q", l)
	}
	tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	tr := bufio.NewReader(tc)
	tc.Write([]byte("EHLO x\r\n"))
	readReply(tr)
	quit(tc, tr)
	// implicit TLS
	ic, err := tls.Dial("tcp", sb.SMTPSAddr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	ir := bufio.NewReader(ic)
	readReply(ir)
	quit(ic, ir)
	// swaks, a real client, over STARTTLS: needs swaks able to speak TLS
	// (Perl's Net::SSLeay), which a plain swaks install may lack.
	t.Run("swaks", func(t *testing.T) {
		swaks := need.SwaksTLS(t)
		out, err := exec.Command(swaks, "--server", sb.SMTPAddr(), "--to", "bob@example.com", "-tls").CombinedOutput()
		if err != nil {
			t.Errorf("swaks -tls: %v\n%s", err, out)
		}
	})
}
