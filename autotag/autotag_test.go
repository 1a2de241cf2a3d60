package autotag_test

import (
	"context"
	"net/smtp"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
	"github.com/mailsandbox/mailsandbox/sdk"
	"github.com/mailsandbox/mailsandbox/sdk/sandboxtest"
)

// TestAutomaticTags sends mail over SMTP to a real sandbox (SQLite and
// PostgreSQL) and reads the tags back through the SDK: every automatic
// source, rules in both grammars, search and wait by tag, tags set by
// hand, and a hostile X-Tags header.
func TestAutomaticTags(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			opts := []sandboxtest.Option{sandboxtest.WithConfig(func(c *sandbox.Config) {
				c.Tags = sandbox.TagsConfig{Username: true, Rules: []string{
					`billing=re:subject:^Invoice \d+`,
					`vip=from:boss@corp.test`,
					`paid-invoice=tag:billing "paid"`,
					`php=re:x-mailer:^PHPMailer`,
					`not-urgent=-subject:urgent is:tagged`,
					`bulky=larger:20k`,
				}}
			})}
			if backend == "postgres" {
				storetest.RequirePostgres(t)
				opts = append(opts, sandboxtest.WithDB(storetest.PostgresDSN(t)))
			}
			s := sandboxtest.New(t, opts...)
			cl := s.Client()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			send := func(user, from string, to []string, headers string) *sdk.Message {
				t.Helper()
				subject := "msg " + time.Now().Format(time.RFC3339Nano)
				if strings.Contains(headers, "Subject:") {
					subject = ""
				} else {
					headers = "Subject: " + subject + "\r\n" + headers
				}
				var auth smtp.Auth
				if user != "" {
					auth = smtp.PlainAuth("", user, "secret", "127.0.0.1")
				}
				if !strings.Contains(headers, "To:") {
					headers = "To: " + strings.Join(to, ", ") + "\r\n" + headers
				}
				raw := "From: " + from + "\r\n" + headers + "\r\nbody, paid in full\r\n"
				envFrom := from
				if _, a, ok := strings.Cut(from, "<"); ok {
					envFrom = strings.TrimSuffix(a, ">")
				}
				if err := smtp.SendMail(s.SMTPAddr(), auth, envFrom, to, []byte(raw)); err != nil {
					t.Fatalf("send: %v", err)
				}
				list, err := cl.Search(ctx, sdk.Filter{To: to[0], Limit: 1})
				if err != nil || len(list.Messages) == 0 {
					t.Fatalf("search: %v %v", list, err)
				}
				m, err := cl.Get(ctx, list.Messages[0].ID)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			check := func(what string, m *sdk.Message, want ...string) {
				t.Helper()
				if want == nil {
					want = []string{}
				}
				if !reflect.DeepEqual(m.Tags, want) {
					t.Errorf("%s: tags %q, want %q", what, m.Tags, want)
				}
			}

			check("X-Tags", send("", "a@x.test", []string{"one@x.test"}, "X-Tags: Signup, eu ,signup,, ci job 7\r\n"), "ci job 7", "eu", "not-urgent", "Signup")
			check("plus-addressing", send("", "app+from-tag@x.test", []string{"bob+signup+EU@x.test", "carol@x.test"}, "Cc: dan+cc1@x.test\r\n"),
				"cc1", "eu", "from-tag", "not-urgent", "Signup")
			// The envelope carries a plus-address the headers do not show.
			check("envelope", send("", "a@x.test", []string{"hidden+bcc-tag@x.test"}, "To: list@x.test\r\n"), "bcc-tag", "not-urgent")
			check("username", send("alice", "a@x.test", []string{"two@x.test"}, ""), "alice", "not-urgent")
			check("rules", send("", "Boss <boss@corp.test>", []string{"three@x.test"}, "Subject: Invoice 42 urgent\r\nX-Mailer: PHPMailer 6\r\n"),
				"billing", "paid-invoice", "php", "vip")
			check("no rule", send("", "a@x.test", []string{"four@x.test"}, "Subject: Invoice urgent\r\n"))
			check("regex case", send("", "a@x.test", []string{"five@x.test"}, "Subject: invoice 7 urgent\r\n"))

			// Search and wait by tag; a tag set by hand wakes a waiter.
			list, err := cl.Search(ctx, sdk.Filter{Tag: "BILLING"})
			if err != nil || list.Total != 1 || list.Messages[0].Tags == nil {
				t.Fatalf("search tag: %+v %v", list, err)
			}
			plain := send("", "a@x.test", []string{"six@x.test"}, "Subject: urgent\r\n")
			check("untagged", plain)
			woke := make(chan *sdk.Message, 1)
			go func() {
				m, err := cl.Wait(ctx, sdk.Filter{Tag: "by-hand", Since: time.Now().Add(-time.Hour)})
				if err != nil {
					t.Errorf("wait: %v", err)
				}
				woke <- m
			}()
			time.Sleep(100 * time.Millisecond) // let the wait start: with or without it, it must end
			if tags, err := cl.SetTags(ctx, plain.ID, "By-Hand", "qa"); err != nil || !reflect.DeepEqual(tags, []string{"By-Hand", "qa"}) {
				t.Fatalf("SetTags: %q %v", tags, err)
			}
			if m := <-woke; m == nil || m.ID != plain.ID {
				t.Errorf("wait by tag woke with %+v", m)
			}
			if tags, err := cl.AddTags(ctx, plain.ID, "more"); err != nil || len(tags) != 3 {
				t.Errorf("AddTags: %q %v", tags, err)
			}
			if tags, err := cl.RemoveTag(ctx, plain.ID, "BY-HAND"); err != nil || !reflect.DeepEqual(tags, []string{"more", "qa"}) {
				t.Errorf("RemoveTag: %q %v", tags, err)
			}
			for _, bad := range [][]string{{"a/b"}, {""}, {strings.Repeat("x", 101)}, {"new\nline"}} {
				if _, err := cl.SetTags(ctx, plain.ID, bad...); sdk.StatusCode(err) != 400 {
					t.Errorf("SetTags %q: %v, want 400", bad, err)
				}
			}
			if _, err := cl.SetTags(ctx, "no-such-id", "x"); sdk.StatusCode(err) != 404 {
				t.Errorf("SetTags on an unknown message: %v, want 404", err)
			}

			// Hostile X-Tags: 10,000 tags, control characters, ~1 MB.
			var b strings.Builder
			b.WriteString("X-Tags: ")
			for i := 0; b.Len() < 1<<20; i++ {
				if i > 0 {
					b.WriteString(",\r\n ")
				}
				b.WriteString("\x1b[31mt\x00ag-")
				b.WriteString(strings.Repeat("z", i%120))
				b.WriteString(time.Duration(i).String())
			}
			hostile := send("", "a@x.test", []string{"seven@x.test"}, b.String()+"\r\n")
			if len(hostile.Tags) == 0 || len(hostile.Tags) > 50 {
				t.Errorf("hostile X-Tags kept %d tags", len(hostile.Tags))
			}
			for _, tag := range hostile.Tags {
				if len(tag) > 100 || strings.ContainsAny(tag, "\x00\x1b[") {
					t.Errorf("hostile tag kept: %q", tag)
				}
			}
		})
	}
}
