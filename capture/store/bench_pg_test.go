package store_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
)

// BenchmarkIngestPostgres measures Ingest on PostgreSQL with durable
// commits: 16 goroutines, 64 mailboxes, group commit.
//
//	MAILSANDBOX_TEST_PG=postgres://… go test -run XXX -bench IngestPostgres ./capture/store/
func BenchmarkIngestPostgres(b *testing.B) {
	dsn := storetest.PostgresDSN(b)
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Del("synchronous_commit")
	u.RawQuery = q.Encode()
	st, err := store.Open(context.Background(), store.Options{DSN: u.String()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	raw := msg("a@b", "x@y", "", "bench", "body body body")
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, err := st.Ingest(context.Background(), store.Envelope{From: "a@b", To: []string{fmt.Sprintf("u%d@x", i%64)}}, raw); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
