package smtpd

import (
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// go-smtp flushes every reply line with its own write: an EHLO reply is
// nine syscalls, and a pipelined MAIL, RCPT, DATA three. SMTP is a
// conversation, so replies may wait until the server next reads: a
// replyBuffer holds writes and sends them in one go before each read (and
// on close, or when a lot has piled up). A write error surfaces at that
// read, where go-smtp ends the session as it would have.

// replyBufferLimit sends held replies once this many bytes are waiting.
const replyBufferLimit = 32 << 10

type replyListener struct {
	net.Listener
	tls *tls.Config // implicit TLS: the config the limiter rebuilt with
	s   *Server
}

// Accept wraps each connection in a replyBuffer. A *tls.Conn (implicit
// TLS, not yet handshaken) is rebuilt over a buffered connection, so TLS
// records coalesce too and go-smtp still sees a *tls.Conn.
func (l replyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*tls.Conn); ok && l.tls != nil {
		rb := &replyBuffer{Conn: tc.NetConn(), srv: l.s, tlsUnder: true}
		l.s.noteGreeted(rb)
		var under net.Conn = rb
		if l.s.wrapsSessions() {
			under = l.s.wrapSession(under, true)
		}
		return tls.Server(under, l.tls), nil
	}
	rb := &replyBuffer{Conn: c, srv: l.s, fast: dataFast{on: !l.s.noFastData.Load(), maxMsg: int(min(l.s.opts.MaxMessageBytes, 1<<40)), maxLn: l.s.opts.MaxLineBytes, scratch: l.s.scratch}}
	l.s.noteGreeted(rb)
	if l.s.wrapsSessions() {
		return l.s.wrapSession(rb, false), nil
	}
	return rb, nil
}

// noteGreeted lists a new connection until it gets a session or closes;
// one accepted while Shutdown runs is hung up at once.
func (s *Server) noteGreeted(rb *replyBuffer) {
	s.mu.Lock()
	draining := s.draining
	if !draining {
		s.greeted[rb] = struct{}{}
	}
	s.mu.Unlock()
	if draining {
		rb.hangUp(s.opts.Domain)
	}
}

// connBufferOf finds the replyBuffer at the bottom of go-smtp's
// connection, under TLS too (unlike replyBufferOf, the fast path's).
func connBufferOf(c net.Conn) *replyBuffer {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	return replyBufferOf(c)
}

type replyBuffer struct {
	net.Conn
	mu  sync.Mutex // Close may come from the server's goroutine
	buf []byte

	srv      *Server // drops the connection from its greeted list at Close
	tlsUnder bool    // under implicit TLS: carries ciphertext only

	dl              sync.Mutex // never held over I/O: hangUp sets a deadline while a send is stuck
	readDL, writeDL time.Time  // the deadlines in force; zero: none or unknown

	fast dataFast // read side, see datafast.go
}

func (c *replyBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	if len(c.buf) >= replyBufferLimit {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *replyBuffer) Read(p []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	if c.fast.on {
		return c.readFast(p)
	}
	return c.Conn.Read(p)
}

// Close sends what is held (a final 221 or 421), unless a send is stuck
// on a client that does not read: then closing is what unsticks it.
func (c *replyBuffer) Close() error {
	if c.srv != nil {
		c.srv.mu.Lock()
		delete(c.srv.greeted, c)
		c.srv.mu.Unlock()
	}
	c.tryFlush()
	return c.Conn.Close()
}

// hangUp ends a connection that has no session yet, for Shutdown: with a
// 421 (after what is held, the greeting), or, under implicit TLS, where a
// plain line would corrupt the stream, by closing it.
func (c *replyBuffer) hangUp(domain string) {
	if !c.tlsUnder {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second)) // a client that does not read cannot hold it
		_, _ = c.Write([]byte(shutdownReply(domain)))
	}
	_ = c.Close()
}

// tryFlush sends what is held unless a send is in progress, which may be
// stuck on a client that does not read: it is never waited for.
func (c *replyBuffer) tryFlush() {
	if c.mu.TryLock() {
		_ = c.flushLocked()
		c.mu.Unlock()
	}
}

func (c *replyBuffer) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *replyBuffer) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > 4<<10 {
		c.buf = nil // a rare large burst: do not keep its buffer per session
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// SetDeadline and SetWriteDeadline send what is held before a deadline
// that has already passed takes effect: crypto/tls's Close writes its
// close_notify and then sets the write deadline to "now" to fail later
// writes, which would drop a final 221 still held here. Deadlines in the
// future (go-smtp sets one before every reply) leave replies held.
//
// go-smtp also moves both deadlines before every command and reply, a
// runtime timer update each through the connection's layers. A deadline
// that only moves later, by less than its slack, is left as set: the
// socket's deadline is then at most the slack later than asked, never
// earlier (the slack is an eighth of the time left, at most a second, so a
// 5-minute timeout may end a session up to a second late).
func (c *replyBuffer) SetDeadline(t time.Time) error {
	c.flushBefore(t)
	c.dl.Lock()
	defer c.dl.Unlock()
	c.readDL, c.writeDL = time.Time{}, time.Time{}
	if err := c.Conn.SetDeadline(t); err != nil {
		return err
	}
	c.readDL, c.writeDL = t, t
	return nil
}

func (c *replyBuffer) SetWriteDeadline(t time.Time) error {
	c.flushBefore(t)
	return c.setLazily(&c.writeDL, t, c.Conn.SetWriteDeadline)
}

func (c *replyBuffer) SetReadDeadline(t time.Time) error {
	return c.setLazily(&c.readDL, t, c.Conn.SetReadDeadline)
}

// maxDeadlineSlack bounds how much later than asked a deadline may fire.
const maxDeadlineSlack = time.Second

// setLazily sets a deadline through set unless the one in force (*cur)
// ends at most its slack after t; one it sets ends its slack after t.
func (c *replyBuffer) setLazily(cur *time.Time, t time.Time, set func(time.Time) error) error {
	c.dl.Lock()
	defer c.dl.Unlock()
	if t.IsZero() {
		*cur = time.Time{}
		return set(t)
	}
	left := time.Until(t)
	if left <= 0 {
		*cur = t
		return set(t)
	}
	slack := min(left/8, maxDeadlineSlack)
	if !cur.IsZero() && !cur.Before(t) && cur.Sub(t) <= slack {
		return nil
	}
	*cur = time.Time{} // unknown if set fails
	if err := set(t.Add(slack)); err != nil {
		return err
	}
	*cur = t.Add(slack)
	return nil
}

func (c *replyBuffer) flushBefore(t time.Time) {
	if !t.IsZero() && !t.After(time.Now()) {
		c.tryFlush()
	}
}

// CloseWrite half-closes the connection when the underlying one can.
func (c *replyBuffer) CloseWrite() error {
	if err := c.flush(); err != nil {
		return err
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// NetConn returns the wrapped connection.
func (c *replyBuffer) NetConn() net.Conn { return c.Conn }
