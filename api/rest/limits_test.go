package rest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/connlimit/limittest"
)

// A POST whose body trickles in one byte every 200ms is cut off once
// ReadTimeout passes: the connection is closed (after an error reply) long
// before the body could be complete, and nothing is stored.
func TestHardeningSlowBodyCutOff(t *testing.T) {
	t.Parallel()
	e := newTestServer(t, func(o *Options) { o.ReadTimeout = time.Second })
	c, br := hardenDial(t, e.url)
	const size = 500 // 100 s at 5 bytes a second
	fmt.Fprintf(c, "POST /api/v1/messages HTTP/1.1\r\nHost: sandbox\r\nContent-Type: message/rfc822\r\nContent-Length: %d\r\n\r\n", size)
	sent := make(chan int, 1)
	go func() {
		n := 0
		for ; n < size; n++ {
			if _, err := c.Write([]byte{'x'}); err != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		sent <- n
	}()
	said := limittest.ExpectClosed(t, c, br, 30*time.Second)
	c.Close()
	if n := <-sent; n >= size {
		t.Fatalf("the whole slow body (%d bytes) got through; server said %q", n, said)
	}
	// The status line, not "201" anywhere: the error names the client's
	// port, which made this fail when the port held those digits.
	if strings.HasPrefix(said, "HTTP/1.1 201") {
		t.Fatalf("slow body was accepted: %q", said)
	}
	if !strings.Contains(said, "400 Bad Request") || !strings.Contains(said, "timeout") {
		t.Fatalf("reply %q, want a 400 naming the timeout", said)
	}
	var list struct{ Total int }
	e.getJSON("/messages/search", "MessageList", &list)
	if list.Total != 0 {
		t.Fatalf("%d messages stored", list.Total)
	}
}

// ReadTimeout is per request: the same keep-alive connection serves a
// later request after ReadTimeout has passed since the first.
func TestBodyDeadlineLiftedAfterBody(t *testing.T) {
	t.Parallel()
	e := newTestServer(t, func(o *Options) { o.ReadTimeout = 300 * time.Millisecond })
	cl := &http.Client{Timeout: 20 * time.Second}
	post := func() {
		t.Helper()
		resp, err := cl.Post(e.url+"/api/v1/messages", "message/rfc822",
			strings.NewReader("From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\n\r\nhi\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	post()
	time.Sleep(time.Second) // lets ReadTimeout pass on the idle connection
	post()
}

// Waits and event streams are responses, not request reads: they outlive
// ReadTimeout many times over.
func TestWaitAndEventsOutliveReadTimeout(t *testing.T) {
	t.Parallel()
	const readTimeout = 200 * time.Millisecond
	e := newTestServer(t, func(o *Options) { o.ReadTimeout = readTimeout })
	waiting := make(chan struct{}, 1)
	e.srv.waitingHook = func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	}

	// The event stream, opened first.
	req, err := http.NewRequest("GET", e.url+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	sse, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sse.Body.Close()
	events := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(sse.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event: ") {
				events <- strings.TrimPrefix(sc.Text(), "event: ")
			}
		}
		close(events)
	}()

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(e.url + "/api/v1/messages/wait?to=late@example.com&timeout=60s")
		if err != nil {
			got <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{status: resp.StatusCode, body: string(b)}
	}()
	select {
	case <-waiting:
	case r := <-got:
		t.Fatalf("wait ended early: %+v", r)
	case <-time.After(20 * time.Second):
		t.Fatal("wait never subscribed")
	}
	time.Sleep(5 * readTimeout) // the time that would end them, were they bounded
	e.ingest("a@example.com", []string{"late@example.com"}, "Subject: late\r\n", "hi\r\n")
	r := <-got
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("wait: %+v", r)
	}
	var m struct{ Messages []json.RawMessage }
	if err := json.Unmarshal([]byte(r.body), &m); err != nil || len(m.Messages) != 1 {
		t.Fatalf("wait body %q (%v)", r.body, err)
	}
	select {
	case ev, ok := <-events:
		if !ok || ev != "message" {
			t.Fatalf("event stream: %q, open %v", ev, ok)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no event on the stream")
	}
}

// Connection caps hold per client address and in total (127.0.0.2 and
// 127.0.0.3 are loopback too): the client over a cap gets a 503 JSON error
// and Connection: close; a slot frees when its connection closes.
func TestHardeningConnectionCaps(t *testing.T) {
	t.Parallel()
	e := newTestServer(t, func(o *Options) { o.MaxConnections = 3; o.MaxConnectionsPerIP = 2 })
	addr := strings.TrimPrefix(e.url, "http://")
	// get sends one request on a new connection from local and returns
	// the connection (kept open) and the status line.
	get := func(local string) (net.Conn, string) {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: sandbox\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("from %s: %v", local, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			var eb struct{ Error string }
			if json.Unmarshal(b, &eb) != nil || !strings.Contains(eb.Error, "too many connections") || !resp.Close {
				t.Fatalf("refusal %q, close %v", b, resp.Close)
			}
		}
		return c, resp.Status
	}
	first, s := get("127.0.0.1")
	if s != "200 OK" {
		t.Fatalf("first: %s", s)
	}
	if _, s = get("127.0.0.1"); s != "200 OK" {
		t.Fatalf("second: %s", s)
	}
	if _, s = get("127.0.0.1"); s != "503 Service Unavailable" {
		t.Fatalf("third from one address: %s, want 503", s)
	}
	if _, s = get("127.0.0.2"); s != "200 OK" {
		t.Fatalf("another address: %s", s)
	}
	if _, s = get("127.0.0.3"); s != "503 Service Unavailable" {
		t.Fatalf("fourth in total: %s, want 503", s)
	}
	first.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, s = get("127.0.0.3"); s == "200 OK" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %s", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
