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
