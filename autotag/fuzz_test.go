package autotag_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/autotag"
	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// FuzzTags: any rule either fails to parse with ErrRule or compiles; any
// message then gets at most MaxTagsPerMessage valid, distinct tags.
func FuzzTags(f *testing.F) {
	f.Add(`billing=re:subject:^Invoice \d+`, "Subject: Invoice 42\r\nX-Tags: a, b\r\n\r\nx")
	f.Add(`x=from:a "quoted words" -is:tagged larger:1k before:2030-01-01`, "From: a@b\r\nTo: c+d+e@f\r\n\r\n")
	f.Add(`h=re:X-Mailer:(?i)php`, "X-Mailer: PHPMailer\r\nX-Tags: "+strings.Repeat("\x00,", 100)+"\r\n\r\n")
	f.Add(`bad`, "")
	f.Add(`=subject:x`, "Subject: x\r\n\r\n")
	f.Fuzz(func(t *testing.T, rule, raw string) {
		opts := autotag.Options{Username: true, Now: func() time.Time { return time.Unix(1e9, 0) }}
		if r, err := autotag.ParseRule(rule); err == nil {
			opts.Rules = append(opts.Rules, r)
			if _, err := store.ValidTag(r.Tag); err != nil {
				t.Fatalf("rule %q compiled with an invalid tag %q", rule, r.Tag)
			}
		}
		p := mailparse.Parse([]byte(raw))
		tags := autotag.New(opts).Tags(store.Envelope{From: "a+x@b", To: []string{"c+y@d"}, Username: "u s"}, p, []byte(raw))
		if len(tags) > store.MaxTagsPerMessage {
			t.Fatalf("%d tags", len(tags))
		}
		seen := map[string]bool{}
		for _, tag := range tags {
			if v, err := store.ValidTag(tag); err != nil || v != tag {
				t.Fatalf("tag %q: %v", tag, err)
			}
			if seen[strings.ToLower(tag)] {
				t.Fatalf("tag %q twice", tag)
			}
			seen[strings.ToLower(tag)] = true
		}
	})
}
