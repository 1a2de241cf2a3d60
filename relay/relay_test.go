package relay

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/tlscert"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
	"github.com/mailsandbox/mailsandbox/relay/dsn"
)

// received is one message a test destination accepted.
type received struct {
	from string
	to   []string
	data []byte
	tls  bool   // over STARTTLS
	user string // authenticated as
	// smtputf8: MAIL FROM carried SMTPUTF8
	smtputf8 bool
}

// destServer is a destination MTA for tests: a go-smtp server on loopback
// that counts sessions, can fail chosen recipients, pretend to be down, and
// hide 8BITMIME.
type destServer struct {
	addr string

	mu       sync.Mutex
	sessions int
	rcptFn   func(to string) error
	down     bool
	no8bit   bool
	utf8     bool // offer SMTPUTF8
	got      chan received
	// tlsConfig enables STARTTLS; user and pass, when set, require AUTH PLAIN.
	tlsConfig  *tls.Config
	user, pass string
}

// greylisting makes a destination answer its first n RCPTs with 451.
func greylisting(n int) func(*destServer) {
	var mu sync.Mutex
	tries := 0
	return func(d *destServer) {
		d.rcptFn = func(to string) error {
			mu.Lock()
			defer mu.Unlock()
			tries++
			if tries <= n {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
			}
			return nil
		}
	}
}

func newDest(t *testing.T, configure ...func(*destServer)) *destServer {
	t.Helper()
	d := &destServer{got: make(chan received, 100)}
	for _, c := range configure {
		c(d)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = ln.Addr().String()
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		d.mu.Lock()
		d.sessions++
		d.mu.Unlock()
		return &destSession{d: d, conn: c}, nil
	}))
	srv.TLSConfig = d.tlsConfig
	srv.EnableSMTPUTF8 = d.utf8
	srv.Domain = "dest.test"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	go srv.Serve(&destListener{Listener: ln, d: d})
	t.Cleanup(func() { srv.Close() })
	return d
}

func (d *destServer) setDown(v bool) {
	d.mu.Lock()
	d.down = v
	d.mu.Unlock()
}

func (d *destServer) sessionCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sessions
}

// wait returns the next received message.
func (d *destServer) wait(t *testing.T) received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	select {
	case r := <-d.got:
		return r
	case <-ctx.Done():
		t.Fatal("destination received nothing")
		return received{}
	}
}

type destListener struct {
	net.Listener
	d *destServer
}

func (l *destListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.d.mu.Lock()
		down, no8 := l.d.down, l.d.no8bit
		l.d.mu.Unlock()
		if down {
			c.Close() // the destination is down: connections drop at once
			continue
		}
		if no8 {
			return &no8bitConn{Conn: c}, nil
		}
		return c, nil
	}
}

// no8bitConn removes 8BITMIME from the server's EHLO reply.
type no8bitConn struct{ net.Conn }

func (c *no8bitConn) Write(p []byte) (int, error) {
	q := bytes.ReplaceAll(p, []byte("250-8BITMIME\r\n"), nil)
	if _, err := c.Conn.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}

type destSession struct {
	d    *destServer
	conn *smtp.Conn
	from string
	to   []string
	user string
	utf8 bool
}

var _ smtp.AuthSession = (*destSession)(nil)

func (s *destSession) AuthMechanisms() []string {
	if s.d.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *destSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.d.user || pass != s.d.pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.user = user
		return nil
	}), nil
}

func (s *destSession) Mail(from string, opts *smtp.MailOptions) error {
	if s.d.user != "" && s.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	s.from = from
	s.utf8 = opts != nil && opts.UTF8
	return nil
}

func (s *destSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.d.mu.Lock()
	fn := s.d.rcptFn
	s.d.mu.Unlock()
	if fn != nil {
		if err := fn(to); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *destSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.d.got <- received{from: s.from, to: s.to, data: b, tls: isTLS, user: s.user, smtputf8: s.utf8}
	return nil
}

func (s *destSession) Reset()        { s.from, s.to = "", nil }
func (s *destSession) Logout() error { return nil }

// testQueue is a relay over a real store in t.TempDir().
type testQueue struct {
	q    *Queue
	st   *store.Store
	path string
}

func openStore(t *testing.T, path string, q **Queue) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{
		DSN: path,
		Enqueue: func(env store.Envelope) []store.NewDelivery {
			if *q == nil {
				return nil
			}
			return (*q).Enqueue(env)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Close()
		storetest.CheckSQLite(t, path) // bounces and collected messages leave it whole
	})
	return st
}

func testOptions(o Options) Options {
	if o.RetryMin == 0 {
		o.RetryMin = 10 * time.Millisecond
	}
	if o.RetryMax == 0 {
		o.RetryMax = 50 * time.Millisecond
	}
	if o.ConnectionIdle == 0 {
		o.ConnectionIdle = 50 * time.Millisecond
	}
	if o.HeloName == "" {
		o.HeloName = "sandbox.test"
	}
	o.CommandTimeout = 20 * time.Second
	return o
}

// backend opens a fresh store DSN for a test.
type backend func(t *testing.T) string

func sqliteDSN(t *testing.T) string { return filepath.Join(t.TempDir(), "mail.db") }

// onEachBackend runs f on SQLite and, when a test database is configured
// (storetest.EnvDSN), on PostgreSQL.
func onEachBackend(t *testing.T, f func(t *testing.T, dsn backend)) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); f(t, sqliteDSN) })
	t.Run("postgres", func(t *testing.T) {
		storetest.RequirePostgres(t)
		t.Parallel()
		f(t, func(t *testing.T) string { return storetest.PostgresDSN(t) })
	})
}

// newTestQueue builds a queue and its store; start says whether to run it.
func newTestQueue(t *testing.T, opts Options, start bool) *testQueue {
	t.Helper()
	return newTestQueueOn(t, sqliteDSN(t), opts, start)
}

func newTestQueueOn(t *testing.T, dsn string, opts Options, start bool) *testQueue {
	t.Helper()
	tq := &testQueue{path: dsn}
	var qp *Queue
	tq.st = openStore(t, tq.path, &qp)
	q, err := New(tq.st, testOptions(opts), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	qp, tq.q = q, q
	if start {
		q.Start()
	}
	t.Cleanup(func() { q.Close() })
	return tq
}

func mail(from, to, subject, body string) []byte {
	return []byte("From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject + "@sender.test>\r\n\r\n" + body + "\r\n")
}

func (tq *testQueue) ingest(t *testing.T, from string, to []string, raw []byte) string {
	t.Helper()
	id, err := tq.st.Ingest(context.Background(), store.Envelope{From: from, To: to}, raw)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// waitQueue waits until cond holds for the queue, re-checking on every
// store event.
func waitQueue(t *testing.T, st *store.Store, what string, cond func([]store.Delivery) bool) []store.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events := st.Subscribe(ctx)
	tick := time.NewTicker(100 * time.Millisecond) // store reopened etc.: poll as a fallback
	defer tick.Stop()
	for {
		ds, err := st.Deliveries(ctx)
		if err == nil && cond(ds) {
			return ds
		}
		select {
		case <-ctx.Done():
			ds, _ = st.Deliveries(context.Background())
			t.Fatalf("timed out waiting for %s; queue: %+v", what, ds)
		case <-events:
		case <-tick.C:
		}
	}
}

func allStatus(status string, n int) func([]store.Delivery) bool {
	return func(ds []store.Delivery) bool {
		if len(ds) != n {
			return false
		}
		for _, d := range ds {
			if d.Status != status {
				return false
			}
		}
		return true
	}
}

// bounceFor waits for a bounce in mailbox and returns its raw bytes.
func bounceFor(t *testing.T, st *store.Store, mailbox string) ([]byte, store.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events := st.Subscribe(ctx)
	for {
		ms, _, err := st.Search(ctx, store.Query{Mailbox: mailbox})
		if err == nil && len(ms) > 0 {
			raw, err := st.Raw(ctx, ms[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			return raw, ms[0]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no bounce in %s", mailbox)
		case <-events:
		}
	}
}

func TestAutoRelayByRule(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, dsn backend) {
		dest := newDest(t)
		tq := newTestQueueOn(t, dsn(t), Options{Match: []string{"*@Relay.test"}, Routes: map[string]string{"relay.test": dest.addr}}, true)
		id := tq.ingest(t, "alice@sender.test", []string{"Bob@relay.test", "carol@captured.test"}, mail("alice@sender.test", "bob@relay.test", "auto", "hello"))
		got := dest.wait(t)
		if got.from != "alice@sender.test" || len(got.to) != 1 || got.to[0] != "Bob@relay.test" || !bytes.Contains(got.data, []byte("Subject: auto")) {
			t.Fatalf("received %+v", got)
		}
		ds := waitQueue(t, tq.st, "delivered", allStatus(store.DeliveryDelivered, 1))
		if ds[0].MessageID != id || ds[0].Destination != dest.addr || ds[0].Attempts != 1 {
			t.Fatalf("delivery %+v", ds[0])
		}
		if rs, ok := ds[0].Recipient("bob@relay.test"); !ok || rs.Status != store.DeliveryDelivered || !strings.HasPrefix(rs.Reply, "250") {
			t.Fatalf("recipient status %+v", ds[0].RecipientStatus)
		}
		// The captured copies stay.
		if m, err := tq.st.Get(context.Background(), id); err != nil || len(m.Mailboxes) != 2 {
			t.Fatalf("captured copy: %+v %v", m, err)
		}
	})
}

func TestReleaseByHand(t *testing.T) {
	t.Parallel()
	dest := newDest(t)
	tq := newTestQueue(t, Options{Routes: map[string]string{"real.test": dest.addr}}, true)
	ctx := context.Background()
	id := tq.ingest(t, "alice@sender.test", []string{"x@real.test", "y@nowhere.test"}, mail("alice@sender.test", "x@real.test", "manual", "hello"))
	// No rule: nothing was queued at ingest.
	if ds, _ := tq.st.Deliveries(ctx); len(ds) != 0 {
		t.Fatalf("queued without a rule: %+v", ds)
	}
	// Not an open relay: a recipient without a route is refused, nothing queued.
	err := tq.q.Release(ctx, id, nil)
	if !errors.Is(err, ErrNoRoute) || !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("release to unrouted = %v", err)
	}
	if err := tq.q.Release(ctx, id, []string{"not an address"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("release to junk = %v", err)
	}
	if err := tq.q.Release(ctx, "nope", []string{"x@real.test"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("release of a missing message = %v", err)
	}
	if ds, _ := tq.st.Deliveries(ctx); len(ds) != 0 {
		t.Fatalf("queued after refused releases: %+v", ds)
	}
	if err := tq.q.Release(ctx, id, []string{"Someone@Real.test"}); err != nil {
		t.Fatal(err)
	}
	got := dest.wait(t)
	if got.from != "alice@sender.test" || len(got.to) != 1 || got.to[0] != "Someone@Real.test" {
		t.Fatalf("received %+v", got)
	}
	waitQueue(t, tq.st, "delivered", allStatus(store.DeliveryDelivered, 1))
}

func TestReleaseWithoutRelayConfigured(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, Options{}, true)
	id := tq.ingest(t, "a@sender.test", []string{"b@x.test"}, mail("a@sender.test", "b@x.test", "s", "b"))
	if err := tq.q.Release(context.Background(), id, nil); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("release = %v", err)
	}
}

func TestDestinationDownThenUp(t *testing.T) {
	t.Parallel()
	dest := newDest(t, func(d *destServer) { d.down = true })
	tq := newTestQueue(t, Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": dest.addr}}, true)
	tq.ingest(t, "a@sender.test", []string{"b@relay.test"}, mail("a@sender.test", "b@relay.test", "down", "x"))
	waitQueue(t, tq.st, "two failed attempts", func(ds []store.Delivery) bool {
		return len(ds) == 1 && ds[0].Status == store.DeliveryQueued && ds[0].Attempts >= 2 && ds[0].LastError != ""
	})
	dest.setDown(false)
	dest.wait(t)
	ds := waitQueue(t, tq.st, "delivered", allStatus(store.DeliveryDelivered, 1))
	if ds[0].Attempts < 3 {
		t.Fatalf("attempts = %d", ds[0].Attempts)
	}
}

func TestTemporaryFailureTwiceThenSuccess(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, dsn backend) {
		dest := newDest(t, greylisting(2))
		tq := newTestQueueOn(t, dsn(t), Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": dest.addr}}, true)
		tq.ingest(t, "a@sender.test", []string{"b@relay.test"}, mail("a@sender.test", "b@relay.test", "greylisted", "x"))
		dest.wait(t)
		ds := waitQueue(t, tq.st, "delivered", allStatus(store.DeliveryDelivered, 1))
		rs, _ := ds[0].Recipient("b@relay.test")
		if ds[0].Attempts != 3 || rs.Attempts != 3 || !strings.HasPrefix(rs.Reply, "250") {
			t.Fatalf("delivery %+v", ds[0])
		}
	})
}

// TestRetryDueBeforeAttemptIsDone: a retry can fall due, and be claimed,
// between recording an attempt and the worker letting go of it (a busy
// machine descheduling the worker for longer than the backoff). That claim
// must send the retry, not be mistaken for a lease renewal and stranded.
func TestRetryDueBeforeAttemptIsDone(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, dsn backend) {
		dest := newDest(t, greylisting(1))
		tq := newTestQueueOn(t, dsn(t), Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": dest.addr}}, false)
		var once sync.Once
		tq.q.testAfterRecord = func() {
			// Hold the worker well past the 10 ms backoff, so the scheduler
			// claims the retry meanwhile.
			once.Do(func() { time.Sleep(300 * time.Millisecond) })
		}
		tq.q.Start()
		tq.ingest(t, "a@sender.test", []string{"b@relay.test"}, mail("a@sender.test", "b@relay.test", "slowworker", "x"))
		dest.wait(t)
		waitQueue(t, tq.st, "delivered", allStatus(store.DeliveryDelivered, 1))
	})
}

func TestPermanentFailureBouncesToSender(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, dsn backend) {
		dest := newDest(t, func(d *destServer) {
			d.rcptFn = func(to string) error {
				if strings.HasPrefix(to, "nobody@") {
					return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
				}
				return nil
			}
		})
		tq := newTestQueueOn(t, dsn(t), Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": dest.addr}}, true)
		tq.ingest(t, "Alice@Sender.test", []string{"nobody@relay.test", "ok@relay.test"}, mail("alice@sender.test", "nobody@relay.test", "doomed", "x"))
		got := dest.wait(t)
		if len(got.to) != 1 || got.to[0] != "ok@relay.test" {
			t.Fatalf("received %+v", got)
		}
		ds := waitQueue(t, tq.st, "failed", allStatus(store.DeliveryFailed, 1))
		if rs, _ := ds[0].Recipient("nobody@relay.test"); rs.Status != store.DeliveryFailed || rs.Reply != "550 5.1.1 no such user here" {
			t.Fatalf("nobody: %+v", rs)
		}
		if rs, _ := ds[0].Recipient("ok@relay.test"); rs.Status != store.DeliveryDelivered {
			t.Fatalf("ok: %+v", rs)
		}
		raw, m := bounceFor(t, tq.st, "alice@sender.test")
		if m.Envelope.From != "" {
			t.Fatalf("bounce sender = %q, want null", m.Envelope.From)
		}
		for _, want := range []string{
			"multipart/report; report-type=delivery-status",
			"Content-Type: message/delivery-status",
			"Reporting-MTA: dns; sandbox.test",
			"Final-Recipient: rfc822; nobody@relay.test",
			"Action: failed",
			"Status: 5.1.1",
			"Diagnostic-Code: smtp; 550 5.1.1 no such user here",
			"Content-Type: text/rfc822-headers",
			"Subject: doomed",
		} {
			if !bytes.Contains(raw, []byte(want)) {
				t.Errorf("bounce lacks %q:\n%s", want, raw)
			}
		}
		if bytes.Contains(raw, []byte("Final-Recipient: rfc822; ok@relay.test")) {
			t.Error("bounce names the delivered recipient")
		}
	})
}

func TestNullSenderIsNeverBounced(t *testing.T) {
	t.Parallel()
	dest := newDest(t, func(d *destServer) {
		d.rcptFn = func(string) error { return &smtp.SMTPError{Code: 550, Message: "no"} }
	})
	tq := newTestQueue(t, Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": dest.addr}}, true)
	tq.ingest(t, "", []string{"x@relay.test"}, mail("MAILER-DAEMON@a.test", "x@relay.test", "bounce", "x"))
	waitQueue(t, tq.st, "failed", allStatus(store.DeliveryFailed, 1))
	ms, total, _ := tq.st.Search(context.Background(), store.Query{})
	if total != 1 || len(ms) != 1 {
		t.Fatalf("a bounce was bounced: %+v", ms)
	}
}

func TestMaxAgeExpiryBounces(t *testing.T) {
	t.Parallel()
	dest := newDest(t, func(d *destServer) {
		d.rcptFn = func(string) error {
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
		}
	})
	tq := newTestQueue(t, Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": dest.addr},
		MaxAge: 150 * time.Millisecond}, true)
	tq.ingest(t, "alice@sender.test", []string{"full@relay.test"}, mail("alice@sender.test", "full@relay.test", "expiring", "x"))
	waitQueue(t, tq.st, "failed", allStatus(store.DeliveryFailed, 1))
	raw, _ := bounceFor(t, tq.st, "alice@sender.test")
	for _, want := range []string{"Final-Recipient: rfc822; full@relay.test", "Status: 5.4.7", "Diagnostic-Code: smtp; 452 4.2.2 mailbox full", "Subject: expiring"} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("bounce lacks %q:\n%s", want, raw)
		}
	}
}

func TestManyMessagesShareOneConnection(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, dsn backend) {
		dest := newDest(t)
		tq := newTestQueueOn(t, dsn(t), Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": dest.addr},
			ConnectionIdle: 2 * time.Second}, false)
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() { // concurrent ingests share group commits
				defer wg.Done()
				env := store.Envelope{From: "a@sender.test", To: []string{fmt.Sprintf("r%d@relay.test", i)}}
				if _, err := tq.st.Ingest(context.Background(), env, mail("a@sender.test", "r@relay.test", fmt.Sprintf("m%d", i), "x")); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		tq.q.Start()
		seen := map[string]bool{}
		for range 20 {
			r := dest.wait(t)
			seen[r.to[0]] = true
		}
		if len(seen) != 20 {
			t.Fatalf("got %d distinct messages", len(seen))
		}
		waitQueue(t, tq.st, "all delivered", allStatus(store.DeliveryDelivered, 20))
		if n := dest.sessionCount(); n != 1 {
			t.Fatalf("sessions = %d, want 1", n)
		}
	})
}

func TestEightBitToSevenBitDestination(t *testing.T) {
	t.Parallel()
	dest := newDest(t, func(d *destServer) { d.no8bit = true })
	tq := newTestQueue(t, Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": dest.addr}}, true)
	text := "Grüße aus Köln — ça va? Ελληνικά\r\nzweite Zeile mit einer sehr langen Zeile " + strings.Repeat("äöü ", 40) + "\r\n"
	bin := []byte{0, 1, 2, 0xff, 0xfe, 'a', '\r', '\n', 0x80}
	raw := "From: a@sender.test\r\nTo: b@relay.test\r\nSubject: eight\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"BB\"\r\n\r\npreamble\r\n--BB\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text +
		"\r\n--BB\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=b.bin\r\n\r\n" + string(bin) +
		"\r\n--BB--\r\nepilogue\r\n"
	tq.ingest(t, "a@sender.test", []string{"b@relay.test"}, []byte(raw))
	got := dest.wait(t)
	for i, c := range got.data {
		if c >= 0x80 || c == 0 {
			t.Fatalf("8-bit byte %#x at %d in:\n%s", c, i, got.data)
		}
	}
	p := mailparse.Parse(got.data)
	if p.Text != strings.ReplaceAll(text, "\r\n", "\n") && p.Text != text && strings.TrimRight(p.Text, "\r\n") != strings.TrimRight(text, "\r\n") {
		t.Fatalf("text = %q, want %q", p.Text, text)
	}
	body, _, _, err := mailparse.PartBody(got.data, "2")
	if err != nil || !bytes.Equal(body, bin) {
		t.Fatalf("attachment = %q, %v", body, err)
	}
}

func TestUTF8HeadersDowngradedWithoutSMTPUTF8(t *testing.T) {
	t.Parallel()
	// Raw UTF-8 in a subject or a display name is common in mail from
	// applications; a destination without SMTPUTF8 gets those fields as
	// RFC 2047 encoded-words, and the message reads the same.
	dest := newDest(t)
	tq := newTestQueue(t, Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": dest.addr}}, true)
	raw := "From: Jörg Müller <a@sender.test>\r\nTo: \"Bö, Anna\" <b@relay.test>, c@relay.test\r\n" +
		"Subject: Grüße aus Köln — \"ça va\"?\r\nMessage-ID: <u8@sender.test>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHallo Jörg\r\n"
	tq.ingest(t, "a@sender.test", []string{"b@relay.test"}, []byte(raw))
	got := dest.wait(t)
	if i := bytes.IndexFunc(dsn.Header(got.data), func(r rune) bool { return r >= 0x80 }); i >= 0 {
		t.Fatalf("8-bit header left at %d:\n%s", i, got.data)
	}
	p := mailparse.Parse(got.data)
	if p.Subject != "Grüße aus Köln — \"ça va\"?" || p.From.Name != "Jörg Müller" || p.From.Address != "a@sender.test" ||
		len(p.To) != 2 || p.To[0].Name != "Bö, Anna" || p.To[0].Address != "b@relay.test" || p.To[1].Address != "c@relay.test" ||
		strings.TrimRight(p.Text, "\r\n") != "Hallo Jörg" {
		t.Fatalf("decoded: subject %q from %+v to %+v text %q\n%s", p.Subject, p.From, p.To, p.Text, got.data)
	}
	waitQueue(t, tq.st, "delivered", allStatus(store.DeliveryDelivered, 1))
}

func TestUTF8AddressNeedsSMTPUTF8(t *testing.T) {
	t.Parallel()
	// A non-ASCII mailbox cannot be encoded for a destination without
	// SMTPUTF8: in the envelope or in an address field, it fails for good.
	dest := newDest(t)
	tq := newTestQueue(t, Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": dest.addr}}, true)
	tq.ingest(t, "a@sender.test", []string{"b@relay.test"}, mail("jörg@sender.test", "b@relay.test", "utf8", "x"))
	tq.ingest(t, "a@sender.test", []string{"jörg@relay.test"}, mail("a@sender.test", "b@relay.test", "utf8rcpt", "x"))
	ds := waitQueue(t, tq.st, "failed", allStatus(store.DeliveryFailed, 2))
	for _, d := range ds {
		if !strings.Contains(d.LastError, "5.6.7") {
			t.Fatalf("last error = %q", d.LastError)
		}
	}
	raw, _ := bounceFor(t, tq.st, "a@sender.test")
	if !bytes.Contains(raw, []byte("Status: 5.6.7")) || !bytes.Contains(raw, []byte("SMTPUTF8")) {
		t.Fatalf("bounce:\n%s", raw)
	}
	// The relay decided this itself: the bounce must not say the
	// destination answered it.
	if bytes.Contains(raw, []byte("Remote-MTA:")) || bytes.Contains(raw, []byte(" said: ")) ||
		!bytes.Contains(raw, []byte("Diagnostic-Code: X-mailsandbox; ")) {
		t.Fatalf("a local failure is reported as the destination's reply:\n%s", raw)
	}
}

func TestUTF8ToSMTPUTF8Destination(t *testing.T) {
	t.Parallel()
	dest := newDest(t, func(d *destServer) { d.utf8 = true })
	tq := newTestQueue(t, Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": dest.addr}}, true)
	raw := mail("Jörg <jörg@sender.test>", "jörg@relay.test", "Grüße", "x")
	tq.ingest(t, "jörg@sender.test", []string{"jörg@relay.test"}, raw)
	got := dest.wait(t)
	if got.from != "jörg@sender.test" || len(got.to) != 1 || got.to[0] != "jörg@relay.test" || !got.smtputf8 ||
		!bytes.HasSuffix(got.data, raw) {
		t.Fatalf("got from %q to %q smtputf8 %v:\n%s", got.from, got.to, got.smtputf8, got.data)
	}
}

func TestRestartDeliversEverything(t *testing.T) {
	t.Parallel()
	onEachBackend(t, func(t *testing.T, dsn backend) {
		dest := newDest(t, func(d *destServer) { d.down = true })
		opts := Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": dest.addr}}
		path := filepath.Join(t.TempDir(), "mail.db")
		ctx := context.Background()

		// First life: mail queues while the destination is down; the process
		// "dies" with some deliveries leased (sending) and others queued.
		var q1 *Queue
		st1 := openStore(t, path, &q1)
		q1, _ = New(st1, testOptions(opts), slog.New(slog.NewTextHandler(io.Discard, nil)))
		for i := range 6 {
			if _, err := st1.Ingest(ctx, store.Envelope{From: "a@sender.test", To: []string{fmt.Sprintf("r%d@relay.test", i)}}, mail("a@sender.test", "r@relay.test", fmt.Sprintf("m%d", i), "x")); err != nil {
				t.Fatal(err)
			}
		}
		q1.Start()
		waitQueue(t, st1, "a failed attempt each", func(ds []store.Delivery) bool {
			for _, d := range ds {
				if d.Attempts == 0 {
					return false
				}
			}
			return len(ds) == 6
		})
		q1.Close()
		ds, _ := st1.Deliveries(ctx)
		for _, d := range ds {
			if err := st1.RetryDelivery(ctx, d.ID); err != nil {
				t.Fatal(err)
			}
		}
		if c, err := st1.ClaimDue(ctx, time.Now(), "crashed-process", time.Millisecond, 3); err != nil || len(c) != 3 {
			t.Fatalf("lease some as a crashed process would: %v %v", c, err)
		}
		st1.Close()

		// Second life: the destination is back.
		dest.setDown(false)
		var q2 *Queue
		st2 := openStore(t, path, &q2)
		q2, _ = New(st2, testOptions(opts), slog.New(slog.NewTextHandler(io.Discard, nil)))
		q2.Start()
		t.Cleanup(func() { q2.Close() })
		seen := map[string]bool{}
		for range 6 {
			seen[dest.wait(t).to[0]] = true
		}
		if len(seen) != 6 {
			t.Fatalf("delivered %v", seen)
		}
		waitQueue(t, st2, "all delivered", allStatus(store.DeliveryDelivered, 6))
	})
}

func TestMXDelivery(t *testing.T) {
	t.Parallel()
	dest := newDest(t)
	_, port, _ := net.SplitHostPort(dest.addr)
	var p int
	fmt.Sscan(port, &p)
	lookups := make(chan string, 10)
	tq := newTestQueue(t, Options{MX: true, MXPort: p, Match: []string{"*@mx.test"},
		LookupMX: func(ctx context.Context, domain string) ([]*net.MX, error) {
			lookups <- domain
			// The preferred host is down (nothing listens on it); the next works.
			return []*net.MX{{Host: "127.0.0.1.", Pref: 20}, {Host: "127.0.0.2.", Pref: 10}}, nil
		}}, true)
	tq.ingest(t, "a@sender.test", []string{"b@MX.test"}, mail("a@sender.test", "b@mx.test", "mx", "x"))
	dest.wait(t)
	if d := <-lookups; d != "mx.test" {
		t.Fatalf("looked up %q", d)
	}
	ds := waitQueue(t, tq.st, "delivered", allStatus(store.DeliveryDelivered, 1))
	if ds[0].Destination != "mx:mx.test" || ds[0].Attempts != 1 {
		t.Fatalf("delivery %+v", ds[0])
	}
}

// testCert makes a self-signed certificate for 127.0.0.1 and the pool that
// trusts it.
func testCert(t *testing.T) (*tls.Config, *x509.CertPool) {
	return tlscert.ForTest(t)
}

func TestSmarthostStartTLSAndAuth(t *testing.T) {
	t.Parallel()
	srvTLS, pool := testCert(t)
	dest := newDest(t, func(d *destServer) { d.tlsConfig, d.user, d.pass = srvTLS, "relayuser", "s3cret:x" })
	reg := prometheus.NewRegistry()
	tq := newTestQueue(t, Options{Smarthost: dest.addr, SmarthostAuth: "relayuser:s3cret:x", Match: []string{"*@anywhere.test"},
		TLSConfig: &tls.Config{RootCAs: pool}, Registerer: reg}, true)
	tq.ingest(t, "a@sender.test", []string{"b@anywhere.test"}, mail("a@sender.test", "b@anywhere.test", "smarthost", "x"))
	got := dest.wait(t)
	if !got.tls || got.user != "relayuser" {
		t.Fatalf("received tls=%v user=%q", got.tls, got.user)
	}
	waitQueue(t, tq.st, "delivered", allStatus(store.DeliveryDelivered, 1))
	if v := counterValue(t, reg, "mailsandbox_relay_attempts_total", "delivered"); v != 1 {
		t.Fatalf("attempts_total{outcome=delivered} = %v", v)
	}
	if v := counterValue(t, reg, "mailsandbox_relay_connections_total", "ok"); v != 1 {
		t.Fatalf("connections_total{result=ok} = %v", v)
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestSmarthostCertificateIsVerified(t *testing.T) {
	t.Parallel()
	srvTLS, _ := testCert(t)
	dest := newDest(t, func(d *destServer) { d.tlsConfig = srvTLS })
	tq := newTestQueue(t, Options{Smarthost: dest.addr, Match: []string{"*@anywhere.test"}}, true)
	tq.ingest(t, "a@sender.test", []string{"b@anywhere.test"}, mail("a@sender.test", "b@anywhere.test", "untrusted", "x"))
	ds := waitQueue(t, tq.st, "a deferred attempt", func(ds []store.Delivery) bool {
		return len(ds) == 1 && ds[0].Attempts >= 1 && ds[0].Status == store.DeliveryQueued && ds[0].LastError != ""
	})
	if !strings.Contains(ds[0].LastError, "certificate") {
		t.Fatalf("last error = %q", ds[0].LastError)
	}
	select {
	case r := <-dest.got:
		t.Fatalf("sent to an unverified smarthost: %+v", r)
	default:
	}
}

func TestRouteUsesOpportunisticTLS(t *testing.T) {
	t.Parallel()
	srvTLS, _ := testCert(t) // not trusted by the relay
	dest := newDest(t, func(d *destServer) { d.tlsConfig = srvTLS })
	tq := newTestQueue(t, Options{Routes: map[string]string{"r.test": dest.addr}, Match: []string{"*@r.test"}}, true)
	tq.ingest(t, "a@sender.test", []string{"b@r.test"}, mail("a@sender.test", "b@r.test", "opportunistic", "x"))
	if got := dest.wait(t); !got.tls {
		t.Fatal("route did not use STARTTLS")
	}
	waitQueue(t, tq.st, "delivered", allStatus(store.DeliveryDelivered, 1))
}

func TestMaxPerConnection(t *testing.T) {
	t.Parallel()
	dest := newDest(t)
	tq := newTestQueue(t, Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": dest.addr},
		MaxPerConnection: 5, MaxParallelPerDestination: 1, ConnectionIdle: -1}, false)
	for i := range 12 {
		tq.ingest(t, "a@sender.test", []string{fmt.Sprintf("r%d@relay.test", i)}, mail("a@sender.test", "r@relay.test", fmt.Sprintf("m%d", i), "x"))
	}
	tq.q.Start()
	for range 12 {
		dest.wait(t)
	}
	waitQueue(t, tq.st, "all delivered", allStatus(store.DeliveryDelivered, 12))
	if n := dest.sessionCount(); n != 3 {
		t.Fatalf("sessions = %d, want 3 (5+5+2)", n)
	}
}

func TestRetryByHandWakesTheRelay(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	busy := true
	dest := newDest(t, func(d *destServer) {
		d.rcptFn = func(string) error {
			mu.Lock()
			defer mu.Unlock()
			if busy {
				return &smtp.SMTPError{Code: 451, Message: "busy"}
			}
			return nil
		}
	})
	tq := newTestQueue(t, Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": dest.addr},
		RetryMin: time.Hour, RetryMax: time.Hour}, true)
	tq.ingest(t, "a@sender.test", []string{"b@relay.test"}, mail("a@sender.test", "b@relay.test", "retry", "x"))
	ds := waitQueue(t, tq.st, "a deferred attempt", func(ds []store.Delivery) bool {
		return len(ds) == 1 && ds[0].Status == store.DeliveryQueued && ds[0].Attempts == 1
	})
	if wait := time.Until(ds[0].NextAttemptAt); wait < 30*time.Minute {
		t.Fatalf("next attempt in %v, want about an hour", wait)
	}
	mu.Lock()
	busy = false
	mu.Unlock()
	if err := tq.st.RetryDelivery(context.Background(), ds[0].ID); err != nil {
		t.Fatal(err)
	}
	dest.wait(t)
	waitQueue(t, tq.st, "delivered", allStatus(store.DeliveryDelivered, 1))
}

// notFoundDial fails every dial as a name that does not resolve.
func notFoundDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, _ := net.SplitHostPort(addr)
	return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
}

func TestUnresolvableRouteIsRetried(t *testing.T) {
	t.Parallel()
	// A route's host that does not resolve (say a stopped container) is a
	// temporary problem: the mail waits, it is not bounced.
	tq := newTestQueue(t, Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": "dest-container:25"},
		Dial: notFoundDial}, true)
	tq.ingest(t, "a@sender.test", []string{"b@relay.test"}, mail("a@sender.test", "b@relay.test", "unresolvable", "x"))
	ds := waitQueue(t, tq.st, "two deferred attempts", func(ds []store.Delivery) bool {
		return len(ds) == 1 && ds[0].Attempts >= 2 && ds[0].Status == store.DeliveryQueued
	})
	if !strings.Contains(ds[0].LastError, "no such host") {
		t.Fatalf("last error = %q", ds[0].LastError)
	}
}

func TestMXDomainWithoutHostBounces(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, Options{MX: true, Match: []string{"*@gone.test"}, Dial: notFoundDial,
		LookupMX: func(ctx context.Context, domain string) ([]*net.MX, error) {
			return nil, &net.DNSError{Err: "no such host", Name: domain, IsNotFound: true}
		}}, true)
	tq.ingest(t, "a@sender.test", []string{"b@gone.test"}, mail("a@sender.test", "b@gone.test", "nxdomain", "x"))
	waitQueue(t, tq.st, "failed", allStatus(store.DeliveryFailed, 1))
	raw, _ := bounceFor(t, tq.st, "a@sender.test")
	if !bytes.Contains(raw, []byte("Status: 5.1.2")) {
		t.Fatalf("bounce:\n%s", raw)
	}
}

func TestNullMXBounces(t *testing.T) {
	t.Parallel()
	tq := newTestQueue(t, Options{MX: true, Match: []string{"*@nomail.test"},
		LookupMX: func(ctx context.Context, domain string) ([]*net.MX, error) {
			return []*net.MX{{Host: ".", Pref: 0}}, nil
		}}, true)
	tq.ingest(t, "a@sender.test", []string{"b@nomail.test"}, mail("a@sender.test", "b@nomail.test", "nullmx", "x"))
	waitQueue(t, tq.st, "failed", allStatus(store.DeliveryFailed, 1))
	raw, _ := bounceFor(t, tq.st, "a@sender.test")
	if !bytes.Contains(raw, []byte("Status: 5.1.10")) || !bytes.Contains(raw, []byte("Diagnostic-Code: X-mailsandbox; domain nomail.test does not accept mail")) ||
		bytes.Contains(raw, []byte("Remote-MTA:")) {
		t.Fatalf("bounce:\n%s", raw)
	}
}

func TestRelayLoopIsStopped(t *testing.T) {
	t.Parallel()
	// A route back into the sandbox itself: each pass adds a Received
	// field, and the relay stops the loop with a 5.4.6 failure.
	var q *Queue
	tq := &testQueue{}
	st := openStore(t, sqliteDSN(t), &q)
	tq.st = st
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &loopSession{st: st}, nil }))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	q, err = New(st, testOptions(Options{Match: []string{"*@loop.test"}, Routes: map[string]string{"loop.test": ln.Addr().String()}}),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	q.Start()
	t.Cleanup(func() { q.Close() })
	// Start near the limit, as a message that has looped for a while.
	trace := strings.Repeat("Received: from elsewhere by somewhere; Fri, 02 Jan 2026 03:04:05 +0000\r\n", maxHops-4)
	tq.ingest(t, "", []string{"me@loop.test"}, append([]byte(trace), mail("me@loop.test", "me@loop.test", "loop", "x")...))
	waitQueue(t, st, "the loop stopped", func(ds []store.Delivery) bool {
		for _, d := range ds {
			if d.Status == store.DeliveryFailed && strings.Contains(d.LastError, "5.4.6") {
				return true
			}
		}
		return false
	})
}

// loopSession ingests what it receives into the same store.
type loopSession struct {
	st   *store.Store
	from string
	to   []string
}

func (s *loopSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *loopSession) Rcpt(to string, _ *smtp.RcptOptions) error   { s.to = append(s.to, to); return nil }
func (s *loopSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, err = s.st.Ingest(context.Background(), store.Envelope{From: s.from, To: s.to}, b)
	return err
}
func (s *loopSession) Reset()        { s.from, s.to = "", nil }
func (s *loopSession) Logout() error { return nil }

// TestCloseDuringConnectPutsDeliveriesBack: a queue closed while it waits
// for a destination's greeting has made no attempt; its deliveries are
// queued again at once, not left leased for a whole lease (a restart
// would otherwise wait that long for them).
func TestCloseDuringConnectPutsDeliveriesBack(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c // never greets
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	})
	opts := Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": l.Addr().String()}}
	var q *Queue
	st := openStore(t, filepath.Join(t.TempDir(), "mail.db"), &q)
	q, _ = New(st, testOptions(opts), slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	if _, err := st.Ingest(ctx, store.Envelope{From: "a@sender.test", To: []string{"r@relay.test"}}, mail("a@sender.test", "r@relay.test", "m", "x")); err != nil {
		t.Fatal(err)
	}
	q.Start()
	var c net.Conn
	select {
	case c = <-accepted:
	case <-time.After(20 * time.Second):
		t.Fatal("the queue never connected")
	}
	defer c.Close()
	waitQueue(t, st, "claimed", func(ds []store.Delivery) bool {
		return len(ds) == 1 && ds[0].Status == store.DeliverySending
	})
	q.Close()
	ds, err := st.Deliveries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// No attempt was made: no error recorded, due at once.
	if len(ds) != 1 || ds[0].Status != store.DeliveryQueued || ds[0].LeaseOwner != "" ||
		ds[0].LastError != "" || ds[0].NextAttemptAt.After(time.Now()) {
		t.Fatalf("after Close during connect: %+v, want queued, not leased, no error, due now", ds)
	}
}
