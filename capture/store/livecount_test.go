package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
)

// undoLiveCounts are the statements that take a database back to before
// the live count's migration (12), and the search index's mark (13) that
// follows it on SQLite, for tests that build older versions.
func undoLiveCounts(pg bool) []string {
	if !pg {
		return []string{`DROP TABLE search_indexed`, `DROP INDEX messages_gone`, `CREATE INDEX messages_live ON messages(copies)`}
	}
	return []string{`DROP TRIGGER messages_live_insert ON messages`, `DROP TRIGGER messages_live_update ON messages`,
		`DROP TRIGGER messages_live_delete ON messages`, `DROP TABLE message_counts`,
		`DROP FUNCTION message_counts_insert`, `DROP FUNCTION message_counts_update`, `DROP FUNCTION message_counts_delete`}
}

// checkLiveCount compares the count of live messages with a recount.
func checkLiveCount(t *testing.T, st *Store, when string) {
	t.Helper()
	kept, err := st.liveCount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var real int
	if err := st.rdb.QueryRow(`SELECT COUNT(*) FROM messages WHERE copies > 0`).Scan(&real); err != nil {
		t.Fatal(err)
	}
	if kept != real {
		t.Errorf("%s: kept live count %d, recount %d", when, kept, real)
	}
}

// TestMigrateLiveCount opens a store of the version before the live count
// (11) holding mail, some of it deleted and one message in no mailbox
// (copies 0, as while the relay queue holds it): after the migration
// SQLite has the partial index instead of messages_live, PostgreSQL its
// kept count, every count (list total, unread, stats) leaves the orphan
// out, and the count then follows ingest and deletion, on both backends.
func TestMigrateLiveCount(t *testing.T) {
	eachBackend(t, testMigrateLiveCount)
}

func testMigrateLiveCount(t *testing.T, dsn string, pg bool) {
	ctx := context.Background()
	old, err := Open(ctx, Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 5; i++ {
		id, err := old.Ingest(ctx, Envelope{From: "a@x.test", To: []string{"b@y.test", fmt.Sprintf("c%d@y.test", i)}}, []byte("Subject: old\r\n\r\nb\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := old.DeleteMessage(ctx, ids[0]); err != nil {
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
	for _, q := range append(undoLiveCounts(pg), `DELETE FROM schema_version WHERE version > 11`) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(q, err)
		}
	}
	// Mail the old version left in no mailbox (kept for the relay queue)
	// is not live: the migration must not count it.
	for _, q := range []string{`DELETE FROM entries WHERE msg_seq = (SELECT seq FROM messages WHERE id = ?)`,
		`UPDATE messages SET copies = 0 WHERE id = ?`} {
		if _, err := db.ExecContext(ctx, (&Store{pg: pg}).q(q), ids[1]); err != nil {
			t.Fatal(q, err)
		}
	}
	db.Close()

	st, err := Open(ctx, Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !pg {
		var live, gone int
		if err := st.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FILTER (WHERE name = 'messages_live'), COUNT(*) FILTER (WHERE name = 'messages_gone')
			FROM sqlite_schema WHERE type = 'index'`).Scan(&live, &gone); err != nil || live != 0 || gone != 1 {
			t.Fatalf("after the migration: messages_live %d, messages_gone %d (%v), want 0 and 1", live, gone, err)
		}
	}
	if n, err := st.liveCount(ctx); err != nil || n != 3 {
		t.Fatalf("after the migration: live count %d (%v), want 3", n, err)
	}
	if _, total, err := st.Search(ctx, Query{Limit: 1}); err != nil || total != 3 {
		t.Errorf("after the migration: list total %d (%v), want 3", total, err)
	}
	if n, err := st.Unread(ctx); err != nil || n != 3 {
		t.Errorf("after the migration: unread %d (%v), want 3", n, err)
	}
	if stats, err := st.Stats(ctx); err != nil || stats.Messages != 3 {
		t.Errorf("after the migration: stats %d messages (%v), want 3", stats.Messages, err)
	}
	if _, err := st.Ingest(ctx, Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("Subject: new\r\n\r\nb\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMessage(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	_, total, err := st.Search(ctx, Query{})
	if err != nil || total != 3 {
		t.Fatalf("after ingest and delete: total %d (%v), want 3", total, err)
	}
	checkLiveCount(t, st, "after the migration")
}

// TestLiveCountCompaction (PostgreSQL): many small ingests leave a delta
// row each; a read asks for them to be folded, and the sum stays right
// while mail keeps arriving.
func TestLiveCountCompaction(t *testing.T) {
	storetest.RequirePostgres(t)
	t.Parallel()
	ctx := context.Background()
	st, err := Open(ctx, Options{DSN: storetest.PostgresDSN(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ingest := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := st.Ingest(ctx, Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("Subject: c\r\n\r\nb\r\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	rows := func() int {
		var n int
		if err := st.rdb.QueryRow(`SELECT COUNT(*) FROM message_counts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ingest(compactAbove + 10) // one at a time: a delta row each
	if n := rows(); n <= compactAbove {
		t.Fatalf("%d delta rows after %d single ingests", n, compactAbove+10)
	}
	// Compactions racing ingests and each other.
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				if err := st.compactLiveCounts(ctx); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	ingest(20)
	wg.Wait()
	checkLiveCount(t, st, "after racing compactions")
	ingest(compactAbove + 10)
	checkLiveCount(t, st, "before the read-triggered compaction") // this read pokes the loop
	for i := 0; rows() > compactAbove; i++ {
		if i == 1000 {
			t.Fatalf("%d delta rows: not compacted 10 s after a read", rows())
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkLiveCount(t, st, "after the read-triggered compaction")
}
