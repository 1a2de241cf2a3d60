package pop3d_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/internal/need"

	"github.com/mailsandbox/mailsandbox/capture/tlscert"

	"github.com/mailsandbox/mailsandbox/api/pop3d"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// testServer is a POP3 server on a loopback port over a real SQLite store
// in t.TempDir().
type testServer struct {
	t    testing.TB
	st   *store.Store
	dsn  string
	srv  *pop3d.Server
	addr string
	logs *syncBuffer
}

// syncBuffer collects log output safely from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func openStore(t testing.TB, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DSN: dsn})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newTestServer starts a server; opts adjust its Options. It is closed
// when the test ends.
func newTestServer(t testing.TB, opts ...func(*pop3d.Options)) *testServer {
	t.Helper()
	dsn := filepath.Join(t.TempDir(), "mail.db")
	ts := &testServer{t: t, dsn: dsn, st: openStore(t, dsn)}
	ts.start(ts.st, nil, opts...)
	return ts
}

// start serves st on a new loopback listener, wrapped by wrap when given.
func (ts *testServer) start(st pop3d.Store, wrap func(net.Listener) net.Listener, opts ...func(*pop3d.Options)) {
	t := ts.t
	var o pop3d.Options
	for _, f := range opts {
		f(&o)
	}
	ts.logs = &syncBuffer{}
	log := slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	srv := pop3d.New(st, o, log)
	ts.srv = srv
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-errc; !errors.Is(err, pop3d.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
}

// ingest stores raw for the recipients and returns its id.
func (ts *testServer) ingest(raw string, to ...string) string {
	ts.t.Helper()
	id, err := ts.st.Ingest(context.Background(), store.Envelope{From: "alice@example.com", To: to}, []byte(raw))
	if err != nil {
		ts.t.Fatalf("ingest: %v", err)
	}
	return id
}

// inbox returns the entries in mailbox's INBOX.
func (ts *testServer) inbox(mailbox string) []store.Entry {
	ts.t.Helper()
	ctx := context.Background()
	f, err := ts.st.Folder(ctx, mailbox, store.InboxName)
	if err != nil {
		ts.t.Fatalf("folder: %v", err)
	}
	es, err := ts.st.Entries(ctx, f.ID)
	if err != nil {
		ts.t.Fatalf("entries: %v", err)
	}
	return es
}

// client is a raw POP3 client: it sends lines and reads replies as sent.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func (ts *testServer) dial() *client {
	ts.t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		ts.t.Fatal(err)
	}
	cl := newClient(ts.t, c)
	if g := cl.line(); !strings.HasPrefix(g, "+OK") {
		ts.t.Fatalf("greeting %q", g)
	}
	return cl
}

func newClient(t testing.TB, c net.Conn) *client {
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *client) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

// line reads one reply line and checks it ends in CRLF.
func (c *client) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line without CRLF: %q", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// cmd sends line and returns the first reply line.
func (c *client) cmd(line string) string {
	c.t.Helper()
	c.send(line)
	return c.line()
}

// ok sends line and fails unless the reply is +OK.
func (c *client) ok(line string) string {
	c.t.Helper()
	r := c.cmd(line)
	if !strings.HasPrefix(r, "+OK") {
		c.t.Fatalf("%q: got %q, want +OK", line, r)
	}
	return r
}

// fail sends line and fails unless the reply is -ERR.
func (c *client) fail(line string) string {
	c.t.Helper()
	r := c.cmd(line)
	if !strings.HasPrefix(r, "-ERR") {
		c.t.Fatalf("%q: got %q, want -ERR", line, r)
	}
	return r
}

// lines reads the rest of a multi-line reply, still byte-stuffed, without
// the final ".".
func (c *client) lines() []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		if l == "." {
			return out
		}
		out = append(out, l)
	}
}

// multi sends line, expects +OK and returns the multi-line body.
func (c *client) multi(line string) []string {
	c.t.Helper()
	c.ok(line)
	return c.lines()
}

func (c *client) login(user string) string {
	c.t.Helper()
	c.ok("USER " + user)
	return c.ok("PASS x")
}

// expectClosed reads until the server closes the connection and returns
// what it sent before.
func (c *client) expectClosed() string {
	c.t.Helper()
	b, err := io.ReadAll(c.r)
	if err != nil {
		c.t.Fatalf("waiting for close: %v (got %q)", err, b)
	}
	return string(b)
}

// hangUp closes the client's sending side and waits until the server has
// closed the connection, that is until its session is over.
func (c *client) hangUp() {
	c.t.Helper()
	c.conn.(*net.TCPConn).CloseWrite()
	c.expectClosed()
}

// selfSigned returns a server TLS config for 127.0.0.1/localhost, a pool
// trusting it, and the certificate as PEM.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool, []byte) {
	t.Helper()
	cert, err := tlscert.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	return tlscert.ServerConfig(cert), tlscert.Pool(cert), tlscert.PEM(cert)
}

// runTool runs an external client with a deadline and returns its stdout;
// the test is skipped when the tool is not installed.
func runTool(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	g := need.Curl
	if name == "python3" {
		g = need.Python
	}
	need.Command(t, g, name)
	if name == "python3" {
		name = pythonPath()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, out, stderr.String())
	}
	return string(out)
}

// pythonPath is the interpreter behind "python3", found once: version
// manager shims in front of it cost a second or more per start.
var pythonPath = sync.OnceValue(func() string {
	out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if p := strings.TrimSpace(string(out)); err == nil && p != "" {
		return p
	}
	return "python3"
})
