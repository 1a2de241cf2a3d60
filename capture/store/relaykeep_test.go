package store_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// testClock is a settable clock for Options.Now.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Set(t time.Time)     { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func (c *testClock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// finish claims delivery id and records status for it.
func finish(t *testing.T, st *store.Store, id int64, status string) {
	t.Helper()
	ctx := context.Background()
	if err := st.RetryDelivery(ctx, id); err != nil { // due now, whatever its backoff
		t.Fatal(err)
	}
	ds, err := st.ClaimDue(ctx, time.Now().Add(1000*time.Hour), "test", time.Hour, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range ds {
		a := store.Attempt{Status: status}
		if d.ID != id { // claimed along: back to the queue, not due
			a = store.Attempt{Status: store.DeliveryQueued, NextAttemptAt: time.Now().Add(1000 * time.Hour)}
		} else {
			found = true
		}
		if err := st.RecordAttempt(ctx, d.ID, "test", a); err != nil {
			t.Fatal(err)
		}
	}
	if found {
		return
	}
	t.Fatalf("delivery %d not claimed (claimed %+v)", id, ds)
}

func deliveryIDs(t *testing.T, st *store.Store) []int64 {
	t.Helper()
	ds, err := st.Deliveries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func sameIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Finished deliveries are pruned RelayKeep after they finished; queued
// ones stay however old, and the message keeps its copies.
func TestRelayKeepPrunesFinishedDeliveries(t *testing.T) {
	backends(t, testRelayKeepPrunesFinishedDeliveries)
}

func testRelayKeepPrunesFinishedDeliveries(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	const keep = 7 * 24 * time.Hour
	st := openTest(t, store.Options{Now: clock.Now, RelayKeep: keep})
	id, err := st.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"b@y.test"}}, msg("a@x.test", "b@y.test", "", "Hi", "body"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := st.Enqueue(ctx, id, []store.NewDelivery{
		{Recipients: []string{"one@relay.test"}, Destination: "one.test:25"},
		{Recipients: []string{"two@relay.test"}, Destination: "two.test:25"},
		{Recipients: []string{"three@relay.test"}, Destination: "three.test:25"},
	})
	if err != nil {
		t.Fatal(err)
	}
	finish(t, st, ids[0], store.DeliveryDelivered) // finishes at day 0
	clock.Add(3 * 24 * time.Hour)
	finish(t, st, ids[1], store.DeliveryFailed) // finishes at day 3; ids[2] stays queued

	clock.Add(keep - time.Second) // day 10 minus a second: the first is 7 days old less 3
	if err := st.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	// day 0 + 7d: only the delivered one, finished at day 0, is older than keep.
	clock.Set(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(keep + time.Second))
	if err := st.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if got := deliveryIDs(t, st); !sameIDs(got, ids[1:]) {
		t.Fatalf("after 7 days: deliveries %v, want %v", got, ids[1:])
	}
	clock.Add(3 * 24 * time.Hour)
	if err := st.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if got := deliveryIDs(t, st); !sameIDs(got, ids[2:]) {
		t.Fatalf("after 10 days: deliveries %v, want only the queued %v", got, ids[2:])
	}
	if _, err := st.Get(ctx, id); err != nil {
		t.Fatalf("the message went with its deliveries: %v", err)
	}
}

// Deleting or pruning a message drops its finished deliveries; a queued
// one keeps the message until it finishes, and then stays listed (its
// retry says the message is gone) until RelayKeep.
func TestFinishedDeliveriesGoWithTheirMessage(t *testing.T) {
	backends(t, testFinishedDeliveriesGoWithTheirMessage)
}

func testFinishedDeliveriesGoWithTheirMessage(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	st := openTest(t, store.Options{Now: clock.Now, MaxAge: time.Hour}) // RelayKeep 0: kept as long as the message
	ingest := func(subject string) (string, int64) {
		t.Helper()
		id, err := st.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"b@y.test"}}, msg("a@x.test", "b@y.test", "", subject, "body"))
		if err != nil {
			t.Fatal(err)
		}
		ds, err := st.Enqueue(ctx, id, []store.NewDelivery{{Recipients: []string{"x@relay.test"}, Destination: "relay.test:25"}})
		if err != nil {
			t.Fatal(err)
		}
		return id, ds[0]
	}
	// Deleted by hand.
	deleted, d1 := ingest("deleted")
	finish(t, st, d1, store.DeliveryDelivered)
	// Deleted while its delivery is queued: both stay until it finishes.
	early, d2 := ingest("early")
	// Pruned by age.
	clock.Add(time.Minute)
	_, d3 := ingest("pruned")
	finish(t, st, d3, store.DeliveryFailed)

	if err := st.DeleteMessage(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	if got := deliveryIDs(t, st); !sameIDs(got, []int64{d2, d3}) {
		t.Fatalf("after deleting a message: deliveries %v, want %v", got, []int64{d2, d3})
	}
	if err := st.DeleteMessage(ctx, early); err != nil {
		t.Fatal(err)
	}
	if got := deliveryIDs(t, st); !sameIDs(got, []int64{d2, d3}) {
		t.Fatalf("a queued delivery went with its message: %v", got)
	}
	finish(t, st, d2, store.DeliveryFailed)
	if _, err := st.Get(ctx, early); err == nil {
		t.Fatal("the message kept for its queued delivery outlived it")
	}
	clock.Add(2 * time.Hour)
	if err := st.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if got := deliveryIDs(t, st); !sameIDs(got, []int64{d2}) {
		t.Fatalf("after pruning every message by age: deliveries %v, want only %d (finished after its message went)", got, d2)
	}
}
