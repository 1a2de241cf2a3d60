package smtpd_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/faults"
	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/smtplog"
)

// FuzzSMTPSessionWithFaults is FuzzSMTPSession through the session conn
// (which parses every client line) with DATA-command and message rules in
// force: no hang, no panic, one stored message per "Ok: queued as ID", and the
// session log within its bounds and free of AUTH secrets.
//
// Run: go test -run '^$' -fuzz '^FuzzSMTPSessionWithFaults$' -fuzztime 1m ./capture/smtpd/
func FuzzSMTPSessionWithFaults(f *testing.F) {
	for _, s := range []string{
		"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@fault.test>\r\nDATA\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nhi\r\n.\r\n",
		"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@lost.test>\r\nDATA\r\nDATA\r\n.\r\n",
		"EHLO c\r\nAUTH PLAIN c2VjcmV0\r\nAUTH LOGIN\r\nc2VjcmV0\r\nc2VjcmV0\r\n",
		"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@fault.test>\r\nBDAT 4\r\nDATABDAT 0 LAST\r\n",
		"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n.\r\nDATA\r\n",
		"DATA\r\nDATA\r\n" + strings.Repeat("x", 3000),
	} {
		f.Add([]byte(s))
	}
	eng := faults.New(faults.Options{})
	eng.Add(faults.Rule{Stage: faults.StageData, To: "*@fault.test", Reply: "451 4.7.1 Not now"})
	eng.Add(faults.Rule{Stage: faults.StageMessage, To: "*@lost.test", Reply: "250 2.0.0 Lost"})
	lg := smtplog.New(smtplog.Options{MaxSessions: 10, MaxLines: 30})
	ts := newTestServer(f, func(o *smtpd.Options) {
		o.ReadTimeout = 3 * time.Second
		o.WriteTimeout = 3 * time.Second
		o.MaxMessageBytes = 1 << 20
		o.MaxLineBytes = 2048
		o.Faults, o.SessionLog = eng, lg
	})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, in []byte) {
		_, after := fuzzSession(t, ts, in)
		ss := lg.List(smtplog.Filter{})
		if len(ss) > 10 {
			t.Fatalf("%d sessions kept", len(ss))
		}
		for _, s := range ss {
			if len(s.Lines) > 30 {
				t.Fatalf("%d lines kept", len(s.Lines))
			}
			// Secrets are an AUTH line's initial response and every client
			// line answering a 334.
			after334 := false
			for _, l := range s.Lines {
				if l.Dir == "C" {
					f := strings.Fields(l.Text)
					if after334 && l.Text != "***" || len(f) > 2 && strings.EqualFold(f[0], "AUTH") && f[2] != "***" {
						t.Fatalf("secret in the transcript: %q", l.Text)
					}
				}
				if l.Dir == "S" {
					after334 = strings.HasPrefix(l.Text, "334 ")
				}
			}
		}
		if after > 500 {
			if err := ts.st.DeleteAll(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
}
