package imapd_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/api/imapd"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

const benchUser = "bench@example.com"

// benchMessage is message i of the benchmark mailbox: plain or
// multipart, every 100th with the word searched for.
func benchMessage(i int) string {
	word := "ordinary"
	if i%100 == 0 {
		word = "needle"
	}
	head := fmt.Sprintf("From: Sender %d <sender%d@example.org>\r\nTo: Bench <%s>, other%d@example.net\r\n"+
		"Subject: message number %d\r\nDate: Fri, 02 Jan 2026 03:04:05 +0000\r\nMessage-ID: <m%d@example.org>\r\n",
		i%50, i%50, benchUser, i%7, i, i)
	text := strings.Repeat(fmt.Sprintf("line %d of an %s message body, some words to read.\r\n", i, word), 20)
	if i%3 != 0 {
		return head + "\r\n" + text
	}
	return head + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" + text + "--b\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment; filename=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ==\r\n--b--\r\n"
}

// benchServer is one server under test: where to connect and how mail
// arrives there.
type benchServer struct {
	name    string
	addr    string
	deliver func(tb testing.TB, msgs []string)
}

func startBenchOurs(b *testing.B, n int) benchServer {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DSN: filepath.Join(b.TempDir(), "mail.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	srv := imapd.New(st, imapd.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	deliver := func(tb testing.TB, msgs []string) {
		// As SMTP clients would: several at once (the store commits them
		// in groups).
		var wg sync.WaitGroup
		next := make(chan string)
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for m := range next {
					if _, err := st.Ingest(ctx, store.Envelope{From: "a@example.org", To: []string{benchUser}}, []byte(m)); err != nil {
						tb.Error(err)
					}
				}
			}()
		}
		for _, m := range msgs {
			next <- m
		}
		close(next)
		wg.Wait()
	}
	return benchServer{name: "mailsandbox", addr: ln.Addr().String(), deliver: deliver}
}

// BenchmarkIMAP measures, with 10,000 messages in INBOX, SELECT; a
// client's first sync (UID FETCH 1:* of UID, FLAGS, size, ENVELOPE and
// BODYSTRUCTURE); UID SEARCH TEXT; and 20 clients in IDLE while 100
// messages arrive (until the last client has seen the last EXISTS). Where
// dovecot-imapd is installed (and we run as root) Dovecot runs the same
// in the same run, fed the same messages through its Maildir; compare
// the ns/op of mailsandbox/X with dovecot/X.
func BenchmarkIMAP(b *testing.B) {
	const n = 10000
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = benchMessage(i)
	}
	servers := []benchServer{startBenchOurs(b, n)}
	if d, why := tryDovecot(b); d != nil {
		servers = append(servers, benchServer{name: "dovecot", addr: d.addr, deliver: func(tb testing.TB, m []string) { d.deliver(tb, benchUser, m) }})
	} else {
		b.Log(why)
	}
	for _, s := range servers {
		s.deliver(b, msgs)
		// Warm up as a client would have: the first SELECT indexes.
		c := benchLogin(b, s.addr)
		benchOK(b, c, "SELECT INBOX")
		benchOK(b, c, "UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)")
		c.conn.Close()
	}
	// Each operation runs on one server right after the other, so that
	// both see the same load (the machine is shared).
	conns := make([]*imapConn, len(servers))
	for i, s := range servers {
		conns[i] = benchLogin(b, s.addr)
		benchOK(b, conns[i], "SELECT INBOX") // each sub-benchmark may run alone (-bench filter)
	}
	ops := []struct {
		name string
		run  func(b *testing.B, c *imapConn)
	}{
		{"select", func(b *testing.B, c *imapConn) { benchOK(b, c, "SELECT INBOX") }},
		{"fetch-all", func(b *testing.B, c *imapConn) {
			if u := benchOK(b, c, "UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)"); len(u) < n {
				b.Fatalf("fetched %d", len(u))
			}
		}},
		{"search-text", func(b *testing.B, c *imapConn) {
			if u := benchOK(b, c, "UID SEARCH TEXT needle"); len(u) != 1 || len(strings.Fields(u[0])) != 2+n/100 {
				b.Fatalf("search %q", u)
			}
		}},
	}
	for _, op := range ops {
		for i, s := range servers {
			b.Run(op.name+"/"+s.name, func(b *testing.B) {
				for range b.N {
					op.run(b, conns[i])
				}
			})
		}
	}
	for _, c := range conns {
		c.conn.Close()
	}
	for _, s := range servers {
		total := n
		b.Run("idle20-arrive100/"+s.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				total += 100
				benchIdle(b, s, 20, total, i)
			}
		})
	}
}

func benchLogin(tb testing.TB, addr string) *imapConn {
	c, err := dialIMAP(addr)
	if err != nil {
		tb.Fatal(err)
	}
	benchOK(tb, c, "LOGIN "+benchUser+" pw")
	return c
}

func benchOK(tb testing.TB, c *imapConn, cmd string) []string {
	u, st, err := c.do(cmd)
	if err != nil || !strings.HasPrefix(st, "OK") {
		tb.Fatalf("%s: %s %v", cmd, st, err)
	}
	return u
}

// benchIdle: clients IDLE on INBOX, 100 messages arrive; the time is from
// the first delivery to the last client seeing "* want EXISTS".
func benchIdle(b *testing.B, s benchServer, clients, want, round int) {
	b.StopTimer()
	var cs []*imapConn
	for i := 0; i < clients; i++ {
		c := benchLogin(b, s.addr)
		benchOK(b, c, "SELECT INBOX")
		c.n++
		if _, err := io.WriteString(c.conn, fmt.Sprintf("t%d IDLE\r\n", c.n)); err != nil {
			b.Fatal(err)
		}
		for {
			l, err := c.line()
			if err != nil {
				b.Fatal(err)
			}
			if strings.HasPrefix(l, "+") {
				break
			}
		}
		cs = append(cs, c)
	}
	msgs := make([]string, 100)
	for i := range msgs {
		msgs[i] = benchMessage(100000 + round*100 + i)
	}
	var wg sync.WaitGroup
	last := fmt.Sprintf("* %d EXISTS", want)
	errs := make(chan error, clients)
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				l, err := c.line()
				if err != nil {
					errs <- err
					return
				}
				if l == last {
					return
				}
			}
		}()
	}
	b.StartTimer()
	start := time.Now()
	s.deliver(b, msgs)
	wg.Wait()
	b.StopTimer()
	_ = start
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	for _, c := range cs {
		io.WriteString(c.conn, "DONE\r\n")
		c.conn.Close()
	}
	b.StartTimer()
}
