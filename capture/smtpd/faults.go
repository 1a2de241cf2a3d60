package smtpd

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsandbox/mailsandbox/capture/faults"
	"github.com/mailsandbox/mailsandbox/capture/smtplog"
)

// FaultHook decides, at each stage of a session, whether the server
// misbehaves (fault injection). *faults.Engine implements it.
type FaultHook interface {
	// Active is the fast path: false when no rule can apply.
	Active() bool
	Decide(faults.Event) faults.Outcome
}

// sessionConn sits between the reply buffer and go-smtp on every
// connection when faults or the session log are configured. It sees the
// client's lines before go-smtp does and the replies as go-smtp writes
// them, which is what the stages go-smtp does not expose need: the
// greeting (connect) and the DATA command before its 354. It also records
// the transcript. Message bodies and BDAT chunks pass through unexamined
// except for finding their end.
//
// After STARTTLS, and under implicit TLS, the bytes are encrypted: the
// connection becomes opaque (bytes pass through, the transcript notes it),
// and only the stages go-smtp reports to the session apply.
type sessionConn struct {
	net.Conn // the reply buffer, or the raw connection under implicit TLS
	s        *Server
	// passive: no fault rule existed when the connection opened, so only
	// the session log needs it. Then bytes go to go-smtp as read, with no
	// copy and no holding back, and tap records the lines from them.
	passive bool
	rec     *smtplog.Session // nil without a session log
	client  string
	done    chan struct{} // closed by Close: delays end
	closeMu sync.Once
	opaque  atomic.Bool
	bps     atomic.Int64 // reply bandwidth in bytes a second; 0 unlimited

	// Read side: only the session goroutine reads.
	rbuf []byte
	in   []byte // read from the client, not yet examined
	out  []byte // examined, for go-smtp
	// Backing arrays reused by in and out, so a busy session does not
	// allocate per command.
	inbuf, outbuf []byte
	se            *session

	mu         sync.Mutex // write side, and state both sides share
	greeted    bool
	mode       int    // what the client is sending
	atLine     bool   // in modeData: at the start of a line
	bdatLeft   int64  // in modeBdat: chunk bytes left
	lastCmd    string // the last command passed on, if DATA, BDAT, AUTH or STARTTLS
	wpart      []byte // a reply line not yet complete
	faultReply bool   // the reply being written came from a fault
	closeAfter bool   // hang up once that reply is written
	swallow    int    // replies to injected commands, not for the client
	wasAuth    bool
	dot        int    // passive, in modeData: bytes of ".\r\n" seen at a line start
	part       []byte // passive: a command line not yet complete
}

const (
	modeCmd = iota
	modeAuth
	modeData
	modeBdat
)

// wrapSession wraps an accepted connection; under implicit TLS (tlsUnder)
// it sees only ciphertext.
func (s *Server) wrapSession(c net.Conn, tlsUnder bool) *sessionConn {
	sc := &sessionConn{Conn: c, s: s, done: make(chan struct{}), atLine: true}
	sc.client = hostOf(c.RemoteAddr())
	if s.opts.SessionLog != nil {
		sc.rec = s.opts.SessionLog.Start(c.RemoteAddr().String(), c.LocalAddr().String())
		if tlsUnder {
			sc.rec.Note("implicit TLS: "+tlsNote, false)
		}
	}
	sc.opaque.Store(tlsUnder)
	sc.passive = s.hook() == nil && sc.rec != nil
	return sc
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// sessionConnOf finds the sessionConn under go-smtp's connection (which
// STARTTLS may have wrapped in TLS).
func sessionConnOf(c net.Conn) *sessionConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, _ := c.(*sessionConn)
	return sc
}

func (c *sessionConn) Close() error {
	c.closeMu.Do(func() {
		close(c.done)
		if c.rec != nil {
			c.rec.End()
		}
	})
	return c.Conn.Close()
}

// wait sleeps d, or less if the connection or the server closes first.
func (c *sessionConn) wait(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.done:
	case <-c.s.closing:
	}
}

// wrapsSessions reports whether a new connection gets a sessionConn: with
// the session log, or while a fault rule exists. Without either, a
// connection costs what it did before faults existed; a connect or data
// rule added later then applies to connections opened after it (a data
// rule on an older connection answers after the message instead).
func (s *Server) wrapsSessions() bool {
	return s.opts.SessionLog != nil || (s.opts.Faults != nil && s.opts.Faults.Active())
}

// hook returns the fault hook when a rule may apply.
func (s *Server) hook() FaultHook {
	if h := s.opts.Faults; h != nil && h.Active() {
		return h
	}
	return nil
}

// Read passes the client's bytes to go-smtp one command line at a time,
// so that each is examined in the state go-smtp left after the previous
// one.
func (c *sessionConn) Read(p []byte) (int, error) {
	if c.passive {
		n, err := c.Conn.Read(p)
		if n > 0 && !c.opaque.Load() {
			c.tap(p[:n])
		}
		return n, err
	}
	for len(c.out) == 0 {
		if c.opaque.Load() && len(c.in) == 0 {
			return c.Conn.Read(p)
		}
		if c.opaque.Load() || c.examine() {
			if c.opaque.Load() {
				c.out, c.in = c.in, nil
			}
			continue
		}
		if c.rbuf == nil {
			c.rbuf = make([]byte, 4096)
		}
		n, err := c.Conn.Read(c.rbuf)
		if len(c.in) == 0 {
			c.in = c.inbuf[:0]
		}
		c.in = append(c.in, c.rbuf[:n]...)
		if cap(c.in) <= 64<<10 && cap(c.in) > cap(c.inbuf) {
			c.inbuf = c.in[:0:cap(c.in)]
		}
		if err != nil {
			if len(c.in) > 0 { // hand over what came before the error
				c.out, c.in = c.in, nil
				break
			}
			return 0, err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// examine moves what can be decided from c.in to c.out; false when it
// needs more bytes.
func (c *sessionConn) examine() bool {
	c.mu.Lock()
	switch c.mode {
	case modeBdat:
		n := min(int64(len(c.in)), c.bdatLeft)
		if n == 0 {
			c.mu.Unlock()
			return false
		}
		c.bdatLeft -= n
		if c.bdatLeft == 0 {
			c.mode = modeCmd
		}
		c.mu.Unlock()
		c.take(int(n))
		return true
	case modeData:
		// Up to and including the "." line, or all complete lines.
		end, i := 0, 0
		for i < len(c.in) {
			nl := bytes.IndexByte(c.in[i:], '\n')
			if nl < 0 {
				break
			}
			line := c.in[i : i+nl+1]
			i += nl + 1
			end = i
			if c.atLine && (string(line) == ".\r\n" || string(line) == ".\n") {
				c.mode = modeCmd
				break
			}
			c.atLine = true
		}
		if end == 0 {
			// A long line without a newline yet: pass it on, noting we
			// are mid-line.
			if len(c.in) > 0 && len(c.in) >= c.s.opts.MaxLineBytes {
				end = len(c.in)
				c.atLine = false
			} else {
				c.mu.Unlock()
				return false
			}
		}
		c.mu.Unlock()
		c.take(end)
		return true
	}
	nl := bytes.IndexByte(c.in, '\n')
	if nl < 0 {
		// go-smtp refuses over-long lines itself: let it see them.
		if len(c.in) > c.s.opts.MaxLineBytes {
			c.mu.Unlock()
			c.take(len(c.in))
			return true
		}
		c.mu.Unlock()
		return false
	}
	raw := bytes.TrimRight(c.in[:nl], "\r")
	if c.mode == modeAuth {
		c.mu.Unlock()
		c.record("C", "***", false)
		c.take(nl + 1)
		return true
	}
	verb, argB := c.command(raw)
	c.mu.Unlock()
	c.recordCommand(verb, raw)
	if verb == "DATA" && len(argB) == 0 {
		if c.dataFault(nl + 1) {
			return true
		}
	}
	c.take(nl + 1)
	return true
}

// command notes what a client command line means for the stream (a BDAT
// chunk follows; what the next reply answers) and returns its verb when it
// is one of the few that matter here, and its argument. c.mu is held.
func (c *sessionConn) command(raw []byte) (string, []byte) {
	// Compare without allocating.
	verbB, argB, _ := bytes.Cut(raw, []byte(" "))
	verb := ""
	for _, v := range [...]string{"DATA", "BDAT", "AUTH", "STARTTLS"} {
		if len(verbB) == len(v) && bytes.EqualFold(verbB, []byte(v)) {
			verb = v
		}
	}
	c.lastCmd = verb
	if verb == "BDAT" {
		if f := strings.Fields(string(argB)); len(f) > 0 {
			var n int64
			for _, ch := range f[0] {
				if ch < '0' || ch > '9' || n > 1<<40 {
					n = -1
					break
				}
				n = n*10 + int64(ch-'0')
			}
			if n > 0 {
				c.mode, c.bdatLeft = modeBdat, n
			}
		}
	}
	return verb, argB
}

// recordCommand logs a client command, its secret masked.
func (c *sessionConn) recordCommand(verb string, raw []byte) {
	switch {
	case c.rec == nil:
	case verb == "AUTH":
		c.rec.Command(maskAuth(verb, string(raw)))
	default:
		c.rec.CommandBytes(raw)
	}
}

// maxPart bounds a partial command line kept by tap: the log cuts lines
// far shorter, and go-smtp refuses long ones itself.
const maxPart = 1024

// tap records the client's lines from bytes already read for go-smtp
// (passive mode): commands are logged, AUTH answers masked, and message
// bodies and BDAT chunks skipped by finding their end. Only the session
// goroutine reads, but Write changes the mode, so c.mu is held.
func (c *sessionConn) tap(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(b) > 0 {
		switch c.mode {
		case modeBdat:
			n := min(int64(len(b)), c.bdatLeft)
			c.bdatLeft -= n
			b = b[n:]
			if c.bdatLeft == 0 {
				c.mode = modeCmd
			}
		case modeData:
			b = c.tapData(b)
		default:
			nl := bytes.IndexByte(b, '\n')
			if nl < 0 {
				c.part = append(c.part, b[:min(len(b), max(0, maxPart-len(c.part)))]...)
				return
			}
			line := b[:nl]
			b = b[nl+1:]
			if len(c.part) > 0 {
				line = append(c.part, line[:min(len(line), max(0, maxPart-len(c.part)))]...)
				c.part = line[:0]
			}
			line = bytes.TrimRight(line, "\r")
			if c.mode == modeAuth {
				c.rec.Command("***")
				continue
			}
			verb, _ := c.command(line)
			c.recordCommand(verb, line)
		}
	}
}

// tapData skips message bytes up to and including the "." line that ends
// them, which may be split across reads; it returns what follows.
func (c *sessionConn) tapData(b []byte) []byte {
	for i := 0; i < len(b); {
		switch c.dot {
		case 0:
			if c.atLine && b[i] == '.' {
				c.dot, i = 1, i+1
				continue
			}
			nl := bytes.IndexByte(b[i:], '\n')
			if nl < 0 {
				c.atLine = false
				return nil
			}
			i, c.atLine = i+nl+1, true
		case 1, 2:
			switch {
			case b[i] == '\n':
				c.mode, c.dot, c.atLine = modeCmd, 0, true
				return b[i+1:]
			case b[i] == '\r' && c.dot == 1:
				c.dot, i = 2, i+1
			default: // a dot-stuffed line
				c.dot, c.atLine = 0, false
			}
		}
	}
	return nil
}

// take moves n bytes from in to out.
func (c *sessionConn) take(n int) {
	c.out = append(c.outbuf[:0], c.in[:n]...)
	c.outbuf = c.out[:0]
	c.in = c.in[n:]
	if len(c.in) == 0 {
		c.in = c.inbuf[:0]
	}
}

func maskAuth(verb, line string) string {
	if verb != "AUTH" {
		return line
	}
	f := strings.Fields(line)
	if len(f) > 2 {
		return f[0] + " " + f[1] + " ***"
	}
	return line
}

// dataFault applies a data-stage fault to the DATA command of n bytes;
// true when the command was replaced.
func (c *sessionConn) dataFault(n int) bool {
	h := c.s.hook()
	se := c.se
	if h == nil || se == nil || len(se.rcpts) == 0 {
		return false
	}
	o := h.Decide(faults.Event{Stage: faults.StageData, Client: c.client, From: se.from, To: se.rcpts})
	if !o.Fault() {
		return false
	}
	c.s.metrics.faults.Inc()
	c.wait(o.Delay)
	if o.Bandwidth > 0 {
		c.bps.Store(int64(o.Bandwidth))
	}
	switch {
	case o.Disconnect:
		c.hangUpNow()
	case o.Reply != nil:
		// Answer DATA ourselves, and hand go-smtp a RSET in its place so
		// its transaction ends as the client now expects; RSET's own
		// reply is not for the client.
		c.writeFault(o.Reply.String())
		c.mu.Lock()
		c.swallow++
		c.mu.Unlock()
		if o.Close {
			c.hangUpNow()
		}
		c.in = c.in[n:]
		c.out = append(c.out[:0], "RSET\r\n"...)
		return true
	}
	return false
}

// writeFault sends a reply line of our own, marked as a fault's.
func (c *sessionConn) writeFault(line string) {
	c.mu.Lock()
	c.faultReply = true
	c.mu.Unlock()
	_, _ = c.Write([]byte(line + "\r\n"))
}

// hangUpNow drops the connection without a word (held replies of earlier
// commands still go out).
func (c *sessionConn) hangUpNow() {
	c.record("-", "connection dropped by a fault", true)
	_ = c.Close()
}

// markFault says the next reply go-smtp writes comes from a fault, and
// whether to hang up after it.
func (c *sessionConn) markFault(closeAfter bool) {
	c.mu.Lock()
	c.faultReply = true
	c.closeAfter = closeAfter
	c.mu.Unlock()
}

func (c *sessionConn) record(dir, text string, fault bool) {
	if c.rec == nil {
		return
	}
	switch dir {
	case "C":
		c.rec.Command(text)
	case "S":
		c.rec.Reply(text, fault)
	default:
		c.rec.Note(text, fault)
	}
}

// Write passes replies on, recording them and applying the connect stage
// (at the greeting) and bandwidth.
func (c *sessionConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	first := !c.greeted
	c.greeted = true
	c.mu.Unlock()
	if first {
		if err := c.connectFault(); err != nil {
			return 0, err
		}
	}
	if c.opaque.Load() {
		return c.throttled(p)
	}
	select {
	case <-c.done: // a fault hung up: later replies go nowhere
		return 0, net.ErrClosed
	default:
	}
	c.mu.Lock()
	// go-smtp writes whole reply lines: then p goes out as it is, with no
	// copy; otherwise lines are gathered in wpart.
	fast := len(c.wpart) == 0 && c.swallow == 0 && len(p) > 0 && p[len(p)-1] == '\n'
	buf := p
	var send []byte
	if fast {
		send = p
	} else {
		c.wpart = append(c.wpart, p...)
		buf = c.wpart
	}
	closeNow := false
	for {
		nl := bytes.IndexByte(buf, '\n')
		if nl < 0 {
			break
		}
		raw := buf[:nl+1]
		line := bytes.TrimRight(raw, "\r\n")
		final := len(line) < 4 || line[3] != '-'
		if c.swallow > 0 {
			if final {
				c.swallow--
			}
		} else {
			if !fast {
				send = append(send, raw...)
			}
			if c.rec != nil {
				c.rec.ReplyBytes(line, c.faultReply)
			}
		}
		buf = buf[nl+1:]
		if !final {
			continue
		}
		code := line[:min(3, len(line))]
		switch {
		case string(code) == "354":
			c.mode, c.atLine, c.dot = modeData, true, 0
		case string(code) == "334":
			c.mode, c.wasAuth = modeAuth, true
		case c.mode == modeAuth:
			c.mode = modeCmd
		}
		if c.closeAfter && c.faultReply {
			closeNow = true
			c.closeAfter = false
		}
		c.faultReply = false
		if c.lastCmd == "STARTTLS" && string(code) == "220" {
			c.opaque.Store(true)
			if c.rec != nil {
				c.rec.Note(tlsNote, false)
			}
		}
	}
	if !fast {
		c.wpart = append(c.wpart[:0], buf...)
	}
	c.mu.Unlock()
	if len(send) > 0 {
		if _, err := c.throttled(send); err != nil {
			return 0, err
		}
	}
	if closeNow {
		if rb, ok := c.Conn.(*replyBuffer); ok {
			_ = rb.flush()
		}
		_ = c.Close()
	}
	return len(p), nil
}

// throttled writes p, then waits as long as the bandwidth says p takes.
func (c *sessionConn) throttled(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if bps := c.bps.Load(); bps > 0 && err == nil {
		// Held replies would go out at once: send them, then wait.
		if rb, ok := c.Conn.(*replyBuffer); ok {
			err = rb.flush()
		}
		c.wait(time.Duration(int64(len(p)) * int64(time.Second) / bps))
	}
	return n, err
}

// connectFault applies the connect stage before the greeting.
func (c *sessionConn) connectFault() error {
	h := c.s.hook()
	if h == nil {
		return nil
	}
	o := h.Decide(faults.Event{Stage: faults.StageConnect, Client: c.client})
	if !o.Fault() {
		return nil
	}
	c.s.metrics.faults.Inc()
	c.wait(o.Delay)
	if o.Bandwidth > 0 {
		c.bps.Store(int64(o.Bandwidth))
	}
	if o.Disconnect || (o.Reply != nil && c.opaque.Load()) {
		c.hangUpNow()
		return net.ErrClosed
	}
	if o.Reply != nil {
		// The fault's reply replaces the greeting; the client is then
		// hung up on, as servers refusing at connect do.
		line := []byte(o.Reply.String() + "\r\n")
		c.mu.Lock()
		c.faultReply = true
		c.mu.Unlock()
		_, _ = c.Write(line)
		if rb, ok := c.Conn.(*replyBuffer); ok {
			_ = rb.flush()
		}
		_ = c.Close()
		return net.ErrClosed
	}
	return nil
}

// fault asks the hook about a stage go-smtp reports to the session and
// applies the answer: nil to go on, or the error the session returns.
func (se *session) fault(ev faults.Event) error {
	h := se.s.hook()
	if h == nil {
		return nil
	}
	sc := se.sc
	ev.Client = hostOf(se.conn.Conn().RemoteAddr())
	o := h.Decide(ev)
	if !o.Fault() {
		return nil
	}
	se.s.metrics.faults.Inc()
	if sc != nil {
		sc.wait(o.Delay)
		if o.Bandwidth > 0 {
			sc.bps.Store(int64(o.Bandwidth))
		}
	} else if o.Delay > 0 {
		t := time.NewTimer(o.Delay)
		select {
		case <-t.C:
		case <-se.s.closing:
		}
		t.Stop()
	}
	switch {
	case o.Disconnect:
		if sc != nil {
			sc.hangUpNow()
		} else {
			_ = se.conn.Conn().Close()
		}
		return errFaultDisconnect
	case o.Reply != nil:
		if sc != nil {
			sc.markFault(o.Close)
		} else if o.Close {
			defer se.hangUp()
		}
		// A reply without an enhanced code goes out as written (Mailpit's
		// chaos replies have none), not with go-smtp's X.0.0.
		ec := smtp.EnhancedCode(o.Reply.Enhanced)
		if o.Reply.Enhanced[0] == 0 {
			ec = smtp.NoEnhancedCode
		}
		return se.reject(&smtp.SMTPError{Code: o.Reply.Code, EnhancedCode: ec, Message: o.Reply.Text})
	}
	return nil
}

// tlsNote explains the transcript of an encrypted session: the bytes are
// not seen, so it is recorded from the session's side (tlsCommand).
const tlsNote = "TLS: from here the transcript shows the mail commands the server acted on (EHLO, AUTH, MAIL, RCPT, DATA) and its replies; other commands and protocol errors are not shown"

// tlsCommand records a command and its reply when the session conn sees
// only ciphertext: go-smtp hands the command to the session, and the reply
// is err (fault says a rule produced it) or go-smtp's own success text.
func (se *session) tlsCommand(cmd string, err error, fault bool, ok string) {
	sc := se.sc
	if sc == nil || sc.rec == nil || !sc.opaque.Load() {
		return
	}
	sc.rec.Command(cmd)
	se.tlsReply(err, fault, ok)
}

// tlsReply is tlsCommand's reply half.
func (se *session) tlsReply(err error, fault bool, ok string) {
	sc := se.sc
	if sc == nil || sc.rec == nil || !sc.opaque.Load() {
		return
	}
	var serr *smtp.SMTPError
	switch {
	case err == errFaultDisconnect:
		return // hangUpNow noted it
	case errors.As(err, &serr):
		line := fmt.Sprintf("%d %s", serr.Code, serr.Message)
		if serr.EnhancedCode != smtp.NoEnhancedCode && serr.EnhancedCode != (smtp.EnhancedCode{}) {
			line = fmt.Sprintf("%d %d.%d.%d %s", serr.Code, serr.EnhancedCode[0], serr.EnhancedCode[1], serr.EnhancedCode[2], serr.Message)
		}
		sc.rec.Reply(line, fault)
	case err != nil:
		sc.rec.Reply("451 4.0.0 "+err.Error(), fault)
	case ok != "":
		sc.rec.Reply(ok, false)
	}
}

// errFaultDisconnect ends a command whose connection a fault dropped; its
// reply goes nowhere.
var errFaultDisconnect = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Connection dropped"}
