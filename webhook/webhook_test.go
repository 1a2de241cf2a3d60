package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/api/rest"
	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/capture/store/storetest"
	"github.com/mailsandbox/mailsandbox/webhook"
)

// backends runs fn on SQLite and PostgreSQL; dsn gives each run a fresh
// database (and two calls within one run the same one).
func backends(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, filepath.Join(t.TempDir(), "mail.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		storetest.RequirePostgres(t)
		t.Parallel()
		fn(t, storetest.PostgresDSN(t))
	})
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openStore opens a store on dsn whose ingest queues webhooks for opts.
func openStore(t *testing.T, dsn string, opts webhook.Options) *store.Store {
	t.Helper()
	so := store.Options{DSN: dsn, Logger: quietLog()}
	if len(opts.URLs) > 0 {
		so.WebhookURLs = opts.URLs
	}
	st, err := store.Open(context.Background(), so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func startSender(t *testing.T, st *store.Store, opts webhook.Options) *webhook.Sender {
	t.Helper()
	s, err := webhook.New(st, opts, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func ingest(t *testing.T, st *store.Store, n int, tag string) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		raw := fmt.Sprintf("From: a@x.test\r\nTo: b@y.test\r\nSubject: %s %d\r\n\r\nbody\r\n", tag, i)
		id, err := st.Ingest(context.Background(), store.Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// receiver is a webhook endpoint that records every request and answers
// as its mode says.
type receiver struct {
	t      *testing.T
	secret string

	mu       sync.Mutex
	mode     string                     // "ok", "500", "slow"
	requests map[string]int             // delivery id → requests seen
	acked    map[string]int             // delivery id → 2xx answers
	messages map[string]int             // message id (from the body) → 2xx answers
	idsOf    map[string]map[string]bool // message id → delivery ids acknowledged
	badSig   int
	changed  chan struct{}
}

func newReceiver(t *testing.T, secret, mode string) *receiver {
	return &receiver{t: t, secret: secret, mode: mode, requests: map[string]int{}, acked: map[string]int{}, messages: map[string]int{}, idsOf: map[string]map[string]bool{}, changed: make(chan struct{}, 1)}
}

func (r *receiver) setMode(m string) {
	r.mu.Lock()
	r.mode = m
	r.mu.Unlock()
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	did := req.Header.Get(webhook.HeaderDelivery)
	r.mu.Lock()
	mode := r.mode
	r.requests[did]++
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" || req.Header.Get("User-Agent") != webhook.UserAgent || did == "" {
		r.t.Errorf("request: %s %v", req.Method, req.Header)
	}
	if r.secret != "" && req.Header.Get(webhook.HeaderSignature) != hmacHex(r.secret, body) {
		r.badSig++
	}
	r.mu.Unlock()
	defer func() {
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}()
	switch mode {
	case "slow":
		select {
		case <-req.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return
	case "500":
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	}
	var m struct {
		ID      string `json:"id"`
		Subject string `json:"subject"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.ID == "" {
		r.t.Errorf("body %q: %v", body, err)
	}
	r.mu.Lock()
	r.acked[did]++
	r.messages[m.ID]++
	if r.idsOf[m.ID] == nil {
		r.idsOf[m.ID] = map[string]bool{}
	}
	r.idsOf[m.ID][did] = true
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// hmacHex is the documented signature, computed here independently of
// the package: "sha256=" and the hex HMAC-SHA256 of the body.
func hmacHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// waitFor polls cond until it holds, failing t after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// allRows reports whether every webhook row satisfies ok.
func allRows(t *testing.T, st *store.Store, want int, ok func(store.Webhook) bool) bool {
	ws, total, err := st.Webhooks(context.Background(), store.WebhookFilter{Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if total != want {
		return false
	}
	for _, w := range ws {
		if !ok(w) {
			return false
		}
	}
	return true
}

func fastOpts(urls ...string) webhook.Options {
	return webhook.Options{
		URLs: urls, Secret: "s3cret", Payload: rest.SummaryPayload,
		RetryMin: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond, Timeout: 300 * time.Millisecond,
	}
}

// A receiver that is down, then too slow, then failing, then well gets
// every message exactly once, signed.
func TestDownSlowFailingThenOK(t *testing.T) { backends(t, testDownSlowFailingThenOK) }

func testDownSlowFailingThenOK(t *testing.T, dsn string) {
	// Down: an address nothing listens on (taken, then let go).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	opts := fastOpts("http://" + addr + "/hook")
	st := openStore(t, dsn, opts)
	startSender(t, st, opts)
	const n = 20
	ids := ingest(t, st, n, "down")
	waitFor(t, 10*time.Second, "refused attempts", func() bool {
		return allRows(t, st, n, func(w store.Webhook) bool { return w.Attempts >= 2 && strings.Contains(w.LastError, "refused") })
	})

	rc := newReceiver(t, opts.Secret, "slow")
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: rc}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	waitFor(t, 20*time.Second, "timed-out attempts", func() bool {
		return allRows(t, st, n, func(w store.Webhook) bool { return strings.Contains(w.LastError, "no answer within") })
	})
	rc.setMode("500")
	waitFor(t, 20*time.Second, "500 answers", func() bool {
		return allRows(t, st, n, func(w store.Webhook) bool { return strings.Contains(w.LastError, "HTTP 500") })
	})
	rc.setMode("ok")
	waitFor(t, 20*time.Second, "deliveries", func() bool {
		return allRows(t, st, n, func(w store.Webhook) bool { return w.Status == store.DeliveryDelivered })
	})
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.acked) != n || rc.badSig != 0 {
		t.Fatalf("acked %d delivery ids of %d, %d bad signatures", len(rc.acked), n, rc.badSig)
	}
	// Exactly once counted by delivery id: a receiver that drops repeats
	// of an id sees each message once. (An id can be acknowledged twice
	// when the 2xx came after the attempt's timeout: at least once.)
	repeats := 0
	for did, c := range rc.acked {
		repeats += c - 1
		if rc.requests[did] < 2 {
			t.Errorf("delivery %s seen %d times: the slow and failing phases missed it", did, rc.requests[did])
		}
	}
	for _, id := range ids {
		if len(rc.idsOf[id]) != 1 {
			t.Errorf("message %s announced under %d delivery ids", id, len(rc.idsOf[id]))
		}
	}
	if repeats > 0 {
		t.Logf("%d repeated 2xx (answered after the attempt's timeout)", repeats)
	}
}

// A URL that redirects elsewhere is not followed: the other host never
// hears of it and the delivery is retried with the reason.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	other := newReceiver(t, "", "ok")
	otherSrv := newServer(t, other)
	redirect := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, otherSrv+"/stolen", http.StatusTemporaryRedirect)
	}))
	opts := fastOpts(redirect + "/hook")
	st := openStore(t, "", opts)
	startSender(t, st, opts)
	ingest(t, st, 3, "redirect")
	waitFor(t, 10*time.Second, "redirect errors", func() bool {
		return allRows(t, st, 3, func(w store.Webhook) bool {
			return w.Status == store.DeliveryQueued && w.Attempts >= 2 && strings.Contains(w.LastError, "redirect to") && strings.Contains(w.LastError, "/stolen")
		})
	})
	other.mu.Lock()
	defer other.mu.Unlock()
	if len(other.requests) != 0 {
		t.Fatalf("redirect target got %d requests", len(other.requests))
	}
}

// A receiver that never answers is cut at the timeout and does not hold
// the only worker: another URL's webhooks still go out.
func TestNeverAnsweringReceiverDoesNotHoldWorker(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	hang := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	// Headers at once, then a body that never ends.
	trickle := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(func() { close(stop) })
	good := newReceiver(t, "s3cret", "ok")
	goodURL := newServer(t, good)
	opts := fastOpts(hang+"/hook", trickle+"/hook", goodURL+"/hook")
	opts.Concurrency = 1
	st := openStore(t, "", opts)
	startSender(t, st, opts)
	const n = 5
	ingest(t, st, n, "hang")
	waitFor(t, 30*time.Second, "the good URL's deliveries", func() bool {
		good.mu.Lock()
		defer good.mu.Unlock()
		return len(good.acked) == n
	})
	t.Cleanup(func() {
		if t.Failed() {
			ws, total, _ := st.Webhooks(context.Background(), store.WebhookFilter{Limit: store.MaxLimit})
			t.Logf("%d rows", total)
			for _, w := range ws {
				t.Logf("%s %s attempts=%d %q", w.URL, w.Status, w.Attempts, w.LastError)
			}
		}
	})
	waitFor(t, 30*time.Second, "timeouts recorded", func() bool {
		// Only failed first attempts make rows: the good URL's have none.
		return allRows(t, st, 2*n, func(w store.Webhook) bool {
			switch {
			case strings.HasPrefix(w.URL, hang), strings.HasPrefix(w.URL, trickle):
				// One row is always being tried (there is one worker); the
				// others wait with the last attempt's reason.
				return w.Status != store.DeliveryDelivered && (strings.Contains(w.LastError, "no answer within") || strings.Contains(w.LastError, "HTTP 500"))
			}
			return false
		})
	})
}

// Past MaxAge a failing delivery is given up.
func TestGivenUpAfterMaxAge(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, "", "500")
	opts := fastOpts(newServer(t, rc) + "/hook")
	opts.MaxAge = 300 * time.Millisecond
	st := openStore(t, "", opts)
	startSender(t, st, opts)
	ingest(t, st, 2, "old")
	waitFor(t, 10*time.Second, "failed rows", func() bool {
		return allRows(t, st, 2, func(w store.Webhook) bool {
			return w.Status == store.DeliveryFailed && strings.Contains(w.LastError, "given up after") && strings.Contains(w.LastError, "HTTP 500")
		})
	})
	// And a manual retry sends it again.
	ws, _, _ := st.Webhooks(context.Background(), store.WebhookFilter{})
	rc.setMode("ok")
	if err := st.RetryWebhook(context.Background(), ws[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the retried row", func() bool {
		w, err := st.GetWebhook(context.Background(), ws[0].ID)
		return err == nil && w.Status == store.DeliveryDelivered
	})
}

// Rows queued while no sender ran (a restart) go out when one starts.
func TestQueuedBeforeStartAreSent(t *testing.T) { backends(t, testQueuedBeforeStartAreSent) }

func testQueuedBeforeStartAreSent(t *testing.T, dsn string) {
	rc := newReceiver(t, "s3cret", "ok")
	opts := fastOpts(newServer(t, rc) + "/hook")
	st := openStore(t, dsn, opts)
	ids := ingest(t, st, 10, "early")
	startSender(t, st, opts)
	waitFor(t, 10*time.Second, "deliveries", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return len(rc.messages) == len(ids)
	})
}

// Two instances sharing a PostgreSQL store post each webhook once.
func TestTwoInstancesPostEachOnce(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	rc := newReceiver(t, "s3cret", "ok")
	opts := fastOpts(newServer(t, rc) + "/hook")
	// A fast receiver: with a long timeout no attempt is cut after the
	// receiver answered, so a second post could only come from a second
	// claim.
	opts.Timeout = 10 * time.Second
	a := openStore(t, dsn, opts)
	b := openStore(t, dsn, opts)
	startSender(t, a, opts)
	startSender(t, b, opts)
	const n = 200
	var wg sync.WaitGroup
	for _, st := range []*store.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ingest(t, st, n/2, "shared")
		}()
	}
	wg.Wait()
	waitFor(t, 30*time.Second, "deliveries", func() bool {
		c, err := a.WebhookCounts(context.Background())
		return err == nil && c.Delivered == n
	})
	// All went out at the first attempt: no row was written.
	if _, total, err := a.Webhooks(context.Background(), store.WebhookFilter{}); err != nil || total != 0 {
		t.Fatalf("retry rows: %d %v", total, err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.requests) != n {
		t.Fatalf("%d delivery ids, want %d", len(rc.requests), n)
	}
	for did, c := range rc.requests {
		if c != 1 {
			t.Errorf("delivery %s posted %d times", did, c)
		}
	}
}

func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		attempts int
		want     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {10, 512 * time.Second}, {11, 10 * time.Minute}, {1000, 10 * time.Minute}} {
		if got := webhook.Backoff(c.attempts, time.Second, 10*time.Minute); got != c.want {
			t.Errorf("Backoff(%d) = %s, want %s", c.attempts, got, c.want)
		}
	}
}

func TestSignature(t *testing.T) {
	// HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), a
	// published test vector.
	const want = "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
	if got := webhook.Sign("key", []byte("The quick brown fox jumps over the lazy dog")); got != want {
		t.Fatalf("Sign = %s", got)
	}
	if !webhook.Verify("key", []byte("The quick brown fox jumps over the lazy dog"), want) || webhook.Verify("key", []byte("x"), want) {
		t.Fatal("Verify")
	}
}

func TestOptionsValidate(t *testing.T) {
	ok := webhook.Options{URLs: []string{"http://127.0.0.1:9/x"}, Payload: rest.SummaryPayload}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"", "ftp://x/", "http://", "/relative", "http://[::1/"} {
		o := ok
		o.URLs = []string{u}
		if err := o.Validate(); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
	o := ok
	o.RetryMin, o.RetryMax = time.Minute, time.Second
	if err := o.Validate(); err == nil {
		t.Error("retry min above max accepted")
	}
}
