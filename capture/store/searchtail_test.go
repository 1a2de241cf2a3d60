package store

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
)

// TestSearchBeforeIndexed: with the search index held back (SQLite), a
// message is found by to, from, subject and text as soon as Ingest
// returns; deleting messages the index has not reached leaves the index
// sound; the index catches up every indexEvery messages, at Close, and at
// Open after a crash left it behind. PostgreSQL, which has no such index,
// answers the same searches.
func TestSearchBeforeIndexed(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string, pg bool) {
		ctx := context.Background()
		st, err := Open(ctx, Options{DSN: dsn, indexIdle: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { st.Close() }()
		ingest := func(i int) string {
			t.Helper()
			raw := fmt.Sprintf("From: Sender%03d <s%03d@from.test>\r\nTo: r%03d@to.test\r\nSubject: topic%03dx\r\n\r\nbody%03dy\r\n", i, i, i, i, i)
			id, err := st.Ingest(ctx, Envelope{From: fmt.Sprintf("s%03d@from.test", i), To: []string{fmt.Sprintf("r%03d@to.test", i)}}, []byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		// found checks that each query finds exactly message want.
		found := func(when, want string, qs ...Query) {
			t.Helper()
			for _, q := range qs {
				msgs, _, err := st.Search(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(msgs) != 1 || msgs[0].ID != want {
					t.Errorf("%s: %+v found %d messages, want only %s", when, q, len(msgs), want)
				}
			}
		}
		queries := func(i int) []Query {
			return []Query{{To: fmt.Sprintf("r%03d@to", i)}, {From: fmt.Sprintf("sender%03d", i)},
				{Subject: fmt.Sprintf("topic%03dx", i)}, {Text: fmt.Sprintf("topic%03dx", i)}, {Text: fmt.Sprintf("body%03dy", i)}}
		}
		ids := []string{ingest(0), ingest(1), ingest(2)}
		if !pg && st.tail.pending() == 0 {
			t.Fatal("the index caught up at once: this test no longer sees the tail")
		}
		for i, id := range ids {
			found("before indexing", id, queries(i)...)
		}
		if err := st.DeleteMessage(ctx, ids[1]); err != nil {
			t.Fatal(err)
		}
		if msgs, _, err := st.Search(ctx, Query{Subject: "topic001x"}); err != nil || len(msgs) != 0 {
			t.Errorf("deleted message still found: %+v %v", msgs, err)
		}
		// A batch's worth more: the writer indexes everything so far.
		for i := 3; i < 3+indexEvery; i++ {
			ingest(i)
		}
		if !pg && st.tail.pending() >= indexEvery {
			t.Errorf("index %d behind after %d messages, want it caught up", st.tail.pending(), indexEvery+3)
		}
		found("after indexing", ids[2], queries(2)...)
		late := ingest(999)
		found("after indexing, the newest", late, queries(999)...)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		storetest.CheckSQLite(t, dsn) // Close left the index complete and sound
		if pg {
			return
		}
		// A crash leaves the index behind: undo the last messages' index
		// rows and the mark, as if they had never been indexed.
		db, err := sql.Open("sqlite", "file:"+dsn)
		if err != nil {
			t.Fatal(err)
		}
		var upto int64
		if err := db.QueryRow(`SELECT upto FROM search_indexed`).Scan(&upto); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{`DELETE FROM msg_search WHERE rowid > ?`, `UPDATE search_indexed SET upto = ?`} {
			if _, err := db.Exec(q, upto-5); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		st, err = Open(ctx, Options{DSN: dsn, indexIdle: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if n := st.tail.pending(); n != 0 {
			t.Errorf("index %d behind after Open, want caught up", n)
		}
		var dbUpto int64
		if err := st.rdb.QueryRow(`SELECT upto FROM search_indexed`).Scan(&dbUpto); err != nil || dbUpto != upto {
			t.Errorf("mark after Open %d (%v), want %d", dbUpto, err, upto)
		}
		found("after catching up at Open", late, queries(999)...)
	})
}
