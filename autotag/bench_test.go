package autotag_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailsandbox/mailsandbox/autotag"
	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/internal/smtpbench"
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
			smtpbench.Run(b, l.Addr().String(), body, 16)
		})
	}
}
