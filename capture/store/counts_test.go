package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestCountsMatchRecount drives random ingest, seen changes, IMAP copy,
// move, flag and expunge, deletions and retention, and after each round
// compares the kept folder counts (and the live message count) with a
// recount of the entries, and
// checks that every folder whose entries changed has a grown change
// counter (modseq.go), on both
// backends.
func TestCountsMatchRecount(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string, _ bool) { testCountsMatchRecount(t, dsn) })
}

func testCountsMatchRecount(t *testing.T, dsn string) {
	ctx := context.Background()
	st, err := Open(ctx, Options{DSN: dsn, MaxMessages: 60})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rng := rand.New(rand.NewPCG(22, 1))
	boxes := []string{"a@x.test", "b@x.test", "c@x.test", "d@x.test"}
	var ids []string
	pick := func() string { return ids[rng.IntN(len(ids))] }
	for round := 0; round < 12; round++ {
		before := folderStates(t, st)
		// Ingest concurrently, so group commits carry several messages.
		var mu sync.Mutex
		var wg sync.WaitGroup
		n := 4 + rng.IntN(12)
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			var to []string
			for _, b := range boxes {
				if rng.IntN(2) == 0 {
					to = append(to, b)
				}
			}
			if len(to) == 0 {
				to = boxes[:1]
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				id, err := st.Ingest(ctx, Envelope{From: "s@x.test", To: to}, []byte("Subject: r\r\n\r\nbody\r\n"))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i := 0; i < 6 && len(ids) > 0; i++ {
			switch rng.IntN(9) {
			case 0:
				_ = st.SetSeen(ctx, pick(), "", rng.IntN(2) == 0)
			case 1:
				_ = st.SetSeen(ctx, pick(), boxes[rng.IntN(len(boxes))], true)
			case 2:
				_ = st.DeleteMessage(ctx, pick())
			case 3, 4, 5, 6:
				imapOps(t, st, boxes[rng.IntN(len(boxes))], rng)
			case 7:
				_ = st.SetSeenMatching(ctx, Query{To: boxes[rng.IntN(len(boxes))]}, rng.IntN(2) == 0)
			case 8:
				if rng.IntN(4) == 0 {
					_ = st.DeleteMailbox(ctx, boxes[rng.IntN(len(boxes))])
				}
			}
		}
		if err := st.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, st, fmt.Sprintf("round %d", round))
		checkModSeq(t, st, before, fmt.Sprintf("round %d", round))
	}
	if err := st.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, st, "after DeleteAll")
}

// imapOps copies (also into the same folder), moves, flags and expunges
// some entries of a mailbox's INBOX.
func imapOps(t *testing.T, st *Store, mb string, rng *rand.Rand) {
	ctx := context.Background()
	inbox, err := st.Folder(ctx, mb, InboxName)
	if err != nil {
		t.Fatal(err)
	}
	other, err := st.CreateFolder(ctx, mb, "Other", "")
	if err != nil {
		fs, ferr := st.Folders(ctx, mb)
		if ferr != nil {
			t.Fatal(ferr)
		}
		for _, f := range fs {
			if f.Name == "Other" {
				other = f
			}
		}
	}
	es, err := st.Entries(ctx, inbox.ID)
	if err != nil || len(es) == 0 {
		return
	}
	uids := []uint32{es[rng.IntN(len(es))].UID, es[rng.IntN(len(es))].UID}
	switch rng.IntN(5) {
	case 0:
		_, _, err = st.CopyEntries(ctx, inbox.ID, uids, inbox.ID)
	case 1:
		_, _, err = st.CopyEntries(ctx, inbox.ID, uids, other.ID)
	case 2:
		_, _, err = st.MoveEntries(ctx, inbox.ID, uids, other.ID)
	case 3:
		_, err = st.UpdateFlags(ctx, inbox.ID, uids, FlagOp(rng.IntN(3)), []string{FlagSeen, `\Deleted`})
	case 4:
		_, err = st.Expunge(ctx, inbox.ID, nil)
	}
	if err != nil {
		t.Logf("imap op: %v", err) // a raced-away uid is fine; the counts must still hold
	}
}

// checkCounts compares every folder's kept counts with a recount.
func checkCounts(t *testing.T, st *Store, when string) {
	t.Helper()
	rows, err := st.rdb.Query(`SELECT f.id, f.mailbox, f.name,
		COALESCE(c.entries, 0), COALESCE(c.unseen, 0), COALESCE(c.msgs, 0), COALESCE(c.latest, 0),
		(SELECT COUNT(*) FROM entries e WHERE e.folder_id = f.id),
		(SELECT COUNT(*) FROM entries e WHERE e.folder_id = f.id AND e.seen = 0),
		(SELECT COUNT(DISTINCT e.msg_seq) FROM entries e WHERE e.folder_id = f.id),
		(SELECT COALESCE(MAX(e.received_at), 0) FROM entries e WHERE e.folder_id = f.id)
		FROM folders f LEFT JOIN folder_counts c ON c.folder_id = f.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	folders := 0
	for rows.Next() {
		var id int64
		var mb, name string
		var kept, real [4]int64
		if err := rows.Scan(&id, &mb, &name, &kept[0], &kept[1], &kept[2], &kept[3], &real[0], &real[1], &real[2], &real[3]); err != nil {
			t.Fatal(err)
		}
		folders++
		if kept != real {
			t.Errorf("%s: %s/%s kept (entries, unseen, msgs, latest) %v, recount %v", when, mb, name, kept, real)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var orphans int
	if err := st.rdb.QueryRow(`SELECT COUNT(*) FROM folder_counts WHERE folder_id NOT IN (SELECT id FROM folders)`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Errorf("%s: %d counts of deleted folders", when, orphans)
	}
	checkLiveCount(t, st, when)
	t.Logf("%s: %d folders checked", when, folders)
}
