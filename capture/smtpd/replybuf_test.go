package smtpd

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func TestReplyBufferHoldsRepliesUntilRead(t *testing.T) {
	t.Parallel()
	srv, cli := net.Pipe()
	defer cli.Close()
	c := &replyBuffer{Conn: srv}
	defer c.Close()
	for _, line := range []string{"250 ok\r\n", "250 ok\r\n", "354 go ahead\r\n"} {
		if _, err := c.Write([]byte(line)); err != nil { // net.Pipe would block here unbuffered
			t.Fatal(err)
		}
	}
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		n, _ := io.ReadAtLeast(cli, buf, len("250 ok\r\n250 ok\r\n354 go ahead\r\n"))
		got <- string(buf[:n])
		cli.Write([]byte("body\r\n"))
	}()
	buf := make([]byte, 16)
	n, err := c.Read(buf) // sends the held replies first
	if err != nil || string(buf[:n]) != "body\r\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if s := <-got; s != "250 ok\r\n250 ok\r\n354 go ahead\r\n" {
		t.Fatalf("client got %q", s)
	}
}

// TestReplyBufferCloseUnsticksSend: a client that never reads must not
// keep Close (server shutdown) waiting on a send.
func TestReplyBufferCloseUnsticksSend(t *testing.T) {
	t.Parallel()
	srv, cli := net.Pipe() // nobody reads cli
	defer cli.Close()
	sending := make(chan struct{})
	c := &replyBuffer{Conn: &announcingConn{Conn: srv, writing: sending}}
	go c.Write(make([]byte, replyBufferLimit)) // flushes, and blocks in it
	<-sending                                  // the send holds the buffer's lock now
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for a send to a client that does not read")
	}
}

// announcingConn closes writing when its first Write starts.
type announcingConn struct {
	net.Conn
	writing chan struct{}
	once    sync.Once
}

func (c *announcingConn) Write(p []byte) (int, error) {
	c.once.Do(func() { close(c.writing) })
	return c.Conn.Write(p)
}

// TestReplyBufferDeadlinesLazily: deadlines moved a little later, as
// go-smtp does before every command and reply, reach the connection once;
// the deadline in force is never earlier than asked and at most the slack
// later; an earlier deadline (hangUp's) and a past one (crypto/tls's
// Close) take effect at once, and a past write deadline sends what is
// held first.
func TestReplyBufferDeadlinesLazily(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cli, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	raw, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	rec := &deadlineConn{Conn: raw}
	c := &replyBuffer{Conn: rec}
	defer c.Close()

	for name, d := range map[string]struct {
		set  func(time.Time) error
		sets func() []time.Time
	}{
		"read":  {c.SetReadDeadline, func() []time.Time { return rec.reads }},
		"write": {c.SetWriteDeadline, func() []time.Time { return rec.writes }},
	} {
		start := len(d.sets())
		var asked []time.Time
		for i := 0; i < 100; i++ {
			t0 := time.Now().Add(5 * time.Minute)
			asked = append(asked, t0)
			if err := d.set(t0); err != nil {
				t.Fatal(err)
			}
		}
		got := d.sets()[start:]
		if len(got) != 1 {
			t.Fatalf("%s: 100 deadlines moving by microseconds were set %d times, want once", name, len(got))
		}
		last := asked[len(asked)-1]
		if got[0].Before(last) || got[0].Sub(last) > maxDeadlineSlack {
			t.Fatalf("%s: deadline in force %v, asked %v: want at most %v later, never earlier", name, got[0], last, maxDeadlineSlack)
		}
		// Earlier than the one in force: at once, within an eighth of it.
		soon := time.Now().Add(800 * time.Millisecond)
		if err := d.set(soon); err != nil {
			t.Fatal(err)
		}
		if g := d.sets()[len(d.sets())-1]; len(d.sets()) != start+2 || g.Before(soon) || g.Sub(soon) > 100*time.Millisecond {
			t.Fatalf("%s: an earlier deadline %v: in force %v after %d sets", name, soon, g, len(d.sets())-start)
		}
	}

	// A past write deadline: what is held goes out, then the deadline, as
	// it is.
	if _, err := c.Write([]byte("221 bye\r\n")); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := c.SetWriteDeadline(now); err != nil {
		t.Fatal(err)
	}
	if g := rec.writes[len(rec.writes)-1]; !g.Equal(now) {
		t.Fatalf("past deadline %v set as %v", now, g)
	}
	cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	if n, err := io.ReadAtLeast(cli, buf, len("221 bye\r\n")); err != nil || string(buf[:n]) != "221 bye\r\n" {
		t.Fatalf("client got %q, %v", buf[:n], err)
	}
	// The deadline in force is still known: the next far one is set.
	if err := c.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if g := rec.writes[len(rec.writes)-1]; !g.After(now) {
		t.Fatalf("a later deadline after a past one was not set (in force %v)", g)
	}
}

// deadlineConn records the deadlines set on it.
type deadlineConn struct {
	net.Conn
	reads, writes []time.Time
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.reads = append(c.reads, t)
	return c.Conn.SetReadDeadline(t)
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.writes = append(c.writes, t)
	return c.Conn.SetWriteDeadline(t)
}
