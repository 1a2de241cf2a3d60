package connlimit_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/tlscert"

	"github.com/mailsandbox/mailsandbox/capture/connlimit"
)

// testListener serves a limited listener on loopback; accepted
// connections get a greeting line and arrive on conns.
type testListener struct {
	lim   *connlimit.Limiter
	addr  string
	conns chan net.Conn
}

func newTestListener(t *testing.T, o connlimit.Options) *testListener {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := &testListener{lim: connlimit.New(o), addr: inner.Addr().String(), conns: make(chan net.Conn, 100)}
	ln := tl.lim.Listen(inner)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello\r\n"))
			tl.conns <- c
		}
	}()
	return tl
}

// dial connects from local (a loopback address) and returns the first
// line the server sends.
func (tl *testListener) dial(t *testing.T, local string) (net.Conn, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", tl.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return c, line
}

func (tl *testListener) accepted(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-tl.conns:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

func TestCapsTotalAndPerIP(t *testing.T) {
	t.Parallel()
	var refusedPerIP, refusedTotal int
	tl := newTestListener(t, connlimit.Options{
		MaxConnections: 3, MaxConnectionsPerIP: 2, Refusal: connlimit.POP3(),
		OnRefuse: func(_ net.Addr, perIP bool) {
			if perIP {
				refusedPerIP++
			} else {
				refusedTotal++
			}
		},
	})
	want := func(local, prefix string) {
		t.Helper()
		if _, l := tl.dial(t, local); !strings.HasPrefix(l, prefix) {
			t.Fatalf("from %s: %q, want %q", local, l, prefix)
		}
	}
	want("127.0.0.1", "hello")
	first := tl.accepted(t)
	want("127.0.0.1", "hello")
	tl.accepted(t)
	want("127.0.0.1", "-ERR [SYS/TEMP] too many connections")
	want("127.0.0.2", "hello")
	tl.accepted(t)
	want("127.0.0.3", "-ERR [SYS/TEMP] too many connections")
	if total, ip := tl.lim.Active("127.0.0.1"); total != 3 || ip != 2 {
		t.Fatalf("active %d, from 127.0.0.1 %d; want 3, 2", total, ip)
	}
	// Closing frees the slot exactly once, however often it is closed.
	first.Close()
	first.Close()
	if total, ip := tl.lim.Active("127.0.0.1"); total != 2 || ip != 1 {
		t.Fatalf("after close: active %d, from 127.0.0.1 %d; want 2, 1", total, ip)
	}
	want("127.0.0.3", "hello")
	tl.accepted(t)
	want("127.0.0.4", "-ERR")
	// OnRefuse runs in Accept's goroutine, before the refusal is written:
	// the refusals read above have been counted.
	if refusedPerIP != 1 || refusedTotal != 2 {
		t.Fatalf("refused per IP %d, total %d; want 1, 2", refusedPerIP, refusedTotal)
	}
}

func TestRefusalTexts(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		refusal []byte
		want    string
	}{
		{connlimit.SMTP("mx.test"), "421 4.7.0 mx.test Too many connections"},
		{connlimit.POP3(), "-ERR [SYS/TEMP] too many connections"},
		{connlimit.IMAP(), "* BYE [UNAVAILABLE] too many connections"},
	} {
		tl := newTestListener(t, connlimit.Options{MaxConnections: 1, Refusal: c.refusal})
		tl.dial(t, "127.0.0.1")
		tl.accepted(t)
		conn, line := tl.dial(t, "127.0.0.1")
		if !strings.HasPrefix(line, c.want) || !strings.HasSuffix(line, "\r\n") {
			t.Fatalf("refusal %q, want %q…CRLF", line, c.want)
		}
		// And the connection is closed right after.
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := conn.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Fatalf("refused connection still open: %d, %v", n, err)
		}
	}
}

// An HTTP client that sends its request before reading gets the 503 and
// its JSON body (not a connection reset), from a real http.Server.
func TestHTTPRefusal(t *testing.T) {
	t.Parallel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := connlimit.New(connlimit.Options{MaxConnections: 1, Refusal: connlimit.HTTP(), AwaitRequest: true, Linger: 500 * time.Millisecond})
	release := make(chan struct{})
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			w.WriteHeader(200)
			http.NewResponseController(w).Flush()
			<-release
		}
	})}
	go hs.Serve(lim.Listen(inner))
	t.Cleanup(func() { close(release); hs.Close() })
	base := "http://" + inner.Addr().String()
	hold, err := http.Get(base + "/hold")
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Body.Close()
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	for i := 0; i < 20; i++ {
		resp, err := cl.Post(base+"/x", "text/plain", strings.NewReader(strings.Repeat("x", 100_000)))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct{ Error string }
		if resp.StatusCode != 503 || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error, "too many connections") {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
		if resp.Header.Get("Content-Type") != "application/json" || !resp.Close {
			t.Fatalf("headers %v, close %v", resp.Header, resp.Close)
		}
	}
}

// A connection from a tls.NewListener stays a *tls.Conn (servers detect
// implicit TLS that way) and is still counted.
func TestImplicitTLSStaysTLS(t *testing.T) {
	t.Parallel()
	cfg := selfSigned(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := connlimit.New(connlimit.Options{MaxConnections: 1, Refusal: connlimit.IMAP(), TLSConfig: cfg})
	ln := lim.Listen(tls.NewListener(inner, cfg))
	defer ln.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("* OK hi\r\n"))
			got <- c
		}
		ln.Accept() // keeps refusing
	}()
	ccfg := &tls.Config{InsecureSkipVerify: true}
	dial := func() string {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: ccfg}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, _ := bufio.NewReader(c).ReadString('\n')
		return l
	}
	if l := dial(); l != "* OK hi\r\n" {
		t.Fatalf("first: %q", l)
	}
	c := <-got
	if _, ok := c.(*tls.Conn); !ok {
		t.Fatalf("accepted %T, want *tls.Conn", c)
	}
	if l := dial(); !strings.HasPrefix(l, "* BYE [UNAVAILABLE]") {
		t.Fatalf("second (over the cap, refused over TLS): %q", l)
	}
	c.Close()
	if total, _ := lim.Active("127.0.0.1"); total != 0 {
		t.Fatalf("closing the TLS conn left %d counted", total)
	}
}

func selfSigned(t *testing.T) *tls.Config {
	cfg, _ := tlscert.ForTest(t)
	return cfg
}
