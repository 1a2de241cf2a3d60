package imapd_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/api/imapd"
)

// imapGreeting connects from a loopback address and returns the greeting.
func imapGreeting(t *testing.T, addr, local string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	l, _ := br.ReadString('\n')
	return c, br, l
}

// Caps on concurrent connections hold per client address and in total
// (127.0.0.2 and 127.0.0.3 are loopback too), answer an untagged BYE, and
// free their slot when a connection ends.
func TestHardeningConnectionCaps(t *testing.T) {
	t.Parallel()
	addr, _ := startIMAP(t, func(o *imapd.Options) { o.MaxConnections = 3; o.MaxConnectionsPerIP = 2 })
	want := func(local, prefix string) (net.Conn, *bufio.Reader) {
		t.Helper()
		c, br, l := imapGreeting(t, addr, local)
		if !strings.HasPrefix(l, prefix) {
			t.Fatalf("from %s: %q, want %q", local, l, prefix)
		}
		return c, br
	}
	first, br := want("127.0.0.1", "* OK")
	want("127.0.0.1", "* OK")
	refused, rbr := want("127.0.0.1", "* BYE [UNAVAILABLE] too many connections")
	want("127.0.0.2", "* OK")
	want("127.0.0.3", "* BYE [UNAVAILABLE] too many connections")
	// A refused connection is closed right after the BYE.
	refused.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, err := rbr.ReadString('\n'); err == nil {
		t.Fatalf("refused connection still open: %q", l)
	}
	// LOGOUT frees the slot once the server has closed the connection.
	first.Write([]byte("a LOGOUT\r\n"))
	first.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := br.ReadString('\n'); err != nil {
			break
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, l := imapGreeting(t, addr, "127.0.0.3")
		if strings.HasPrefix(l, "* OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %q", l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Zero options mean 100 connections per address.
func TestDefaultConnectionCapPerIP(t *testing.T) {
	t.Parallel()
	addr, _ := startIMAP(t, nil)
	for i := 0; i < 100; i++ {
		if _, _, l := imapGreeting(t, addr, "127.0.0.1"); !strings.HasPrefix(l, "* OK") {
			t.Fatalf("connection %d: %q", i+1, l)
		}
	}
	if _, _, l := imapGreeting(t, addr, "127.0.0.1"); !strings.HasPrefix(l, "* BYE [UNAVAILABLE]") {
		t.Fatalf("connection 101: %q", l)
	}
}
