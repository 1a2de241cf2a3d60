package spamcheck

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/checks/spamcheck/spamdtest"
	"github.com/mailsandbox/mailsandbox/internal/need"
)

// spamd is the one real spamd the package's tests share; "" when spamd is
// not installed (and then the tests that need it skip, outside CI).
var spamdAddr string

func TestMain(m *testing.M) { spamdtest.RunTests(m, "spamcheck", &spamdAddr) }

func needSpamd(t *testing.T) {
	t.Helper()
	if spamdAddr == "" {
		need.Skip(t, need.Spamd, "spamd not available")
	}
}

const gtube = "From: a@example.com\r\nTo: b@example.org\r\nSubject: gtube\r\n\r\n" +
	"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"

const clean = "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: lunch\r\n" +
	"Date: Sat, 05 Dec 2026 06:00:00 +0000\r\nMessage-ID: <lunch-1@example.com>\r\n\r\n" +
	"Hi Bob, lunch at noon tomorrow? Alice\r\n"

func TestSpamdVerdicts(t *testing.T) {
	needSpamd(t)
	c := New(Options{Addr: spamdAddr, Timeout: 60 * time.Second})
	r := c.Check(context.Background(), []byte(gtube))
	if r.Error != "" || !r.IsSpam || r.Score < 100 || r.Threshold != 5 {
		t.Fatalf("GTUBE: %+v", r)
	}
	var gt *Rule
	for i := range r.Rules {
		if r.Rules[i].Name == "GTUBE" {
			gt = &r.Rules[i]
		}
	}
	if gt == nil || gt.Score < 100 || !strings.Contains(gt.Description, "Generic Test for Unsolicited Bulk Email") {
		t.Errorf("GTUBE rule missing or without description: %+v", r.Rules)
	}

	r = c.Check(context.Background(), []byte(clean))
	if r.Error != "" || r.IsSpam || r.Score >= r.Threshold {
		t.Errorf("clean message: %+v", r)
	}
}

func TestSpamdDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := New(Options{Addr: addr}).Check(context.Background(), []byte(clean))
	if r.Error == "" || !strings.Contains(r.Error, "connect to spamd") || r.Rules == nil {
		t.Errorf("spamd down: %+v, want an error in the answer", r)
	}
}

// TestSpamdHangs: a server that accepts and never answers costs the
// timeout, not more.
func TestSpamdHangs(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	done := make(chan *Result, 1)
	go func() {
		done <- New(Options{Addr: l.Addr().String(), Timeout: 300 * time.Millisecond}).Check(context.Background(), []byte(clean))
	}()
	select {
	case r := <-done:
		if !strings.Contains(r.Error, "timed out") {
			t.Errorf("hanging spamd: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("check did not give up on a silent spamd")
	}
}

func TestTooLarge(t *testing.T) {
	r := New(Options{Addr: "127.0.0.1:1", MaxBytes: 10}).Check(context.Background(), []byte(clean))
	if !strings.Contains(r.Error, "over the 10") {
		t.Errorf("%+v", r)
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add("SPAMD/1.1 0 EX_OK\r\nContent-length: 10\r\nSpam: True ; 1000.0 / 5.0\r\n\r\n" +
		" pts rule name              description\r\n---- ---------------------- ----\r\n" +
		"1000 GTUBE                  BODY: Generic Test for Unsolicited Bulk Email\r\n" +
		"                            continued\r\n-0.0 NO_RELAYS Informational\r\n\r\n")
	f.Add("SPAMD/1.1 76 Bad header line\r\n")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseReply(bufio.NewReader(strings.NewReader(s)))
		if err == nil && r.Rules == nil {
			t.Fatal("nil rules")
		}
	})
}
