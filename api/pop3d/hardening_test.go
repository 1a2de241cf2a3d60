package pop3d_test

import (
	"bufio"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/api/pop3d"
	"github.com/mailsandbox/mailsandbox/capture/connlimit/limittest"
)

func hardenDial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
		t.Fatalf("greeting %q %v", l, err)
	}
	return c, br
}

// A client sending one byte every 100ms never completes a command within
// the idle timeout, so it is cut off: it cannot hold a session forever by
// trickling.
func TestHardeningSlowClientIsCutOff(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *pop3d.Options) { o.IdleTimeout = 500 * time.Millisecond })
	c, br := hardenDial(t, ts.addr)
	payload := "USER " + strings.Repeat("slow", 50) + "@example.com\r\n"
	sent := limittest.Trickle(c, payload, 100*time.Millisecond)
	limittest.ExpectClosed(t, c, br, 20*time.Second)
	c.Close()
	if n := <-sent; n >= len(payload) {
		t.Fatalf("the whole slow command (%d bytes) got through", n)
	}
}

// An endless line (no CRLF, as fast as loopback goes) is never buffered:
// the server's heap stays flat while hundreds of MiB stream in, and the
// connection is closed once the idle timeout passes without a complete
// command.
func TestHardeningEndlessLineNotBuffered(t *testing.T) {
	ts := newTestServer(t, func(o *pop3d.Options) { o.IdleTimeout = time.Second })
	c, br := hardenDial(t, ts.addr)
	flood := limittest.StartFlood(c, "USER ", 4<<30)
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	peak := base.HeapAlloc
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak {
				peak = m.HeapAlloc
			}
		}
	}()
	said := limittest.ExpectClosed(t, c, br, 20*time.Second)
	c.Close()
	streamed := flood.Wait()
	close(stop)
	<-sampled
	t.Logf("streamed %d MiB of one line; heap grew by at most %d KiB; server said %q",
		streamed>>20, (int64(peak)-int64(base.HeapAlloc))>>10, said)
	if grew := int64(peak) - int64(base.HeapAlloc); grew > 32<<20 && grew > streamed/4 {
		t.Fatalf("heap grew by %d MiB while %d MiB of one line streamed in", grew>>20, streamed>>20)
	}
}

// MaxConnections refuses the client over the cap with -ERR [SYS/TEMP] and
// frees the slot when a session ends.
func TestHardeningConnectionCap(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *pop3d.Options) { o.MaxConnections = 2 })
	c1, _ := hardenDial(t, ts.addr)
	hardenDial(t, ts.addr)
	c3, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got := limittest.ExpectClosed(t, c3, bufio.NewReader(c3), 20*time.Second); !strings.HasPrefix(got, "-ERR [SYS/TEMP]") {
		t.Fatalf("third connection: %q", got)
	}
	c1.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.HasPrefix(l, "+OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %q", l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
