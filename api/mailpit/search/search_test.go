package search

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

func TestParse(t *testing.T) {
	berlin, err := Location("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	day := func(loc *time.Location, y int, m time.Month, d, h, min int) time.Time {
		return time.Date(y, m, d, h, min, 0, 0, loc)
	}
	c := func(f store.CondField, text string) store.Cond { return store.Cond{Field: f, Text: text} }
	not := func(x store.Cond) store.Cond { x.Not = true; return x }
	for _, tc := range []struct {
		query string
		loc   *time.Location
		want  []store.Cond
	}{
		{"", nil, nil},
		{"   ", nil, nil},
		{"Order", nil, []store.Cond{c(store.CondText, "order")}},
		{`order  shipped`, nil, []store.Cond{c(store.CondText, "order"), c(store.CondText, "shipped")}},
		{`"order 123"`, nil, []store.Cond{c(store.CondText, "order 123")}},
		{`subject:"Order 123"`, nil, []store.Cond{c(store.CondSubject, "Order 123")}},
		{`-subject:order !from:shop`, nil, []store.Cond{not(c(store.CondSubject, "order")), not(c(store.CondFrom, "shop"))}},
		{`TO:<Ann@X.test> cc:b bcc:c reply-to:d addressed:e message-id:<f@g>`, nil, []store.Cond{
			c(store.CondTo, "ann@x.test"), c(store.CondCc, "b"), c(store.CondBcc, "c"), c(store.CondReplyTo, "d"),
			c(store.CondAddressed, "e"), c(store.CondMessageID, "f@g")}},
		{`tag:Alpha -is:tagged`, nil, []store.Cond{c(store.CondTag, "alpha"), not(store.Cond{Field: store.CondTagged})}},
		{`is:read is:unread -is:unread`, nil, []store.Cond{{Field: store.CondRead}, not(store.Cond{Field: store.CondRead}), {Field: store.CondRead}}},
		{`has:attachment has:attachments !has:inline`, nil, []store.Cond{{Field: store.CondAttachment}, {Field: store.CondAttachment}, not(store.Cond{Field: store.CondInline})}},
		{`larger:2M smaller:10k larger:1.5kb smaller:300`, nil, []store.Cond{
			{Field: store.CondLarger, Bytes: 2 << 20}, {Field: store.CondSmaller, Bytes: 10 << 10},
			{Field: store.CondLarger, Bytes: 1536}, {Field: store.CondSmaller, Bytes: 300}}},
		{`larger:abc`, nil, []store.Cond{c(store.CondText, "larger:abc")}},
		{`after:2026-01-02 "before:2026-01-03 15:04"`, berlin, []store.Cond{
			{Field: store.CondAfter, Time: day(berlin, 2026, 1, 2, 0, 0)}, {Field: store.CondBefore, Time: day(berlin, 2026, 1, 3, 15, 4)}}},
		{`before:2026-01-03T10:00:00Z`, berlin, []store.Cond{{Field: store.CondBefore, Time: day(time.UTC, 2026, 1, 3, 10, 0)}}},
		{`-after:2026/01/02`, nil, []store.Cond{not(store.Cond{Field: store.CondAfter, Time: day(time.UTC, 2026, 1, 2, 0, 0)})}},
		{`subject:`, nil, nil},
		{`-`, nil, []store.Cond{c(store.CondText, "-")}},
		{`"unclosed phrase`, nil, []store.Cond{c(store.CondText, "unclosed phrase")}},
		{`Grüße`, nil, []store.Cond{c(store.CondText, "grüße")}},
	} {
		got, err := Parse(tc.query, tc.loc)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.query, err)
			continue
		}
		for i := range got {
			if !got[i].Time.IsZero() && i < len(tc.want) && got[i].Time.Equal(tc.want[i].Time) {
				got[i].Time = tc.want[i].Time // same instant, compared as such
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q)\n got %+v\nwant %+v", tc.query, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, q := range []string{"before:yesterday", "after:2026-13-45", strings.Repeat("a ", MaxQueryBytes)} {
		if _, err := Parse(q, nil); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%.40q): err %v, want ErrSyntax", q, err)
		}
	}
	if _, err := Location("Mars/Olympus"); !errors.Is(err, ErrSyntax) {
		t.Errorf("Location: err %v, want ErrSyntax", err)
	}
}

// FuzzParse: any query either fails with ErrSyntax or compiles into
// conditions that are well formed: a known field, a text for the text
// fields, a positive size, a date for dates; and at most one condition
// per argument.
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 20s ./api/mailpit/search
func FuzzParse(f *testing.F) {
	for _, s := range []string{`order`, `subject:"order 123" -from:x`, `!is:read has:inline larger:2M`, `before:2026-01-02 after:"2026-01-01 10:00"`,
		`"`, `-"`, `tag:`, `addressed:<a@b>`, "a\tb\nc", `larger:1.5.5k`, `smaller:99999999999999999999m`} {
		f.Add(s, "")
	}
	f.Add("after:2026-01-02", "Europe/Berlin")
	f.Fuzz(func(t *testing.T, query, tz string) {
		loc, err := Location(tz)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Location(%q): %v", tz, err)
			}
			return
		}
		conds, err := Parse(query, loc)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q): error %v not ErrSyntax", query, err)
			}
			return
		}
		if len(conds) > len(strings.Fields(query))+strings.Count(query, `"`) {
			t.Fatalf("Parse(%q): %d conditions from fewer arguments", query, len(conds))
		}
		for _, c := range conds {
			switch c.Field {
			case store.CondText, store.CondSubject, store.CondFrom, store.CondTo, store.CondCc, store.CondBcc,
				store.CondReplyTo, store.CondAddressed, store.CondMessageID, store.CondTag:
				if c.Text == "" {
					t.Fatalf("Parse(%q): %+v has no text", query, c)
				}
			case store.CondLarger, store.CondSmaller:
				if c.Bytes <= 0 {
					t.Fatalf("Parse(%q): %+v has no size", query, c)
				}
			case store.CondAfter, store.CondBefore:
				if c.Time.IsZero() {
					t.Fatalf("Parse(%q): %+v has no time", query, c)
				}
			case store.CondRead, store.CondTagged, store.CondAttachment, store.CondInline:
			default:
				t.Fatalf("Parse(%q): unknown field in %+v", query, c)
			}
		}
		again, _ := Parse(query, loc)
		if !reflect.DeepEqual(conds, again) {
			t.Fatalf("Parse(%q) is not deterministic", query)
		}
	})
}
