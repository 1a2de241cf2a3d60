package rest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/connlimit/limittest"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

func hardenDial(t *testing.T, base string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// A client that sends its request headers one byte every 100ms is cut
// off by the server's header timeout (10s, fixed in Serve) and never
// reaches a handler.
func TestHardeningSlowHeadersCutOff(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	c, br := hardenDial(t, e.url)
	payload := "GET /api/v1/mailboxes HTTP/1.1\r\nHost: sandbox\r\nX-Slow: " + strings.Repeat("s", 300) + "\r\n\r\n"
	sent := limittest.Trickle(c, payload, 100*time.Millisecond)
	said := limittest.ExpectClosed(t, c, br, 25*time.Second)
	c.Close()
	if n := <-sent; n >= len(payload) {
		t.Fatalf("the whole slow request (%d bytes) got through; server said %q", n, said)
	}
	if strings.Contains(said, "200 OK") {
		t.Fatalf("slow request was served: %q", said)
	}
}

// Request headers over net/http's 1 MiB default are refused with 431 and
// the connection is closed.
func TestHardeningOverlongHeaderRefused(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	c, br := hardenDial(t, e.url)
	limittest.StartFlood(c, "GET /api/v1/mailboxes HTTP/1.1\r\nHost: sandbox\r\nX-Long: ", 64<<20) // never ending the line
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response to an overlong header: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
	limittest.ExpectClosed(t, c, br, 20*time.Second)
}

// A message body over MaxMessageBytes is refused with 413 whether or not
// it announces its length, and nothing is stored.
func TestHardeningOversizedSubmitRefused(t *testing.T) {
	t.Parallel()
	e := newTestServer(t, func(o *Options) { o.MaxMessageBytes = 64 << 10 })
	big := "From: a@example.com\r\nTo: b@example.com\r\nSubject: big\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 8<<10)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			// An io.Reader that is not a *strings.Reader makes the client
			// send the body chunked, with no length up front.
			pr, pw := io.Pipe()
			go func() {
				pw.Write([]byte(big))
				for i := 0; i < 1024; i++ { // then 64 MiB more, unless cut off
					if _, err := pw.Write([]byte(strings.Repeat("x", 64<<10))); err != nil {
						return
					}
				}
				pw.Close()
			}()
			body = pr
		}
		resp, err := http.Post(e.url+"/api/v1/messages", "message/rfc822", body)
		if err != nil {
			t.Fatalf("chunked=%v: %v", chunked, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked=%v: status %d %s, want 413", chunked, resp.StatusCode, b)
		}
	}
	if _, total, _ := e.st.Search(t.Context(), store.Query{}); total != 0 {
		t.Fatalf("stored %d messages", total)
	}
}
