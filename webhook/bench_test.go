package webhook_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/api/rest"
	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
	"github.com/mailsandbox/mailsandbox/internal/smtpbench"
	"github.com/mailsandbox/mailsandbox/webhook"
)

// benchDSN is a fresh SQLite file, or a PostgreSQL schema with
// MAILSANDBOX_BENCH_PG=1 (and MAILSANDBOX_TEST_PG set).
func benchDSN(b *testing.B) string {
	if os.Getenv("MAILSANDBOX_BENCH_PG") == "1" {
		return storetest.PostgresDSN(b)
	}
	return filepath.Join(b.TempDir(), "bench.db")
}

// fastReceiver answers 204 at once and counts distinct deliveries.
type fastReceiver struct {
	mu   sync.Mutex
	seen map[string]bool
	n    atomic.Int64
	all  chan struct{}
	want int64
}

func newFastReceiver(b *testing.B, want int) (*fastReceiver, string) {
	r := &fastReceiver{seen: map[string]bool{}, all: make(chan struct{}), want: int64(want)}
	url := newServerB(b, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		did := req.Header.Get(webhook.HeaderDelivery)
		r.mu.Lock()
		fresh := !r.seen[did]
		r.seen[did] = true
		r.mu.Unlock()
		if fresh && r.n.Add(1) == r.want {
			close(r.all)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	return r, url
}

func newServerB(b *testing.B, h http.Handler) string {
	srv := &http.Server{Handler: h}
	l, err := netListen()
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

var benchBody = []byte("From: Bench <bench@example.com>\r\nTo: sink@example.com\r\nSubject: load test\r\nMessage-ID: <x@bench>\r\n\r\n" +
	strings.Repeat("The quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJ.\r\n", 14))

func ingestN(b *testing.B, st *store.Store, n, workers int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := st.Ingest(context.Background(), store.Envelope{From: "bench@example.com", To: []string{"sink@example.com"}}, benchBody); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func benchOpts(url string) webhook.Options {
	return webhook.Options{URLs: []string{url + "/hook"}, Secret: "s", Payload: rest.SummaryPayload, Timeout: 5 * time.Second}
}

// BenchmarkIngestWebhook: 1 KB messages from 16 goroutines, without a
// webhook; with one configured and no sender (the cost on the ingest path
// alone: none since webhook marks); and with the sender posting to a fast
// receiver in this process meanwhile (which competes for the CPU and the
// store's writer). cpu-µs/msg is the whole process's, sender and receiver
// included. Compare the cases within one run, interleaved (-count 1,
// repeated), on the same machine load:
//
//	go test -c ./webhook/ && for i in 1 2 3 4 5 6; do ./webhook.test -test.run XXX -test.bench IngestWebhook -test.benchtime 3000x; done
func BenchmarkIngestWebhook(b *testing.B) {
	for _, c := range []struct {
		name           string
		hooked, sender bool
		remote         bool // the receiver in a process of its own
	}{{"none", false, false, false}, {"configured", true, false, false}, {"webhook", true, true, false}, {"webhook-remote", true, true, true}} {
		hooked := c.hooked
		b.Run(c.name, func(b *testing.B) {
			so := store.Options{DSN: benchDSN(b), Logger: quietLog()}
			var opts webhook.Options
			if hooked {
				var url string
				if c.remote {
					url = remoteReceiver(b)
				} else {
					_, url = newFastReceiver(b, -1)
				}
				opts = benchOpts(url)
				so.WebhookURLs = opts.URLs
			}
			st, err := store.Open(context.Background(), so)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			if c.sender {
				s, err := webhook.New(st, opts, quietLog())
				if err != nil {
					b.Fatal(err)
				}
				s.Start()
				defer s.Close()
			}
			b.ResetTimer()
			cpu0 := smtpbench.CPUTime()
			ingestN(b, st, b.N, 16)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64((smtpbench.CPUTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
		})
	}
}

// receiverEnv makes the test binary a receiver answering 204 to every
// request, printing its address (remoteReceiver).
const receiverEnv = "MAILSANDBOX_BENCH_RECEIVER"

func TestMain(m *testing.M) {
	if os.Getenv(receiverEnv) == "1" {
		l, err := netListen()
		if err != nil {
			panic(err)
		}
		fmt.Println(l.Addr().String())
		_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
		}))
		return
	}
	os.Exit(m.Run())
}

// remoteReceiver starts a fast receiver in a child process, so that its
// CPU is not counted as the sandbox's, and returns its URL.
func remoteReceiver(b *testing.B) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), receiverEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	return "http://" + strings.TrimSpace(addr)
}

// BenchmarkDrain: b.N webhooks queued while no sender ran, then drained to
// a fast receiver.
func BenchmarkDrain(b *testing.B) {
	rc, url := newFastReceiver(b, b.N)
	opts := benchOpts(url)
	st, err := store.Open(context.Background(), store.Options{DSN: benchDSN(b), Logger: quietLog(), WebhookURLs: opts.URLs})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ingestN(b, st, b.N, 16)
	s, err := webhook.New(st, opts, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	s.Start()
	defer s.Close()
	select {
	case <-rc.all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("drained %d of %d", rc.n.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "webhooks/s")
}

// BenchmarkSustained1000: b.N messages ingested at 1,000 a second with a
// webhook configured; reports the rate reached and how long after the
// last message the last webhook arrived.
func BenchmarkSustained1000(b *testing.B) {
	rc, url := newFastReceiver(b, b.N)
	opts := benchOpts(url)
	st, err := store.Open(context.Background(), store.Options{DSN: benchDSN(b), Logger: quietLog(), WebhookURLs: opts.URLs})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s, err := webhook.New(st, opts, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	s.Start()
	defer s.Close()
	b.ResetTimer()
	start := time.Now()
	// 16 senders, each paced to 1000/16 a second, on a shared schedule.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if d := time.Until(start.Add(time.Duration(i) * time.Millisecond)); d > 0 {
					time.Sleep(d)
				}
				if _, err := st.Ingest(context.Background(), store.Envelope{From: "bench@example.com", To: []string{"sink@example.com"}}, benchBody); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ingested := time.Since(start)
	select {
	case <-rc.all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("delivered %d of %d", rc.n.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/ingested.Seconds(), "ingest/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "delivered/s")
	b.ReportMetric(float64((b.Elapsed() - ingested).Milliseconds()), "lag-ms")
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
