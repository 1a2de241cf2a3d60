package store

import (
	"bytes"
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"
)

// TestMigrateFromVersion2 builds a database as version 2 wrote it (bodies
// and texts apart, the search index with its own copy of the columns), then
// opens it with this version: old mail must still be read, searched by body
// and recipient, and deleted cleanly, and new mail must join it.
func TestMigrateFromVersion2(t *testing.T) {
	eachBackend(t, testMigrateFromVersion2)
}

func testMigrateFromVersion2(t *testing.T, dsn string, pg bool) {
	ctx := context.Background()
	var db *sql.DB
	var err error
	if pg {
		db, err = openPGDB(dsn)
	} else {
		db, err = sql.Open("sqlite", "file:"+dsn+"?_pragma=journal_mode(WAL)")
	}
	if err != nil {
		t.Fatal(err)
	}
	old := &Store{pg: pg, wdb: db}
	if err := old.migrateTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	raws := []string{
		"From: Old <old@x.test>\r\nTo: Someone <someone@x.test>\r\nSubject: Legacy One\r\n\r\nThe Legacy Needle is here.\r\n",
		"From: Old <old@x.test>\r\nTo: other@x.test\r\nSubject: Legacy Two\r\n\r\nnothing to see\r\n",
	}
	var fid int64
	if err := db.QueryRowContext(ctx, old.q(`INSERT INTO folders (mailbox, name, uidvalidity, uidnext) VALUES (?, 'INBOX', 1, 3) RETURNING id`), "someone@x.test").Scan(&fid); err != nil {
		t.Fatal(err)
	}
	for i, raw := range raws {
		now := micros(time.Now())
		var seq int64
		err := db.QueryRowContext(ctx, old.q(qInsertMessageV2+` RETURNING seq`), "old-"+string(rune('a'+i)), now, "old@x.test", `["someone@x.test"]`, len(raw),
			"Old", "old@x.test", `[]`, `[]`, strings.Split(raw, "\r\n")[2][9:], now, "", 0, "snippet", "",
			"someone@x.test\n", "old <old@x.test>\nold@x.test", strings.ToLower(strings.Split(raw, "\r\n")[2][9:]), 1).Scan(&seq)
		if err != nil {
			t.Fatal(err)
		}
		body := raw[strings.Index(raw, "\r\n\r\n")+4:]
		for _, q := range []string{`INSERT INTO bodies (seq, raw) VALUES (?, ?)`, `INSERT INTO texts (seq, body) VALUES (?, ?)`} {
			v := any([]byte(raw))
			if strings.Contains(q, "texts") {
				v = strings.ToLower(body)
			}
			if _, err := db.ExecContext(ctx, old.q(q), seq, v); err != nil {
				t.Fatal(err)
			}
		}
		if !pg {
			if _, err := db.ExecContext(ctx, `INSERT INTO msg_search (rowid, search_to, search_from, search_subject) SELECT seq, search_to, search_from, search_subject FROM messages WHERE seq = ?`, seq); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, old.q(`INSERT INTO entries (msg_seq, mailbox, folder_id, uid, received_at) VALUES (?, 'someone@x.test', ?, ?, ?)`), seq, fid, i+1, now); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	st, err := Open(ctx, Options{DSN: dsn})
	if err != nil {
		t.Fatalf("open version 2 database: %v", err)
	}
	defer st.Close()
	count := func(q Query) int {
		t.Helper()
		_, n, err := st.Search(ctx, q)
		if err != nil {
			t.Fatalf("search %+v: %v", q, err)
		}
		return n
	}
	if n := count(Query{Text: "legacy needle"}); n != 1 {
		t.Errorf("old body text: found %d, want 1", n)
	}
	if n := count(Query{To: "someone"}); n != 2 {
		t.Errorf("old recipients: found %d, want 2", n)
	}
	if raw, err := st.Raw(ctx, "old-a"); err != nil || !bytes.Equal(raw, []byte(raws[0])) {
		t.Errorf("old raw: %q %v", raw, err)
	}
	if err := st.DeleteMessage(ctx, "old-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Ingest(ctx, Envelope{From: "new@x.test", To: []string{"someone@x.test"}},
		[]byte("From: new@x.test\r\nTo: someone@x.test\r\nSubject: Fresh\r\n\r\nA Fresh Needle.\r\n")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		q    Query
		want int
	}{{Query{Text: "legacy needle"}, 0}, {Query{Text: "fresh needle"}, 1}, {Query{To: "someone"}, 2}, {Query{Subject: "legacy"}, 1}} {
		if n := count(c.q); n != c.want {
			t.Errorf("after delete and ingest, %+v: found %d, want %d", c.q, n, c.want)
		}
	}
	if !pg {
		// The index reads its columns from messages: it must agree with
		// them once it has caught up with ingest.
		if err := st.indexTail(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := st.wdb.ExecContext(ctx, `INSERT INTO msg_search (msg_search, rank) VALUES ('integrity-check', 1)`); err != nil {
			t.Errorf("search index integrity: %v", err)
		}
	}
}

// qInsertMessageV2 inserts a message into the schema of version 2.
const qInsertMessageV2 = `INSERT INTO messages (id, received_at, mail_from, rcpt_to, size,
	from_name, from_addr, to_json, cc_json, subject, date, message_id, has_attachments, snippet,
	parse_error, search_to, search_from, search_subject, copies)
	VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
