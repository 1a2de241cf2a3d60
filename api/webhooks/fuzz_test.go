package webhooks_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/api/rest"
	"github.com/mailsandbox/mailsandbox/api/webhooks"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// FuzzRoutes: any query string and id on the webhook routes answers 2xx or
// 4xx with a reason, never a 5xx.
func FuzzRoutes(f *testing.F) {
	for _, s := range []string{"", "status=queued", "status=bogus", "limit=5&offset=2", "limit=-1", "limit=99999999999999999999", "message_id=%00", "offset=1e9"} {
		f.Add(s, "1")
	}
	f.Add("", "abc")
	f.Add("", "-1")
	f.Add("", "9223372036854775808")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const hook = "http://127.0.0.1:9/"
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(f.TempDir(), "f.db"), Logger: log, WebhookURLs: []string{hook}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	if _, err := st.Ingest(context.Background(), store.Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("Subject: x\r\n\r\nb\r\n")); err != nil {
		f.Fatal(err)
	}
	// Its first attempt failed: a row to retry.
	ctx := context.Background()
	b, err := st.ClaimNewWebhooks(ctx, store.NewWebhookClaim{URL: hook, Owner: "fuzz", Now: time.Now(), Lease: time.Minute})
	if err != nil || len(b.Messages) != 1 {
		f.Fatalf("claim: %+v %v", b, err)
	}
	if err := st.FinishNewWebhooks(ctx, store.NewWebhookResult{URL: hook, Owner: "fuzz", To: b.To, Failed: []store.FailedWebhook{{
		DeliveryID: b.DeliveryIDs[0], MessageID: b.Messages[0].ID, Payload: []byte("{}"), Status: store.DeliveryQueued,
		NextAttemptAt: time.Now().Add(time.Hour), LastError: "refused", ReceivedAt: b.Messages[0].ReceivedAt}}}); err != nil {
		f.Fatal(err)
	}
	srv := rest.New(st, rest.Options{Mounts: []rest.Mount{{Register: webhooks.New(st, true).Register}}}, log)
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, query, id string) {
		for _, r := range []struct{ method, path string }{
			{http.MethodGet, "/api/v1/webhooks?" + query},
			{http.MethodGet, "/api/v1/webhooks/" + url.PathEscape(id)},
			{http.MethodPost, "/api/v1/webhooks/" + url.PathEscape(id) + "/retry"},
		} {
			req, err := http.NewRequest(r.method, "http://sandbox"+r.path, nil)
			if err != nil {
				continue
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s %s = %d %s", r.method, r.path, rec.Code, rec.Body)
			}
		}
	})
}
