package imapd

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// The library answers a command it could not decode for a reason other
// than syntax with "NO [SERVERBUG] Internal server error". The one such
// reason a client can cause is a mailbox name that is not valid modified
// UTF-7 (RFC 3501 5.1.3) or not UTF-8: the name is decoded before any
// session method runs, so the session cannot answer it. replyConn rewrites
// that answer on its way out into what Dovecot answers. (Our own failures
// say "internal error" after what failed, so they pass unchanged.) TLS
// connections get the same through a relay (see tlsrelay.go).

var (
	libServerBug  = []byte(" NO [SERVERBUG] Internal server error\r\n")
	badMailboxMsg = []byte(" NO Mailbox name is not valid mUTF-7\r\n")
)

// rewriteReplies rewrites, in p (whole response lines), the library's
// answer to an undecodable mailbox name, and puts ENVELOPE source routes
// in place (routes.go).
func rewriteReplies(p []byte, routes routeMark) []byte {
	if bytes.Contains(p, libServerBug) {
		p = bytes.ReplaceAll(p, libServerBug, badMailboxMsg)
	}
	return routes.restore(p)
}

// tailKeep: output with no line end for longer than twice this (a
// literal) is written but for its last tailKeep bytes, which could hold
// the start of a line to rewrite (a marked route is far shorter).
const tailKeep = 8 << 10

// lineCut is how much of b may be rewritten and written now: up to its
// last line end; with none, all but tailKeep bytes of a long run; else 0.
func lineCut(b []byte) int {
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return i + 1
	}
	if len(b) > 2*tailKeep {
		return len(b) - tailKeep
	}
	return 0
}

const (
	// coalesceMax is how much output is held before it is written anyway.
	coalesceMax = 64 << 10
	// flushTimeout bounds a write of held output that the library is not
	// timing itself (it clears its deadline after each response).
	flushTimeout = 30 * time.Second
)

// replyConn rewrites replies (above) by whole lines: the library writes a
// long response line in several pieces (its buffer is 4 KiB), and a line
// is held until its end has been written. During a FETCH it gathers the
// output into few writes (see hold).
type replyConn struct {
	net.Conn

	// tls and inner, when set, take over the connection at STARTTLS (see
	// tlsrelay.go); relay is then the library's end of the relay, and
	// every call goes there.
	tls    *tls.Config
	inner  *innerTLS
	relay  net.Conn
	routes routeMark

	mu       sync.Mutex
	held     []byte
	reading  bool      // a Read is pending: write at once
	holding  bool      // a FETCH is writing: gather (see hold)
	deadline time.Time // the library's write deadline
	err      error     // a failed write: every later write fails too
}

func newReplyConn(c net.Conn, cfg *tls.Config, inner *innerTLS, routes routeMark) *replyConn {
	return &replyConn{Conn: c, tls: cfg, inner: inner, routes: routes}
}

// startTLSReply is the library's answer to STARTTLS, the whole of one write
// after the tag; no other command's answer has this text.
var startTLSReply = []byte(" OK Begin TLS negotiation now\r\n")

func isStartTLSReply(p []byte) bool {
	tag, ok := bytes.CutSuffix(p, startTLSReply)
	return ok && len(tag) > 0 && !bytes.ContainsAny(tag, " \r\n")
}

// to returns the relay once STARTTLS handed the connection over, else nil.
func (c *replyConn) to() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.relay
}

func (c *replyConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.relay != nil {
		return c.relay.Write(p)
	}
	if c.err != nil {
		return 0, c.err
	}
	c.held = append(c.held, p...)
	if c.inner != nil && isStartTLSReply(p) {
		// The client's TLS handshake follows this answer: it goes to the
		// relay, and the library's handshake to the relay's inner end.
		if err := c.flushLocked(true, true); err != nil {
			return 0, err
		}
		c.relay = startRelay(tls.Server(c.Conn, c.tls), c.inner, c.routes)
		return len(p), nil
	}
	// Whole lines go out at once, except during a FETCH (see hold).
	if c.holding && len(c.held) < coalesceMax {
		return len(p), nil
	}
	if err := c.flushLocked(false, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// hold gathers output while a FETCH writes its responses (the library
// flushes after each, a system call per message of a whole-folder FETCH;
// Dovecot writes such output in large blocks); release writes it. Only the
// session's goroutine calls them, around its Fetch. (Holding all output
// until the library next reads made TestHardeningSlowClientIsCutOff fail
// now and then under -race, cause not found; this bounded form does not.)
func (c *replyConn) hold() {
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
}

func (c *replyConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	if c.relay != nil {
		return nil
	}
	return c.flushLocked(false, false)
}

// flushLocked writes the held output, rewritten: all of it when all (the
// library is about to read, so it wrote whole responses), else as lineCut
// allows (a long response line comes in several writes, and is rewritten
// whole). It writes under the library's deadline, or (own) under
// flushTimeout, restoring the library's afterwards.
func (c *replyConn) flushLocked(own, all bool) error {
	if len(c.held) == 0 || c.err != nil {
		return c.err
	}
	cut := len(c.held)
	if !all {
		if cut = lineCut(c.held); cut == 0 {
			return nil
		}
	}
	if own {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(flushTimeout))
		defer func() { _ = c.Conn.SetWriteDeadline(c.deadline) }()
	}
	_, err := c.Conn.Write(rewriteReplies(c.held[:cut], c.routes))
	c.held = append(c.held[:0], c.held[cut:]...)
	if cap(c.held) > 4*coalesceMax {
		c.held = nil // a large literal went by: do not keep its buffer
	}
	if err != nil {
		c.err = fmt.Errorf("write imap output: %w", err)
	}
	return c.err
}

func (c *replyConn) Read(p []byte) (int, error) {
	if r := c.to(); r != nil {
		return r.Read(p)
	}
	c.mu.Lock()
	err := c.flushLocked(true, true)
	c.reading = true
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.reading = false
	c.mu.Unlock()
	return n, err
}

func (c *replyConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.relay != nil {
		return c.relay.SetWriteDeadline(t)
	}
	c.deadline = t
	return c.Conn.SetWriteDeadline(t)
}

func (c *replyConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	r := c.relay
	c.mu.Unlock()
	if r != nil {
		return r.SetDeadline(t)
	}
	return c.Conn.SetDeadline(t)
}

func (c *replyConn) SetReadDeadline(t time.Time) error {
	if r := c.to(); r != nil {
		return r.SetReadDeadline(t)
	}
	return c.Conn.SetReadDeadline(t)
}

// Close writes what is held (a LOGOUT's BYE and OK), briefly, then
// closes. When a write is under way (a client not reading), it closes at
// once: that ends the write.
func (c *replyConn) Close() error {
	if !c.mu.TryLock() {
		return c.Conn.Close()
	}
	if r := c.relay; r != nil {
		c.mu.Unlock()
		return r.Close() // the relay closes the connection
	}
	if len(c.held) > 0 && c.err == nil {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Conn.Write(rewriteReplies(c.held, c.routes))
		c.held = nil
	}
	if c.err == nil {
		c.err = net.ErrClosed
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// replyListener wraps every accepted connection in a replyConn, and puts
// a TLS connection (implicit TLS) behind a relay (tlsrelay.go) when inner
// is set.
type replyListener struct {
	net.Listener
	tls    *tls.Config
	inner  *innerTLS
	routes routeMark
}

func (l replyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if _, isTLS := c.(*tls.Conn); isTLS {
		if l.inner == nil {
			return c, nil // the library tells TLS by the type; keep it visible
		}
		return tls.Server(startRelay(c, l.inner, l.routes), l.inner.server), nil
	}
	return newReplyConn(c, l.tls, l.inner, l.routes), nil
}
