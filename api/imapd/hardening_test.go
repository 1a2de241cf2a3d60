package imapd_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/api/imapd"
	"github.com/mailsandbox/mailsandbox/capture/connlimit/limittest"
)

type hardenConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func hardenDial(t *testing.T, addr string) *hardenConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := &hardenConn{t: t, c: c, br: bufio.NewReader(c)}
	if l := h.line(); !strings.HasPrefix(l, "* OK") {
		t.Fatalf("greeting %q", l)
	}
	return h
}

func (h *hardenConn) line() string {
	h.t.Helper()
	h.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := h.br.ReadString('\n')
	if err != nil {
		h.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// tagged sends a command and returns the tagged reply, skipping untagged
// lines; a continuation request ("+") is returned as is.
func (h *hardenConn) tagged(tag, cmd string) string {
	h.t.Helper()
	fmt.Fprintf(h.c, "%s %s\r\n", tag, cmd)
	for {
		l := h.line()
		if strings.HasPrefix(l, tag+" ") || strings.HasPrefix(l, "+") {
			return l
		}
	}
}

// expectClosed reads until the server closes the connection (or 20s pass).
func (h *hardenConn) expectClosed() string {
	h.t.Helper()
	return limittest.ExpectClosed(h.t, h.c, h.br, 20*time.Second)
}

func (h *hardenConn) trickle(data string, interval time.Duration) <-chan int {
	return limittest.Trickle(h.c, data, interval)
}

// A client sending one byte every 100ms is cut off by the idle timeout,
// before login, after login, and in the middle of an APPEND literal.
func TestHardeningSlowClientIsCutOff(t *testing.T) {
	t.Parallel()
	// Two seconds, not less: a first login (it creates folders) must fit
	// in it under -race beside the package's other tests (at 500 ms it
	// once did not). The phases run side by side, each on its own
	// connection: each mostly waits for the server to give up.
	addr, _ := startIMAP(t, func(o *imapd.Options) { o.IdleTimeout = 2 * time.Second })
	for _, phase := range []string{"unauthenticated", "authenticated", "literal"} {
		t.Run(phase, func(t *testing.T) {
			t.Parallel()
			h := hardenDial(t, addr)
			payload := "a LOGIN " + strings.Repeat("slow", 50) + "@example.com x\r\n"
			switch phase {
			case "authenticated":
				if l := h.tagged("l", "LOGIN bob@example.com x"); !strings.HasPrefix(l, "l OK") {
					t.Fatalf("login: %q", l)
				}
				payload = "b LIST \"\" " + strings.Repeat("*", 200) + "\r\n"
			case "literal":
				if l := h.tagged("l", "LOGIN bob@example.com x"); !strings.HasPrefix(l, "l OK") {
					t.Fatalf("login: %q", l)
				}
				if l := h.tagged("b", "APPEND INBOX {200}"); !strings.HasPrefix(l, "+") {
					t.Fatalf("append: %q", l)
				}
				payload = strings.Repeat("x", 200) + "\r\n"
			}
			sent := h.trickle(payload, 100*time.Millisecond)
			h.expectClosed()
			h.c.Close()
			if n := <-sent; n >= len(payload) {
				t.Fatalf("the whole slow %s command (%d bytes) got through", phase, n)
			}
		})
	}
}

// An endless command line is refused (the library caps a command at 50
// KiB) and the connection closed without the server buffering the stream.
// Not parallel: it measures the process's heap.
func TestHardeningEndlessLineNotBuffered(t *testing.T) {
	addr, _ := startIMAP(t, nil)
	h := hardenDial(t, addr)
	flood := limittest.StartFlood(h.c, "a LOGIN ", 1<<30)
	var base, m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	said := h.expectClosed()
	h.c.Close()
	streamed := flood.Wait()
	runtime.ReadMemStats(&m)
	t.Logf("streamed %d MiB; server said %q", streamed>>20, said)
	if streamed >= 1<<30 {
		t.Fatalf("server swallowed a 1 GiB command line")
	}
	if int64(m.TotalAlloc-base.TotalAlloc) > streamed/2 && m.TotalAlloc-base.TotalAlloc > 64<<20 {
		t.Fatalf("server allocated %d MiB for a %d MiB line", (m.TotalAlloc-base.TotalAlloc)>>20, streamed>>20)
	}
}

// A literal larger than the server accepts is refused before the client
// may send it: APPEND over MaxLiteralBytes (and a 99 GB one) gets NO
// [TOOBIG] with no continuation request, a literal in any other command is
// capped at 4 KiB, and the session goes on.
func TestHardeningHugeLiteralRefused(t *testing.T) {
	t.Parallel()
	addr, st := startIMAP(t, func(o *imapd.Options) { o.MaxLiteralBytes = 10000 })
	h := hardenDial(t, addr)
	// A 99 MB literal in LOGIN gets no continuation request. (The library
	// only answers once the line goes on, here with an empty line: it
	// does not refuse at once, but it never waits for the literal.)
	if l := h.tagged("x", "LOGIN {99999999}\r\n"); !strings.HasPrefix(l, "x NO") && !strings.HasPrefix(l, "x BAD") {
		t.Fatalf("LOGIN with a 99 MB literal: %q", l)
	}
	if l := h.tagged("l", "LOGIN bob@example.com x"); !strings.HasPrefix(l, "l OK") {
		t.Fatalf("login: %q", l)
	}
	for _, size := range []string{"10001", "99999999999", "18446744073709551615"} {
		l := h.tagged("a", "APPEND INBOX {"+size+"}")
		if !strings.HasPrefix(l, "a NO") && !strings.HasPrefix(l, "a BAD") {
			t.Fatalf("APPEND of %s bytes: %q, want a refusal without continuation", size, l)
		}
		if size == "10001" && !strings.Contains(l, "TOOBIG") {
			t.Errorf("APPEND over the limit: %q, want [TOOBIG]", l)
		}
	}
	if l := h.tagged("b", "APPEND INBOX {5}"); !strings.HasPrefix(l, "+") {
		t.Fatalf("small append: %q", l)
	}
	io.WriteString(h.c, "hello\r\n")
	for {
		l := h.line()
		if strings.HasPrefix(l, "b ") {
			if !strings.HasPrefix(l, "b OK") {
				t.Fatalf("small append: %q", l)
			}
			break
		}
	}
	if l := h.tagged("c", "NOOP"); !strings.HasPrefix(l, "c OK") {
		t.Fatalf("session not usable after refusals: %q", l)
	}
	f, err := st.Folder(t.Context(), "bob@example.com", "INBOX")
	if err != nil || f.Total != 1 {
		t.Fatalf("INBOX after one small append: %+v %v", f, err)
	}
}

// A non-synchronizing literal (LITERAL+) cannot be refused before it is
// sent; an oversized one must still not be read into memory: the server
// answers and closes, or reads and discards, but never buffers it.
// Not parallel: it measures the process's heap.
func TestHardeningHugeNonSyncLiteral(t *testing.T) {
	addr, _ := startIMAP(t, func(o *imapd.Options) { o.MaxLiteralBytes = 1000 })
	h := hardenDial(t, addr)
	if l := h.tagged("l", "LOGIN bob@example.com x"); !strings.HasPrefix(l, "l OK") {
		t.Fatalf("login: %q", l)
	}
	flood := limittest.StartFlood(h.c, "a APPEND INBOX {1073741824+}\r\n", 1<<30)
	var base, m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	said := h.expectClosed()
	h.c.Close()
	streamed := flood.Wait()
	runtime.ReadMemStats(&m)
	t.Logf("streamed %d MiB of a 1 GiB LITERAL+; server said %q", streamed>>20, said)
	if !strings.Contains(said, "NO") && !strings.Contains(said, "BAD") && !strings.Contains(said, "BYE") {
		t.Errorf("no refusal: %q", said)
	}
	if alloc := m.TotalAlloc - base.TotalAlloc; alloc > 64<<20 && int64(alloc) > streamed/2 {
		t.Fatalf("server allocated %d MiB for a %d MiB literal", alloc>>20, streamed>>20)
	}
}
