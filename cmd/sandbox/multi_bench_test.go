package sandbox_test

import (
	"fmt"
	"net/smtp"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

// BenchmarkSharedIngest measures messages per second captured over real
// loopback SMTP by one and by three sandbox instances sharing one
// PostgreSQL database (durable commits: synchronous_commit on). 16 SMTP
// connections, spread over the instances, each send message after message
// (1 KiB, to 64 mailboxes).
//
//	MAILSANDBOX_TEST_PG=postgres://… go test -run XXX -bench SharedIngest -benchtime 5000x ./cmd/sandbox/
func BenchmarkSharedIngest(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			dsn := durable(b, storetest.PostgresDSN(b))
			var addrs []string
			for i := 0; i < n; i++ {
				addrs = append(addrs, startInstance(b, dsn, sandbox.RelayConfig{}).SMTPAddr())
			}
			const conns = 16
			body := []byte("From: bench@example.com\r\nTo: sink@example.com\r\nSubject: load\r\n\r\n" + strings.Repeat("The quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJ.\r\n", 14))
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			for w := 0; w < conns; w++ {
				wg.Add(1)
				go func(addr string) {
					defer wg.Done()
					if err := sendLoop(addr, body, func() (int64, bool) { i := next.Add(1); return i, i <= int64(b.N) }); err != nil {
						errs <- err
					}
				}(addrs[w%n])
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// durable turns synchronous_commit back on in a test DSN.
func durable(b *testing.B, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Del("synchronous_commit")
	u.RawQuery = q.Encode()
	return u.String()
}

// sendLoop sends messages over one SMTP connection while more returns true.
func sendLoop(addr string, body []byte, more func() (int64, bool)) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("bench.test"); err != nil {
		return err
	}
	for {
		i, ok := more()
		if !ok {
			return c.Quit()
		}
		if err := c.Mail("bench@example.com"); err != nil {
			return err
		}
		if err := c.Rcpt(fmt.Sprintf("user%d@example.com", i%64)); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := w.Write(body); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
}
