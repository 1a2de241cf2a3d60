package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// failFirst claims the new messages for url and records every first
// attempt as failed, due at due, with the summary as payload: the way rows
// reach the retry queue.
func failFirst(t *testing.T, st *store.Store, url string, now, due time.Time) store.NewWebhookBatch {
	t.Helper()
	ctx := context.Background()
	b, err := st.ClaimNewWebhooks(ctx, store.NewWebhookClaim{URL: url, Owner: "first", Now: now, Lease: time.Minute, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	res := store.NewWebhookResult{URL: url, Owner: "first", To: b.To}
	for i, m := range b.Messages {
		payload, _ := json.Marshal(m)
		res.Failed = append(res.Failed, store.FailedWebhook{DeliveryID: b.DeliveryIDs[i], MessageID: m.ID, Payload: payload,
			Status: store.DeliveryQueued, NextAttemptAt: due, LastError: "refused", ReceivedAt: m.ReceivedAt})
	}
	if len(b.Messages) > 0 {
		if err := st.FinishNewWebhooks(ctx, res); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func TestWebhookQueueLifecycle(t *testing.T) { backends(t, testWebhookQueueLifecycle) }

func testWebhookQueueLifecycle(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	st := openTest(t, store.Options{Now: clock, WebhookURLs: []string{"http://a.test/hook", "http://b.test/hook"}})
	id, err := st.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"B@y.test", "c@y.test"}}, msg("a@x.test", "b@y.test", "", "Hi", "body"))
	if err != nil {
		t.Fatal(err)
	}
	// Ingest queues nothing; failed first attempts do.
	if _, total, err := st.Webhooks(ctx, store.WebhookFilter{}); err != nil || total != 0 {
		t.Fatalf("rows after ingest: %d %v", total, err)
	}
	failFirst(t, st, "http://a.test/hook", clock(), clock())
	failFirst(t, st, "http://b.test/hook", clock(), clock())
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
	if claimed[0].Attempts != 2 || claimed[0].Status != store.DeliverySending {
		t.Fatalf("claimed = %+v", claimed[0])
	}
	// Held rows are not claimed again until the lease ends.
	if again, err := st.ClaimDueWebhooks(ctx, clock(), "w2", time.Minute, 10); err != nil || len(again) != 0 {
		t.Fatalf("second claim = %+v, %v", again, err)
	}
	// Deleting the message does not lose its retries: the payload was
	// kept from the first attempt.
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
	if err != nil || len(c) != 1 || c[0].Attempts != 3 || len(c[0].Payload) == 0 {
		t.Fatalf("due claim = %+v, %v", c, err)
	}
	// The owner dies: after the lease another sender takes it.
	advance(time.Minute)
	c2, err := st.ClaimDueWebhooks(ctx, clock(), "w2", time.Minute, 10)
	if err != nil || len(c2) != 1 || c2[0].Attempts != 4 {
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

// Marks hand every message stored after a URL was configured to one
// sender at a time, in order, each once; ingest writes no webhook rows; a
// dead sender's range is sent again under the same delivery ids once its
// lease ends, and its late outcome is refused.
func TestWebhookMarks(t *testing.T) { backends(t, testWebhookMarks) }

func testWebhookMarks(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	const a, b = "http://a.test/", "http://b.test/"
	dsn := testDSN(t)
	// Mail stored before the URL was configured is not announced.
	pre, err := store.Open(ctx, store.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pre.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"b@y.test"}}, msg("a@x.test", "b@y.test", "", "before", "b")); err != nil {
		t.Fatal(err)
	}
	pre.Close()
	st := openTest(t, store.Options{DSN: dsn, WebhookURLs: []string{a, b}})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	ids := map[string]bool{}
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := st.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{fmt.Sprintf("r%d@y.test", i)}}, msg("a@x.test", "r@y.test", "", fmt.Sprint(i), "b"))
			mu.Lock()
			ids[id] = true
			mu.Unlock()
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
	if _, total, err := st.Webhooks(ctx, store.WebhookFilter{}); err != nil || total != 0 {
		t.Fatalf("rows after ingest: %d %v", total, err)
	}
	claim := func(url, owner string, at time.Time) store.NewWebhookBatch {
		t.Helper()
		bt, err := st.ClaimNewWebhooks(ctx, store.NewWebhookClaim{URL: url, Owner: owner, Now: at, Lease: time.Minute, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		return bt
	}
	// A dies holding its first batch; W2 waits for the lease, then gets the
	// same range under the same delivery ids.
	dead := claim(a, "w1", now)
	if len(dead.Messages) != 7 {
		t.Fatalf("first batch: %d messages", len(dead.Messages))
	}
	if bt := claim(a, "w2", now); len(bt.Messages) != 0 || !bt.Busy {
		t.Fatalf("claimed a held range: %+v", bt)
	}
	later := now.Add(2 * time.Minute)
	again := claim(a, "w2", later)
	if again.To != dead.To || strings.Join(again.DeliveryIDs, ",") != strings.Join(dead.DeliveryIDs, ",") {
		t.Fatalf("taken over: %v, want %v", again.DeliveryIDs, dead.DeliveryIDs)
	}
	if err := st.FinishNewWebhooks(ctx, store.NewWebhookResult{URL: a, Owner: "w1", To: dead.To, Delivered: 7}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("late finish by the dead sender: %v", err)
	}
	seen := map[string]map[string]bool{a: {}, b: {}}
	dids := map[string]bool{}
	finish := func(url string, bt store.NewWebhookBatch, owner string) {
		t.Helper()
		for i, m := range bt.Messages {
			if seen[url][m.ID] {
				t.Fatalf("%s: message %s handed out twice", url, m.ID)
			}
			seen[url][m.ID] = true
			if dids[bt.DeliveryIDs[i]] || bt.DeliveryIDs[i] != store.WebhookDeliveryID(m.ID, url) {
				t.Fatalf("delivery id %q", bt.DeliveryIDs[i])
			}
			dids[bt.DeliveryIDs[i]] = true
		}
		if err := st.FinishNewWebhooks(ctx, store.NewWebhookResult{URL: url, Owner: owner, To: bt.To, Delivered: len(bt.Messages)}); err != nil {
			t.Fatal(err)
		}
	}
	finish(a, again, "w2")
	for _, url := range []string{a, b} {
		for {
			bt := claim(url, "w2", later)
			if len(bt.Messages) == 0 {
				break
			}
			finish(url, bt, "w2")
		}
		if len(seen[url]) != n {
			t.Fatalf("%s: %d messages handed out, want %d", url, len(seen[url]), n)
		}
		for id := range seen[url] {
			if !ids[id] {
				t.Fatalf("%s: message %s was stored before the URL was configured", url, id)
			}
		}
	}
	if c, err := st.WebhookCounts(ctx); err != nil || c.Delivered != 2*n {
		t.Fatalf("counts %+v %v", c, err)
	}
	// A URL the store was not opened with has no mark.
	if _, err := st.ClaimNewWebhooks(ctx, store.NewWebhookClaim{URL: "http://other.test/", Owner: "w", Now: now}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown URL: %v", err)
	}
}

// Two instances sharing one store claim disjoint rows.
func TestWebhookClaimsDisjointAcrossInstances(t *testing.T) {
	backends(t, testWebhookClaimsDisjointAcrossInstances)
}

func testWebhookClaimsDisjointAcrossInstances(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	const hook = "http://a.test/"
	a := openTest(t, store.Options{DSN: dsn, WebhookURLs: []string{hook}})
	b := openTest(t, store.Options{DSN: dsn, WebhookURLs: []string{hook}})
	const n = 300
	for i := range n {
		if _, err := a.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"b@y.test"}}, msg("a@x.test", "b@y.test", "", fmt.Sprint(i), "b")); err != nil {
			t.Fatal(err)
		}
	}
	// First attempts: four senders on two instances race for the mark;
	// each message is handed to one.
	handed := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, side := range []struct {
		name string
		st   *store.Store
	}{{"a1", a}, {"a2", a}, {"b1", b}, {"b2", b}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for idle := 0; idle < 20; {
				bt, err := side.st.ClaimNewWebhooks(ctx, store.NewWebhookClaim{URL: hook, Owner: side.name, Now: time.Now(), Lease: time.Minute, Limit: 7})
				if err != nil {
					t.Error(err)
					return
				}
				if len(bt.Messages) == 0 {
					idle++
					time.Sleep(time.Millisecond)
					continue
				}
				res := store.NewWebhookResult{URL: hook, Owner: side.name, To: bt.To}
				mu.Lock()
				for i, m := range bt.Messages {
					if other, dup := handed[m.ID]; dup {
						t.Errorf("message %s handed to %s and %s", m.ID, other, side.name)
					}
					handed[m.ID] = side.name
					res.Failed = append(res.Failed, store.FailedWebhook{DeliveryID: bt.DeliveryIDs[i], MessageID: m.ID, Payload: []byte("{}"),
						Status: store.DeliveryQueued, NextAttemptAt: time.Now(), LastError: "refused", ReceivedAt: m.ReceivedAt})
				}
				mu.Unlock()
				if err := side.st.FinishNewWebhooks(ctx, res); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(handed) != n {
		t.Fatalf("handed out %d of %d", len(handed), n)
	}
	// Retries: claims of due rows are disjoint too.
	seen := map[int64]string{}
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

func TestWebhookListTotalMatchesPage(t *testing.T) { backends(t, testWebhookListTotalMatchesPage) }

// testWebhookListTotalMatchesPage: while failed first attempts keep adding
// rows, every list's total counts at least the rows it lists, and exactly
// them when they all fit in the page: total and page are one snapshot.
// (Counted by a statement of its own, a row added between the two was
// listed but not counted; a test of the REST route saw total 0 beside
// three deliveries.)
func testWebhookListTotalMatchesPage(t *testing.T) {
	ctx := context.Background()
	const url = "http://a.test/hook"
	st := openTest(t, store.Options{WebhookURLs: []string{url}})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := st.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"b@y.test"}}, msg("a@x.test", "b@y.test", "", fmt.Sprint("m", i), "body")); err != nil {
				t.Error(err)
				return
			}
			failFirst(t, st, url, time.Now(), time.Now().Add(time.Hour))
		}
	}()
	halt := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer halt()
	for range 300 {
		ws, total, err := st.Webhooks(ctx, store.WebhookFilter{Limit: store.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if total < len(ws) || (len(ws) < store.MaxLimit && total != len(ws)) {
			t.Fatalf("total %d beside a page of %d", total, len(ws))
		}
	}
	halt()
	// A page past the end is empty and still says how many there are.
	all, total, err := st.Webhooks(ctx, store.WebhookFilter{Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	past, pastTotal, err := st.Webhooks(ctx, store.WebhookFilter{Limit: 10, Offset: total + 5})
	if err != nil || len(past) != 0 || pastTotal != total || total != len(all) || total == 0 {
		t.Fatalf("past the end: %d rows, total %d (%v); all: %d rows, total %d", len(past), pastTotal, err, len(all), total)
	}
}
