package smtpd_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// hardenTrickle writes data one byte per interval until it is all sent or
// a write fails, and reports how many bytes went out.
func hardenTrickle(c net.Conn, data string, interval time.Duration) <-chan int {
	sent := make(chan int, 1)
	go func() {
		n := 0
		for ; n < len(data); n++ {
			if _, err := c.Write([]byte{data[n]}); err != nil {
				break
			}
			time.Sleep(interval)
		}
		sent <- n
	}()
	return sent
}

// hardenExpectClosed reads until the server closes c (or 20s pass) and
// returns everything it said.
func hardenExpectClosed(t *testing.T, c net.Conn, br *bufio.Reader) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server kept the connection open; it said %q", b)
	}
	return string(b)
}

func hardenDial(t *testing.T, addr string, local string) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func hardenLine(t *testing.T, c net.Conn, br *bufio.Reader) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, l)
		}
		if len(l) < 4 || l[3] != '-' {
			return strings.TrimRight(l, "\r\n")
		}
	}
}

// A client that sends one byte every 100ms never completes a command
// within the read timeout: the server cuts it off, in the command phase
// and while receiving DATA, and stores nothing.
func TestHardeningSlowClientIsCutOff(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *smtpd.Options) { o.ReadTimeout = 500 * time.Millisecond })
	for _, phase := range []string{"command", "data"} {
		t.Run(phase, func(t *testing.T) {
			c, br := hardenDial(t, ts.addr, "")
			if l := hardenLine(t, c, br); !strings.HasPrefix(l, "220") {
				t.Fatalf("greeting %q", l)
			}
			payload := "EHLO " + strings.Repeat("slow", 50) + "\r\n"
			if phase == "data" {
				for _, cmd := range []string{"EHLO x", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "DATA"} {
					fmt.Fprintf(c, "%s\r\n", cmd)
					if l := hardenLine(t, c, br); l[0] != '2' && l[0] != '3' {
						t.Fatalf("%s: %q", cmd, l)
					}
				}
				payload = "Subject: slow\r\n\r\n" + strings.Repeat("x", 200) + "\r\n.\r\n"
			}
			sent := hardenTrickle(c, payload, 100*time.Millisecond)
			hardenExpectClosed(t, c, br)
			c.Close()
			if n := <-sent; n >= len(payload) {
				t.Fatalf("the whole slow %s (%d bytes) got through before the server gave up", phase, n)
			}
		})
	}
	if _, total, _ := ts.st.Search(context.Background(), store.Query{}); total != 0 {
		t.Fatalf("stored %d messages from slow clients", total)
	}
}

// An endless command line is refused with 500 and the connection closed
// after MaxLineBytes, without the server reading (and buffering) the rest:
// the client's stream of 64 MiB cannot be delivered.
func TestHardeningOverlongLineRefused(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *smtpd.Options) { o.MaxLineBytes = 1024 })
	for _, phase := range []string{"command", "data"} {
		t.Run(phase, func(t *testing.T) {
			c, br := hardenDial(t, ts.addr, "")
			hardenLine(t, c, br)
			if phase == "data" {
				for _, cmd := range []string{"EHLO x", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "DATA"} {
					fmt.Fprintf(c, "%s\r\n", cmd)
					hardenLine(t, c, br)
				}
			}
			written := make(chan int64, 1)
			go func() {
				chunk := []byte(strings.Repeat("A", 64<<10))
				var n int64
				c.SetWriteDeadline(time.Now().Add(20 * time.Second))
				io.WriteString(c, "NOOP ")
				for n < 64<<20 {
					m, err := c.Write(chunk)
					n += int64(m)
					if err != nil {
						break
					}
				}
				written <- n
			}()
			said := hardenExpectClosed(t, c, br)
			if !strings.HasPrefix(said, "5") {
				t.Errorf("server said %q, want a 5xx refusal", said)
			}
			c.Close()
			if n := <-written; n >= 64<<20 {
				t.Fatalf("server swallowed the whole 64 MiB line")
			}
		})
	}
	if _, total, _ := ts.st.Search(context.Background(), store.Query{}); total != 0 {
		t.Fatalf("stored %d messages", total)
	}
}

// Caps on concurrent connections hold per client address and in total
// (other addresses are 127.0.0.2 and 127.0.0.3, also loopback), answer
// 421, and free their slot when a connection ends.
func TestHardeningConnectionCaps(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *smtpd.Options) { o.MaxConnections = 3; o.MaxConnectionsPerIP = 2 })
	greet := func(local string) (net.Conn, string) {
		c, br := hardenDial(t, ts.addr, local)
		return c, hardenLine(t, c, br)
	}
	a1, l := greet("127.0.0.1")
	if !strings.HasPrefix(l, "220") {
		t.Fatalf("first: %q", l)
	}
	if _, l = greet("127.0.0.1"); !strings.HasPrefix(l, "220") {
		t.Fatalf("second: %q", l)
	}
	if _, l = greet("127.0.0.1"); !strings.HasPrefix(l, "421") {
		t.Fatalf("third from one address: %q, want 421 (per-IP cap)", l)
	}
	if _, l = greet("127.0.0.2"); !strings.HasPrefix(l, "220") {
		t.Fatalf("first from another address: %q", l)
	}
	if _, l = greet("127.0.0.3"); !strings.HasPrefix(l, "421") {
		t.Fatalf("fourth in total: %q, want 421 (total cap)", l)
	}
	// Closing one frees its slot.
	fmt.Fprintf(a1, "QUIT\r\n")
	a1.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, l = greet("127.0.0.3")
		if strings.HasPrefix(l, "220") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %q", l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A message over MaxMessageBytes gets 552 at end of data even when the
// client never announced SIZE, and nothing is stored; too many recipients
// get 452.
func TestHardeningMessageAndRecipientLimits(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *smtpd.Options) { o.MaxMessageBytes = 4096; o.MaxRecipients = 2 })
	c, br := hardenDial(t, ts.addr, "")
	hardenLine(t, c, br)
	cmd := func(s, want string) {
		t.Helper()
		fmt.Fprintf(c, "%s\r\n", s)
		if l := hardenLine(t, c, br); !strings.HasPrefix(l, want) {
			t.Fatalf("%s: %q, want %s", s, l, want)
		}
	}
	cmd("EHLO x", "250")
	cmd("MAIL FROM:<a@example.com>", "250")
	cmd("RCPT TO:<b@example.com>", "250")
	cmd("RCPT TO:<c@example.com>", "250")
	cmd("RCPT TO:<d@example.com>", "452")
	cmd("DATA", "354")
	fmt.Fprintf(c, "Subject: big\r\n\r\n")
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(c, "%078d\r\n", i)
	}
	cmd(".", "552")
	if _, total, _ := ts.st.Search(context.Background(), store.Query{}); total != 0 {
		t.Fatalf("stored %d messages", total)
	}
}
