package smtpd

import (
	"bytes"
	"io"
	"net"
	"slices"
	"sync"
)

// go-smtp reads a DATA body one byte at a time through a textproto-style
// state machine (and its line-length reader looks at every byte again):
// at 100 KB that was a third of the server's CPU. The reply buffer, which
// sees every byte the client sends, can take the body off the socket
// itself in large reads, find its end with bytes.Index and undo dot
// stuffing, then hand go-smtp only the end-of-data line: go-smtp's reader
// sees an empty message and the session picks up the captured one.
//
// It does so only when the result is certain to be what go-smtp would
// have read: the bytes handed up last must end with the DATA command being
// answered (so nothing of the body is buffered above), and a body with
// anything go-smtp's state machine treats unusually (a CR before a CR, a
// "." line start followed by a lone CR), a line near the line limit, or a
// size near the message limit is handed up exactly as received, for
// go-smtp to read (and refuse) as before.

// dataFast is the fast path's state; only the session goroutine uses it.
type dataFast struct {
	on             bool // plaintext listener: the fast path may be used
	maxMsg, maxLn  int
	lastEndsInDATA bool       // the bytes handed up last end with a lone DATA command
	capture        bool       // armed: the next read takes the body
	pending        []byte     // to hand up before reading the socket again
	msg            []byte     // the captured body, until taken
	got            bool       // msg holds a captured body (it may be empty)
	scratch        *sync.Pool // the server's read buffers
}

// armData is called as the session's Data begins: it arms the capture
// when the client's DATA command was the last thing handed up.
func (c *replyBuffer) armData() bool {
	f := &c.fast
	if !f.on || !f.lastEndsInDATA || len(f.pending) > 0 {
		return false
	}
	f.capture, f.msg, f.got = true, nil, false
	return true
}

// takeMessage returns the captured body, if the capture completed.
func (c *replyBuffer) takeMessage() ([]byte, bool) {
	f := &c.fast
	m, ok := f.msg, f.got
	f.capture, f.msg, f.got = false, nil, false
	return m, ok
}

// readFast is Read's path when the fast path is on: it serves pending
// bytes first, captures an armed body, and notes whether what it hands up
// ends with a lone DATA command.
func (c *replyBuffer) readFast(p []byte) (int, error) {
	f := &c.fast
	if f.capture {
		f.capture = false
		if err := c.captureBody(); err != nil {
			return 0, err
		}
	}
	var n int
	var err error
	if len(f.pending) > 0 {
		n = copy(p, f.pending)
		f.pending = f.pending[n:]
		if len(f.pending) == 0 {
			f.pending = nil
		}
	} else {
		n, err = c.Conn.Read(p)
	}
	f.lastEndsInDATA = n > 0 && endsWithLoneDATA(p[:n])
	return n, err
}

// captureBody reads until the end-of-data line. On success the body is in
// msg and pending holds the end line and whatever followed it; otherwise
// pending holds every byte read, for go-smtp to read as usual.
func (c *replyBuffer) captureBody() error {
	f := &c.fast
	// The body is read into a pooled scratch buffer and copied out at its
	// exact size: growing a buffer per message made 2.5 times its size in
	// garbage, and the peak RSS of many concurrent large messages.
	sp := f.scratch.Get().(*[]byte)
	raw := (*sp)[:0]
	keep := true // false once raw is handed up as it is
	defer func() {
		if keep && cap(raw) <= maxPooledScratch {
			*sp = raw[:0]
			f.scratch.Put(sp)
		}
	}()
	scanned := 0   // raw[:scanned] holds no end of data
	lineStart := 0 // where the last line read so far begins
	for {
		if len(raw) == cap(raw) {
			raw = slices.Grow(raw, len(raw))
		}
		prev := len(raw)
		n, err := c.Conn.Read(raw[len(raw):cap(raw)])
		raw = raw[:len(raw)+n]
		// A line near the line limit goes to go-smtp, which refuses it
		// (and hangs up) as soon as it is too long: waiting for the end
		// of data here would let a client stream an endless line.
		var tooLong bool
		if lineStart, tooLong = checkLines(raw, prev, lineStart, f.maxLn-8); tooLong {
			f.pending, keep = raw, false
			return nil
		}
		if end, tail, ok := findDataEnd(raw, scanned); ok {
			if body, ok := unstuff(raw[:end], f.maxMsg); ok {
				f.msg, f.got = bytes.Clone(body), true
				if f.msg == nil {
					f.msg = []byte{}
				}
				f.pending = append([]byte(".\r\n"), raw[tail:]...)
				return nil
			}
			f.pending, keep = raw, false
			return nil
		}
		scanned = max(0, len(raw)-4)
		if err != nil || len(raw) >= f.maxMsg {
			// go-smtp reads what came and meets the error (or refuses
			// the size) itself.
			if len(raw) == 0 {
				return err
			}
			f.pending, keep = raw, false
			return nil
		}
	}
}

// maxPooledScratch is the largest scratch buffer kept for reuse; larger
// bodies are rare and their buffers go to the garbage collector.
const maxPooledScratch = 1 << 20

func newScratchPool() *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}
}

// findDataEnd finds the end-of-data line in raw, searching from about
// from: end is the length of the body (with its last CRLF), tail the
// offset just past the end line.
func findDataEnd(raw []byte, from int) (end, tail int, ok bool) {
	if bytes.HasPrefix(raw, []byte(".\r\n")) {
		return 0, 3, true
	}
	i := bytes.Index(raw[from:], []byte("\r\n.\r\n"))
	if i < 0 {
		return 0, 0, false
	}
	return from + i + 2, from + i + 5, true
}

// unstuff removes the dot of each line starting with one, in place, as
// go-smtp's reader does; ok is false when the body holds anything that
// reader treats unusually, or is near the size limit, so go-smtp must read
// it (captureBody has checked the line lengths).
func unstuff(body []byte, maxMsg int) ([]byte, bool) {
	if len(body) >= maxMsg-8 || bytes.Contains(body, []byte("\r\r")) {
		return nil, false
	}
	// Line starts with a dot: the first byte, and after each CRLF.
	out, w, r := body, 0, 0
	next := func(from int) int {
		if from == 0 && len(body) > 0 && body[0] == '.' {
			return 0
		}
		i := bytes.Index(body[from:], []byte("\r\n."))
		if i < 0 {
			return -1
		}
		return from + i + 2
	}
	for d := next(0); d >= 0; d = next(d + 1) {
		if d+1 < len(body) && body[d+1] == '\r' {
			// ".\r" not ending the data: go-smtp drops the CR too.
			return nil, false
		}
		w += copy(out[w:], body[r:d])
		r = d + 1
	}
	w += copy(out[w:], body[r:])
	return out[:w], true
}

// checkLines looks at the bytes read since prev for a line longer than
// lim, and returns where the last line begins. Only when the last line
// and the new bytes together could be too long is every line measured.
func checkLines(raw []byte, prev, lineStart, lim int) (int, bool) {
	if len(raw)-lineStart <= lim {
		if k := bytes.LastIndexByte(raw[prev:], '\n'); k >= 0 {
			lineStart = prev + k + 1
		}
		return lineStart, false
	}
	for i := lineStart; ; {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			return i, len(raw)-i > lim
		}
		if j+1 > lim {
			return i, true
		}
		i += j + 1
	}
}

// endsWithLoneDATA reports whether p's last line is "DATA\r\n" and every
// line before it is a MAIL or RCPT command (a pipelined transaction), so
// that when go-smtp answers that DATA, nothing after it is buffered above.
func endsWithLoneDATA(p []byte) bool {
	if len(p) < 6 || !bytes.EqualFold(p[len(p)-6:], []byte("DATA\r\n")) {
		return false
	}
	rest := p[:len(p)-6]
	if len(rest) > 0 && rest[len(rest)-1] != '\n' {
		return false
	}
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		line := rest[:i+1]
		if len(line) < 5 || !(bytes.EqualFold(line[:5], []byte("MAIL ")) || bytes.EqualFold(line[:5], []byte("RCPT "))) {
			return false
		}
		rest = rest[i+1:]
	}
	return true
}

// replyBufferOf finds the reply buffer under go-smtp's connection; nil
// under TLS, where it sees only ciphertext.
func replyBufferOf(c net.Conn) *replyBuffer {
	if sc, ok := c.(*sessionConn); ok {
		c = sc.Conn
	}
	rb, _ := c.(*replyBuffer)
	return rb
}

// isBdat reports whether a Data reader is go-smtp's BDAT pipe, which the
// fast path leaves alone.
func isBdat(r io.Reader) bool {
	_, ok := r.(*io.PipeReader)
	return ok
}
