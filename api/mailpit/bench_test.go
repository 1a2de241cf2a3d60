package mailpit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/api/mailpit"
	"github.com/mailsandbox/mailsandbox/api/rest"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// benchMessages is how many messages the large benchmark stores.
const benchMessages = 100_000

// BenchmarkLarge measures Mailpit's API over a store of 100,000 messages
// (each filed for two recipients, as a sandbox that a test suite sends
// to), plus one message of 100 KB. Set MAILSANDBOX_BENCH_DB to a file to
// keep the store between runs. With MAILSANDBOX_BENCH_MAILPIT naming a
// Mailpit binary, the same requests also run against a Mailpit filled
// with the same messages over SMTP (MAILSANDBOX_BENCH_MAILPIT_DB keeps its
// database), side by side.
//
//	go test -run '^$' -bench Large -benchtime 100x ./api/mailpit
func BenchmarkLarge(b *testing.B) {
	dsn := os.Getenv("MAILSANDBOX_BENCH_DB")
	if dsn == "" {
		dsn = filepath.Join(b.TempDir(), "bench.db")
	}
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(ctx, store.Options{DSN: dsn, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	have, err := st.Count(ctx, store.Query{})
	if err != nil {
		b.Fatal(err)
	}
	if have < benchMessages+1 {
		start := time.Now()
		var next atomic.Int64
		next.Store(int64(have))
		parallel(128, func() bool {
			i := int(next.Add(1) - 1)
			if i >= benchMessages {
				return false
			}
			m := benchMessage(i)
			if _, err := st.Ingest(ctx, store.Envelope{From: m.from, To: m.to}, m.raw); err != nil {
				b.Error(err)
				return false
			}
			return true
		})
		big := bigMessage()
		if _, err := st.Ingest(ctx, store.Envelope{From: big.from, To: big.to}, big.raw); err != nil {
			b.Fatal(err)
		}
		b.Logf("stored %d messages in %s", benchMessages+1-have, time.Since(start).Round(time.Millisecond))
	}
	mp := mailpit.New(st, mailpit.Options{}, quiet)
	srv := rest.New(st, rest.Options{Mounts: []rest.Mount{{Paths: mp.Paths(), Register: mp.Register}}}, quiet)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	targets := []struct{ name, base string }{{"ours", "http://" + l.Addr().String()}}
	if bin := os.Getenv("MAILSANDBOX_BENCH_MAILPIT"); bin != "" {
		targets = append(targets, struct{ name, base string }{"mailpit", startMailpitBench(b, bin)})
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, tg := range targets {
		get := func(b *testing.B, path string) []byte {
			res, err := client.Get(tg.base + path)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
			}
			return body
		}
		var found struct {
			Messages []struct{ ID string } `json:"messages"`
		}
		json.Unmarshal(get(b, "/api/v1/search?limit=1&query="+url.QueryEscape(`subject:"big message"`)), &found)
		if len(found.Messages) != 1 {
			b.Fatalf("%s: the 100 KB message is missing", tg.name)
		}
		bench := func(name, path string) {
			b.Run(tg.name+"/"+name, func(b *testing.B) {
				get(b, path) // warm
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					get(b, path)
					lat = append(lat, time.Since(t0))
				}
				b.StopTimer()
				percentiles(b, lat)
			})
		}
		bench("list-newest-50", "/api/v1/messages?limit=50")
		bench("list-page-1000", "/api/v1/messages?start=1000&limit=50")
		bench("search-subject-phrase", "/api/v1/search?limit=50&query="+url.QueryEscape(`subject:"order 123"`))
		bench("search-from-and-subject", "/api/v1/search?limit=50&query="+url.QueryEscape(`from:shop7 subject:"order 4242"`))
		bench("search-is-unread", "/api/v1/search?limit=50&query=is:unread")
		bench("search-word", "/api/v1/search?limit=50&query="+url.QueryEscape(`receipt4242`)) // reads every body
		bench("message-100KB", "/api/v1/message/"+found.Messages[0].ID)
		// Issue #22: field filters matching many, and the latest match.
		bench("search-to-many", "/api/v1/search?limit=50&query="+url.QueryEscape(`to:example.com`)) // every To header
		// from: is the From header (shop<N>@store.example); the envelope
		// sender shop@store.example is not searched by it.
		bench("search-from-many", "/api/v1/search?limit=50&query="+url.QueryEscape(`from:store.example`))
		bench("search-subject-many", "/api/v1/search?limit=50&query="+url.QueryEscape(`subject:order`))
		bench("latest-query-many", "/api/v1/message/latest?query="+url.QueryEscape(`to:example.com`)) // every To header
		bench("latest-query-one", "/api/v1/message/latest?query="+url.QueryEscape(`to:user500@example.com`))
	}
}

type benchMsg struct {
	from string
	to   []string
	raw  []byte
}

func benchMessage(i int) benchMsg {
	user := fmt.Sprintf("user%d@example.com", i%1000)
	raw := fmt.Sprintf("From: Shop %d <shop%d@store.example>\r\nTo: %s\r\nSubject: Your order %d\r\n"+
		"Date: Fri, 02 Jan 2026 03:04:05 +0000\r\nMessage-ID: <%d@bench>\r\n\r\n"+
		"Hello, thanks for order %d. Your receipt%d follows.\r\n", i%50, i%50, user, i, i, i, i)
	return benchMsg{from: "shop@store.example", to: []string{user, "all@example.com"}, raw: []byte(raw)}
}

// bigMessage is a 100 KB text message.
func bigMessage() benchMsg {
	var b strings.Builder
	b.WriteString("From: Big <big@store.example>\r\nTo: big@example.com\r\nSubject: Big message\r\n" +
		"Date: Fri, 02 Jan 2026 03:04:05 +0000\r\nMessage-ID: <big@bench>\r\n\r\n")
	for b.Len() < 100<<10 {
		b.WriteString("The quick brown fox jumps over the lazy dog, again and again and again.\r\n")
	}
	return benchMsg{from: "big@store.example", to: []string{"big@example.com"}, raw: []byte(b.String())}
}

func parallel(n int, work func() bool) {
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for work() {
			}
		}()
	}
	wg.Wait()
}

func percentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	p := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
}

// startMailpitBench runs a Mailpit and fills it over SMTP with the same
// messages; it returns its base URL.
func startMailpitBench(b *testing.B, bin string) string {
	db := os.Getenv("MAILSANDBOX_BENCH_MAILPIT_DB")
	if db == "" {
		db = filepath.Join(b.TempDir(), "mailpit.db")
	}
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	smtpAddr, httpAddr := free(), free()
	cmd := exec.Command(bin, "--smtp", smtpAddr, "--listen", httpAddr, "--max", "0", "--smtp-disable-rdns", "--database", db)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + httpAddr
	var info struct{ Messages int }
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		res, err := http.Get(base + "/api/v1/info")
		if err == nil {
			json.NewDecoder(res.Body).Decode(&info)
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("mailpit did not start")
		}
	}
	if info.Messages >= benchMessages+1 {
		return base
	}
	start := time.Now()
	var next atomic.Int64
	parallel(32, func() bool {
		i := int(next.Add(1) - 1)
		if i > benchMessages {
			return false
		}
		m := bigMessage()
		if i < benchMessages {
			m = benchMessage(i)
		}
		if err := smtp.SendMail(smtpAddr, nil, m.from, m.to, m.raw); err != nil {
			b.Error(err)
			return false
		}
		return true
	})
	b.Logf("filled mailpit with %d messages in %s", benchMessages+1, time.Since(start).Round(time.Millisecond))
	return base
}
