package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
)

// liveCountVersion is the migration that replaced messages_live.
const liveCountVersion = 12

// TestMigrateLiveCountOrphan opens a store of the version before live messages
// were counted without messages_live, holding three messages of which one
// is in no mailbox (copies 0, as while the relay queue holds it): after
// the migration SQLite has the partial index instead of messages_live,
// PostgreSQL its kept count, and every count (list total, unread, stats) leaves the orphan out, before
// and after new mail.
func TestMigrateLiveCountOrphan(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		testMigrateLiveCountOrphan(t, filepath.Join(t.TempDir(), "old.db"), false)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		testMigrateLiveCountOrphan(t, storetest.PostgresDSN(t), true)
	})
}

func testMigrateLiveCountOrphan(t *testing.T, dsn string, pg bool) {
	ctx := context.Background()
	old, err := Open(ctx, Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	var orphan string
	for i := range 3 {
		id, err := old.Ingest(ctx, Envelope{From: "a@x.test", To: []string{"old@y.test"}}, []byte(fmt.Sprintf("Subject: old %d\r\n\r\nb\r\n", i)))
		if err != nil {
			t.Fatal(err)
		}
		orphan = id
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
	// Back to the previous version (messages_live, no partial index), with
	// one message left in no mailbox.
	back := []string{
		`DELETE FROM entries WHERE msg_seq = (SELECT seq FROM messages WHERE id = ?)`,
		`UPDATE messages SET copies = 0 WHERE id = ?`,
		`DELETE FROM schema_version WHERE version >= ` + strconv.Itoa(liveCountVersion),
	}
	back = append(back, undoLiveCounts(pg)...)
	for _, q := range back {
		var args []any
		if strings.Contains(q, "?") {
			args = []any{orphan}
		}
		if _, err := db.ExecContext(ctx, raw.q(q), args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err := Open(ctx, Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !pg {
		var live, gone int
		if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FILTER (WHERE name = 'messages_live'), COUNT(*) FILTER (WHERE name = 'messages_gone')
			FROM sqlite_schema WHERE type = 'index'`).Scan(&live, &gone); err != nil || live != 0 || gone != 1 {
			t.Fatalf("after the migration: messages_live %d, messages_gone %d (%v), want 0 and 1", live, gone, err)
		}
	}
	check := func(want int) {
		t.Helper()
		if _, total, err := s.Search(ctx, Query{Limit: 1}); err != nil || total != want {
			t.Errorf("list total %d (%v), want %d", total, err, want)
		}
		if n, err := s.Unread(ctx); err != nil || n != want {
			t.Errorf("unread %d (%v), want %d", n, err, want)
		}
		if st, err := s.Stats(ctx); err != nil || st.Messages != want {
			t.Errorf("stats: %d messages (%v), want %d", st.Messages, err, want)
		}
	}
	check(2)
	if _, err := s.Ingest(ctx, Envelope{From: "a@x.test", To: []string{"new@y.test"}}, []byte("Subject: new\r\n\r\nb\r\n")); err != nil {
		t.Fatal(err)
	}
	check(3)
}
