// Package sched holds what the relay's and the webhook sender's scheduler
// loops share: when to look at a leased queue again.
package sched

import "time"

// Wait says how long a scheduler sleeps before claiming again, given the
// queue's earliest due time (ok false: nothing pending), whether its
// workers are full, and whether its event subscription was cut off; sleep
// is false when only an event (or a worker finishing) should wake it.
//
// Something due now is looked at again in 10 ms (another instance holds
// it, or it was committed after the claim), unless the workers are full:
// a finishing one wakes the loop. Cut off from events, the loop polls at
// least every second.
func Wait(next time.Time, ok bool, now time.Time, full, cutOff bool) (d time.Duration, sleep bool) {
	if !ok {
		return time.Second, cutOff
	}
	d = next.Sub(now)
	if d <= 0 {
		if full {
			return 0, false
		}
		d = 10 * time.Millisecond
	}
	if cutOff {
		d = min(d, time.Second)
	}
	return d, true
}

// After resets t to fire after d and returns its channel.
func After(t *time.Timer, d time.Duration) <-chan time.Time {
	t.Reset(d)
	return t.C
}
