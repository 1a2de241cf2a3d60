package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// waitRelay waits for the next relay event.
func waitRelay(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("event stream closed")
			}
			if ev.Kind == store.EventRelay {
				return ev
			}
		case <-ctx.Done():
			t.Fatal("no relay event")
		}
	}
}

func TestQueueAutoEnqueueAndLifecycle(t *testing.T) { backends(t, testQueueAutoEnqueueAndLifecycle) }

func testQueueAutoEnqueueAndLifecycle(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	st := openTest(t, store.Options{Now: clock, Enqueue: func(env store.Envelope) []store.NewDelivery {
		return []store.NewDelivery{{Recipients: env.To, Destination: "relay.test:25"}}
	}})
	events := st.Subscribe(ctx)
	id, err := st.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"b@y.test", "c@y.test"}}, msg("a@x.test", "b@y.test", "", "Hi", "body"))
	if err != nil {
		t.Fatal(err)
	}
	waitRelay(t, events)
	ds, err := st.Deliveries(ctx)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries = %+v, %v", ds, err)
	}
	d := ds[0]
	if d.MessageID != id || d.MailFrom != "a@x.test" || d.Status != store.DeliveryQueued || len(d.Recipients) != 2 || d.Destination != "relay.test:25" {
		t.Fatalf("delivery = %+v", d)
	}
	if due, ok, err := st.NextDue(ctx); err != nil || !ok || !due.Equal(now) {
		t.Fatalf("next due = %v %v %v", due, ok, err)
	}

	claimed, err := st.ClaimDue(ctx, now, "w1", time.Minute, 10)
	if err != nil || len(claimed) != 1 || claimed[0].Status != store.DeliverySending || claimed[0].Attempts != 1 {
		t.Fatalf("claim = %+v, %v", claimed, err)
	}
	waitRelay(t, events)
	if again, _ := st.ClaimDue(ctx, now, "w2", time.Minute, 10); len(again) != 0 {
		t.Fatalf("claimed twice: %+v", again)
	}
	// Partial result: b delivered, c retried later.
	later := now.Add(time.Minute)
	err = st.RecordAttempt(ctx, d.ID, "w1", store.Attempt{Status: store.DeliveryQueued, NextAttemptAt: later, LastError: "451 busy",
		RecipientStatus: []store.RecipientStatus{{Address: "b@y.test", Status: store.DeliveryDelivered, Attempts: 1, Reply: "250 ok"},
			{Address: "c@y.test", Status: store.DeliveryQueued, Attempts: 1, Reply: "451 busy"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitRelay(t, events)
	d, _ = st.Delivery(ctx, d.ID)
	if p := d.Pending(); len(p) != 1 || p[0] != "c@y.test" || d.LastError != "451 busy" || !d.NextAttemptAt.Equal(later) || d.LastAttemptAt.IsZero() {
		t.Fatalf("after attempt: %+v pending %v", d, d.Pending())
	}
	if err := st.RecordAttempt(ctx, d.ID, "w1", store.Attempt{Status: store.DeliveryDelivered}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record without lease = %v", err)
	}
	if c, _ := st.ClaimDue(ctx, now, "w1", time.Minute, 10); len(c) != 0 {
		t.Fatal("claimed before due")
	}
	if err := st.RetryDelivery(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	waitRelay(t, events)
	claimed, _ = st.ClaimDue(ctx, now, "w1", time.Minute, 10)
	if len(claimed) != 1 || claimed[0].Attempts != 2 {
		t.Fatalf("claim after retry = %+v", claimed)
	}
	if err := st.RecordAttempt(ctx, d.ID, "w1", store.Attempt{Status: store.DeliveryDelivered}); err != nil {
		t.Fatal(err)
	}
	if err := st.RetryDelivery(ctx, d.ID); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("retry delivered = %v", err)
	}
	if _, ok, _ := st.NextDue(ctx); ok {
		t.Fatal("nothing should be due")
	}
	if err := st.DropDelivery(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.DropDelivery(ctx, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("drop twice = %v", err)
	}
	if ds, _ := st.Deliveries(ctx); len(ds) != 0 {
		t.Fatalf("left: %+v", ds)
	}
}

func TestQueueManualEnqueueKeepsMessageAlive(t *testing.T) {
	backends(t, testQueueManualEnqueueKeepsMessageAlive)
}

func testQueueManualEnqueueKeepsMessageAlive(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	id, err := st.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"b@y.test"}}, msg("a@x.test", "b@y.test", "", "Hi", "body"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enqueue(ctx, "nope", []store.NewDelivery{{Recipients: []string{"z@z.test"}}}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("enqueue missing = %v", err)
	}
	ids, err := st.Enqueue(ctx, id, []store.NewDelivery{{Recipients: []string{"real@z.test"}, Destination: "z.test"}})
	if err != nil || len(ids) != 1 {
		t.Fatalf("enqueue = %v, %v", ids, err)
	}
	d, err := st.Delivery(ctx, ids[0])
	if err != nil || d.MailFrom != "a@x.test" || d.Recipients[0] != "real@z.test" {
		t.Fatalf("delivery = %+v, %v", d, err)
	}
	// Removed from every mailbox, the message stays while queued ...
	if err := st.DeleteMessage(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Raw(ctx, id); err != nil {
		t.Fatalf("raw while queued: %v", err)
	}
	now := time.Now()
	if c, err := st.ClaimDue(ctx, now, "w", time.Minute, 0); err != nil || len(c) != 1 {
		t.Fatalf("claim = %v %v", c, err)
	}
	// ... and goes once the delivery is finished.
	if err := st.RecordAttempt(ctx, ids[0], "w", store.Attempt{Status: store.DeliveryFailed, LastError: "550 no"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Raw(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("raw after delivery = %v", err)
	}
	if err := st.RetryDelivery(ctx, ids[0]); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("retry without message = %v", err)
	}
}

func TestQueueExpiredLeaseIsReclaimedAfterReopen(t *testing.T) {
	backends(t, testQueueExpiredLeaseIsReclaimedAfterReopen)
}

func testQueueExpiredLeaseIsReclaimedAfterReopen(t *testing.T) {
	ctx := context.Background()
	path := testDSN(t)
	st := openTest(t, store.Options{DSN: path})
	id, err := st.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"b@y.test"}}, msg("a@x.test", "b@y.test", "", "Hi", "body"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enqueue(ctx, id, []store.NewDelivery{{Recipients: []string{"r1@z.test"}}, {Recipients: []string{"r2@z.test"}}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if c, _ := st.ClaimDue(ctx, now, "dead", time.Minute, 1); len(c) != 1 {
		t.Fatal("claim one")
	}
	st.Close()

	st2 := openTest(t, store.Options{DSN: path})
	due, ok, err := st2.NextDue(ctx)
	if err != nil || !ok || due.After(now) {
		t.Fatalf("next due = %v %v %v", due, ok, err)
	}
	if c, _ := st2.ClaimDue(ctx, now, "w", time.Hour, 10); len(c) != 1 {
		t.Fatalf("before lease expiry claimed %d", len(c))
	}
	c, err := st2.ClaimDue(ctx, now.Add(2*time.Minute), "w", time.Minute, 10)
	if err != nil || len(c) != 1 || c[0].Attempts != 2 || c[0].LeaseOwner != "w" {
		t.Fatalf("reclaim = %+v %v", c, err)
	}
}

func TestQueueConcurrentClaimsNeverOverlap(t *testing.T) {
	backends(t, testQueueConcurrentClaimsNeverOverlap)
}

func testQueueConcurrentClaimsNeverOverlap(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{})
	id, err := st.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"b@y.test"}}, msg("a@x.test", "b@y.test", "", "Hi", "body"))
	if err != nil {
		t.Fatal(err)
	}
	var ds []store.NewDelivery
	for i := 0; i < 40; i++ {
		ds = append(ds, store.NewDelivery{Recipients: []string{fmt.Sprintf("r%d@z.test", i)}, Destination: "z.test"})
	}
	if _, err := st.Enqueue(ctx, id, ds); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(owner string) {
			defer wg.Done()
			for {
				c, err := st.ClaimDue(ctx, time.Now(), owner, time.Hour, 3)
				if err != nil {
					t.Error(err)
					return
				}
				if len(c) == 0 {
					return
				}
				mu.Lock()
				for _, d := range c {
					if prev, dup := seen[d.ID]; dup {
						t.Errorf("delivery %d claimed by %s and %s", d.ID, prev, owner)
					}
					seen[d.ID] = owner
				}
				mu.Unlock()
			}
		}(fmt.Sprintf("w%d", w))
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Fatalf("claimed %d of 40", len(seen))
	}
}
