package relay

import (
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// Retries are spaced by the backoff, as the destination sees them: the
// gap before try n+1 is at least Backoff(n). (TestBackoff checks the
// formula; this checks the scheduler uses it.)
func TestRetriesSpacedByBackoff(t *testing.T) {
	t.Parallel()
	const fails = 3
	min, max := 150*time.Millisecond, time.Second
	var mu sync.Mutex
	var tries []time.Time
	dest := newDest(t, func(d *destServer) {
		d.rcptFn = func(string) error {
			mu.Lock()
			defer mu.Unlock()
			tries = append(tries, time.Now())
			if len(tries) <= fails {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
			}
			return nil
		}
	})
	tq := newTestQueue(t, Options{Match: []string{"*@relay.test"}, Routes: map[string]string{"relay.test": dest.addr},
		RetryMin: min, RetryMax: max}, true)
	tq.ingest(t, "a@sender.test", []string{"b@relay.test"}, mail("a@sender.test", "b@relay.test", "spaced", "x"))
	dest.wait(t)
	waitQueue(t, tq.st, "delivered", allStatus(store.DeliveryDelivered, 1))
	mu.Lock()
	defer mu.Unlock()
	if len(tries) != fails+1 {
		t.Fatalf("%d tries, want %d", len(tries), fails+1)
	}
	for i := 1; i < len(tries); i++ {
		// The scheduler stamps the next try when it records the failure,
		// a little after the destination answered: allow 10 ms of that.
		gap, want := tries[i].Sub(tries[i-1]), Backoff(i, min, max)
		if gap < want-10*time.Millisecond {
			t.Errorf("try %d came %v after try %d; the backoff after %d failures is %v", i+1, gap, i, i, want)
		}
	}
}
