package webhooks_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
	"github.com/mailsandbox/mailsandbox/sdk/sandboxtest"
)

type delivery struct {
	ID            string     `json:"id"`
	DeliveryID    string     `json:"delivery_id"`
	MessageID     string     `json:"message_id"`
	URL           string     `json:"url"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastError     string     `json:"last_error"`
}

type list struct {
	Enabled    bool           `json:"enabled"`
	Total      int            `json:"total"`
	Counts     map[string]int `json:"counts"`
	Deliveries []delivery     `json:"deliveries"`
}

func call(t *testing.T, method, url string, want int) []byte {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d %s, want %d", method, url, resp.StatusCode, b, want)
	}
	return b
}

func getList(t *testing.T, url string) list {
	t.Helper()
	var l list
	if err := json.Unmarshal(call(t, http.MethodGet, url, 200), &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func waitList(t *testing.T, url string, cond func(list) bool) list {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		l := getList(t, url)
		if cond(l) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting; last list %+v", l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Mail sent over SMTP reaches a webhook receiver, and the REST routes show,
// retry and drop deliveries.
func TestSMTPToWebhookAndRoutes(t *testing.T) {
	var mu sync.Mutex
	fail := true
	var bodies []map[string]any
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if fail {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		m["delivery"] = r.Header.Get("X-Mailsandbox-Delivery")
		bodies = append(bodies, m)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	hook := "http://" + l.Addr().String() + "/hook"
	sb := sandboxtest.New(t, sandboxtest.WithConfig(func(c *sandbox.Config) {
		c.Webhook.URLs = []string{hook}
		c.Webhook.RetryMin, c.Webhook.RetryMax = 20*time.Millisecond, 50*time.Millisecond
	}))
	for i := range 3 {
		if err := smtp.SendMail(sb.SMTPAddr(), nil, "a@x.test", []string{"b@y.test"},
			[]byte(fmt.Sprintf("From: a@x.test\r\nTo: b@y.test\r\nSubject: hook %d\r\n\r\nbody\r\n", i))); err != nil {
			t.Fatal(err)
		}
	}
	api := sb.URL() + "/api/v1/webhooks"
	ls := waitList(t, api, func(l list) bool {
		for _, d := range l.Deliveries {
			if d.Attempts < 1 || !strings.Contains(d.LastError, "HTTP 503") {
				return false
			}
		}
		return len(l.Deliveries) == 3
	})
	if !ls.Enabled || ls.Total != 3 || ls.Deliveries[0].URL != hook || ls.Deliveries[0].NextAttemptAt == nil {
		t.Fatalf("list = %+v", ls)
	}
	one := ls.Deliveries[2]
	var got delivery
	if err := json.Unmarshal(call(t, http.MethodGet, api+"/"+one.ID, 200), &got); err != nil || got.DeliveryID != one.DeliveryID {
		t.Fatalf("get = %+v %v", got, err)
	}
	call(t, http.MethodDelete, api+"/"+one.ID, 204)
	call(t, http.MethodDelete, api+"/"+one.ID, 404)
	call(t, http.MethodGet, api+"/"+one.ID, 404)
	// Bad input is a 400 with a reason, never a 500.
	for _, u := range []string{api + "?status=bogus", api + "?limit=-1", api + "?limit=x", api + "?offset=9999999999", api + "/abc", api + "/0", api + "/-5"} {
		b := call(t, http.MethodGet, u, 400)
		if !strings.Contains(string(b), "want") {
			t.Errorf("%s: %s", u, b)
		}
	}
	call(t, http.MethodPost, api+"/abc/retry", 400)
	call(t, http.MethodPost, api+"/999999/retry", 404)

	mu.Lock()
	fail = false
	mu.Unlock()
	ls = waitList(t, api+"?status=delivered", func(l list) bool { return l.Total == 2 })
	if ls.Counts["delivered"] != 2 || ls.Deliveries[0].NextAttemptAt != nil {
		t.Fatalf("delivered list = %+v", ls)
	}
	call(t, http.MethodPost, api+"/"+ls.Deliveries[0].ID+"/retry", 400) // already delivered
	mu.Lock()
	defer mu.Unlock()
	// The dropped delivery may have had an attempt in flight when it was
	// dropped (claimed before, answered after the receiver recovered).
	kept := bodies[:0:0]
	for _, b := range bodies {
		if b["delivery"] != one.DeliveryID {
			kept = append(kept, b)
		}
	}
	if len(kept) != 2 || len(bodies) > 3 {
		t.Fatalf("receiver got %d bodies, %d of kept deliveries", len(bodies), len(kept))
	}
	for _, b := range bodies {
		// The native summary, as REST lists it.
		if !strings.HasPrefix(fmt.Sprint(b["subject"]), "hook ") || b["id"] == "" || b["received_at"] == nil || b["mailboxes"] == nil {
			t.Errorf("body = %v", b)
		}
	}
}

// Without --webhook-url the list answers, empty and disabled.
func TestRoutesWithoutWebhooks(t *testing.T) {
	sb := sandboxtest.New(t)
	l := getList(t, sb.URL()+"/api/v1/webhooks")
	if l.Enabled || l.Total != 0 || l.Deliveries == nil {
		t.Fatalf("list = %+v", l)
	}
}

// --webhook-format mailpit posts Mailpit's MessageSummary.
func TestMailpitFormat(t *testing.T) {
	got := make(chan map[string]any, 1)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		select {
		case got <- m:
		default:
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	sb := sandboxtest.New(t, sandboxtest.WithConfig(func(c *sandbox.Config) {
		c.Webhook.URLs = []string{"http://" + l.Addr().String() + "/"}
		c.Webhook.Format = "mailpit"
	}))
	if err := smtp.SendMail(sb.SMTPAddr(), nil, "a@x.test", []string{"b@y.test"}, []byte("From: A <a@x.test>\r\nTo: b@y.test\r\nSubject: mp\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		for _, k := range []string{"ID", "MessageID", "Read", "From", "To", "Cc", "Bcc", "ReplyTo", "Subject", "Created", "Tags", "Size", "Attachments", "Snippet"} {
			if _, ok := m[k]; !ok {
				t.Errorf("MessageSummary lacks %s: %v", k, m)
			}
		}
		if m["Subject"] != "mp" {
			t.Errorf("Subject = %v", m["Subject"])
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no webhook")
	}
}
