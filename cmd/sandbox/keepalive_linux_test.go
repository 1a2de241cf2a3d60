package sandbox_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

// TestSMTPConnectionsWithoutKeepalive: accepted SMTP connections carry no
// TCP keepalive timer (four setsockopt calls saved per connection; the
// session's timeouts end one whose client vanished), while IMAP's, whose
// sessions idle for long, keep Go's default. The server side of each
// connection is read from /proc/net/tcp, whose "tr" field is 2 while a
// socket's keepalive timer is pending.
func TestSMTPConnectionsWithoutKeepalive(t *testing.T) {
	sb, err := sandbox.Start(context.Background(), loopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	for _, c := range []struct {
		name, addr string
		keepalive  bool
	}{{"smtp", sb.SMTPAddr(), false}, {"imap", sb.IMAPAddr(), true}} {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
			t.Fatalf("%s greeting: %v", c.name, err)
		}
		// The server's socket: local is the listener, remote the client.
		tr := tcpTimer(t, c.addr, conn.LocalAddr().String())
		if got := tr == "02"; got != c.keepalive {
			t.Errorf("%s: server socket timer %q, keepalive %v, want %v", c.name, tr, got, c.keepalive)
		}
	}
}

// tcpTimer returns the "tr" (timer active) field of the IPv4 socket from
// local to remote in /proc/net/tcp.
func tcpTimer(t *testing.T, local, remote string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatalf("read /proc/net/tcp: %v", err)
	}
	l, r := procAddr(t, local), procAddr(t, remote)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 5 && f[1] == l && f[2] == r {
			return strings.SplitN(f[5], ":", 2)[0]
		}
	}
	t.Fatalf("no socket %s -> %s in /proc/net/tcp", local, remote)
	return ""
}

// procAddr writes 127.0.0.1:2525 as /proc/net/tcp does: 0100007F:09DD.
func procAddr(t *testing.T, a string) string {
	ta, err := net.ResolveTCPAddr("tcp", a)
	if err != nil || ta.IP.To4() == nil {
		t.Fatalf("address %q: want IPv4 (%v)", a, err)
	}
	ip := ta.IP.To4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ta.Port)
}
