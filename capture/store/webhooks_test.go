package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// summaryHook queues one webhook per URL with the summary as JSON.
func summaryHook(urls ...string) func(store.Message) []store.NewWebhook {
	return func(m store.Message) []store.NewWebhook {
		b, _ := json.Marshal(m)
		var out []store.NewWebhook
		for _, u := range urls {
			out = append(out, store.NewWebhook{URL: u, Payload: b})
		}
		return out
	}
}

func TestWebhookQueueLifecycle(t *testing.T) { backends(t, testWebhookQueueLifecycle) }

func testWebhookQueueLifecycle(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	st := openTest(t, store.Options{Now: clock, Webhooks: summaryHook("http://a.test/hook", "http://b.test/hook")})
	id, err := st.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"B@y.test", "c@y.test"}}, msg("a@x.test", "b@y.test", "", "Hi", "body"))
	if err != nil {
		t.Fatal(err)
	}
	ws, total, err := st.Webhooks(ctx, store.WebhookFilter{})
	if err != nil || total != 2 || len(ws) != 2 {
		t.Fatalf("webhooks = %+v %d %v", ws, total, err)
	}
	if ws[0].DeliveryID == "" || ws[0].DeliveryID == ws[1].DeliveryID || ws[0].MessageID != id || ws[0].Status != store.DeliveryQueued {
		t.Fatalf("rows = %+v", ws)
	}
	if due, ok, err := st.NextWebhookDue(ctx); err != nil || !ok || !due.Equal(now) {
		t.Fatalf("next due = %v %v %v", due, ok, err)
	}

	claimed, err := st.ClaimDueWebhooks(ctx, clock(), "w1", time.Minute, 10)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim = %+v, %v", claimed, err)
	}
	var payload store.Message
	if err := json.Unmarshal(claimed[0].Payload, &payload); err != nil || payload.ID != id || payload.Subject != "Hi" ||
		len(payload.Mailboxes) != 2 || payload.Mailboxes[0] != "b@y.test" || payload.Size == 0 {
		t.Fatalf("payload = %s (%v)", claimed[0].Payload, err)
	}
	if claimed[0].Attempts != 1 || claimed[0].Status != store.DeliverySending {
		t.Fatalf("claimed = %+v", claimed[0])
	}
	// Held rows are not claimed again until the lease ends.
	if again, err := st.ClaimDueWebhooks(ctx, clock(), "w2", time.Minute, 10); err != nil || len(again) != 0 {
		t.Fatalf("second claim = %+v, %v", again, err)
	}
	// Deleting the message does not lose its webhooks: the payload was
	// taken at ingest.
	if err := st.DeleteMessage(ctx, id); err != nil {
		t.Fatal(err)
	}
	retryAt := clock().Add(time.Second)
	kept, err := st.RecordWebhookAttempts(ctx, "w1", []store.WebhookOutcome{
		{ID: claimed[0].ID, Status: store.DeliveryDelivered},
		{ID: claimed[1].ID, Status: store.DeliveryQueued, NextAttemptAt: retryAt, LastError: "HTTP 500"},
	})
	if err != nil || len(kept) != 2 {
		t.Fatalf("record = %v, %v", kept, err)
	}
	// Another owner's outcome is discarded.
	if kept, err := st.RecordWebhookAttempts(ctx, "w2", []store.WebhookOutcome{{ID: claimed[1].ID, Status: store.DeliveryDelivered}}); err != nil || len(kept) != 0 {
		t.Fatalf("stranger's record = %v, %v", kept, err)
	}
	w, err := st.GetWebhook(ctx, claimed[1].ID)
	if err != nil || w.Status != store.DeliveryQueued || w.LastError != "HTTP 500" || !w.NextAttemptAt.Equal(retryAt) {
		t.Fatalf("retried row = %+v, %v", w, err)
	}
	if c, err := st.ClaimDueWebhooks(ctx, clock(), "w1", time.Minute, 10); err != nil || len(c) != 0 {
		t.Fatalf("claimed before due: %+v %v", c, err)
	}
	advance(time.Second)
	c, err := st.ClaimDueWebhooks(ctx, clock(), "w1", time.Minute, 10)
	if err != nil || len(c) != 1 || c[0].Attempts != 2 || len(c[0].Payload) == 0 {
		t.Fatalf("due claim = %+v, %v", c, err)
	}
	// The owner dies: after the lease another sender takes it.
	advance(time.Minute)
	c2, err := st.ClaimDueWebhooks(ctx, clock(), "w2", time.Minute, 10)
	if err != nil || len(c2) != 1 || c2[0].Attempts != 3 {
		t.Fatalf("claim after lease = %+v, %v", c2, err)
	}
	if kept, err := st.RecordWebhookAttempts(ctx, "w1", []store.WebhookOutcome{{ID: c[0].ID, Status: store.DeliveryDelivered}}); err != nil || len(kept) != 0 {
		t.Fatalf("late record by the old owner = %v, %v", kept, err)
	}
	if _, err := st.RecordWebhookAttempts(ctx, "w2", []store.WebhookOutcome{{ID: c2[0].ID, Status: store.DeliveryFailed, LastError: "given up"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.NextWebhookDue(ctx); ok {
		t.Fatal("something still due")
	}
	counts, err := st.WebhookCounts(ctx)
	if err != nil || counts != (store.WebhookStats{Delivered: 1, Failed: 1}) {
		t.Fatalf("counts = %+v, %v", counts, err)
	}
	// Retry by hand: a failed row comes back with its age counted afresh; a
	// delivered one cannot.
	if err := st.RetryWebhook(ctx, claimed[0].ID); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("retry delivered = %v", err)
	}
	if err := st.RetryWebhook(ctx, c2[0].ID); err != nil {
		t.Fatal(err)
	}
	w, _ = st.GetWebhook(ctx, c2[0].ID)
	if w.Status != store.DeliveryQueued || !w.QueuedAt.Equal(clock()) || !w.NextAttemptAt.Equal(clock()) {
		t.Fatalf("retried by hand = %+v", w)
	}
	if ws, total, err := st.Webhooks(ctx, store.WebhookFilter{Status: store.DeliveryQueued}); err != nil || total != 1 || ws[0].ID != w.ID {
		t.Fatalf("filter queued = %+v %d %v", ws, total, err)
	}
	if err := st.DropWebhook(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.DropWebhook(ctx, w.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("drop twice = %v", err)
	}
	if _, err := st.GetWebhook(ctx, w.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get dropped = %v", err)
	}
	// Finished rows are pruned after the keep time.
	if n, err := st.PruneWebhooks(ctx, clock().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("prune recent = %d %v", n, err)
	}
	if n, err := st.PruneWebhooks(ctx, clock().Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("prune = %d %v", n, err)
	}
}

// Ingested in one group commit, every message gets its own rows (the
// PostgreSQL batch insert included), and none without the hook.
func TestWebhookQueueBatchIngest(t *testing.T) { backends(t, testWebhookQueueBatchIngest) }

func testWebhookQueueBatchIngest(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, store.Options{Webhooks: summaryHook("http://a.test/")})
	const n = 200
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := st.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{fmt.Sprintf("r%d@y.test", i)}}, msg("a@x.test", "r@y.test", "", fmt.Sprint(i), "b"))
			ids[i] = id
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ws, total, err := st.Webhooks(ctx, store.WebhookFilter{Limit: store.MaxLimit})
	if err != nil || total != n {
		t.Fatalf("total = %d, %v", total, err)
	}
	got := map[string]int{}
	for _, w := range ws {
		got[w.MessageID]++
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Fatalf("message %s has %d webhooks", id, got[id])
		}
	}
	plain := openTest(t, store.Options{})
	if _, err := plain.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"b@y.test"}}, msg("a@x.test", "b@y.test", "", "s", "b")); err != nil {
		t.Fatal(err)
	}
	if _, total, err := plain.Webhooks(ctx, store.WebhookFilter{}); err != nil || total != 0 {
		t.Fatalf("without hook: %d %v", total, err)
	}
}

// Two instances sharing one store claim disjoint rows.
func TestWebhookClaimsDisjointAcrossInstances(t *testing.T) {
	backends(t, testWebhookClaimsDisjointAcrossInstances)
}

func testWebhookClaimsDisjointAcrossInstances(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	a := openTest(t, store.Options{DSN: dsn, Webhooks: summaryHook("http://a.test/")})
	b := openTest(t, store.Options{DSN: dsn})
	const n = 300
	for i := range n {
		if _, err := a.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"b@y.test"}}, msg("a@x.test", "b@y.test", "", fmt.Sprint(i), "b")); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int64]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, side := range []struct {
		name string
		st   *store.Store
	}{{"a1", a}, {"a2", a}, {"b1", b}, {"b2", b}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ws, err := side.st.ClaimDueWebhooks(ctx, time.Now(), side.name, time.Minute, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ws) == 0 {
					return
				}
				mu.Lock()
				for _, w := range ws {
					if other, dup := seen[w.ID]; dup {
						t.Errorf("webhook %d claimed by %s and %s", w.ID, other, side.name)
					}
					seen[w.ID] = side.name
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("claimed %d of %d", len(seen), n)
	}
}
