package imapd_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/api/imapd"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// startIMAP serves an IMAP server for tb over a store in tb.TempDir() and
// returns its address and store. Options are adjusted by configure.
func startIMAP(tb testing.TB, configure func(*imapd.Options)) (string, *store.Store) {
	tb.Helper()
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(tb.TempDir(), "mail.db"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	var o imapd.Options
	if configure != nil {
		configure(&o)
	}
	srv := imapd.New(st, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String(), st
}

// FuzzIMAPSession sends arbitrary command bytes to a real IMAP session.
// The first byte picks a prelude (none, LOGIN, LOGIN+SELECT INBOX), so the
// fuzzer reaches every protocol state. After the input the client sends
// LOGOUT and half-closes; the server must close the connection within a
// few seconds, never panic, and leave every folder of the mailbox
// consistent (UIDs ascending and below UIDNEXT, entries readable).
//
// Run: go test -run '^$' -fuzz '^FuzzIMAPSession$' -fuzztime 10m ./api/imapd/
func FuzzIMAPSession(f *testing.F) {
	for _, s := range []struct {
		pre byte
		in  string
	}{
		{0, "a CAPABILITY\r\nb LOGIN bob@example.com x\r\nc LIST \"\" *\r\n"},
		{0, "a AUTHENTICATE PLAIN\r\nAGJvYkBleGFtcGxlLmNvbQB4\r\n"},
		{0, "a LOGIN {15}\r\nbob@example.com {1}\r\nx\r\n"},
		{1, "a SELECT INBOX\r\nb FETCH 1:* (FLAGS BODY[] BODYSTRUCTURE ENVELOPE)\r\nc STORE 1 +FLAGS (\\Deleted)\r\nd EXPUNGE\r\n"},
		{1, "a CREATE Archive/2026\r\nb RENAME Archive Old\r\nc DELETE Old/2026\r\nd LSUB \"\" *\r\ne STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE)\r\n"},
		{1, "a APPEND INBOX (\\Seen) {5}\r\nhello\r\nb APPEND INBOX {3+}\r\nabc\r\n"},
		{1, "a APPEND INBOX {99999999999}\r\n"},
		{2, "a UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY[1.2.MIME]<0.10>)\r\n"},
		{2, "a SEARCH CHARSET UTF-8 OR SUBJECT hi NOT SEEN\r\nb UID SEARCH RETURN (SAVE) ALL\r\nc UID COPY $ Trash\r\nd UID MOVE 1:* Trash\r\n"},
		{2, "a IDLE\r\nDONE\r\nb NOOP\r\nc CLOSE\r\nd UNSELECT\r\n"},
		{2, "a STORE 1:* FLAGS (foo \\Answered)\r\nb COPY 1 nosuch\r\nc EXAMINE INBOX\r\nd STORE 1 +FLAGS (\\Seen)\r\n"},
		{0, "a LOGIN \"\" \"\"\r\n* \r\n)(\r\n\x00\xff\r\n"},
		{2, "a UID STORE 0:0 +FLAGS (x)\r\nb UID COPY 0 INBOX\r\nc MOVE 1 INBOX\r\nd SEARCH RECENT NEW OLD\r\n"},
		{1, "a CREATE \"&Jjo\"\r\nb SUBSCRIBE \"&Jjo-\"\r\nc LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %\r\nd LSUB \"\" %\r\n"},
		{2, "a STORE 1 +FLAGS.SILENT ($New)\r\nb FETCH 1 (ENVELOPE)\r\nc SEARCH FROM alice TO bob CC x BCC y\r\n"},
	} {
		f.Add(s.pre, []byte(s.in))
	}
	addr, st := startIMAP(f, func(o *imapd.Options) {
		o.MaxLiteralBytes = 1 << 20
		o.IdleTimeout = 5 * time.Second
	})
	ctx := context.Background()
	msg := "From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: hi\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=a\r\n\r\nxx\r\n--b--\r\n"
	ingest := func() {
		if _, err := st.Ingest(ctx, store.Envelope{From: "alice@example.com", To: []string{"bob@example.com"}}, []byte(msg)); err != nil {
			f.Fatal(err)
		}
	}
	ingest()
	ingest()
	f.Fuzz(func(t *testing.T, pre byte, in []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		done := make(chan struct{})
		var serverBug string
		go func() {
			defer close(done)
			// Nothing a client sends is a server bug.
			r := bufio.NewReader(c)
			for {
				l, err := r.ReadString('\n')
				if strings.Contains(l, "SERVERBUG") && serverBug == "" {
					serverBug = l
				}
				if err != nil {
					return
				}
			}
		}()
		prelude := []string{"", "p1 LOGIN bob@example.com x\r\n", "p1 LOGIN bob@example.com x\r\np2 SELECT INBOX\r\n"}[int(pre)%3]
		io.WriteString(c, prelude)
		if _, err := c.Write(in); err == nil {
			io.WriteString(c, "\r\nz LOGOUT\r\n")
		}
		c.(*net.TCPConn).CloseWrite()
		select {
		case <-done:
		case <-time.After(25 * time.Second):
			t.Fatal("server did not close the connection after the client's EOF")
		}
		if serverBug != "" {
			t.Fatalf("server answered %q", serverBug)
		}
		folders, err := st.Folders(ctx, "bob@example.com")
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, fo := range folders {
			es, err := st.Entries(ctx, fo.ID)
			if err != nil {
				t.Fatalf("entries of %q: %v", fo.Name, err)
			}
			var last uint32
			for _, e := range es {
				if e.UID <= last || e.UID >= fo.UIDNext {
					t.Fatalf("folder %q: UID %d after %d, UIDNEXT %d", fo.Name, e.UID, last, fo.UIDNext)
				}
				last = e.UID
			}
			total += len(es)
			if strings.Count(fo.Name, "/") > 50 {
				t.Logf("deep folder %q", fo.Name)
			}
		}
		// Keep the mailbox small and never empty.
		if total > 200 || total == 0 {
			if err := st.DeleteMailbox(ctx, "bob@example.com"); err != nil {
				t.Fatal(err)
			}
			ingest()
			ingest()
		}
	})
}
