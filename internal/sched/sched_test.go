package sched

import (
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, c := range []struct {
		name         string
		next         time.Time
		ok, full, cf bool
		d            time.Duration
		sleep        bool
	}{
		{"nothing pending", time.Time{}, false, false, false, time.Second, false},
		{"nothing pending, cut off", time.Time{}, false, false, true, time.Second, true},
		{"due later", now.Add(time.Minute), true, false, false, time.Minute, true},
		{"due later, cut off", now.Add(time.Minute), true, false, true, time.Second, true},
		{"due now", now, true, false, false, 10 * time.Millisecond, true},
		{"due now, full", now.Add(-time.Second), true, true, false, 0, false},
	} {
		d, sleep := Wait(c.next, c.ok, now, c.full, c.cf)
		if d != c.d || sleep != c.sleep {
			t.Errorf("%s: %s %v, want %s %v", c.name, d, sleep, c.d, c.sleep)
		}
	}
}
