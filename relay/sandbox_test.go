package relay_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsandbox/mailsandbox/capture/smtpd"
	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/relay"
)

// sandbox is a store behind the sandbox's own SMTP endpoint on loopback.
type sandbox struct {
	st   *store.Store
	addr string
}

func newSandbox(t *testing.T, enqueue func(store.Envelope) []store.NewDelivery) *sandbox {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(t.TempDir(), "mail.db"), Enqueue: enqueue})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtpd.New(st, smtpd.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &sandbox{st: st, addr: ln.Addr().String()}
}

// TestRelayBetweenTwoSandboxes sends mail over SMTP into one sandbox whose
// rule relays it to a second sandbox, as a staging setup would.
func TestRelayBetweenTwoSandboxes(t *testing.T) {
	t.Parallel()
	dest := newSandbox(t, nil)
	var q *relay.Queue
	src := newSandbox(t, func(env store.Envelope) []store.NewDelivery { return q.Enqueue(env) })
	q, err := relay.New(src.st, relay.Options{
		Match:  []string{"*@team.test"},
		Routes: map[string]string{"team.test": dest.addr},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	q.Start()
	t.Cleanup(func() { q.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events := dest.st.Subscribe(ctx)
	body := "From: app@staging.test\r\nTo: dev@team.test, user@example.test\r\nSubject: Welcome\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nHallo Jürgen\r\n"
	c, err := smtp.Dial(src.addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("app@staging.test", []string{"dev@team.test", "user@example.test"}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	c.Close()

	for {
		ms, _, err := dest.st.Search(ctx, store.Query{})
		if err == nil && len(ms) > 0 {
			if len(ms) != 1 || len(ms[0].Mailboxes) != 1 || ms[0].Mailboxes[0] != "dev@team.test" || ms[0].Subject != "Welcome" ||
				ms[0].Envelope.From != "app@staging.test" {
				t.Fatalf("destination got %+v", ms)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("nothing arrived at the destination sandbox")
		case <-events:
		}
	}
	// Both recipients stay captured in the source sandbox.
	ms, _, err := src.st.Search(ctx, store.Query{})
	if err != nil || len(ms) != 1 || len(ms[0].Mailboxes) != 2 {
		t.Fatalf("source sandbox: %+v %v", ms, err)
	}
}
