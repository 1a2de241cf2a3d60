package store_test

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// TestTags covers tags on both backends: set at ingest by the Tagger
// (cleaned, de-duplicated case-insensitively, capped), read in every
// summary, searched (Query.Tag, CondTag, CondTagged), edited, renamed,
// deleted, listed, with events, and gone with their messages.
func TestTags(t *testing.T) {
	backends(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st := openTest(t, store.Options{Tagger: func(env store.Envelope, p *mailparse.Message, raw []byte) []string {
			return p.Headers["X-Tags"] // one value, split by the test below
		}})
		events := st.Subscribe(ctx)
		ingest := func(tags string) string {
			t.Helper()
			raw := "From: a@x.test\r\nTo: b@x.test\r\nSubject: s\r\n"
			if tags != "" {
				raw += "X-Tags: " + tags + "\r\n"
			}
			id, err := st.Ingest(ctx, store.Envelope{From: "a@x.test", To: []string{"b@x.test", "c@x.test"}}, []byte(raw+"\r\nbody\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		tagsOf := func(id string) []string {
			t.Helper()
			m, err := st.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return m.Tags
		}
		find := func(q store.Query) []string {
			t.Helper()
			ms, n, err := st.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{}
			for _, m := range ms {
				ids = append(ids, m.ID)
			}
			sort.Strings(ids)
			if n != len(ids) {
				t.Errorf("search %+v: total %d, page %d", q, n, len(ids))
			}
			return ids
		}
		two := func(a, b string) []string {
			s := []string{a, b}
			sort.Strings(s)
			return s
		}

		a := ingest("Signup")
		b := ingest("billing\x01 EU")
		none := ingest("")
		if got := tagsOf(a); !reflect.DeepEqual(got, []string{"Signup"}) {
			t.Errorf("ingested tags: %q", got)
		}
		if got := tagsOf(b); !reflect.DeepEqual(got, []string{"billing EU"}) {
			t.Errorf("control character not dropped: %q", got)
		}
		if got := tagsOf(none); got == nil || len(got) != 0 {
			t.Errorf("untagged message: %#v, want []", got)
		}
		// Case-insensitive, first spelling kept.
		c := ingest("SIGNUP")
		if got := tagsOf(c); !reflect.DeepEqual(got, []string{"Signup"}) {
			t.Errorf("second spelling: %q, want the first one", got)
		}
		if got := find(store.Query{Tag: "signup"}); !reflect.DeepEqual(got, two(a, c)) {
			t.Errorf("Query.Tag: %v", got)
		}
		if got := find(store.Query{Conds: []store.Cond{{Field: store.CondTag, Text: "SignUp"}}}); !reflect.DeepEqual(got, two(a, c)) {
			t.Errorf("CondTag: %v", got)
		}
		if got := find(store.Query{Conds: []store.Cond{{Field: store.CondTag, Text: "sign"}}}); len(got) != 0 {
			t.Errorf("CondTag matched a part of a tag: %v", got)
		}
		if got := find(store.Query{Conds: []store.Cond{{Field: store.CondTagged, Not: true}}}); !reflect.DeepEqual(got, []string{none}) {
			t.Errorf("-is:tagged: %v", got)
		}
		if got := find(store.Query{Mailbox: "c@x.test", Conds: []store.Cond{{Field: store.CondTagged}}}); len(got) != 3 {
			t.Errorf("is:tagged in a mailbox: %v", got)
		}
		if got, err := st.Tags(ctx); err != nil || !reflect.DeepEqual(got, []string{"billing EU", "Signup"}) {
			t.Errorf("Tags: %q %v", got, err)
		}

		// Editing.
		if err := st.EditTags(ctx, []string{none}, store.TagsSet, []string{"qa", "QA", "tenant-42"}); err != nil {
			t.Fatal(err)
		}
		if got := tagsOf(none); !reflect.DeepEqual(got, []string{"qa", "tenant-42"}) {
			t.Errorf("set: %q", got)
		}
		waitTagEvent(t, ctx, events, none)
		if err := st.EditTags(ctx, []string{none}, store.TagsAdd, []string{"signup"}); err != nil {
			t.Fatal(err)
		}
		if err := st.EditTags(ctx, []string{none}, store.TagsRemove, []string{"QA"}); err != nil {
			t.Fatal(err)
		}
		if got := tagsOf(none); !reflect.DeepEqual(got, []string{"Signup", "tenant-42"}) {
			t.Errorf("add and remove: %q", got)
		}
		for _, bad := range [][]string{{""}, {"a/b"}, {strings.Repeat("x", 101)}, {"tab\there"}} {
			if err := st.EditTags(ctx, []string{none}, store.TagsSet, bad); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("tags %q: %v, want ErrInvalid", bad, err)
			}
		}
		many := make([]string, 51)
		for i := range many {
			many[i] = "t" + strings.Repeat("x", i)
		}
		if err := st.EditTags(ctx, []string{none}, store.TagsSet, many); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("51 tags: %v, want ErrInvalid", err)
		}
		if err := st.EditTags(ctx, []string{"nope"}, store.TagsSet, []string{"x"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown message: %v, want ErrNotFound", err)
		}

		// Renaming: case only, then onto another tag (a merge).
		if err := st.RenameTag(ctx, "signup", "SignUp"); err != nil {
			t.Fatal(err)
		}
		if got := tagsOf(c); !reflect.DeepEqual(got, []string{"SignUp"}) {
			t.Errorf("renamed case: %q", got)
		}
		if err := st.RenameTag(ctx, "tenant-42", "signup"); err != nil {
			t.Fatal(err)
		}
		if got := tagsOf(none); !reflect.DeepEqual(got, []string{"SignUp"}) {
			t.Errorf("merged: %q", got)
		}
		if err := st.RenameTag(ctx, "nope", "x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rename unknown: %v", err)
		}
		if err := st.RenameTag(ctx, "signup", "a/b"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("rename to invalid: %v", err)
		}

		// Deleting a tag, then a message.
		if err := st.DeleteTag(ctx, "BILLING eu"); err != nil {
			t.Fatal(err)
		}
		if got := tagsOf(b); len(got) != 0 {
			t.Errorf("deleted tag still on: %q", got)
		}
		if err := st.DeleteMessage(ctx, a); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.Tags(ctx); !reflect.DeepEqual(got, []string{"SignUp"}) {
			t.Errorf("Tags after deletions: %q", got)
		}
		if err := st.DeleteAll(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.Tags(ctx); len(got) != 0 {
			t.Errorf("Tags after DeleteAll: %q", got)
		}
	})
}

// TestHostileTags: a Tagger returning thousands of long tags full of
// control characters gets a bounded, clean set stored, and the mail.
func TestHostileTags(t *testing.T) {
	backends(t, func(t *testing.T) {
		ctx := context.Background()
		var hostile []string
		for i := 0; i < 10000; i++ {
			hostile = append(hostile, strings.Repeat("\x00\x1b[31m", 10)+"tag"+strings.Repeat("y", i%300)+"\r\n")
		}
		st := openTest(t, store.Options{Tagger: func(store.Envelope, *mailparse.Message, []byte) []string { return hostile }})
		id, err := st.Ingest(ctx, store.Envelope{To: []string{"b@x.test"}}, []byte("Subject: s\r\n\r\nx\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := st.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Tags) != store.MaxTagsPerMessage {
			t.Errorf("%d tags kept, want %d", len(m.Tags), store.MaxTagsPerMessage)
		}
		for _, tag := range m.Tags {
			if _, err := store.ValidTag(tag); err != nil || tag != strings.TrimSpace(tag) {
				t.Errorf("stored tag %q: %v", tag, err)
			}
		}
	})
}

func TestCleanTag(t *testing.T) {
	for in, want := range map[string]string{
		"  a  b\t c ":                        "a b c",
		"x\x00y\x7f\xffz":                    "x y z",
		"bob@example.com":                    "bob@example.com",
		"ü/ñ":                                "",
		strings.Repeat("ab ", 60):            strings.TrimSpace(strings.Repeat("ab ", 34))[:100],
		"Tenant_42.eu-west":                  "Tenant_42.eu-west",
		"\r\n":                               "",
		"a" + strings.Repeat(" ", 200) + "b": "a b",
	} {
		if got := store.CleanTag(in); got != want {
			t.Errorf("CleanTag(%q) = %q, want %q", in, got, want)
		}
		if got := store.CleanTag(in); got != "" {
			if _, err := store.ValidTag(got); err != nil {
				t.Errorf("CleanTag(%q) = %q is not valid: %v", in, got, err)
			}
		}
	}
}

func FuzzCleanTag(f *testing.F) {
	for _, s := range []string{"a b", "\x00", "x@y", strings.Repeat("z ", 80), "ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := store.CleanTag(s)
		if got == "" {
			return
		}
		if v, err := store.ValidTag(got); err != nil || v != got {
			t.Fatalf("CleanTag(%q) = %q: %v", s, got, err)
		}
	})
}

func waitTagEvent(t *testing.T, ctx context.Context, events <-chan store.Event, id string) {
	t.Helper()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("events closed")
			}
			if ev.Kind == store.EventTags && ev.MessageID == id {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no tags event for %s", id)
		}
	}
}
