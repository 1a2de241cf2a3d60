package smtpd_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
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

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
	"github.com/mailsandbox/mailsandbox/internal/need"

	"github.com/mailsandbox/mailsandbox/capture/connlimit/limittest"
	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

func hardenDial(t *testing.T, addr string, local string) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func hardenLine(t *testing.T, c net.Conn, br *bufio.Reader) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, l)
		}
		if len(l) < 4 || l[3] != '-' {
			return strings.TrimRight(l, "\r\n")
		}
	}
}

// A client that sends one byte every 100ms never completes a command
// within the read timeout: the server cuts it off, in the command phase
// and while receiving DATA, and stores nothing.
func TestHardeningSlowClientIsCutOff(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *smtpd.Options) { o.ReadTimeout = 500 * time.Millisecond })
	// The phases run side by side (a group, so the check below waits
	// for both): each mostly waits for the server to give up.
	t.Run("phases", func(t *testing.T) {
		for _, phase := range []string{"command", "data"} {
			t.Run(phase, func(t *testing.T) {
				t.Parallel()
				c, br := hardenDial(t, ts.addr, "")
				if l := hardenLine(t, c, br); !strings.HasPrefix(l, "220") {
					t.Fatalf("greeting %q", l)
				}
				payload := "EHLO " + strings.Repeat("slow", 50) + "\r\n"
				if phase == "data" {
					for _, cmd := range []string{"EHLO x", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "DATA"} {
						fmt.Fprintf(c, "%s\r\n", cmd)
						if l := hardenLine(t, c, br); l[0] != '2' && l[0] != '3' {
							t.Fatalf("%s: %q", cmd, l)
						}
					}
					payload = "Subject: slow\r\n\r\n" + strings.Repeat("x", 200) + "\r\n.\r\n"
				}
				sent := limittest.Trickle(c, payload, 100*time.Millisecond)
				limittest.ExpectClosed(t, c, br, 20*time.Second)
				c.Close()
				if n := <-sent; n >= len(payload) {
					t.Fatalf("the whole slow %s (%d bytes) got through before the server gave up", phase, n)
				}
			})
		}
	})
	if _, total, _ := ts.st.Search(context.Background(), store.Query{}); total != 0 {
		t.Fatalf("stored %d messages from slow clients", total)
	}
}

// An endless command line is refused with 500 and the connection closed
// after MaxLineBytes, without the server reading (and buffering) the rest:
// the client's stream of 64 MiB cannot be delivered.
func TestHardeningOverlongLineRefused(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *smtpd.Options) { o.MaxLineBytes = 1024 })
	for _, phase := range []string{"command", "data"} {
		t.Run(phase, func(t *testing.T) {
			c, br := hardenDial(t, ts.addr, "")
			hardenLine(t, c, br)
			if phase == "data" {
				for _, cmd := range []string{"EHLO x", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "DATA"} {
					fmt.Fprintf(c, "%s\r\n", cmd)
					hardenLine(t, c, br)
				}
			}
			flood := limittest.StartFlood(c, "NOOP ", 64<<20)
			said := limittest.ExpectClosed(t, c, br, 20*time.Second)
			if !strings.HasPrefix(said, "5") {
				t.Errorf("server said %q, want a 5xx refusal", said)
			}
			c.Close()
			if flood.Wait() >= 64<<20 {
				t.Fatalf("server swallowed the whole 64 MiB line")
			}
		})
	}
	if _, total, _ := ts.st.Search(context.Background(), store.Query{}); total != 0 {
		t.Fatalf("stored %d messages", total)
	}
}

// Caps on concurrent connections hold per client address and in total
// (other addresses are 127.0.0.2 and 127.0.0.3, also loopback), answer
// 421, and free their slot when a connection ends.
func TestHardeningConnectionCaps(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *smtpd.Options) { o.MaxConnections = 3; o.MaxConnectionsPerIP = 2 })
	greet := func(local string) (net.Conn, string) {
		c, br := hardenDial(t, ts.addr, local)
		return c, hardenLine(t, c, br)
	}
	a1, l := greet("127.0.0.1")
	if !strings.HasPrefix(l, "220") {
		t.Fatalf("first: %q", l)
	}
	if _, l = greet("127.0.0.1"); !strings.HasPrefix(l, "220") {
		t.Fatalf("second: %q", l)
	}
	if _, l = greet("127.0.0.1"); !strings.HasPrefix(l, "421") {
		t.Fatalf("third from one address: %q, want 421 (per-IP cap)", l)
	}
	if _, l = greet("127.0.0.2"); !strings.HasPrefix(l, "220") {
		t.Fatalf("first from another address: %q", l)
	}
	if _, l = greet("127.0.0.3"); !strings.HasPrefix(l, "421") {
		t.Fatalf("fourth in total: %q, want 421 (total cap)", l)
	}
	// Closing one frees its slot.
	fmt.Fprintf(a1, "QUIT\r\n")
	a1.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, l = greet("127.0.0.3")
		if strings.HasPrefix(l, "220") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %q", l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A message over MaxMessageBytes gets 552 at end of data even when the
// client never announced SIZE, and nothing is stored; too many recipients
// get 452.
func TestHardeningMessageAndRecipientLimits(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(o *smtpd.Options) { o.MaxMessageBytes = 4096; o.MaxRecipients = 2 })
	c, br := hardenDial(t, ts.addr, "")
	hardenLine(t, c, br)
	cmd := func(s, want string) {
		t.Helper()
		fmt.Fprintf(c, "%s\r\n", s)
		if l := hardenLine(t, c, br); !strings.HasPrefix(l, want) {
			t.Fatalf("%s: %q, want %s", s, l, want)
		}
	}
	cmd("EHLO x", "250")
	cmd("MAIL FROM:<a@example.com>", "250")
	cmd("RCPT TO:<b@example.com>", "250")
	cmd("RCPT TO:<c@example.com>", "250")
	cmd("RCPT TO:<d@example.com>", "452")
	cmd("DATA", "354")
	fmt.Fprintf(c, "Subject: big\r\n\r\n")
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(c, "%078d\r\n", i)
	}
	cmd(".", "552")
	if _, total, _ := ts.st.Search(context.Background(), store.Query{}); total != 0 {
		t.Fatalf("stored %d messages", total)
	}
}

// hardenTmpfs mounts a tmpfs of size bytes on a new directory, or skips
// the test when that is not possible (not root, no mount permission). It
// returns the directory and a function that runs mount(8) options on it.
func hardenTmpfs(t *testing.T, size string) (string, func(opts string)) {
	t.Helper()
	if os.Geteuid() != 0 {
		need.Skip(t, need.Root, "not root, so no tmpfs can be mounted")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		need.Skip(t, need.Root, fmt.Sprintf("cannot mount a tmpfs (%v: %s)", err, out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	remount := func(opts string) {
		t.Helper()
		if out, err := exec.Command("mount", "-o", "remount,"+opts, dir).CombinedOutput(); err != nil {
			t.Fatalf("remount %s: %v: %s", opts, err, out)
		}
	}
	return dir, remount
}

// hardenStoreOn serves SMTP over a store on path; the returned stop closes
// both (also at cleanup, which runs before the tmpfs is unmounted).
func hardenStoreOn(t *testing.T, path string) (addr string, st *store.Store, stop func()) {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DSN: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := smtpd.New(st, smtpd.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Close()
			<-done
			st.Close()
		})
	}
	t.Cleanup(stop)
	return l.Addr().String(), st, stop
}

// hardenSend submits one message over a fresh connection and returns the
// reply to the end of data (or to the first command that failed).
func hardenSend(t *testing.T, addr, subject string, body []byte) string {
	t.Helper()
	c, br := hardenDial(t, addr, "")
	defer c.Close()
	hardenLine(t, c, br)
	for _, cmd := range []string{"EHLO x", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "DATA"} {
		fmt.Fprintf(c, "%s\r\n", cmd)
		if l := hardenLine(t, c, br); l[0] != '2' && l[0] != '3' {
			return l
		}
	}
	fmt.Fprintf(c, "Subject: %s\r\n\r\n%s\r\n.\r\n", subject, body)
	return hardenLine(t, c, br)
}

func hardenIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var verdict string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&verdict); err != nil || verdict != "ok" {
		t.Fatalf("integrity_check: %q %v", verdict, err)
	}
}

// hardenCheckStored checks that exactly the acknowledged subjects are
// stored, each once and intact.
func hardenCheckStored(t *testing.T, st *store.Store, acked map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	list, total, err := st.Search(ctx, store.Query{Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if total != len(acked) {
		t.Fatalf("%d messages stored, %d acknowledged", total, len(acked))
	}
	for _, m := range list {
		want, ok := acked[m.Subject]
		if !ok {
			t.Fatalf("stored %q, which was never acknowledged", m.Subject)
		}
		raw, err := st.Raw(ctx, m.ID)
		if err != nil || !bytes.Contains(raw, want) {
			t.Fatalf("%q: raw unreadable or changed (%v)", m.Subject, err)
		}
	}
}

// When the store's disk fills up, SMTP answers 4xx (try again later), the
// store holds exactly the messages acknowledged before, and once space
// returns mail is accepted again; the SQLite file stays sound throughout.
func TestHardeningDiskFull(t *testing.T) {
	t.Parallel()
	dir, _ := hardenTmpfs(t, "4m")
	path := filepath.Join(dir, "mail.db")
	addr, st, stop := hardenStoreOn(t, path)
	// Leave the store little room: a filler takes most of the tmpfs.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxy\r\n"), 700) // ~50 KiB
	acked := map[string][]byte{}
	var refusal string
	for i := 0; i < 100 && refusal == ""; i++ {
		subject := fmt.Sprintf("full-%03d", i)
		switch r := hardenSend(t, addr, subject, body); {
		case strings.HasPrefix(r, "250"):
			acked[subject] = body
		case strings.HasPrefix(r, "4"):
			refusal = r
		default:
			t.Fatalf("message %d on a full disk: %q, want 250 or a temporary 4xx", i, r)
		}
	}
	if refusal == "" {
		t.Fatal("the disk never filled up")
	}
	t.Logf("after %d messages the full disk was answered with %q", len(acked), refusal)
	// It stays temporary while the disk is full.
	if r := hardenSend(t, addr, "still-full", body); !strings.HasPrefix(r, "4") {
		t.Fatalf("second try on a full disk: %q, want 4xx", r)
	}
	hardenCheckStored(t, st, acked)
	// Space returns: the same server accepts mail again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		subject := fmt.Sprintf("after-%d", i)
		if r := hardenSend(t, addr, subject, body); !strings.HasPrefix(r, "250") {
			t.Fatalf("after space returned: %q, want 250", r)
		}
		acked[subject] = body
	}
	hardenCheckStored(t, st, acked)
	stop()
	hardenIntegrity(t, path)
}

// A read-only store. As root, chmod does not stop writes, and Linux
// refuses to remount a file system read-only while SQLite holds its file
// open for writing (EBUSY), so a store cannot turn read-only under a
// running server here. What can happen is a restart on a store that has
// become read-only: the sandbox must then refuse to start with an error
// naming --db (docs/security.md), and work again once the store is
// writable.
func TestHardeningReadOnlyStore(t *testing.T) {
	t.Parallel()
	dir, remount := hardenTmpfs(t, "16m")
	path := filepath.Join(dir, "mail.db")
	addr, st, stop := hardenStoreOn(t, path)
	acked := map[string][]byte{}
	for i := 0; i < 3; i++ {
		subject := fmt.Sprintf("before-%d", i)
		if r := hardenSend(t, addr, subject, []byte("hello")); !strings.HasPrefix(r, "250") {
			t.Fatalf("writable store: %q", r)
		}
		acked[subject] = []byte("hello")
	}
	// chmod as root: writes go on (root ignores file modes).
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o555)
	r := hardenSend(t, addr, "chmod", []byte("root writes anyway"))
	t.Logf("after chmod 0444 on the store (as root) SMTP answered %q", r)
	if strings.HasPrefix(r, "250") {
		acked["chmod"] = []byte("root writes anyway")
	}
	os.Chmod(dir, 0o755)
	os.Chmod(path, 0o644)
	hardenCheckStored(t, st, acked)
	stop()

	// docs/security.md: start-up on a read-only store fails with a message
	// naming --db (the sandbox as the binary starts it).
	remount("ro")
	func() {
		defer remount("rw")
		cfg := sandbox.DefaultConfig()
		cfg.SMTPAddr, cfg.HTTPAddr, cfg.POP3Addr, cfg.IMAPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		cfg.DB = path
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		sb, err := sandbox.Start(context.Background(), cfg)
		if err == nil {
			sb.Close()
			t.Fatal("the sandbox started on a read-only store; docs/security.md says start-up fails naming --db")
		}
		var ce *sandbox.ConfigError
		if !errors.As(err, &ce) || ce.Flag != "db" || !strings.HasPrefix(err.Error(), "--db: ") {
			t.Fatalf("start-up on a read-only store failed with %q, want an error naming --db", err)
		}
	}()
	addr, st, stop = hardenStoreOn(t, path)
	if r := hardenSend(t, addr, "after", []byte("back")); !strings.HasPrefix(r, "250") {
		t.Fatalf("writable again: SMTP answered %q", r)
	}
	acked["after"] = []byte("back")
	hardenCheckStored(t, st, acked)
	stop()
	hardenIntegrity(t, path)
}
