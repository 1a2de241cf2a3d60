package store

import (
	"context"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
)

// On PostgreSQL a seq can be taken by a transaction that commits after a
// later message is visible: the mark waits at the hole (webhookGapWait)
// instead of passing it at once, then passes it (a deleted message, or a
// transaction that rolled back, leaves it for good).
func TestWebhookMarkWaitsAtHole(t *testing.T) {
	storetest.RequirePostgres(t)
	t.Parallel()
	ctx := context.Background()
	const hook = "http://hook.test/"
	st, err := Open(ctx, Options{DSN: storetest.PostgresDSN(t), WebhookURLs: []string{hook}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	env := Envelope{From: "a@x.test", To: []string{"b@y.test"}}
	first, err := st.Ingest(ctx, env, []byte("Subject: 1\r\n\r\nb\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	// Another writer takes the next seq and has not committed.
	if _, err := st.wdb.ExecContext(ctx, `SELECT nextval(pg_get_serial_sequence('messages', 'seq'))`); err != nil {
		t.Fatal(err)
	}
	second, err := st.Ingest(ctx, env, []byte("Subject: 2\r\n\r\nb\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	claim := func(at time.Time) NewWebhookBatch {
		t.Helper()
		b, err := st.ClaimNewWebhooks(ctx, NewWebhookClaim{URL: hook, Owner: "w", Now: at, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Messages) > 0 {
			if err := st.FinishNewWebhooks(ctx, NewWebhookResult{URL: hook, Owner: "w", To: b.To, Delivered: len(b.Messages)}); err != nil {
				t.Fatal(err)
			}
		}
		return b
	}
	now := time.Now()
	if b := claim(now); len(b.Messages) != 1 || b.Messages[0].ID != first || b.Busy != true {
		t.Fatalf("up to the hole: %d messages, busy %v", len(b.Messages), b.Busy)
	}
	if b := claim(now.Add(webhookGapWait / 2)); len(b.Messages) != 0 || !b.Busy {
		t.Fatalf("passed the hole early: %d messages", len(b.Messages))
	}
	if b := claim(now.Add(webhookGapWait + time.Millisecond)); len(b.Messages) != 1 || b.Messages[0].ID != second {
		t.Fatalf("after the wait: %d messages", len(b.Messages))
	}
}
