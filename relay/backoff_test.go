package relay

import (
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	min, max := time.Minute, time.Hour
	cases := []struct {
		attempts int
		want     time.Duration
	}{
		{0, time.Minute},
		{1, time.Minute},
		{2, 2 * time.Minute},
		{3, 4 * time.Minute},
		{6, 32 * time.Minute},
		{7, time.Hour},
		{100, time.Hour},
		{1 << 30, time.Hour},
	}
	for _, c := range cases {
		if got := Backoff(c.attempts, min, max); got != c.want {
			t.Errorf("Backoff(%d) = %v, want %v", c.attempts, got, c.want)
		}
	}
	if got := Backoff(3, time.Hour, time.Minute); got != time.Minute {
		t.Errorf("max below min: %v", got)
	}
}

func TestMatchAndRoute(t *testing.T) {
	t.Parallel()
	q, err := New(nil, Options{
		Match:     []string{"*@MyCompany.com", "qa+*@example.org", "exact@one.test"},
		Routes:    map[string]string{"MyCompany.com": "mx.internal:2525"},
		Smarthost: "smarthost.test:587",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		addr  string
		match bool
		dest  string
	}{
		{"bob@mycompany.com", true, "mx.internal:2525"},
		{"Bob@MYCOMPANY.COM", true, "mx.internal:2525"},
		{"<bob@mycompany.com>", true, "mx.internal:2525"},
		{"bob@sub.mycompany.com", false, "smarthost.test:587"},
		{"qa+1@example.org", true, "smarthost.test:587"},
		{"qa@example.org", false, "smarthost.test:587"},
		{"exact@one.test", true, "smarthost.test:587"},
		{"other@one.test", false, "smarthost.test:587"},
		{"bob@mycompany.com.evil.test", false, "smarthost.test:587"},
	}
	for _, c := range cases {
		if got := q.Matches(c.addr); got != c.match {
			t.Errorf("Matches(%q) = %v", c.addr, got)
		}
		if got := q.route(store.NormalizeAddress(c.addr)); got != c.dest {
			t.Errorf("route(%q) = %q, want %q", c.addr, got, c.dest)
		}
	}
	ds := q.Enqueue(store.Envelope{From: "a@b.test", To: []string{"x@mycompany.com", "y@other.test", "qa+2@example.org", "X@MyCompany.com"}})
	if len(ds) != 2 || ds[0].Destination != "mx.internal:2525" || len(ds[0].Recipients) != 1 || ds[1].Destination != "smarthost.test:587" || ds[1].Recipients[0] != "qa+2@example.org" {
		t.Fatalf("Enqueue = %+v", ds)
	}
}

func TestNoRouteNoRelay(t *testing.T) {
	t.Parallel()
	// A rule without any route relays nothing: never an open relay.
	q, err := New(nil, Options{Match: []string{"*"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ds := q.Enqueue(store.Envelope{To: []string{"a@b.test"}}); len(ds) != 0 {
		t.Fatalf("Enqueue = %+v", ds)
	}
	// MX delivery routes every domain to itself.
	q, _ = New(nil, Options{MX: true, Routes: map[string]string{"b.test": "127.0.0.1:25"}}, nil)
	if d := q.route("x@c.test"); d != "mx:c.test" {
		t.Fatalf("route = %q", d)
	}
	if d := q.route("x@b.test"); d != "127.0.0.1:25" {
		t.Fatalf("route = %q", d)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	bad := []Options{
		{Match: []string{"[a-"}},
		{Smarthost: "nohostport"},
		{Smarthost: "h:25", SmarthostAuth: "nocolon"},
		{Routes: map[string]string{"a.test": "noport"}},
		{Routes: map[string]string{"x@a.test": "h:25"}},
	}
	for _, o := range bad {
		if _, err := New(nil, o, nil); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err   error
		kind  string
		reply string
	}{
		{permanent(550, [3]int{5, 1, 1}, "no such\r\nuser"), failed, "550 5.1.1 no such user"},
		{permanent(451, [3]int{4, 3, 0}, "later"), deferred, "451 4.3.0 later"},
		{permanent(554, [3]int{}, "go away"), failed, "554 go away"},
		{tempError{permanent(535, [3]int{5, 7, 8}, "bad creds")}, deferred, "535 5.7.8 bad creds"},
		{errTLS, deferred, "starttls"},
	}
	for _, c := range cases {
		o := classify(c.err)
		if o.kind != c.kind || o.reply != c.reply {
			t.Errorf("classify(%v) = %+v, want %s %q", c.err, o, c.kind, c.reply)
		}
	}
}
