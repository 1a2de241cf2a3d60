package pop3d_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/api/pop3d"
)

// dialFrom connects from a loopback address and returns the greeting.
func dialFrom(t *testing.T, addr, local string) (net.Conn, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, _ := bufio.NewReader(c).ReadString('\n')
	return c, l
}

// MaxConnectionsPerIP caps one client address; other addresses (127.0.0.2,
// also loopback) still get in, up to MaxConnections in total.
func TestHardeningConnectionCapPerIP(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *pop3d.Options) { o.MaxConnections = 3; o.MaxConnectionsPerIP = 2 })
	want := func(local, prefix string) net.Conn {
		t.Helper()
		c, l := dialFrom(t, ts.addr, local)
		if !strings.HasPrefix(l, prefix) {
			t.Fatalf("from %s: %q, want %q", local, l, prefix)
		}
		return c
	}
	first := want("127.0.0.1", "+OK")
	want("127.0.0.1", "+OK")
	want("127.0.0.1", "-ERR [SYS/TEMP] too many connections")
	want("127.0.0.2", "+OK")
	want("127.0.0.3", "-ERR [SYS/TEMP] too many connections")
	// The slot is free once the session is over (the server closed).
	first.Write([]byte("QUIT\r\n"))
	c := newClient(t, first)
	c.expectClosed()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, l := dialFrom(t, ts.addr, "127.0.0.3")
		if strings.HasPrefix(l, "+OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %q", l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Zero options mean 1000 connections and 100 per address: the 101st from
// one address is refused.
func TestDefaultConnectionCaps(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for i := 0; i < 100; i++ {
		if _, l := dialFrom(t, ts.addr, "127.0.0.1"); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("connection %d: %q", i+1, l)
		}
	}
	if _, l := dialFrom(t, ts.addr, "127.0.0.1"); !strings.HasPrefix(l, "-ERR [SYS/TEMP]") {
		t.Fatalf("connection 101: %q", l)
	}
}

// QUIT releases the maildrop lock (after removing what was marked) before
// answering +OK: a client that logs in again as soon as it has the reply
// never meets -ERR [IN-USE].
func TestQuitReleasesLockBeforeReply(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for i := 0; i < 5; i++ {
		ts.ingest(msgFirst, "carol@example.com")
	}
	c := ts.dial()
	c.login("carol@example.com")
	for i := 0; i < 200; i++ {
		// The next session is connected and has sent USER before this
		// one quits, so PASS follows the +OK to QUIT by one write.
		next := ts.dial()
		next.ok("USER carol@example.com")
		if i < 3 {
			c.ok("DELE 1")
		}
		c.ok("QUIT")
		if got := next.cmd("PASS x"); !strings.HasPrefix(got, "+OK") {
			t.Fatalf("login %d right after QUIT: %q", i+1, got)
		}
		c = next
	}
	c.ok("QUIT")
	c = ts.dial()
	if got := c.login("carol@example.com"); !strings.Contains(got, "has 2 messages") {
		t.Fatalf("after three DELE+QUIT: %q", got)
	}
}
