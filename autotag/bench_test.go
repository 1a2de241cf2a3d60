package autotag_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/autotag"
	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// twentyRules are typical rules, of both grammars, that the benchmark
// message does not match (so every term of each is evaluated). Regular
// expressions over the body cost what Go's regexp costs: one with a
// literal (as here) is a fast substring scan; one without, such as
// \b\d{6}\b, runs the NFA at about 35-55 µs per KB of text (see
// docs/tags.md).
func twentyRules(tb testing.TB) []autotag.Rule {
	specs := []string{
		`billing=re:subject:^Invoice \d+`,
		`receipts=subject:receipt`,
		`signup=subject:"welcome to"`,
		`reset=subject:"password reset"`,
		`github=from:github.com`,
		`stripe=from:stripe.com`,
		`eu=to:@example.eu`,
		`support=addressed:support@`,
		`newsletter=re:list-unsubscribe:.`,
		`php=re:x-mailer:^PHPMailer`,
		`urgent=re:subject:(?i)urgent|asap`,
		`otp=re:body:Your code is \d{6}`,
		`big=larger:5M`,
		`files=has:attachment subject:report`,
		`inline=has:inline from:marketing`,
		`vip=from:ceo@`,
		`tenant-42=to:tenant42`,
		`qa=tag:qa subject:qa`,
		`words=unsubscribe preferences`,
		`bounce=re:envelope-from:^$`,
	}
	var rules []autotag.Rule
	for _, s := range specs {
		r, err := autotag.ParseRule(s)
		if err != nil {
			tb.Fatal(err)
		}
		rules = append(rules, r)
	}
	return rules
}

func benchBody(size int) []byte {
	var sb strings.Builder
	sb.WriteString("From: Bench <bench@example.com>\r\nTo: sink@example.com\r\nSubject: load test\r\nMessage-ID: <x@bench>\r\n\r\n")
	line := "The quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJ.\r\n"
	for sb.Len() < size-len(line) {
		sb.WriteString(line)
	}
	return []byte(sb.String())
}

// BenchmarkTagRules is the CPU cost of twenty rules for one message, to
// set against the ingest time per message of BenchmarkIngestTagRules.
func BenchmarkTagRules(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10} {
		body := benchBody(size)
		p := mailparse.Parse(body)
		env := store.Envelope{From: "bench@example.com", To: []string{"sink@example.com"}}
		tg := autotag.New(autotag.Options{Rules: twentyRules(b)})
		b.Run(fmt.Sprintf("size=%dKB", size>>10), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if tags := tg.Tags(env, p, body); len(tags) != 0 {
					b.Fatalf("tags %q", tags)
				}
			}
		})
	}
}

// BenchmarkIngestTagRules is capture/smtpd's BenchmarkIngest (1 KB
// messages, 16 pipelining connections, SQLite) without a Tagger, with the
// default Tagger (X-Tags and plus-addresses) and with twenty rules.
func BenchmarkIngestTagRules(b *testing.B) {
	for _, c := range []struct {
		name   string
		tagger func(store.Envelope, *mailparse.Message, []byte) []string
	}{
		{"none", nil},
		{"default", autotag.New(autotag.Options{}).Tags},
		{"rules=20", autotag.New(autotag.Options{Rules: twentyRules(b)}).Tags},
	} {
		b.Run(c.name, func(b *testing.B) {
			st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(b.TempDir(), "bench.db"), Tagger: c.tagger})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			srv := smtpd.New(st, smtpd.Options{}, nil)
			l, _ := net.Listen("tcp", "127.0.0.1:0")
			go srv.Serve(l)
			defer srv.Close()
			body := benchBody(1 << 10)
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			b.ResetTimer()
			cpu0 := cpuTime()
			for w := 0; w < 16; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := send(l.Addr().String(), body, func() bool { return next.Add(1) <= int64(b.N) }); err != nil {
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
			// Process CPU per message (client, server and store): on a
			// shared machine a steadier figure than the wall clock.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// send pipelines MAIL, RCPT and DATA over one connection while more says so.
func send(addr string, body []byte, more func() bool) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	br := bufio.NewReader(c)
	bw := bufio.NewWriterSize(c, 64<<10)
	read := func(code string) error {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return err
			}
			if !strings.HasPrefix(line, code) {
				return fmt.Errorf("got %q, want %s", line, code)
			}
			if len(line) < 4 || line[3] != '-' {
				return nil
			}
		}
	}
	if err := read("220"); err != nil {
		return err
	}
	fmt.Fprintf(bw, "EHLO bench\r\n")
	bw.Flush()
	if err := read("250"); err != nil {
		return err
	}
	for more() {
		fmt.Fprintf(bw, "MAIL FROM:<bench@example.com>\r\nRCPT TO:<sink@example.com>\r\nDATA\r\n")
		bw.Flush()
		for _, code := range []string{"250", "250", "354"} {
			if err := read(code); err != nil {
				return err
			}
		}
		bw.Write(body)
		bw.WriteString(".\r\n")
		bw.Flush()
		if err := read("250"); err != nil {
			return err
		}
	}
	fmt.Fprintf(bw, "QUIT\r\n")
	return bw.Flush()
}
