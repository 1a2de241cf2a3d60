package store_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// TestMailpitView covers what Mailpit's API reads from the store on both
// backends: the SMTP AUTH user, Bcc (envelope recipients To and Cc do not
// name), Reply-To, part counts, every Cond, unread counts across copies,
// and marking and deleting by a query.
func TestMailpitView(t *testing.T) {
	backends(t, func(t *testing.T) {
		ctx := context.Background()
		st := openTest(t, store.Options{})
		ingest := func(env store.Envelope, raw string) string {
			t.Helper()
			id, err := st.Ingest(ctx, env, []byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		plain := ingest(store.Envelope{From: "bounce@shop.test", To: []string{"Ann@x.test", "<hidden@x.test>", "cc@x.test"}, Username: "alice"},
			"From: Shop <shop@shop.test>\r\nTo: ann@x.test\r\nCc: Carl <cc@x.test>\r\nReply-To: Help <help@shop.test>\r\n"+
				"Message-ID: <m1@shop.test>\r\nSubject: Order 123 shipped\r\n\r\nYour parcel is on its way.\r\n")
		att := ingest(store.Envelope{From: "a@y.test", To: []string{"bob@x.test"}},
			"From: a@y.test\r\nTo: bob@x.test\r\nSubject: Files\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
				"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"+
				"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\n%PDF\r\n"+
				"--b\r\nContent-Type: image/png\r\nContent-Disposition: inline\r\nContent-ID: <i1>\r\n\r\nPNG\r\n--b--\r\n")

		m, err := st.Get(ctx, plain)
		if err != nil {
			t.Fatal(err)
		}
		if m.Envelope.Username != "alice" || len(m.Bcc) != 1 || m.Bcc[0].Address != "hidden@x.test" ||
			len(m.ReplyTo) != 1 || m.ReplyTo[0].Address != "help@shop.test" || m.Attachments != 0 || m.Inlines != 0 {
			t.Errorf("plain message: user %q bcc %+v reply-to %+v parts %d/%d", m.Envelope.Username, m.Bcc, m.ReplyTo, m.Attachments, m.Inlines)
		}
		if m, err = st.Get(ctx, att); err != nil || m.Attachments != 1 || m.Inlines != 1 || len(m.Bcc) != 0 {
			t.Errorf("attachment message: %+v %v", m, err)
		}

		match := func(conds ...store.Cond) []string {
			t.Helper()
			ms, n, err := st.Search(ctx, store.Query{Conds: conds})
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{}
			for _, m := range ms {
				ids = append(ids, m.ID)
			}
			sort.Strings(ids)
			if c, err := st.Count(ctx, store.Query{Conds: conds}); err != nil || c != n || n != len(ids) {
				t.Errorf("%+v: count %d %v, search total %d, page %d", conds, c, err, n, len(ids))
			}
			return ids
		}
		both := []string{plain, att}
		sort.Strings(both)
		none, onlyPlain, onlyAtt := []string{}, []string{plain}, []string{att}
		past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		for _, tc := range []struct {
			cond store.Cond
			want []string
		}{
			{store.Cond{Field: store.CondText, Text: "PARCEL"}, onlyPlain},
			{store.Cond{Field: store.CondText, Text: "shop"}, onlyPlain},
			{store.Cond{Field: store.CondSubject, Text: "order 123"}, onlyPlain},
			{store.Cond{Field: store.CondSubject, Text: "order 123", Not: true}, onlyAtt},
			{store.Cond{Field: store.CondFrom, Text: "a@y"}, onlyAtt},
			{store.Cond{Field: store.CondFrom, Text: "bounce"}, none}, // the envelope sender is not From
			{store.Cond{Field: store.CondFrom, Text: "SHOP <"}, none}, // name and address, each on its own
			{store.Cond{Field: store.CondTo, Text: "ANN@"}, onlyPlain},
			{store.Cond{Field: store.CondTo, Text: "hidden"}, none},
			{store.Cond{Field: store.CondCc, Text: "carl"}, onlyPlain},
			{store.Cond{Field: store.CondBcc, Text: "hidden"}, onlyPlain},
			{store.Cond{Field: store.CondReplyTo, Text: "help@"}, onlyPlain},
			{store.Cond{Field: store.CondAddressed, Text: "help@"}, onlyPlain},
			{store.Cond{Field: store.CondAddressed, Text: "bob"}, onlyAtt},
			{store.Cond{Field: store.CondMessageID, Text: "m1@shop"}, onlyPlain},
			{store.Cond{Field: store.CondTag, Text: "x"}, none},
			{store.Cond{Field: store.CondTag, Text: "x", Not: true}, both},
			{store.Cond{Field: store.CondTagged}, none},
			{store.Cond{Field: store.CondTagged, Not: true}, both},
			{store.Cond{Field: store.CondAttachment}, onlyAtt},
			{store.Cond{Field: store.CondInline, Not: true}, onlyPlain},
			{store.Cond{Field: store.CondLarger, Bytes: 300}, onlyAtt},
			{store.Cond{Field: store.CondSmaller, Bytes: 300}, onlyPlain},
			{store.Cond{Field: store.CondAfter, Time: past}, both},
			{store.Cond{Field: store.CondAfter, Time: future}, none},
			{store.Cond{Field: store.CondBefore, Time: future}, both},
			{store.Cond{Field: store.CondRead}, none},
		} {
			if got := match(tc.cond); !equal(got, tc.want) {
				t.Errorf("%+v: got %v, want %v", tc.cond, got, tc.want)
			}
		}

		// Several conditions: the subject narrows first, then the sender
		// and recipient conditions check the headers of what is left.
		if got := match(store.Cond{Field: store.CondFrom, Text: "shop"}, store.Cond{Field: store.CondSubject, Text: "order"}); !equal(got, onlyPlain) {
			t.Errorf("from and subject: %v", got)
		}
		if got := match(store.Cond{Field: store.CondTo, Text: "bob"}, store.Cond{Field: store.CondSubject, Text: "order"}); len(got) != 0 {
			t.Errorf("to another and subject: %v", got)
		}
		if got := match(store.Cond{Field: store.CondText, Text: "attached"}, store.Cond{Field: store.CondSubject, Text: "files"}); !equal(got, onlyAtt) {
			t.Errorf("word and subject: %v", got)
		}

		// Read is "every copy seen": one copy of three is not enough.
		if err := st.SetSeen(ctx, plain, "ann@x.test", true); err != nil {
			t.Fatal(err)
		}
		if got := match(store.Cond{Field: store.CondRead}); len(got) != 0 {
			t.Errorf("one copy seen: read %v", got)
		}
		if n, err := st.Unread(ctx); err != nil || n != 2 {
			t.Errorf("unread %d %v, want 2", n, err)
		}
		if err := st.SetSeenMatching(ctx, store.Query{Conds: []store.Cond{{Field: store.CondSubject, Text: "order"}}}, true); err != nil {
			t.Fatal(err)
		}
		if got := match(store.Cond{Field: store.CondRead}); !equal(got, onlyPlain) {
			t.Errorf("after marking by query: read %v", got)
		}
		if n, _ := st.Unread(ctx); n != 1 {
			t.Errorf("unread %d, want 1", n)
		}
		if err := st.DeleteMatching(ctx, store.Query{Conds: []store.Cond{{Field: store.CondAttachment}}}); err != nil {
			t.Fatal(err)
		}
		if got := match(); !equal(got, onlyPlain) {
			t.Errorf("after deleting by query: %v", got)
		}
		if _, err := st.Get(ctx, att); err == nil {
			t.Error("deleted message still readable")
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
