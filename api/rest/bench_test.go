package rest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// benchMessages is how many messages the large benchmarks store.
const benchMessages = 100_000

// BenchmarkLarge measures the API over a store of 100,000 messages, each
// filed into user<i%1000>@example.com and into all@example.com (one huge
// mailbox, the usual shape of a sandbox that a test suite sends to); the
// newest 20,000 carry the tag "bench". Building the store takes a while;
// set MAILSANDBOX_BENCH_DB to a file path to keep it between runs, or to
// a postgres:// URL (a database of its own) to measure PostgreSQL.
//
//	go test -run '^$' -bench Large -benchtime 30x ./api/rest
func BenchmarkLarge(b *testing.B) {
	dsn := os.Getenv("MAILSANDBOX_BENCH_DB")
	if dsn == "" {
		dsn = filepath.Join(b.TempDir(), "bench.db")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DSN: dsn, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	_, have, err := st.Search(ctx, store.Query{Limit: 1})
	if err != nil {
		b.Fatal(err)
	}
	if have < benchMessages {
		start := time.Now()
		fill(b, st, have, benchMessages)
		b.Logf("stored %d messages in %s", benchMessages-have, time.Since(start).Round(time.Millisecond))
	}

	tagBench(b, st)

	srv := New(st, Options{}, quietLogger())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	base := "http://" + l.Addr().String() + "/api/v1"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	get := func(b *testing.B, path string) {
		res, err := client.Get(base + path)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("GET %s: %d", path, res.StatusCode)
		}
	}
	httpBench := func(name, path string) {
		b.Run(name, func(b *testing.B) {
			get(b, path) // warm
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				get(b, path)
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			reportPercentiles(b, lat)
		})
	}
	httpBench("list-small-mailbox-newest-50", "/mailboxes/user500@example.com/messages?limit=50")
	httpBench("list-huge-mailbox-newest-50", "/mailboxes/all@example.com/messages?limit=50")
	httpBench("list-all-newest-50", "/messages/search?limit=50")
	httpBench("search-recipient", "/messages/search?to=user500@example.com&limit=50")
	httpBench("search-recipient-substring", "/messages/search?to=user50&limit=50")
	httpBench("search-subject", "/messages/search?subject=order+4242&limit=50")
	httpBench("search-body-text", "/messages/search?text=order+4242.+your&limit=50") // reads every body
	httpBench("get-message", "/messages/"+firstID(b, st))
	// Issue #22: each request whose cost must follow the page, not the
	// number of matches (every one below matches many messages).
	deep := idAt(b, st, store.Query{}, benchMessages/2)
	deepMailbox := idAt(b, st, store.Query{Mailbox: "all@example.com", Folder: store.InboxName}, benchMessages/2)
	httpBench("search-to-many-newest-50", "/messages/search?to=all@example.com&limit=50")
	httpBench("search-from-many-newest-50", "/messages/search?from=shop@store.example&limit=50")
	httpBench("search-subject-many-newest-50", "/messages/search?subject=your+order&limit=50")
	httpBench("search-mailbox-many-newest-50", "/messages/search?mailbox=all@example.com&limit=50")
	httpBench("search-since-many-newest-50", "/messages/search?since=2000-01-01T00:00:00Z&limit=50")
	httpBench("search-tag-many-newest-50", "/messages/search?tag=bench&limit=50")
	httpBench("search-to-many-exact-total", "/messages/search?to=all@example.com&limit=50&total=exact")
	httpBench("search-to-none", "/messages/search?to=nobody@nowhere.example&limit=50")
	httpBench("search-body-text-no-match", "/messages/search?text=zqxjzqxj&limit=50")
	httpBench("page-offset-50000", "/messages/search?limit=50&offset=50000")
	httpBench("page-cursor-deep", "/messages/search?limit=50&before="+deep)
	httpBench("mailbox-page-cursor-deep", "/mailboxes/all@example.com/messages?limit=50&before="+deepMailbox)
	httpBench("wait-match-stored-to-many", "/messages/wait?to=all@example.com&timeout=5s")
	httpBench("wait-match-stored-to-one", "/messages/wait?to=user500@example.com&timeout=5s")
	httpBench("wait-match-stored-mailbox", "/messages/wait?mailbox=all@example.com&timeout=5s")
	httpBench("mailboxes-1001", "/mailboxes")

	b.Run("smtp-250-to-wait", func(b *testing.B) {
		smtpSrv := smtpd.New(st, smtpd.Options{}, quietLogger())
		sl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go smtpSrv.Serve(sl)
		defer smtpSrv.Close()
		waiting := make(chan struct{}, 1)
		srv.waitingHook = func() { waiting <- struct{}{} }
		defer func() { srv.waitingHook = nil }()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			rcpt := fmt.Sprintf("wait%d-%d@example.com", i, time.Now().UnixNano())
			answered := make(chan time.Time, 1)
			go func() {
				get(b, "/messages/wait?to="+rcpt+"&timeout=30s")
				answered <- time.Now()
			}()
			<-waiting
			raw := []byte("From: a@example.com\r\nTo: " + rcpt + "\r\nSubject: wait bench\r\n\r\nhi\r\n")
			c, err := smtp.Dial(sl.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			c.Mail("a@example.com")
			c.Rcpt(rcpt)
			w, _ := c.Data()
			w.Write(raw)
			if err := w.Close(); err != nil { // returns on the 250
				b.Fatal(err)
			}
			t250 := time.Now()
			c.Quit()
			lat = append(lat, (<-answered).Sub(t250))
		}
		b.StopTimer()
		reportPercentiles(b, lat)
	})
}

// benchTagged is how many of the newest messages tagBench tags.
const benchTagged = 20_000

// tagBench tags the newest benchTagged messages "bench", once per store.
func tagBench(b *testing.B, st *store.Store) {
	ctx := context.Background()
	if n, err := st.Count(ctx, store.Query{Tag: "bench"}); err != nil || n >= benchTagged {
		if err != nil {
			b.Fatal(err)
		}
		return
	}
	q := store.Query{Limit: store.MaxLimit}
	for done := 0; done < benchTagged; done += q.Limit {
		ms, err := st.Find(ctx, q)
		if err != nil || len(ms) == 0 {
			b.Fatal("tag bench messages:", err)
		}
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.ID
		}
		if err := st.EditTags(ctx, ids, store.TagsAdd, []string{"bench"}); err != nil {
			b.Fatal(err)
		}
		q.BeforeID = ids[len(ids)-1]
	}
}

func firstID(b *testing.B, st *store.Store) string {
	ms, _, err := st.Search(context.Background(), store.Query{Limit: 1})
	if err != nil || len(ms) == 0 {
		b.Fatal("no messages", err)
	}
	return ms[0].ID
}

// idAt returns the id of the n-th newest message matching q.
func idAt(b *testing.B, st *store.Store, q store.Query, n int) string {
	q.Limit, q.Offset = 1, n
	ms, err := st.Find(context.Background(), q)
	if err != nil || len(ms) == 0 {
		b.Fatal("no message at", n, err)
	}
	return ms[0].ID
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	p := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// fill ingests messages [from, to) with many concurrent callers, as
// concurrent SMTP sessions would, so group commits carry large batches.
func fill(b *testing.B, st *store.Store, from, to int) {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for w := 0; w < 128; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				user := fmt.Sprintf("user%d@example.com", i%1000)
				raw := fmt.Sprintf("From: Shop %d <shop%d@store.example>\r\nTo: %s\r\nSubject: Your order %d\r\n"+
					"Date: Fri, 02 Jan 2026 03:04:05 +0000\r\nMessage-ID: <%d@bench>\r\n\r\n"+
					"Hello, thanks for order %d. Your receipt follows.\r\n", i%50, i%50, user, i, i, i)
				_, err := st.Ingest(context.Background(), store.Envelope{From: "shop@store.example", To: []string{user, "all@example.com"}}, []byte(raw))
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}
