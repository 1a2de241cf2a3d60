package imapd_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/smtp"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/internal/need"

	"github.com/mailsandbox/mailsandbox/capture/tlscert"

	"github.com/mailsandbox/mailsandbox/api/imapd"
	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
)

// TestSMTPToIMAPIdle: mail sent over real SMTP reaches a client IDLEing in
// INBOX, and FETCH returns the stored bytes exactly.
func TestSMTPToIMAPIdle(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	sm := smtpd.New(ts.st, smtpd.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go sm.Serve(ln)
	t.Cleanup(func() { sm.Close() })

	c := dial(t, ts.addr)
	c.login("bob@example.com")
	c.ok("SELECT INBOX")
	c.send("i1 IDLE")
	if l := c.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE answered %q", l)
	}
	body := "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: via SMTP\r\n\r\nHello over SMTP.\r\n"
	if err := smtp.SendMail(ln.Addr().String(), nil, "alice@example.com", []string{"Bob@Example.com"}, []byte(body)); err != nil {
		t.Fatal(err)
	}
	if l := c.line(); l != "* 1 EXISTS" {
		t.Fatalf("during IDLE got %q", l)
	}
	if l := c.line(); l != "* 1 RECENT" {
		t.Fatalf("during IDLE got %q", l)
	}
	c.send("DONE")
	if l := c.line(); !strings.HasPrefix(l, "i1 OK") {
		t.Fatalf("after DONE %q", l)
	}
	list, _, _ := ts.st.Search(context.Background(), store.Query{Mailbox: "bob@example.com"})
	raw, err := ts.st.Raw(context.Background(), list[0].ID)
	if err != nil || !strings.HasSuffix(string(raw), body) {
		t.Fatalf("stored %q, %v", raw, err)
	}
	u := c.ok("FETCH 1 (BODY.PEEK[])")
	want := fmt.Sprintf("* 1 FETCH (BODY[] {%d}%s)", len(raw), raw)
	if len(u) != 1 || u[0] != want {
		t.Fatalf("fetch %q\nwant %q", u, want)
	}
}

func selfSigned(t *testing.T) *tls.Config {
	cfg, _ := tlscert.ForTest(t)
	return cfg
}

// TestTLS: STARTTLS is offered with a certificate; with an auth file,
// plain connections announce LOGINDISABLED until STARTTLS; implicit TLS
// (a TLS listener) logs in directly.
func TestTLS(t *testing.T) {
	t.Parallel()
	cfg := selfSigned(t)
	ts := newTestServer(t, func(o *imapd.Options) {
		o.TLSConfig = cfg
		o.Auth = fixedAuth{"bob@example.com": "pw"}
	})
	c := dial(t, ts.addr)
	u := c.ok("CAPABILITY")
	if !strings.Contains(u[0], "STARTTLS") || !strings.Contains(u[0], "LOGINDISABLED") {
		t.Fatalf("plain caps %q", u)
	}
	if _, st := c.do("LOGIN bob@example.com pw"); !strings.HasPrefix(st, "NO") {
		t.Fatalf("login without TLS: %s", st)
	}
	c.ok("STARTTLS")
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	c.conn, c.r = tc, bufio.NewReader(tc)
	u = c.ok("CAPABILITY")
	if strings.Contains(u[0], "STARTTLS") || strings.Contains(u[0], "LOGINDISABLED") {
		t.Fatalf("caps after STARTTLS %q", u)
	}
	c.ok("LOGIN bob@example.com pw")

	// Implicit TLS: the caller wraps the listener.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ts.srv.Serve(tls.NewListener(ln, cfg))
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ic := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	if g := ic.line(); !strings.HasPrefix(g, "* OK") || strings.Contains(g, "STARTTLS") || strings.Contains(g, "LOGINDISABLED") {
		t.Fatalf("imaps greeting %q", g)
	}
	ic.ok("LOGIN bob@example.com pw")
}

// TestFoldersAndSubscriptions: hierarchy, RENAME of INBOX, LSUB and
// LIST-EXTENDED with STATUS and SPECIAL-USE.
func TestFoldersAndSubscriptions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(t, "bob@example.com", textMsg("a", "x"))
	ts.ingest(t, "bob@example.com", textMsg("b", "y"))
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	c.ok("CREATE Projects/2026/Q1")
	u := c.ok("%s", `LIST "" "Projects/%"`)
	if strings.Join(u, "|") != `* LIST (\HasChildren) "/" "Projects/2026"` {
		t.Fatalf("list %q", u)
	}
	c.ok("DELETE Projects")
	u = c.ok(`LIST "" "*"`)
	if len(grep(u, `(\Noselect \HasChildren) "/" "Projects"`)) != 1 {
		t.Fatalf("parent without folder %q", u)
	}
	if _, st := c.do("SELECT Projects"); !strings.HasPrefix(st, "NO") {
		t.Fatalf("select \\Noselect: %s", st)
	}
	c.ok("SUBSCRIBE Projects/2026/Q1")
	c.ok("SUBSCRIBE Projects/2026")
	c.ok("UNSUBSCRIBE Projects/2026")
	u = c.ok(`LSUB "" "*"`)
	if len(grep(u, `"Projects/2026"`)) != 0 || len(grep(u, "INBOX")) != 1 {
		t.Fatalf("lsub %q", u)
	}
	u = c.ok(`LIST (SUBSCRIBED) "" "Projects/*"`)
	if len(u) != 1 || !strings.Contains(u[0], `\Subscribed`) || !strings.Contains(u[0], `"Projects/2026/Q1"`) {
		t.Fatalf("list subscribed %q", u)
	}
	u = c.ok(`LIST (SPECIAL-USE) "" "*"`)
	if len(u) != 3 || len(grep(u, `\Trash`)) != 1 {
		t.Fatalf("list special-use %q", u)
	}
	c.ok(`CREATE Old (USE (\Archive))`)
	u = c.ok(`LIST "" "Old" RETURN (STATUS (MESSAGES UNSEEN))`)
	if len(u) != 2 || !strings.Contains(u[0], `\Archive`) || u[1] != `* STATUS "Old" (MESSAGES 0 UNSEEN 0)` {
		t.Fatalf("list-status %q", u)
	}
	// RENAME INBOX moves its mail and leaves it empty (RFC 3501 6.3.5).
	c.ok("DELETE Old")
	c.ok("RENAME inbox Old")
	u = c.ok("STATUS INBOX (MESSAGES UIDNEXT)")
	if u[0] != "* STATUS INBOX (MESSAGES 0 UIDNEXT 3)" {
		t.Fatalf("inbox after rename %q", u)
	}
	u = c.ok("STATUS Old (MESSAGES)")
	if u[0] != `* STATUS "Old" (MESSAGES 2)` {
		t.Fatalf("old after rename %q", u)
	}
	if _, st := c.do("RENAME Old Trash"); !strings.HasPrefix(st, "NO [ALREADYEXISTS]") {
		t.Fatalf("rename onto existing: %s", st)
	}
	list, _, _ := ts.st.Search(context.Background(), store.Query{Mailbox: "bob@example.com", Folder: "Old"})
	if len(list) != 2 {
		t.Fatalf("REST view of Old: %d", len(list))
	}
}

// TestUIDsSurviveRestart: UIDVALIDITY and UIDs come from the store.
func TestUIDsSurviveRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mail.db")
	start := func() (*store.Store, *imapd.Server, string) {
		st, err := store.Open(ctx, store.Options{DSN: path})
		if err != nil {
			t.Fatal(err)
		}
		srv := imapd.New(st, imapd.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		return st, srv, ln.Addr().String()
	}
	st, srv, addr := start()
	for i := 0; i < 3; i++ {
		st.Ingest(ctx, store.Envelope{From: "a@b", To: []string{"bob@example.com"}}, []byte(textMsg(fmt.Sprint("m", i), "x")))
	}
	c := dial(t, addr)
	c.login("bob@example.com")
	c.ok("SELECT INBOX")
	c.ok(`STORE 2 +FLAGS (\Deleted)`)
	c.ok("EXPUNGE")
	before := c.ok("UID FETCH 1:* (UID FLAGS)")
	sel1 := grep(c.ok("SELECT INBOX"), "UIDVALIDITY")
	c.conn.Close()
	srv.Close()
	st.Close()

	st, srv, addr = start()
	defer st.Close()
	defer srv.Close()
	c = dial(t, addr)
	c.login("bob@example.com")
	sel2 := grep(c.ok("SELECT INBOX"), "UIDVALIDITY")
	after := c.ok("UID FETCH 1:* (UID FLAGS)")
	// \Recent was this session's; after the restart the mail is old.
	if strings.ReplaceAll(strings.Join(before, "|"), `\Recent`, "") != strings.Join(after, "|") || sel1[0] != sel2[0] {
		t.Fatalf("before %q %q\nafter %q %q", before, sel1, after, sel2)
	}
	st.Ingest(ctx, store.Envelope{From: "a@b", To: []string{"bob@example.com"}}, []byte(textMsg("new", "x")))
	// A message the client was not told about yet is announced first.
	if u := c.ok("UID FETCH 4 (UID)"); strings.Join(u, "|") != "* 3 EXISTS|* 1 RECENT" {
		t.Fatalf("new mail after restart %q", u)
	}
	if u := c.ok("UID FETCH 4 (UID)"); len(u) != 1 || u[0] != "* 3 FETCH (UID 4)" {
		t.Fatalf("new mail after restart %q", u)
	}
}

// TestShutdown says BYE to connected clients and returns once they left.
func TestShutdown(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	c.ok("SELECT INBOX")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if l := c.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("got %q", l)
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Fatal("still listening after Shutdown")
	}
}

// TestConcurrentSessions: several sessions IDLE while mail pours in and
// another session flags and expunges; every IDLEr's running count of
// EXISTS and EXPUNGE ends where the store is. Run with -race.
func TestConcurrentSessions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	const n = 30
	var idlers []*rawClient
	for i := 0; i < 3; i++ {
		c := dial(t, ts.addr)
		c.login("bob@example.com")
		c.ok("SELECT INBOX")
		c.send("i IDLE")
		if l := c.line(); !strings.HasPrefix(l, "+ ") {
			t.Fatalf("IDLE answered %q", l)
		}
		idlers = append(idlers, c)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			ts.st.Ingest(context.Background(), store.Envelope{From: "a@b", To: []string{"bob@example.com"}}, []byte(textMsg(fmt.Sprint("m", i), "x")))
		}
	}()
	w := dial(t, ts.addr)
	w.login("bob@example.com")
	w.ok("SELECT INBOX")
	for i := 0; i < 5; i++ {
		w.do(`STORE 1:* +FLAGS.SILENT (\Seen)`)
		w.do(`STORE 1 +FLAGS.SILENT (\Deleted)`)
		w.do("EXPUNGE")
	}
	wg.Wait()
	// "*" is the last message this client knows of: a NOOP first, so the
	// STORE covers mail that arrived after its last command.
	w.ok("NOOP")
	w.ok(`STORE 1:* +FLAGS.SILENT (\Seen)`)
	f, _ := ts.st.Folder(context.Background(), "bob@example.com", "INBOX")
	if f.Unseen != 0 {
		t.Fatalf("after STORE 1:* +FLAGS (Seen) the store has %d unseen of %d", f.Unseen, f.Total)
	}
	for _, c := range idlers {
		c.send("DONE")
		count := 0
		for {
			l := c.line()
			if strings.HasPrefix(l, "i OK") {
				break
			}
			var k int
			if _, err := fmt.Sscanf(l, "* %d EXISTS", &k); err == nil {
				count = k
			} else if strings.HasSuffix(l, " EXPUNGE") {
				count--
			}
		}
		// Anything queued after the last IDLE write comes with NOOP.
		for _, l := range c.ok("NOOP") {
			var k int
			if _, err := fmt.Sscanf(l, "* %d EXISTS", &k); err == nil {
				count = k
			} else if strings.HasSuffix(l, " EXPUNGE") {
				count--
			}
		}
		if count != f.Total {
			t.Fatalf("idler counted %d messages, store has %d", count, f.Total)
		}
		if u := grep(c.ok("SEARCH SEEN"), "SEARCH"); len(u) != 1 || u[0] != "* SEARCH "+seqList(f.Total) {
			t.Fatalf("idler search %q, want %d seen", u, f.Total)
		}
	}
}

func seqList(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, " %d", i)
	}
	return strings.TrimSpace(b.String())
}

// TestCurl reads a message with curl's IMAP client.
func TestCurl(t *testing.T) {
	t.Parallel()
	bin := need.Command(t, need.Curl, "curl")
	ts := newTestServer(t)
	raw := textMsg("via curl", "fetched by curl")
	ts.ingest(t, "bob@example.com", raw)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-sS", "--user", "bob@example.com:x",
		"imap://"+ts.addr+"/INBOX;UID=1").CombinedOutput()
	if err != nil || string(out) != raw {
		t.Fatalf("curl: %v\n%q", err, out)
	}
	out, err = exec.CommandContext(ctx, bin, "-sS", "--user", "bob@example.com:x", "imap://"+ts.addr+"/").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "INBOX") || !strings.Contains(string(out), "Trash") {
		t.Fatalf("curl list: %v\n%s", err, out)
	}
}

// TestBodyStructureDefaults: a part without Content-Type is
// text/plain; charset=us-ascii (RFC 2045), which the library leaves empty.
func TestBodyStructureDefaults(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(t, "bob@example.com", "Subject: plain\r\n\r\nline one\r\nline two\r\n")
	ts.ingest(t, "bob@example.com", "Subject: digest\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nno header part\r\n--b--\r\n")
	c := dial(t, ts.addr)
	c.login("bob@example.com")
	c.ok("SELECT INBOX")
	u := c.ok("FETCH 1:2 (BODYSTRUCTURE BODY)")
	want := []string{
		`* 1 FETCH (BODY ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 20 2) BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 20 2 NIL NIL NIL NIL))`,
		`* 2 FETCH (BODY (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 0) "mixed") BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 0 NIL NIL NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL))`,
	}
	if strings.Join(u, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(u, "\n"), strings.Join(want, "\n"))
	}
}

// TestTwoInstancesOnPostgres: two servers share one PostgreSQL store (the
// shared deployment); a change through one reaches a client IDLEing on
// the other, and each command re-reads the folder. Skips without
// MAILSANDBOX_TEST_PG.
func TestTwoInstancesOnPostgres(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	var addrs []string
	var stores []*store.Store
	for i := 0; i < 2; i++ {
		st, err := store.Open(ctx, store.Options{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		srv := imapd.New(st, imapd.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		addrs = append(addrs, ln.Addr().String())
		stores = append(stores, st)
	}
	stores[0].Ingest(ctx, store.Envelope{From: "a@b", To: []string{"bob@example.com"}}, []byte(textMsg("one", "x")))
	a, b := dial(t, addrs[0]), dial(t, addrs[1])
	a.login("bob@example.com")
	b.login("bob@example.com")
	a.ok("SELECT INBOX")
	b.ok("SELECT INBOX")
	b.send("i IDLE")
	if l := b.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE answered %q", l)
	}
	a.ok(`STORE 1 +FLAGS.SILENT (\Flagged)`)
	if l := b.line(); l != `* 1 FETCH (UID 1 FLAGS (\Flagged))` {
		t.Fatalf("other instance during IDLE: %q", l)
	}
	stores[0].Ingest(ctx, store.Envelope{From: "a@b", To: []string{"bob@example.com"}}, []byte(textMsg("two", "y")))
	if l := b.line(); l != "* 2 EXISTS" {
		t.Fatalf("other instance during IDLE: %q", l)
	}
	b.send("DONE")
	l := b.line()
	bTook := l == "* 1 RECENT" // b took the new message as recent (a was not looking)
	if bTook {
		l = b.line()
	}
	if !strings.HasPrefix(l, "i OK") {
		t.Fatalf("after DONE %q", l)
	}
	a.ok("NOOP")
	a.ok(`STORE 2 +FLAGS.SILENT (\Deleted)`)
	a.ok("EXPUNGE")
	// The \Deleted FETCH may come first, depending on when b heard of it;
	// RECENT last if the message was recent for b.
	u := b.ok("NOOP")
	if bTook {
		if len(u) == 0 || u[len(u)-1] != "* 0 RECENT" {
			t.Fatalf("other instance after expunge of its recent message %q", u)
		}
		u = u[:len(u)-1]
	}
	if len(grep(u, "EXPUNGE")) != 1 || u[len(u)-1] != "* 2 EXPUNGE" {
		t.Fatalf("other instance after expunge %q", u)
	}
}
