// Package connlimit caps concurrent connections on a listener, in total and
// per client IP. A connection over a cap is sent a one-line refusal in its
// protocol's words and closed at once; it never reaches the server's
// session code. Slots are freed when the accepted connection is closed
// (exactly once, however often Close is called).
//
// One [Limiter] can be shared by several listeners (e.g. SMTP and SMTPS of
// one server): its caps hold across all of them.
//
// Implicit TLS: servers in this project detect TLS by asserting
// *tls.Conn, so a wrapper around a *tls.Conn would hide it. When a
// listener made with tls.NewListener hands out a *tls.Conn (not yet
// handshaken), the limiter rebuilds it as tls.Server over the counted raw
// connection with [Options.TLSConfig]; pass the same config the TLS
// listener uses.
package connlimit

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Options configure a Limiter.
type Options struct {
	// MaxConnections caps concurrent connections in total; <= 0: no cap.
	MaxConnections int
	// MaxConnectionsPerIP caps concurrent connections from one client IP
	// address; <= 0: no cap.
	MaxConnectionsPerIP int
	// Refusal is written to a connection over a cap before it is closed
	// (see SMTP, POP3, IMAP and HTTP); nil writes nothing.
	Refusal []byte
	// RefusalTimeout bounds writing the refusal (and, on implicit TLS, the
	// handshake before it). 0: 2 seconds.
	RefusalTimeout time.Duration
	// Linger, when > 0, half-closes a refused connection after the refusal
	// and reads (and drops) what the client still sends for up to this
	// long before closing, so that a client that already sent a request
	// (HTTP) reads the refusal instead of a connection reset.
	Linger time.Duration
	// AwaitRequest reads the client's first request head (up to an empty
	// line, 64 KiB or RefusalTimeout) before writing the refusal: HTTP
	// clients such as Go's treat a response that arrives before their
	// request was sent as unsolicited, and drop it.
	AwaitRequest bool
	// TLSConfig rebuilds *tls.Conn connections over the counted connection
	// (see the package comment). nil: *tls.Conn is wrapped like any conn.
	TLSConfig *tls.Config
	// OnRefuse, when set, is called (in Accept's goroutine) for every
	// refused connection; perIP tells which cap was hit.
	OnRefuse func(remote net.Addr, perIP bool)
}

// maxRefusing bounds the goroutines writing refusals at once; beyond it a
// refused connection is closed without a word.
const maxRefusing = 256

// Limiter counts connections. Its zero value is not usable; call New.
type Limiter struct {
	opts     Options
	refusing chan struct{}

	mu    sync.Mutex
	total int
	perIP map[string]int
}

// New returns a limiter.
func New(o Options) *Limiter {
	if o.RefusalTimeout <= 0 {
		o.RefusalTimeout = 2 * time.Second
	}
	return &Limiter{opts: o, refusing: make(chan struct{}, maxRefusing), perIP: map[string]int{}}
}

// Listen wraps inner: its Accept refuses connections over the caps and
// returns the others counted.
func (l *Limiter) Listen(inner net.Listener) net.Listener {
	return &listener{Listener: inner, l: l}
}

// Active returns the number of counted connections, in total and from ip.
func (l *Limiter) Active(ip string) (total, fromIP int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.perIP[ip]
}

// acquire takes a slot for ip; ok false tells which cap refused it.
func (l *Limiter) acquire(ip string) (ok, perIP bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := l.opts.MaxConnectionsPerIP; m > 0 && l.perIP[ip] >= m {
		return false, true
	}
	if m := l.opts.MaxConnections; m > 0 && l.total >= m {
		return false, false
	}
	l.total++
	l.perIP[ip]++
	return true, false
}

func (l *Limiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

// refuse writes the refusal and closes c, in a short-lived goroutine (so a
// client that does not read cannot stall Accept), or closes it at once
// when too many refusals are in flight.
func (l *Limiter) refuse(c net.Conn) {
	if len(l.opts.Refusal) == 0 {
		c.Close()
		return
	}
	select {
	case l.refusing <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(l.opts.RefusalTimeout))
		if l.opts.AwaitRequest && !awaitHead(c) {
			return
		}
		if _, err := c.Write(l.opts.Refusal); err != nil || l.opts.Linger <= 0 {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			if cw.CloseWrite() != nil {
				return
			}
		}
		_ = c.SetReadDeadline(time.Now().Add(l.opts.Linger))
		_, _ = io.CopyN(io.Discard, c, 1<<20)
	}()
}

// awaitHead reads from c up to the end of a request head (an empty line);
// false when c ended, failed or sent 64 KiB without one.
func awaitHead(c net.Conn) bool {
	var buf [4096]byte
	var tail []byte
	for read := 0; read < 64<<10; {
		n, err := c.Read(buf[:])
		read += n
		tail = append(tail, buf[:n]...)
		if strings.Contains(string(tail), "\r\n\r\n") || strings.Contains(string(tail), "\n\n") {
			return true
		}
		if len(tail) > 4 {
			tail = tail[len(tail)-4:]
		}
		if err != nil {
			return false
		}
	}
	return false
}

type listener struct {
	net.Listener
	l *Limiter
}

// Accept returns the next connection under the caps; connections over a
// cap are refused and never returned.
func (ln *listener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := RemoteIP(c)
		ok, perIP := ln.l.acquire(ip)
		if !ok {
			if f := ln.l.opts.OnRefuse; f != nil {
				f(c.RemoteAddr(), perIP)
			}
			ln.l.refuse(c)
			continue
		}
		cc := &conn{l: ln.l, ip: ip}
		if tc, isTLS := c.(*tls.Conn); isTLS && ln.l.opts.TLSConfig != nil {
			cc.Conn = tc.NetConn()
			return tls.Server(cc, ln.l.opts.TLSConfig), nil
		}
		cc.Conn = c
		return cc, nil
	}
}

// conn frees its slot on the first Close.
type conn struct {
	net.Conn
	l    *Limiter
	ip   string
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() { c.l.release(c.ip) })
	return c.Conn.Close()
}

// CloseWrite half-closes the connection when the underlying one can.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("connlimit: %T cannot half-close", c.Conn)
}

// NetConn returns the wrapped connection.
func (c *conn) NetConn() net.Conn { return c.Conn }

// RemoteIP is the IP address of c's peer (its whole remote address when
// that has no port).
func RemoteIP(c net.Conn) string {
	a := c.RemoteAddr()
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// SMTP is the RFC 5321 refusal: 421 and close.
func SMTP(domain string) []byte {
	return []byte("421 4.7.0 " + domain + " Too many connections, try again later\r\n")
}

// POP3 is the RFC 2449 / RFC 3206 refusal.
func POP3() []byte { return []byte("-ERR [SYS/TEMP] too many connections, try again later\r\n") }

// IMAP is the RFC 3501 / RFC 5530 refusal (an untagged BYE as greeting).
func IMAP() []byte { return []byte("* BYE [UNAVAILABLE] too many connections, try again later\r\n") }

// HTTP is a minimal 503 with a JSON {"error": …} body and Connection: close.
func HTTP() []byte {
	body := `{"error":"too many connections, try again later"}` + "\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: application/json\r\n" + // as every API answer
		"X-Content-Type-Options: nosniff\r\n" +
		"Retry-After: 1\r\n" +
		"Connection: close\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body)
}
