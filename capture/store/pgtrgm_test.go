package store

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
)

// TestTrigramFallback (PostgreSQL): when the extension cannot be created,
// the store says so in one warning and keeps searching (by reading every
// message); once it can, the index is built.
func TestTrigramFallback(t *testing.T) {
	storetest.RequirePostgres(t)
	t.Parallel()
	ctx := context.Background()
	st, err := Open(ctx, Options{DSN: storetest.PostgresDSN(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.trgm {
		t.Fatal("no trigram index after Open")
	}
	for _, to := range []string{"a@x.test", "b@x.test"} {
		if _, err := st.Ingest(ctx, Envelope{From: "s@x.test", To: []string{to}}, []byte("Subject: s\r\n\r\nb\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.wdb.ExecContext(ctx, `DROP INDEX `+trgmIndex); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	st.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st.trgm = false
	st.ensureTrigram(ctx, "mailsandbox_no_such_extension")
	if st.trgm || !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "CREATE EXTENSION mailsandbox_no_such_extension") {
		t.Fatalf("trigram %v, logs %q; want a warning naming CREATE EXTENSION", st.trgm, logs.String())
	}
	ms, total, err := st.Search(ctx, Query{To: "a@x"})
	if err != nil || total != 1 || len(ms) != 1 {
		t.Fatalf("search without the index: %d of %d (%v), want 1", len(ms), total, err)
	}
	logs.Reset()
	st.ensureTrigram(ctx, "pg_trgm")
	var have bool
	if err := st.rdb.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1)`, trgmIndex).Scan(&have); err != nil {
		t.Fatal(err)
	}
	if !st.trgm || !have || !strings.Contains(logs.String(), "built the trigram index") {
		t.Fatalf("trigram %v, index %v, logs %q; want it built", st.trgm, have, logs.String())
	}
}
