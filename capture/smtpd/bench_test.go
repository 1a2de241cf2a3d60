package smtpd_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/internal/smtpbench"
)

// BenchmarkIngest measures messages per second over real loopback SMTP into
// a durable SQLite file store, with connections reused as a busy
// application's mailer does. Set MAILSANDBOX_BENCH_ADDR to load a running
// sandbox instead (e.g. the binary, to read its peak RSS).
//
//	go test -run XXX -bench Ingest -benchtime 20000x ./capture/smtpd/
func BenchmarkIngest(b *testing.B) {
	for _, c := range []struct {
		size, conns int
		reconnect   bool // a new connection per message, as smtp-source sends
	}{{1 << 10, 16, false}, {1 << 10, 1, false}, {100 << 10, 16, false}, {1 << 10, 16, true}} {
		name := fmt.Sprintf("size=%dKB/conns=%d", c.size>>10, c.conns)
		if c.reconnect {
			name += "/reconnect"
		}
		b.Run(name, func(b *testing.B) {
			addr := os.Getenv("MAILSANDBOX_BENCH_ADDR")
			if addr == "" {
				st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(b.TempDir(), "bench.db")})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				srv := smtpd.New(st, smtpd.Options{}, nil)
				l, _ := net.Listen("tcp", "127.0.0.1:0")
				go srv.Serve(l)
				defer srv.Close()
				addr = l.Addr().String()
			}
			body := benchMessage(c.size)
			b.SetBytes(int64(len(body)))
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, c.conns)
			b.ResetTimer()
			for w := 0; w < c.conns; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					more := func() bool { return next.Add(1) <= int64(b.N) }
					if c.reconnect {
						for more() {
							once := true
							if err := smtpbench.Send(addr, body, func() bool { ok := once; once = false; return ok }); err != nil {
								errs <- err
								return
							}
						}
						return
					}
					if err := smtpbench.Send(addr, body, more); err != nil {
						errs <- err
					}
				}()
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

func benchMessage(size int) []byte {
	var sb strings.Builder
	sb.WriteString("From: Bench <bench@example.com>\r\nTo: sink@example.com\r\nSubject: load test\r\nMessage-ID: <x@bench>\r\n\r\n")
	line := "The quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJ.\r\n"
	for sb.Len() < size-len(line) {
		sb.WriteString(line)
	}
	return []byte(sb.String())
}
