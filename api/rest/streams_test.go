package rest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

type sseEvent struct{ event, data string }

// openSSE opens GET /events with client and returns its events; it returns
// once the server has subscribed (it sends its greeting after).
func openSSE(t *testing.T, client *http.Client, base string, wrap ...func(*http.Request) *http.Request) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/events", nil)
	for _, w := range wrap {
		req = w(req)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	events := make(chan sseEvent, 64)
	ready := make(chan struct{})
	go func() {
		defer close(events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 16<<20) // a message to thousands of mailboxes is one long line
		var cur sseEvent
		first := true
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if first {
					close(ready)
					first = false
				}
				if cur.event != "" {
					select {
					case events <- cur:
					case <-ctx.Done():
						return
					}
				}
				cur = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				cur.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				cur.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("no greeting on the event stream")
	}
	return events
}

// nextSSE returns the next event named kind, skipping others.
func nextSSE(t *testing.T, events <-chan sseEvent, kind string) sseEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("stream ended before a %s event", kind)
			}
			if ev.event == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", kind)
		}
	}
}

// The stream says "deleted" when IMAP expunges a message (store Expunge),
// "relay" when the queue changes, and "reset" after cutting off a client
// that fell behind.
func TestEventsDeletedRelayReset(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	ctx := context.Background()
	events := openSSE(t, http.DefaultClient, e.url)

	id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: expunged\r\n", "x")
	f, err := e.st.Folder(ctx, "bob@example.com", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.UpdateFlags(ctx, f.ID, []uint32{1}, store.FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Expunge(ctx, f.ID, nil); err != nil {
		t.Fatal(err)
	}
	var del struct {
		ID        string
		Mailboxes []string
	}
	json.Unmarshal([]byte(nextSSE(t, events, "deleted").data), &del)
	if del.ID != id || len(del.Mailboxes) != 1 || del.Mailboxes[0] != "bob@example.com" {
		t.Fatalf("deleted event %+v, want message %s leaving bob@example.com", del, id)
	}

	id = e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: relayed\r\n", "x")
	dids, err := e.st.Enqueue(ctx, id, []store.NewDelivery{{Recipients: []string{"x@real.example"}, Destination: "real.example"}})
	if err != nil {
		t.Fatal(err)
	}
	var rel struct {
		ID        string
		MessageID string `json:"message_id"`
	}
	json.Unmarshal([]byte(nextSSE(t, events, "relay").data), &rel)
	if rel.ID != strconv.FormatInt(dids[0], 10) || rel.MessageID != id {
		t.Fatalf("relay event %+v, want delivery %d of %s", rel, dids[0], id)
	}

	// One enqueue of more deliveries than a subscriber may fall behind by
	// (the store's buffer is 4096 events) publishes their events in one
	// burst, more than the subscriber has room for: it is cut off, and says
	// so. (Cheap in SQL, so quick under -race too, unlike an ingest to
	// thousands of mailboxes.)
	burst := make([]store.NewDelivery, 4097)
	for i := range burst {
		burst[i] = store.NewDelivery{Recipients: []string{fmt.Sprintf("r%d@real.example", i)}, Destination: "real.example"}
	}
	if _, err := e.st.Enqueue(ctx, id, burst); err != nil {
		t.Fatal(err)
	}
	nextSSE(t, events, "reset")
	// It goes on after the reset.
	e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: after\r\n", "x")
	for {
		ev := nextSSE(t, events, "message")
		if strings.Contains(ev.data, `"subject":"after"`) {
			break
		}
	}
}

// metricValue reads one unlabelled sample from /metrics.
func metricValue(t *testing.T, e *testEnv, name string) float64 {
	t.Helper()
	r := e.expect(http.MethodGet, "/metrics", nil, "", 200)
	for _, l := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// subscriptions counts the store subscriptions alive in this process (each
// has a goroutine in Subscribe waiting for its end).
func subscriptions() int {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	n := 0
	for _, block := range strings.Split(b.String(), "\n\n") {
		if !strings.Contains(block, "store.(*Store).Subscribe.func") {
			continue
		}
		count, _, _ := strings.Cut(block, " @")
		c, _ := strconv.Atoi(count)
		n += c
	}
	return n
}

// A wait whose client goes away ends at once: its handler returns (the
// pending gauge drops) and its store subscription is released, long
// before its timeout. Not parallel: it counts the store subscriptions of
// the whole process, and parallel tests run only after the serial ones.
func TestWaitReleasedWhenClientGoes(t *testing.T) {
	e := newTestServer(t)
	base := subscriptions()
	waiting := make(chan struct{}, 1)
	e.srv.waitingHook = func() { waiting <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/api/v1/messages/wait?to=x@&timeout=5m", nil)
	done := make(chan error, 1)
	go func() {
		_, err := http.DefaultClient.Do(req)
		done <- err
	}()
	<-waiting
	if n := metricValue(t, e, "mailsandbox_wait_requests_pending"); n != 1 {
		t.Fatalf("pending waits = %v while waiting", n)
	}
	if n := subscriptions(); n != base+1 {
		t.Fatalf("subscriptions = %d while waiting, want %d", n, base+1)
	}
	cancel()
	<-done
	deadline := time.Now().Add(10 * time.Second) // far below the 5m timeout
	for {
		pending := metricValue(t, e, "mailsandbox_wait_requests_pending")
		subs := subscriptions()
		if pending == 0 && subs == base {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after the client left: %v waits pending, %d subscriptions (want 0 and %d)", pending, subs, base)
		}
		time.Sleep(20 * time.Millisecond) // polling a gauge: nothing to wait on
	}
}

// reuseClient is a client on one connection that records whether each
// request reused it.
func reuseClient() (*http.Client, func(*http.Request) *http.Request, *[]bool) {
	var reused []bool
	trace := func(r *http.Request) *http.Request {
		return r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) },
		}))
	}
	return &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}, Timeout: 30 * time.Second}, trace, &reused
}

// An idle keep-alive connection survives past the read and write timeouts
// and is reused: each request gets its own deadlines.
func TestIdleConnectionReused(t *testing.T) {
	t.Parallel()
	// Three seconds, not less: each request (an ingest under -race, beside
	// the package's other tests and other packages) must fit in the
	// timeouts; at one second a first request once got EOF in a -p 4 CI
	// run, its read deadline passed while the server's goroutine waited
	// for a CPU.
	e := newTestServer(t, func(o *Options) { o.ReadTimeout, o.WriteTimeout = 3*time.Second, 3*time.Second })
	cl, trace, reused := reuseClient()
	post := func() {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.url+"/api/v1/messages",
			strings.NewReader("From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\n\r\nhi\r\n"))
		req.Header.Set("Content-Type", "message/rfc822")
		resp, err := cl.Do(trace(req))
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
	time.Sleep(4 * time.Second) // idle past both timeouts (the behaviour under test is time passing)
	post()
	if len(*reused) != 2 || !(*reused)[1] {
		t.Fatalf("connection reused: %v; the idle connection was closed", *reused)
	}
}

// A client that stops reading a large response is cut off after
// WriteTimeout instead of holding the handler forever.
func TestWriteTimeoutCutsSlowReader(t *testing.T) {
	t.Parallel()
	// 6 s: under -race with other packages' tests beside it, 3 s was
	// sometimes too short to start a 9 MB response.
	e := newTestServer(t, func(o *Options) { o.WriteTimeout = 6 * time.Second })
	// Larger than loopback's socket buffers (at most 4 MiB each way), so the
	// server blocks writing; small enough to start the response well
	// within WriteTimeout even under -race on a busy machine.
	body := strings.Repeat(strings.Repeat("x", 76)+"\r\n", 120_000)
	id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: big\r\n", body)
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /api/v1/messages/%s/raw HTTP/1.1\r\nHost: x\r\n\r\n", id)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response header within WriteTimeout: %v", err)
	}
	time.Sleep(8 * time.Second) // a client that stops reading past WriteTimeout (the behaviour under test)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil {
		t.Fatalf("read the whole response (%d bytes) after stalling past WriteTimeout: the server waited for the slow reader", n)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("server neither finished nor closed: %v", err)
	}
}

// The event stream and long waits outlive WriteTimeout, also on a
// connection an earlier request (with its deadline) used.
func TestStreamsOutliveWriteTimeout(t *testing.T) {
	t.Parallel()
	// A second, not less: the first request must fit in it under -race
	// beside the package's other tests (at 200 ms it once did not).
	e := newTestServer(t, func(o *Options) { o.WriteTimeout = time.Second })
	cl, trace, reused := reuseClient()
	get := func(path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
		resp, err := cl.Do(trace(req))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get("/api/v1/mailboxes")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// A wait longer than WriteTimeout answers its 408 whole.
	resp = get("/api/v1/messages/wait?to=nobody@&timeout=2s")
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "within 2s") {
		t.Fatalf("wait past WriteTimeout: %d %s %v", resp.StatusCode, b, err)
	}
	events := openSSE(t, cl, e.url, trace)
	if len(*reused) != 3 || !(*reused)[1] || !(*reused)[2] {
		t.Fatalf("connection reused: %v, want one connection", *reused)
	}
	time.Sleep(2 * time.Second) // the stream idles past WriteTimeout (the behaviour under test)
	id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: late\r\n", "x")
	if ev := nextSSE(t, events, "message"); !strings.Contains(ev.data, id) {
		t.Fatalf("message event %s, want %s", ev.data, id)
	}
}
