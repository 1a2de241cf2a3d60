package sandbox_test

// A shared deployment: several sandbox instances on one PostgreSQL database,
// as behind a load balancer. These tests need MAILSANDBOX_TEST_PG (see
// package storetest) and skip without it.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
	"github.com/mailsandbox/mailsandbox/relay"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// startInstance starts a sandbox on db with every protocol on a free
// loopback port.
func startInstance(t testing.TB, db string, relayCfg sandbox.RelayConfig) *sandbox.Sandbox {
	t.Helper()
	cfg := sandbox.Config{
		SMTPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", POP3Addr: "127.0.0.1:0", IMAPAddr: "127.0.0.1:0",
		DB: db, Relay: relayCfg, Logger: quietLogger(),
	}
	sb, err := sandbox.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start instance: %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

func sendMail(t testing.TB, addr, from, to, subject, body string) {
	t.Helper()
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\n%s\r\n", from, to, subject, strings.ReplaceAll(subject, " ", "."), body)
	if err := smtp.SendMail(addr, nil, from, []string{to}, []byte(msg)); err != nil {
		t.Fatalf("send to %s: %v", addr, err)
	}
}

func TestSharedDeploymentCaptureOnAWaitOnBReadOnC(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	a := startInstance(t, dsn, sandbox.RelayConfig{})
	b := startInstance(t, dsn, sandbox.RelayConfig{})
	c := startInstance(t, dsn, sandbox.RelayConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// B streams events (SSE): once the stream is open, B is subscribed.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.URL()+"/api/v1/events", nil)
	sse, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sse.Body.Close()
	sseLines := bufio.NewReader(sse.Body)
	if line, err := sseLines.ReadString('\n'); err != nil || !strings.HasPrefix(line, ":") {
		t.Fatalf("event stream starts with %q, %v", line, err)
	}

	// C idles on bob's INBOX.
	exists := make(chan uint32, 16)
	imc, err := imapclient.DialInsecure(c.IMAPAddr(), &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists <- *d.NumMessages
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer imc.Close()
	if err := imc.Login("bob@example.com", "x").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := imc.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := imc.Idle()
	if err != nil {
		t.Fatal(err)
	}

	// B waits over REST for the message that A will capture.
	type waitResult struct {
		status int
		body   string
		err    error
	}
	waited := make(chan waitResult, 1)
	go func() {
		q := url.Values{"to": {"bob@example.com"}, "subject": {"Shared"}, "timeout": {"20s"}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.URL()+"/api/v1/messages/wait?"+q.Encode(), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			waited <- waitResult{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		waited <- waitResult{resp.StatusCode, string(body), err}
	}()

	sendMail(t, a.SMTPAddr(), "alice@example.com", "bob@example.com", "Shared deployment", "captured by A")

	// B's event stream announces it ...
	for {
		line, err := sseLines.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		if strings.HasPrefix(line, "data: ") && strings.Contains(line, "Shared deployment") {
			break
		}
	}
	// ... B's wait returns it ...
	var w waitResult
	select {
	case w = <-waited:
	case <-ctx.Done():
		t.Fatal("wait on B did not return")
	}
	if w.err != nil || w.status != http.StatusOK {
		t.Fatalf("wait on B: %d %s %v", w.status, w.body, w.err)
	}
	var found struct {
		Messages []struct {
			ID      string `json:"id"`
			Subject string `json:"subject"`
		} `json:"messages"`
	}
	if err := json.Unmarshal([]byte(w.body), &found); err != nil || len(found.Messages) != 1 || found.Messages[0].Subject != "Shared deployment" {
		t.Fatalf("wait on B found %s (%v)", w.body, err)
	}
	// ... and C's IDLE reports it.
	select {
	case n := <-exists:
		if n != 1 {
			t.Fatalf("IDLE on C reported %d messages", n)
		}
	case <-ctx.Done():
		t.Fatal("IDLE on C reported nothing")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	// C reads it.
	section := &imap.FetchItemBodySection{}
	msgs, err := imc.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{UID: true, Envelope: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch on C: %v %v", msgs, err)
	}
	if msgs[0].Envelope.Subject != "Shared deployment" || !strings.Contains(string(msgs[0].FindBodySection(section)), "captured by A") || msgs[0].UID != 1 {
		t.Fatalf("C read %+v", msgs[0].Envelope)
	}
	// Reading on C marked it seen: A's REST says so.
	resp, err := http.Get(a.URL() + "/api/v1/messages/" + found.Messages[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var full struct {
		Seen bool `json:"seen"`
	}
	err = json.NewDecoder(resp.Body).Decode(&full)
	resp.Body.Close()
	if err != nil || !full.Seen {
		t.Fatalf("A sees seen=%v (%v)", full.Seen, err)
	}
}

// pop3Login logs in to a POP3 server and returns the reply to PASS.
func pop3Login(t *testing.T, addr, user string) (net.Conn, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	line := func() string {
		s, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("pop3: %v", err)
		}
		return strings.TrimSpace(s)
	}
	if g := line(); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("greeting %q", g)
	}
	fmt.Fprintf(conn, "USER %s\r\n", user)
	if g := line(); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("USER: %q", g)
	}
	fmt.Fprintf(conn, "PASS x\r\n")
	return conn, line()
}

func TestSharedDeploymentPOP3LockHoldsAcrossInstances(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	a := startInstance(t, dsn, sandbox.RelayConfig{})
	b := startInstance(t, dsn, sandbox.RelayConfig{})
	sendMail(t, a.SMTPAddr(), "alice@example.com", "carol@example.com", "For POP3", "x")

	ca, reply := pop3Login(t, a.POP3Addr(), "carol@example.com")
	if !strings.HasPrefix(reply, "+OK") {
		t.Fatalf("login on A: %q", reply)
	}
	if _, reply := pop3Login(t, b.POP3Addr(), "Carol@Example.com"); !strings.HasPrefix(reply, "-ERR [IN-USE]") {
		t.Fatalf("login on B while A holds the maildrop: %q", reply)
	}
	if _, reply := pop3Login(t, b.POP3Addr(), "dave@example.com"); !strings.HasPrefix(reply, "+OK") {
		t.Fatalf("another maildrop on B: %q", reply)
	}
	// A's session ends: B may lock it now.
	fmt.Fprintf(ca, "QUIT\r\n")
	io.Copy(io.Discard, ca)
	if _, reply := pop3Login(t, b.POP3Addr(), "carol@example.com"); !strings.HasPrefix(reply, "+OK") {
		t.Fatalf("login on B after A quit: %q", reply)
	}
}

// destination is an SMTP server that records what it accepts, by
// Message-ID; sessions whose EHLO name is in block hang in DATA until the
// test ends.
type destination struct {
	addr    string
	mu      sync.Mutex
	got     map[string]int
	block   string
	blocked chan string // EHLO name of a blocked session
	release chan struct{}
}

func newDestination(t *testing.T, block string) *destination {
	t.Helper()
	d := &destination{got: map[string]int{}, block: block,
		blocked: make(chan string, 64), release: make(chan struct{})}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &destSession{d: d, conn: c}, nil
	}))
	srv.Domain = "dest.test"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() {
		close(d.release)
		srv.Close()
	})
	return d
}

func (d *destination) counts() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]int, len(d.got))
	for k, v := range d.got {
		out[k] = v
	}
	return out
}

type destSession struct {
	d    *destination
	conn *gosmtp.Conn
}

func (s *destSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *destSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (s *destSession) Reset()                                 {}
func (s *destSession) Logout() error                          { return nil }
func (s *destSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.d.block != "" && s.conn.Hostname() == s.d.block {
		s.d.blocked <- s.conn.Hostname()
		<-s.d.release
		return &gosmtp.SMTPError{Code: 451, Message: "released"}
	}
	id := ""
	for _, line := range strings.Split(string(raw), "\r\n") {
		if v, ok := strings.CutPrefix(line, "Message-ID: "); ok {
			id = v
			break
		}
	}
	s.d.mu.Lock()
	s.d.got[id]++
	s.d.mu.Unlock()
	return nil
}

// waitQueueSettled waits until every delivery in st is delivered.
func waitQueueSettled(t *testing.T, st *store.Store, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	events := st.Subscribe(ctx)
	tick := time.NewTicker(200 * time.Millisecond) // a cut-off stream must not stall us
	defer tick.Stop()
	for {
		ds, err := st.Deliveries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, d := range ds {
			if d.Status == store.DeliveryDelivered {
				done++
			}
		}
		if len(ds) == want && done == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("queue did not settle: %d of %d delivered (%d rows)", done, want, len(ds))
		case _, ok := <-events:
			if !ok {
				events = st.Subscribe(ctx)
			}
		case <-tick.C:
		}
	}
}

func TestSharedDeploymentRelayDeliversEachMessageOnce(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	dest := newDestination(t, "")
	rc := sandbox.RelayConfig{Routes: map[string]string{"dest.test": dest.addr}, Match: []string{"*@dest.test"},
		RetryMin: 100 * time.Millisecond, RetryMax: time.Second} // a hiccup on a loaded machine is retried soon
	insts := []*sandbox.Sandbox{startInstance(t, dsn, rc), startInstance(t, dsn, rc), startInstance(t, dsn, rc)}
	const n = 100
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				sendMail(t, insts[i%3].SMTPAddr(), "app@example.com", "user@dest.test", fmt.Sprintf("relay %d", i), "x")
			}
		}(w)
	}
	wg.Wait()
	waitQueueSettled(t, insts[0].Store(), n)
	got := dest.counts()
	if len(got) != n {
		t.Fatalf("destination got %d distinct messages, want %d", len(got), n)
	}
	for id, c := range got {
		if c != 1 {
			t.Errorf("message %s delivered %d times", id, c)
		}
	}
	// Which instance sent what is up to the race for claims; log it.
	for i, sb := range insts {
		resp, err := http.Get(sb.URL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "mailsandbox_relay_attempts_total") {
				t.Logf("instance %d: %s", i, line)
			}
		}
	}
}

// helperEnv makes the test binary run helperDoomedInstance instead of tests.
const helperEnv = "MAILSANDBOX_TEST_DOOMED_INSTANCE"

// TestHelperDoomedInstance is not a test: run by the test below as a child
// process, it is a relay instance (store and queue, with a short lease)
// that the test kills with SIGKILL while it holds leases.
func TestHelperDoomedInstance(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		return // not a child process: nothing to be (a skip would trip .ci/run's skip check)
	}
	dsn, dest, _ := strings.Cut(spec, " ")
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DSN: dsn, Logger: quietLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	q, err := relay.New(st, relay.Options{
		Routes: map[string]string{"dest.test": dest}, NoTLS: true, Lease: 2 * time.Second,
		HeloName: "doomed.test", MaxParallelPerDestination: 1,
	}, quietLogger())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	q.Start()
	fmt.Println("started")
	// Until killed (or, should the test die first, until stdin closes).
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

func TestSharedDeploymentDeadInstanceLeasesFinishElsewhere(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	dest := newDestination(t, "doomed.test")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Mail waiting for the relay, queued before any instance relays.
	st, err := store.Open(ctx, store.Options{DSN: dsn, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const n = 5
	for i := 0; i < n; i++ {
		raw := fmt.Sprintf("From: app@example.com\r\nTo: user@dest.test\r\nSubject: lease %d\r\nMessage-ID: <lease.%d@test>\r\n\r\nx\r\n", i, i)
		id, err := st.Ingest(ctx, store.Envelope{From: "app@example.com", To: []string{"user@dest.test"}}, []byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Enqueue(ctx, id, []store.NewDelivery{{Recipients: []string{"user@dest.test"}, Destination: dest.addr}}); err != nil {
			t.Fatal(err)
		}
	}

	// The doomed instance claims them all and hangs in DATA on the first.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDoomedInstance$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dsn+" "+dest.addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	select {
	case <-dest.blocked:
	case <-ctx.Done():
		cmd.Process.Kill()
		t.Fatal("the doomed instance never reached DATA")
	}
	ds, err := st.Deliveries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Status != store.DeliverySending || d.LeaseOwner == "" {
			t.Fatalf("before the kill: %+v", d)
		}
	}
	// SIGKILL: no clean-up, the leases stay.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	// Two live instances take over once the leases run out.
	rc := sandbox.RelayConfig{Routes: map[string]string{"dest.test": dest.addr}, RetryMin: 100 * time.Millisecond, RetryMax: time.Second}
	startInstance(t, dsn, rc)
	startInstance(t, dsn, rc)
	waitQueueSettled(t, st, n)
	got := dest.counts()
	if len(got) != n {
		t.Fatalf("destination got %v, want %d distinct messages", got, n)
	}
	for id, c := range got {
		if c != 1 {
			t.Errorf("message %s delivered %d times", id, c)
		}
	}
	ds, _ = st.Deliveries(ctx)
	for _, d := range ds {
		// The dead instance's attempt and the one that finished it (a slow
		// dead instance may have re-claimed its own expired leases too).
		if d.Attempts < 2 {
			t.Errorf("delivery %d: %d attempts, want at least 2", d.ID, d.Attempts)
		}
	}
}
