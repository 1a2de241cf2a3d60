package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
)

// testBackendDSN is a fresh database of backend be ("sqlite" or
// "postgres"; the latter skips unless MAILSANDBOX_TEST_PG is set).
func testBackendDSN(t *testing.T, be string) string {
	if be == "postgres" {
		storetest.RequirePostgres(t)
		return storetest.PostgresDSN(t)
	}
	return filepath.Join(t.TempDir(), "mail.db")
}

// folderState is what an IMAP client caches of a folder: its UIDs and
// flags, with the change counter read before them.
type folderState struct {
	modseq int64
	sum    string
}

// folderStates reads every folder's counter and then its entries.
func folderStates(t *testing.T, st *Store) map[int64]folderState {
	t.Helper()
	ctx := context.Background()
	rows, err := st.rdb.Query(`SELECT id FROM folders`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	out := map[int64]folderState{}
	for _, id := range ids {
		m, err := st.FolderModSeq(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		es, err := st.EntryFlags(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, e := range es {
			fmt.Fprintf(&b, "%d:%s,", e.UID, strings.Join(e.Flags, " "))
		}
		out[id] = folderState{modseq: m, sum: b.String()}
	}
	return out
}

// checkModSeq fails when a folder's entries changed since before but its
// counter did not grow, or a counter went down: an IMAP server trusting
// the counter would then miss the change.
func checkModSeq(t *testing.T, st *Store, before map[int64]folderState, when string) {
	t.Helper()
	for id, now := range folderStates(t, st) {
		was, ok := before[id]
		if !ok {
			continue
		}
		if now.modseq < was.modseq {
			t.Errorf("%s: folder %d counter went down %d -> %d", when, id, was.modseq, now.modseq)
		}
		if now.sum != was.sum && now.modseq == was.modseq {
			t.Errorf("%s: folder %d entries changed but its counter stayed %d", when, id, now.modseq)
		}
	}
}

// TestFolderModSeq: the counter of a folder that never held mail is 0 and
// moves with each kind of change; reads leave it; an unknown folder is
// ErrNotFound. Both backends.
func TestFolderModSeq(t *testing.T) {
	t.Parallel()
	for _, be := range []string{"sqlite", "postgres"} {
		t.Run(be, func(t *testing.T) {
			dsn := testBackendDSN(t, be)
			t.Parallel()
			ctx := context.Background()
			st, err := Open(ctx, Options{DSN: dsn})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			const mb = "m@x.test"
			inbox, err := st.Folder(ctx, mb, InboxName)
			if err != nil {
				t.Fatal(err)
			}
			other, err := st.CreateFolder(ctx, mb, "Other", "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.FolderModSeq(ctx, 1<<40); err == nil {
				t.Fatal("unknown folder: no error")
			}
			last := map[int64]int64{}
			step := func(what string, changed ...int64) {
				t.Helper()
				for _, id := range []int64{inbox.ID, other.ID} {
					m, err := st.FolderModSeq(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					f, err := st.Folder(ctx, mb, map[int64]string{inbox.ID: InboxName, other.ID: "Other"}[id])
					if err != nil {
						t.Fatal(err)
					}
					if f.ModSeq != m {
						t.Errorf("%s: Folder().ModSeq %d, FolderModSeq %d", what, f.ModSeq, m)
					}
					moved := m != last[id]
					want := false
					for _, c := range changed {
						want = want || c == id
					}
					if moved != want {
						t.Errorf("%s: folder %d counter %d -> %d, want moved=%v", what, id, last[id], m, want)
					}
					last[id] = m
				}
			}
			step("new folders")
			for i := 0; i < 3; i++ {
				if _, err := st.Ingest(ctx, Envelope{From: "s@x.test", To: []string{mb}}, []byte("Subject: s\r\n\r\nb\r\n")); err != nil {
					t.Fatal(err)
				}
			}
			step("ingest", inbox.ID)
			if _, err := st.Entries(ctx, inbox.ID); err != nil {
				t.Fatal(err)
			}
			step("read")
			if _, err := st.UpdateFlags(ctx, inbox.ID, []uint32{1}, FlagsAdd, []string{"kw"}); err != nil {
				t.Fatal(err)
			}
			step("keyword", inbox.ID)
			if _, err := st.UpdateFlags(ctx, inbox.ID, []uint32{2}, FlagsAdd, []string{FlagSeen, `\Deleted`}); err != nil {
				t.Fatal(err)
			}
			step("seen", inbox.ID)
			if _, _, err := st.CopyEntries(ctx, inbox.ID, []uint32{1}, other.ID); err != nil {
				t.Fatal(err)
			}
			step("copy", other.ID)
			if _, _, err := st.MoveEntries(ctx, inbox.ID, []uint32{3}, other.ID); err != nil {
				t.Fatal(err)
			}
			step("move", inbox.ID, other.ID)
			if _, err := st.Expunge(ctx, inbox.ID, nil); err != nil {
				t.Fatal(err)
			}
			step("expunge", inbox.ID)
			if _, err := st.Append(ctx, mb, "Other", nil, time.Time{}, []byte("Subject: a\r\n\r\nb\r\n")); err != nil {
				t.Fatal(err)
			}
			step("append", other.ID)
			es, err := st.Entries(ctx, other.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.SetSeen(ctx, es[0].MessageID, "", true); err != nil {
				t.Fatal(err)
			}
			step("seen over REST", inbox.ID, other.ID) // a copy of one message is in both
			if err := st.DeleteMessage(ctx, es[len(es)-1].MessageID); err != nil {
				t.Fatal(err)
			}
			step("delete", other.ID)
		})
	}
}
