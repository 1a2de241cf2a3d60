package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// TestShortcutsMatchPlainSearch: every shortcut a search may take (the
// recent window, the density probe, trigram candidate lists, resolved
// body matches, PostgreSQL's newest-first walk, the cursor bounds)
// returns what the plain query returns (Store.plain): the same page, in
// the same order, with the same total, for needles matching many, few and
// none, with offsets, cursors and capped counts, on both backends.
func TestShortcutsMatchPlainSearch(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string, _ bool) { testShortcutsMatchPlainSearch(t, dsn) })
}

func testShortcutsMatchPlainSearch(t *testing.T, dsn string) {
	ctx := context.Background()
	st, err := Open(ctx, Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// 1,500 messages: a third to dense@ (a needle on many of the newest,
	// past both backends' density thresholds), one in 100 to sparse@,
	// every one to all@; subjects and bodies numbered.
	const n = 1500
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				to := []string{"all@x.test"}
				if i%3 == 0 {
					to = append(to, "dense@x.test")
				}
				if i%100 == 0 {
					to = append(to, "sparse@x.test")
				}
				raw := fmt.Sprintf("From: Shop %d <shop%d@store.test>\r\nTo: %s\r\nSubject: Order %d\r\n\r\nThanks for order word%d.\r\n",
					i%7, i%7, to[len(to)-1], i, i)
				if _, err := st.Ingest(ctx, Envelope{From: "s@x.test", To: to}, []byte(raw)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := st.Find(ctx, Query{Limit: MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var newest, rare []string
	for i, m := range all {
		if i < 400 {
			newest = append(newest, m.ID)
		}
		if i%97 == 0 {
			rare = append(rare, m.ID)
		}
	}
	if err := st.EditTags(ctx, newest, TagsAdd, []string{"hot"}); err != nil {
		t.Fatal(err)
	}
	if err := st.EditTags(ctx, rare, TagsAdd, []string{"rare"}); err != nil {
		t.Fatal(err)
	}
	deep := all[700].ID
	// Read: a few messages in every mailbox; one only in all@ (still
	// unread in dense@).
	for _, i := range []int{0, 3, 10, 900} {
		if err := st.SetSeen(ctx, all[i].ID, "", true); err != nil {
			t.Fatal(err)
		}
	}
	var partly string // not one of those read everywhere above
	for i, m := range all {
		if i != 0 && i != 3 && i != 10 && i != 900 && len(m.Mailboxes) > 1 {
			partly = m.ID
			break
		}
	}
	if err := st.SetSeen(ctx, partly, "all@x.test", true); err != nil {
		t.Fatal(err)
	}
	// Unread is exactly "not read": together they are every message, once.
	read, err := st.Find(ctx, Query{Limit: MaxLimit, Conds: []Cond{{Field: CondRead}}})
	if err != nil {
		t.Fatal(err)
	}
	unread, err := st.Count(ctx, Query{Conds: []Cond{{Field: CondRead, Not: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(read) != 4 || len(read)+unread != n {
		t.Errorf("%d read and %d unread of %d, want 4 read", len(read), unread, n)
	}
	for _, m := range read {
		if !m.Seen || m.ID == partly {
			t.Errorf("read %s: seen %v (%s is read in one mailbox only)", m.ID, m.Seen, partly)
		}
	}

	queries := map[string]Query{
		"to many":             {To: "dense@"},
		"to every":            {To: "all@x.test"},
		"to few":              {To: "sparse@x.test"},
		"to none":             {To: "nobody@x.test"},
		"from many":           {From: "store.test"},
		"subject few":         {Subject: "order 12"},
		"subject many":        {Subject: "order"},
		"text few":            {Text: "word77"},
		"text none":           {Text: "zqxjzqxj"},
		"tag many":            {Tag: "hot"},
		"tag few":             {Tag: "rare"},
		"to and subject":      {To: "dense@", Subject: "order 1"},
		"mailbox and to":      {Mailbox: "all@x.test", To: "dense@"},
		"folder and subject":  {Mailbox: "dense@x.test", Folder: InboxName, Subject: "order 1"},
		"mailpit to many":     {Conds: []Cond{{Field: CondTo, Text: "dense@"}}},
		"mailpit from many":   {Conds: []Cond{{Field: CondFrom, Text: "store.test"}}},
		"mailpit word":        {Conds: []Cond{{Field: CondText, Text: "word12"}}},
		"mailpit tag and to":  {Conds: []Cond{{Field: CondTag, Text: "hot"}, {Field: CondTo, Text: "x.test"}}},
		"mailpit not to":      {Conds: []Cond{{Field: CondTo, Text: "dense@", Not: true}}},
		"mailpit unread":      {Conds: []Cond{{Field: CondRead, Not: true}}},
		"mailpit read and to": {Conds: []Cond{{Field: CondRead}, {Field: CondTo, Text: "dense@"}}},
	}
	// On PostgreSQL also as without pg_trgm (pgtrgm.go): no candidate
	// lists, only the walk.
	withTrgm := []bool{st.trgm}
	if st.pg {
		if !st.trgm {
			t.Fatal("no trigram index on PostgreSQL")
		}
		withTrgm = append(withTrgm, false)
	}
	for _, trgm := range withTrgm {
		st.trgm = trgm
		compareShortcuts(t, st, queries, deep)
	}
}

func compareShortcuts(t *testing.T, st *Store, queries map[string]Query, deep string) {
	ctx := context.Background()
	ids := func(ms []Message) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = m.ID
		}
		return out
	}
	for name, base := range queries {
		for _, page := range []struct {
			limit, offset int
			before        string
			cap           int
		}{{50, 0, "", 0}, {10, 20, "", 0}, {50, 0, deep, 0}, {20, 5, deep, 0}, {50, 0, "", 40}, {MaxLimit, 0, "", 0}} {
			q := base
			q.Limit, q.Offset, q.BeforeID = page.limit, page.offset, page.before
			what := fmt.Sprintf("%s (limit %d offset %d before %q cap %d trigram %v)", name, page.limit, page.offset, page.before, page.cap, st.trgm)
			st.plain = false
			fast, total, exact, err := st.SearchCapped(ctx, q, page.cap)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			found, err := st.Find(ctx, q)
			if err != nil {
				t.Fatalf("%s: find: %v", what, err)
			}
			st.plain = true
			slow, wantTotal, wantExact, err := st.SearchCapped(ctx, q, page.cap)
			st.plain = false
			if err != nil {
				t.Fatalf("%s: plain: %v", what, err)
			}
			if !slices.Equal(ids(fast), ids(slow)) {
				t.Errorf("%s: page %v, plain search %v", what, ids(fast), ids(slow))
			}
			if !slices.Equal(ids(found), ids(slow)) {
				t.Errorf("%s: Find %v, plain search %v", what, ids(found), ids(slow))
			}
			if total != wantTotal || exact != wantExact {
				t.Errorf("%s: total %d exact %v, plain search %d %v", what, total, exact, wantTotal, wantExact)
			}
		}
	}
}
