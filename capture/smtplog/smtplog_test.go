package smtplog

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRingAndCapsHoldBounds(t *testing.T) {
	l := New(Options{MaxSessions: 4, MaxLines: 3, MaxLineBytes: 10})
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := l.Start(fmt.Sprintf("127.0.0.1:%d", 1000+i), "127.0.0.1:25")
			for j := 0; j < 20; j++ {
				s.Command(strings.Repeat("x", 100))
				l.List(Filter{})
			}
			s.End()
		}(i)
	}
	wg.Wait()
	ss := l.List(Filter{})
	if len(ss) != 4 || l.Len() != 4 {
		t.Fatalf("%d sessions kept, want 4", len(ss))
	}
	for _, s := range ss {
		if len(s.Lines) != 3 || s.Dropped != 17 || len(s.Lines[0].Text) > 10+len("…") {
			t.Fatalf("session %d: %d lines, %d dropped, %q", s.ID, len(s.Lines), s.Dropped, s.Lines[0].Text)
		}
	}
	// Newest first, and the newest four survive.
	if ss[0].ID != 50 || ss[3].ID != 47 {
		t.Fatalf("ids %d..%d", ss[0].ID, ss[3].ID)
	}
}

func TestFilters(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := New(Options{Now: func() time.Time { return now }})
	a := l.Start("c1", "s")
	a.Command("MAIL FROM:<App@Shop.test> SIZE=10")
	a.Command("RCPT TO:<bob@example.com>")
	a.Reply("451 4.7.1 later", true)
	now = now.Add(time.Minute)
	b := l.Start("c2", "s")
	b.Command("mail from:<other@x.test>")
	b.Command("RCPT TO:<ann@example.com> NOTIFY=NEVER")
	if got := l.List(Filter{From: "app@shop"}); len(got) != 1 || got[0].From[0] != "App@Shop.test" || got[0].Faults != 1 {
		t.Fatalf("%+v", got)
	}
	if got := l.List(Filter{To: "ANN@"}); len(got) != 1 || got[0].Client != "c2" || got[0].To[0] != "ann@example.com" {
		t.Fatalf("%+v", got)
	}
	if got := l.List(Filter{Since: now}); len(got) != 1 || got[0].Client != "c2" {
		t.Fatalf("%+v", got)
	}
	if got := l.List(Filter{Limit: 1}); len(got) != 1 || got[0].Client != "c2" {
		t.Fatalf("%+v", got)
	}
}
