package faults

import (
	"fmt"
	"testing"
)

// BenchmarkDecide is the engine's cost per SMTP event: with no rules (the
// atomic fast path) and with 100 rules that do not match.
func BenchmarkDecide(b *testing.B) {
	ev := Event{Stage: StageRcpt, Client: "127.0.0.1", From: "app@example.com", To: []string{"user@example.com"}}
	b.Run("no-rules", func(b *testing.B) {
		e := New(Options{})
		for i := 0; i < b.N; i++ {
			if e.Active() {
				e.Decide(ev)
			}
		}
	})
	b.Run("100-nonmatching", func(b *testing.B) {
		e := New(Options{})
		for i := 0; i < 100; i++ {
			st := []Stage{StageMail, StageRcpt, StageData, StageMessage}[i%4]
			r := Rule{Stage: st, From: fmt.Sprintf("*@nomatch%d.test", i), Reply: "451 4.7.1 no"}
			if st != StageMail {
				r.From, r.To = "", fmt.Sprintf("user%d@nomatch.test", i)
			}
			e.Add(r)
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if e.Active() {
				e.Decide(ev)
			}
		}
	})
}
