package store

import (
	"context"
	"database/sql"
	"strconv"
	"testing"
	"time"
)

// TestMigrateWebhookMarks opens a store of the version before webhook
// marks, with a message and a webhook row queued at its ingest as that
// version did: the old row is still sent by the retry queue, the old
// message is not announced again, and mail stored after the upgrade is
// handed over by the mark.
func TestMigrateWebhookMarks(t *testing.T) {
	eachBackend(t, testMigrateWebhookMarks)
}

func testMigrateWebhookMarks(t *testing.T, dsn string, pg bool) {
	ctx := context.Background()
	const hook = "http://hook.test/"
	const before = 10 // the version without marks (11)
	// The old version: migrate to it, store a message (its own store code
	// is gone; the current ingest writes the same message columns), and
	// queue its webhook row as that version's ingest did.
	old, err := Open(ctx, Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	oldID, err := old.Ingest(ctx, Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("Subject: old\r\n\r\nb\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	var db *sql.DB
	if pg {
		db, err = openPGDB(dsn)
	} else {
		db, err = sql.Open("sqlite", "file:"+dsn)
	}
	if err != nil {
		t.Fatal(err)
	}
	raw := &Store{pg: pg, wdb: db}
	// Back to the old schema: as if the marks' migration (and those after
	// it) never ran.
	for _, q := range append(undoLiveCounts(pg), `DROP TABLE webhook_marks`, `DELETE FROM schema_version WHERE version > `+strconv.Itoa(before)) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	now := micros(time.Now())
	if _, err := db.ExecContext(ctx, raw.q(qInsertWebhook+`(?,?,?,?,?,0,?,?,?,?,?)`), "old-delivery", oldID, hook, []byte(`{"id":"old"}`), DeliveryQueued, now, "", now, now, now); err != nil {
		t.Fatal(err)
	}
	db.Close()

	st, err := Open(ctx, Options{DSN: dsn, WebhookURLs: []string{hook}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	newID, err := st.Ingest(ctx, Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("Subject: new\r\n\r\nb\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.ClaimNewWebhooks(ctx, NewWebhookClaim{URL: hook, Owner: "w", Now: time.Now(), Lease: time.Minute})
	if err != nil || len(b.Messages) != 1 || b.Messages[0].ID != newID {
		t.Fatalf("new mail after the upgrade: %+v %v", b, err)
	}
	ws, err := st.ClaimDueWebhooks(ctx, time.Now(), "w", time.Minute, 10)
	if err != nil || len(ws) != 1 || ws[0].DeliveryID != "old-delivery" || string(ws[0].Payload) != `{"id":"old"}` {
		t.Fatalf("old queued row: %+v %v", ws, err)
	}
}
