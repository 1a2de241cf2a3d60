// Package limittest holds the probes that the hardening tests of every
// listener share (SMTP, POP3, IMAP, HTTP): a client that trickles a byte at
// a time, one that floods a line without end, and a reader that waits for
// the server to hang up. It is for tests only.
package limittest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Trickle writes data to c one byte per interval until all of it is sent or
// a write fails; the channel then gets how many bytes went out.
func Trickle(c net.Conn, data string, interval time.Duration) <-chan int {
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

// ExpectClosed reads r (c's reader) until the server closes c and returns
// everything it said; t fails if c is still open after limit.
func ExpectClosed(t testing.TB, c net.Conn, r io.Reader, limit time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	b, err := io.ReadAll(r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server kept the connection open; it said %q", b)
	}
	return string(b)
}

// Flood writes prefix and then 'A's to a connection as fast as it takes
// them, up to max bytes or until a write fails (the server hung up), with
// writes bounded by a 30 s deadline.
type Flood struct {
	streamed atomic.Int64
	done     chan struct{}
}

// StartFlood starts writing to c in the background.
func StartFlood(c net.Conn, prefix string, max int64) *Flood {
	f := &Flood{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		chunk := bytes.Repeat([]byte("A"), 64<<10)
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(c, prefix)
		for f.streamed.Load() < max {
			n, err := c.Write(chunk)
			f.streamed.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	return f
}

// Wait waits for the writer to stop and returns how many bytes it streamed
// after the prefix.
func (f *Flood) Wait() int64 {
	<-f.done
	return f.streamed.Load()
}
