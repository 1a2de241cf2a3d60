package sandboxtest_test

import (
	"context"
	"errors"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/sdk"
	"github.com/mailsandbox/mailsandbox/sdk/sandboxtest"
)

// app is a small mail-sending application as real ones are written: it
// retries a temporary failure (4xx) with backoff and gives up on a
// permanent one (5xx).
type app struct {
	smtpAddr string
	backoff  time.Duration
	tries    int
}

func (a app) send(to string) (attempts int, err error) {
	wait := a.backoff
	for attempts = 1; ; attempts++ {
		err = smtp.SendMail(a.smtpAddr, nil, "app@shop.test", []string{to},
			[]byte("Subject: Your order\r\n\r\nThanks.\r\n"))
		var te *textproto.Error
		if err == nil || !errors.As(err, &te) || te.Code/100 != 4 || attempts == a.tries {
			return attempts, err
		}
		time.Sleep(wait)
		wait *= 2
	}
}

func TestAppRetriesAfterGreylistAndGivesUpAfter5xx(t *testing.T) {
	s := sandboxtest.New(t,
		sandboxtest.WithFault(sdk.Fault{Stage: "rcpt", To: "*@bounce.test", Reply: "550 5.1.1 No such user"}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := s.Client()
	grey, err := c.AddFault(ctx, sdk.Fault{Stage: "rcpt", To: "*@grey.test", Greylist: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer grey.Remove()

	a := app{smtpAddr: s.SMTPAddr(), backoff: 300 * time.Millisecond, tries: 6}
	greyTries, err := a.send("bob@grey.test")
	if err != nil || greyTries < 2 {
		t.Fatalf("greylisted send: %d attempts, %v", greyTries, err)
	}
	// Through the session log: the first attempt got the greylist's 451...
	first, err := c.WaitSession(ctx, sdk.SessionFilter{To: "bob@grey.test", Ended: true})
	if err != nil {
		t.Fatal(err)
	}
	if !first.Refused("451 4.7.1") || first.Faults != 1 {
		t.Fatalf("first session: %v", first.Replies())
	}
	// ...and the app came back within 5 s and was accepted.
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	retry, err := c.WaitSession(wctx, sdk.SessionFilter{To: "bob@grey.test", Since: first.Started.Add(time.Nanosecond), Ended: true,
		Match: func(s sdk.Session) bool { return !s.Refused("4") && !s.Refused("5") }})
	if err != nil {
		t.Fatalf("no accepted retry within 5 s: %v", err)
	}
	if gap := retry.Started.Sub(first.Started); gap < time.Second || gap > 5*time.Second {
		t.Fatalf("retried after %v", gap)
	}
	if _, err := c.Wait(ctx, sdk.Filter{To: "bob@grey.test"}); err != nil {
		t.Fatal(err)
	}

	// A 5xx: the app gives up, so one session only.
	start := time.Now()
	n, err := a.send("ann@bounce.test")
	if err == nil || n != 1 {
		t.Fatalf("bounced send: %d attempts, %v", n, err)
	}
	refused, err := c.WaitSession(ctx, sdk.SessionFilter{To: "ann@bounce.test", Since: start, Ended: true})
	if err != nil || !refused.Refused("550 5.1.1") {
		t.Fatalf("%+v %v", refused, err)
	}
	qctx, qcancel := context.WithTimeout(ctx, time.Second)
	defer qcancel()
	if again, err := c.WaitSession(qctx, sdk.SessionFilter{To: "ann@bounce.test", Since: refused.Started.Add(time.Nanosecond)}); err == nil {
		t.Fatalf("the app retried a 5xx: %+v", again)
	}
	fs, err := c.Faults(ctx)
	if err != nil || len(fs) != 2 {
		t.Fatalf("%+v %v", fs, err)
	}
	for _, f := range fs {
		want := int64(1) // the bounce's one refusal
		if f.Greylist > 0 {
			want = int64(greyTries - 1) // every attempt inside the period
		}
		if f.Hits != want {
			t.Fatalf("%s hits %d, want %d", f.To, f.Hits, want)
		}
	}
	if err := grey.Remove(); err != nil {
		t.Fatal(err)
	}
	if fs, _ := c.Faults(ctx); len(fs) != 1 {
		t.Fatalf("after Remove: %+v", fs)
	}
}

func TestAddFaultNamesBadField(t *testing.T) {
	s := sandboxtest.New(t)
	_, err := s.Client().AddFault(context.Background(), sdk.Fault{Stage: "mail", Reply: "250 fine"})
	if sdk.StatusCode(err) != 400 || !strings.Contains(err.Error(), "reply") {
		t.Fatalf("%v", err)
	}
	_, err = sandboxtest.Start(context.Background(), sandboxtest.WithFault(sdk.Fault{Stage: "teardown", Disconnect: true}))
	if err == nil || !strings.Contains(err.Error(), "--fault") || !strings.Contains(err.Error(), "stage") {
		t.Fatalf("%v", err)
	}
}
