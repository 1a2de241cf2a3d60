package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hookReceiver counts webhooks by delivery id and by subject; it answers
// 503 until accept is set.
type hookReceiver struct {
	mu         sync.Mutex
	accept     bool
	acked      map[string]int // delivery id → 2xx answers
	bySubject  map[string]int // subject → 2xx answers
	subjectIDs map[string]map[string]bool
	url        string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{acked: map[string]int{}, bySubject: map[string]int{}, subjectIDs: map[string]map[string]bool{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	r.url = "http://" + l.Addr().String() + "/hook"
	return r
}

func (r *hookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.accept {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var m struct{ Subject string }
	_ = json.Unmarshal(b, &m)
	did := req.Header.Get("X-Mailsandbox-Delivery")
	r.acked[did]++
	r.bySubject[m.Subject]++
	if r.subjectIDs[m.Subject] == nil {
		r.subjectIDs[m.Subject] = map[string]bool{}
	}
	r.subjectIDs[m.Subject][did] = true
}

// TestWebhooksSurviveSIGKILL kills the server after clients saw 250 and
// before (round 0) or while (round 1) webhooks go out; after a restart on
// the same store every acknowledged message is announced, each under one
// delivery id (exactly once for a receiver that drops repeated ids).
func TestWebhooksSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and kills a child process")
	}
	bin := buildBinary(t)
	for round := range 2 {
		db := filepath.Join(t.TempDir(), "crash.db")
		rc := newHookReceiver(t)
		rc.accept = round == 1
		args := []string{"--db", db, "--webhook-url", rc.url, "--webhook-secret", "k", "--webhook-retry-min", "20ms", "--webhook-retry-max", "50ms", "--webhook-timeout", "1s"}
		c := startChild(t, bin, args...)
		var mu sync.Mutex
		acked := map[string]bool{}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					subject := fmt.Sprintf("[r%d-w%d-%d]", round, w, i)
					body := []byte(fmt.Sprintf("From: a@example.com\r\nTo: b@example.com\r\nSubject: %s\r\n\r\nbody\r\n", subject))
					if err := smtp.SendMail(c.addrs["smtp"], nil, "a@example.com", []string{"b@example.com"}, body); err != nil {
						return // the server died under us: not acknowledged
					}
					mu.Lock()
					acked[subject] = true
					n := len(acked)
					mu.Unlock()
					if n == 200 {
						c.cmd.Process.Signal(syscall.SIGKILL)
					}
				}
			}()
		}
		c.cmd.Wait()
		wg.Wait()
		rc.mu.Lock()
		before := len(rc.bySubject)
		rc.accept = true
		rc.mu.Unlock()

		c2 := startChild(t, bin, args...)
		deadline := time.Now().Add(60 * time.Second)
		for {
			rc.mu.Lock()
			missing := 0
			for s := range acked {
				if rc.bySubject[s] == 0 {
					missing++
				}
			}
			rc.mu.Unlock()
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d of %d acknowledged messages never announced", round, missing, len(acked))
			}
			time.Sleep(50 * time.Millisecond)
		}
		st := c2.stopAndOpen(t, db)
		_ = st
		rc.mu.Lock()
		for s, ids := range rc.subjectIDs {
			if !strings.HasPrefix(s, fmt.Sprintf("[r%d-", round)) {
				t.Errorf("round %d: unexpected subject %q", round, s)
			}
			if len(ids) != 1 {
				t.Errorf("round %d: %q announced under %d delivery ids", round, s, len(ids))
			}
		}
		// Each subject under one delivery id is "exactly once" for a
		// receiver that drops repeated ids; repeats of an id (a 2xx that
		// came after the attempt's timeout) are counted, not failed.
		repeats := 0
		for _, n := range rc.acked {
			repeats += n - 1
		}
		if repeats > 0 {
			t.Logf("round %d: %d repeated 2xx", round, repeats)
		}
		t.Logf("round %d: %d acknowledged, %d announced before the kill, all announced after restart", round, len(acked), before)
		rc.mu.Unlock()
	}
}

func TestWebhookFlags(t *testing.T) {
	rf, err := parseRun([]string{"--webhook-url", "http://a.test/x", "--webhook-secret", "s", "--webhook-format", "mailpit", "--webhook-retry-min", "2s"},
		mapEnv(map[string]string{"MAILSANDBOX_WEBHOOK_URL": "http://ignored.test/"}))
	if err != nil {
		t.Fatal(err)
	}
	w := rf.cfg.Webhook
	if len(w.URLs) != 1 || w.URLs[0] != "http://a.test/x" || w.Secret != "s" || w.Format != "mailpit" || w.RetryMin != 2*time.Second ||
		w.RetryMax != 10*time.Minute || w.MaxAge != 24*time.Hour {
		t.Fatalf("webhook config %+v", w)
	}
	rf, err = parseRun(nil, mapEnv(map[string]string{"MAILSANDBOX_WEBHOOK_URL": "http://a.test/1, https://b.test/2"}))
	if err != nil || len(rf.cfg.Webhook.URLs) != 2 || rf.cfg.Webhook.Format != "native" {
		t.Fatalf("from env: %+v %v", rf, err)
	}
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--webhook-url", "ftp://x/"}, "--webhook-url"},
		{[]string{"--webhook-url", "http://"}, "--webhook-url"},
		{[]string{"--webhook-url", "http://x/", "--webhook-format", "xml"}, "--webhook-format"},
		{[]string{"--webhook-url", "http://x/", "--webhook-retry-min", "1h", "--webhook-retry-max", "1m"}, "--webhook-retry-max"},
		{[]string{"--webhook-url", "http://x/", "--webhook-max-age", "-1s"}, "--webhook-max-age"},
		{[]string{"--webhook-secret", "s"}, "--webhook-secret"},
	} {
		_, err := parseRun(c.args, mapEnv(nil))
		if err == nil || !strings.Contains(err.Error(), c.flag) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %v does not name %s on one line", c.args, err, c.flag)
		}
	}
}

func TestMailpitWebhookEnv(t *testing.T) {
	rf, err := parseRun(nil, mapEnv(map[string]string{"MP_WEBHOOK_URL": "http://hooks.test/in", "MP_WEBHOOK_LIMIT": "5"}))
	if err != nil {
		t.Fatal(err)
	}
	if w := rf.cfg.Webhook; len(w.URLs) != 1 || w.URLs[0] != "http://hooks.test/in" || w.Format != "mailpit" {
		t.Fatalf("webhook %+v", w)
	}
	for _, warn := range rf.warnings {
		if strings.Contains(warn, "WEBHOOK") {
			t.Errorf("warned about %s", warn)
		}
	}
	// Native settings win.
	rf, err = parseRun([]string{"--webhook-format", "native"}, mapEnv(map[string]string{"MP_WEBHOOK_URL": "http://hooks.test/in"}))
	if err != nil || rf.cfg.Webhook.Format != "native" || len(rf.cfg.Webhook.URLs) != 1 {
		t.Fatalf("native format: %+v %v", rf.cfg.Webhook, err)
	}
	if _, err := parseRun(nil, mapEnv(map[string]string{"MP_WEBHOOK_URL": "not a url"})); err == nil || !strings.Contains(err.Error(), "webhook-url") {
		t.Fatalf("bad MP_WEBHOOK_URL: %v", err)
	}
}
