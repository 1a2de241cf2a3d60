package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
)

// On PostgreSQL a seq can be taken by a transaction that commits after a
// later message is visible (another instance's ingest). The mark must not
// pass such a hole: the claim waits for the transaction, then announces its
// message in seq order. Nothing here is timed: the claim is seen waiting
// in pg_locks before the late transaction commits.
func TestWebhookMarkWaitsForLateCommit(t *testing.T) {
	storetest.RequirePostgres(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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

	// Another instance's ingest: it holds the seq lock as every ingest
	// does, takes the next seq and has not committed yet.
	late, err := st.wdb.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Rollback()
	if _, err := late.ExecContext(ctx, `SELECT pg_advisory_xact_lock_shared(`+seqLockKey+`)`); err != nil {
		t.Fatal(err)
	}
	var cols string
	if err := late.QueryRowContext(ctx, `SELECT string_agg(column_name, ',') FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'messages' AND column_name NOT IN ('seq', 'id')`).Scan(&cols); err != nil {
		t.Fatal(err)
	}
	const lateID = "late-message"
	if _, err := late.ExecContext(ctx, fmt.Sprintf(`INSERT INTO messages (id, %s) SELECT $1, %s FROM messages WHERE id = $2`, cols, cols), lateID, first); err != nil {
		t.Fatal(err)
	}
	second, err := st.Ingest(ctx, env, []byte("Subject: 2\r\n\r\nb\r\n"))
	if err != nil {
		t.Fatal(err)
	}

	var got []string
	claimed := make(chan error, 1)
	claim := func() (NewWebhookBatch, error) {
		b, err := st.ClaimNewWebhooks(ctx, NewWebhookClaim{URL: hook, Owner: "w", Now: time.Now(), Lease: time.Minute})
		if err != nil || len(b.Messages) == 0 {
			return b, err
		}
		return b, st.FinishNewWebhooks(ctx, NewWebhookResult{URL: hook, Owner: "w", To: b.To, Delivered: len(b.Messages)})
	}
	go func() {
		b, err := claim()
		for _, m := range b.Messages {
			got = append(got, m.ID)
		}
		claimed <- err
	}()
	// The claim waits for the late transaction's lock.
	for {
		var waiting int
		if err := st.wdb.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks, (SELECT `+seqLockKey+` AS k) key
			WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND classid::bigint = (key.k >> 32) & 4294967295 AND objid::bigint = key.k & 4294967295`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case err := <-claimed:
			t.Fatalf("the claim did not wait for the late transaction: claimed %v (err %v)", got, err)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := late.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-claimed; err != nil {
		t.Fatal(err)
	}
	for len(got) < 3 {
		b, err := claim()
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Messages) == 0 {
			break
		}
		for _, m := range b.Messages {
			got = append(got, m.ID)
		}
	}
	if want := []string{first, lateID, second}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("announced %v, want %v", got, want)
	}
}
