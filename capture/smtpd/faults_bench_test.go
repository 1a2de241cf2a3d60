package smtpd_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/faults"
	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/smtplog"
	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/internal/smtpbench"
)

// BenchmarkIngestFaults is BenchmarkIngest's 1 KB, 16-connection case
// with fault injection wired in: no engine (today), an engine without
// rules, with the session log too, and with 100 rules that never match.
//
//	go test -run XXX -bench IngestFaults -benchtime 5000x ./capture/smtpd/
func BenchmarkIngestFaults(b *testing.B) {
	nonMatching := func() *faults.Engine {
		e := faults.New(faults.Options{})
		for i := 0; i < 100; i++ {
			st := []faults.Stage{faults.StageMail, faults.StageRcpt, faults.StageData, faults.StageMessage}[i%4]
			r := faults.Rule{Stage: st, From: fmt.Sprintf("*@nomatch%d.test", i), Reply: "451 4.7.1 no"}
			if st != faults.StageMail {
				r.From, r.To = "", fmt.Sprintf("user%d@nomatch.test", i)
			}
			if _, err := e.Add(r); err != nil {
				b.Fatal(err)
			}
		}
		return e
	}
	for _, c := range []struct {
		name string
		opts func() smtpd.Options
	}{
		{"none", func() smtpd.Options { return smtpd.Options{} }},
		{"engine-no-rules", func() smtpd.Options { return smtpd.Options{Faults: faults.New(faults.Options{})} }},
		{"engine-no-rules+log", func() smtpd.Options {
			return smtpd.Options{Faults: faults.New(faults.Options{}), SessionLog: smtplog.New(smtplog.Options{})}
		}},
		{"100-nonmatching+log", func() smtpd.Options {
			return smtpd.Options{Faults: nonMatching(), SessionLog: smtplog.New(smtplog.Options{})}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(b.TempDir(), "bench.db")})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			srv := smtpd.New(st, c.opts(), nil)
			l, _ := net.Listen("tcp", "127.0.0.1:0")
			go srv.Serve(l)
			defer srv.Close()
			addr := l.Addr().String()
			body := benchMessage(1 << 10)
			b.SetBytes(int64(len(body)))
			smtpbench.Run(b, addr, body, 16)
		})
	}
}
