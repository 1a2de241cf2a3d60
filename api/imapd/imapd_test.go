package imapd_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/internal/need"

	"github.com/mailsandbox/mailsandbox/api/imapd"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

type testServer struct {
	srv  *imapd.Server
	st   *store.Store
	addr string
}

// newTestServer starts an IMAP server on a loopback port over a fresh store
// in t.TempDir(); both close with the test.
func newTestServer(t *testing.T, opts ...func(*imapd.Options)) *testServer {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(t.TempDir(), "mail.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var o imapd.Options
	for _, f := range opts {
		f(&o)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	srv := imapd.New(st, o, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, imapd.ErrServerClosed) || !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return &testServer{srv: srv, st: st, addr: ln.Addr().String()}
}

func (ts *testServer) ingest(t *testing.T, to string, raw string) string {
	t.Helper()
	id, err := ts.st.Ingest(context.Background(), store.Envelope{From: "alice@example.com", To: []string{to}}, []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func textMsg(subject, body string) string {
	return "From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: " + subject +
		"\r\nDate: Fri, 02 Jan 2026 03:04:05 +0000\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.com>\r\n\r\n" + body + "\r\n"
}

const multipartMsg = "From: Alice <alice@example.com>\r\n" +
	"To: bob@example.com\r\n" +
	"Subject: Report\r\n" +
	"Date: Fri, 02 Jan 2026 03:04:05 +0000\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n" +
	"\r\n" +
	"--XYZ\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"See the attached report.\r\n" +
	"--XYZ\r\n" +
	"Content-Type: application/pdf; name=\"report.pdf\"\r\n" +
	"Content-Disposition: attachment; filename=\"report.pdf\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"JVBERi0xLjQKJcfsj6IK\r\n" +
	"--XYZ--\r\n"

// runPython runs a Python 3 script with the server's host and port as
// arguments and fails the test with its output when it fails.
func runPython(t *testing.T, addr, script string) string {
	t.Helper()
	need.Command(t, need.Python, "python3")
	host, port, _ := net.SplitHostPort(addr)
	path := filepath.Join(t.TempDir(), "t.py")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "python3", path, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	return string(out)
}

// rawClient speaks IMAP line by line over a real socket, for what imaplib
// cannot do (IDLE, malformed input) and for exact response checks.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func dial(t *testing.T, addr string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	if g := c.line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	return c
}

var literalRE = regexp.MustCompile(`\{(\d+)\}$`)

// line reads one response line, with any literals it carries inlined.
func (c *rawClient) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v (have %q)", err, b.String()+l)
		}
		l = strings.TrimSuffix(l, "\r\n")
		b.WriteString(l)
		m := literalRE.FindStringSubmatch(l)
		if m == nil {
			return b.String()
		}
		n, _ := strconv.Atoi(m[1])
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			c.t.Fatalf("read literal: %v", err)
		}
		b.Write(buf)
	}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
}

// do sends a tagged command and returns the untagged lines and the tagged
// status line (without the tag).
func (c *rawClient) do(format string, args ...any) ([]string, string) {
	c.t.Helper()
	c.n++
	tag := fmt.Sprintf("a%d", c.n)
	c.send(tag + " " + fmt.Sprintf(format, args...))
	var untagged []string
	for {
		l := c.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

// ok runs a command that must succeed.
func (c *rawClient) ok(format string, args ...any) []string {
	c.t.Helper()
	u, st := c.do(format, args...)
	if !strings.HasPrefix(st, "OK") {
		c.t.Fatalf("%s: %s (untagged %q)", fmt.Sprintf(format, args...), st, u)
	}
	return u
}

func (c *rawClient) login(user string) {
	c.t.Helper()
	c.ok("LOGIN %s secret", user)
}

func grep(lines []string, sub string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}
