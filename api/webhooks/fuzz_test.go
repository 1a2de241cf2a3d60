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
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(f.TempDir(), "f.db"), Logger: log,
		Webhooks: func(m store.Message) []store.NewWebhook {
			return []store.NewWebhook{{URL: "http://127.0.0.1:9/", Payload: []byte("{}")}}
		}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	if _, err := st.Ingest(context.Background(), store.Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("Subject: x\r\n\r\nb\r\n")); err != nil {
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
