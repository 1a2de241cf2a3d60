package linkcheck

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// site is a local web server with the answers a newsletter's links get.
type site struct {
	*httptest.Server
	hits atomic.Int64
}

func newSite(t *testing.T) *site {
	s := &site{}
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusMovedPermanently) })
	mux.HandleFunc("/nohead", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func byURL(r *Result) map[string]Link {
	m := map[string]Link{}
	for _, l := range r.Links {
		m[l.URL] = l
	}
	return m
}

func TestStatuses(t *testing.T) {
	s := newSite(t)
	c := New(Options{AllowInternal: true, Timeout: 500 * time.Millisecond})
	refs := Extract(`<a href="`+s.URL+`/ok">a</a><a href="`+s.URL+`/missing">b</a><img src="`+s.URL+`/moved">`+
		`<link rel="stylesheet" href="`+s.URL+`/nohead"><div style="background-image:url('`+s.URL+`/slow')"></div>`,
		"text link "+s.URL+"/ok.")
	if len(refs) != 5 {
		t.Fatalf("extracted %+v", refs)
	}
	r := c.Check(context.Background(), refs, false)
	got := byURL(r)
	want := map[string]int{"/ok": 200, "/missing": 404, "/moved": 301, "/nohead": 200, "/slow": 0}
	for p, code := range want {
		l := got[s.URL+p]
		if l.StatusCode != code {
			t.Errorf("%s: %+v, want status %d", p, l, code)
		}
	}
	if got[s.URL+"/nohead"].Method != http.MethodGet {
		t.Errorf("HEAD refused, but GET not tried: %+v", got[s.URL+"/nohead"])
	}
	if got[s.URL+"/slow"].Status != "timeout" {
		t.Errorf("slow: %+v", got[s.URL+"/slow"])
	}
	if got[s.URL+"/moved"].Location != s.URL+"/ok" || got[s.URL+"/moved"].OK != true {
		t.Errorf("redirect not followed should report 301 and where: %+v", got[s.URL+"/moved"])
	}
	if got[s.URL+"/nohead"].Kind != "stylesheet" || got[s.URL+"/slow"].Kind != "image" {
		t.Errorf("kinds: %+v", r.Links)
	}
	if r.Errors != 2 {
		t.Errorf("errors %d, want 2 (404 and timeout)", r.Errors)
	}

	// Followed, the redirect ends at /ok. A new checker: no cache.
	r = New(Options{AllowInternal: true}).Check(context.Background(), []Ref{{URL: s.URL + "/moved", Kind: "link"}}, true)
	if l := r.Links[0]; l.StatusCode != 200 || l.Location != s.URL+"/ok" {
		t.Errorf("followed redirect: %+v", l)
	}
}

func TestExtractKinds(t *testing.T) {
	refs := Extract(`<style>@import "https://a.example/x.css"; .h{background:url(https://a.example/bg.png)}</style>`+
		`<table background="https://a.example/t.gif"><tr><td><a href="mailto:x@example.com">m</a><a href="#top">t</a>`+
		`<img srcset="https://a.example/1.png 1x, https://a.example/2.png 2x"></table>`, "Read https://a.example/read, please.")
	want := []Ref{{"https://a.example/x.css", "stylesheet"}, {"https://a.example/bg.png", "image"}, {"https://a.example/t.gif", "image"},
		{"https://a.example/1.png", "image"}, {"https://a.example/2.png", "image"}, {"https://a.example/read", "link"}}
	if fmt.Sprint(refs) != fmt.Sprint(want) {
		t.Errorf("got  %v\nwant %v", refs, want)
	}
}

func TestCache(t *testing.T) {
	s := newSite(t)
	c := New(Options{AllowInternal: true})
	refs := []Ref{{URL: s.URL + "/ok", Kind: "link"}}
	c.Check(context.Background(), refs, false)
	n := s.hits.Load()
	r := c.Check(context.Background(), refs, false)
	if s.hits.Load() != n || !r.Links[0].Cached {
		t.Errorf("second check hit the server again (%d → %d): %+v", n, s.hits.Load(), r.Links[0])
	}
	c = New(Options{AllowInternal: true, CacheTTL: -1})
	c.Check(context.Background(), refs, false)
	c.Check(context.Background(), refs, false)
	if s.hits.Load() != n+2 {
		t.Errorf("with the cache off, hits %d → %d, want +2", n, s.hits.Load())
	}
}

// TestRefusesInternal: without AllowInternal, loopback targets are refused
// whether named by IP or by a name that resolves to one, and the server
// never sees a request.
func TestRefusesInternal(t *testing.T) {
	s := newSite(t)
	_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	c := New(Options{})
	r := c.Check(context.Background(), []Ref{
		{URL: s.URL + "/ok", Kind: "link"},
		{URL: "http://localhost:" + port + "/ok", Kind: "link"},
		{URL: "http://[::ffff:127.0.0.1]:" + port + "/ok", Kind: "link"},
	}, true)
	for _, l := range r.Links {
		if !l.Refused || l.StatusCode != 0 || !strings.Contains(l.Status, "--allow-internal-link-checks") {
			t.Errorf("%s: %+v, want refused", l.URL, l)
		}
	}
	if s.hits.Load() != 0 {
		t.Errorf("the internal server got %d requests", s.hits.Load())
	}
}

// TestRefusesInternalRedirect: a permitted server redirecting to a
// refused address does not get the second hop through.
func TestRefusesInternalRedirect(t *testing.T) {
	target := newSite(t) // on 127.0.0.1, refused below
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/ok", http.StatusFound)
	}))
	front.Listener.Close()
	front.Listener = l
	front.Start()
	defer front.Close()
	permitted := netip.MustParseAddr("127.0.0.2")
	c := New(Options{permit: func(a netip.Addr) bool { return a == permitted }})
	r := c.Check(context.Background(), []Ref{{URL: front.URL + "/", Kind: "link"}}, true)
	if lk := r.Links[0]; !lk.Refused || target.hits.Load() != 0 {
		t.Errorf("redirect to a refused address: %+v, target hits %d", lk, target.hits.Load())
	}
}

func TestInternalRanges(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "::1", "fe80::1", "fd00::1", "0.0.0.0", "100.64.0.1", "::"} {
		if internal(netip.MustParseAddr(a)) == "" {
			t.Errorf("%s counted as public", a)
		}
	}
	for _, a := range []string{"93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"} {
		if why := internal(netip.MustParseAddr(a)); why != "" {
			t.Errorf("%s counted as %s", a, why)
		}
	}
}

func TestBoundedConcurrency(t *testing.T) {
	var cur, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		cur.Add(-1)
	}))
	defer srv.Close()
	var refs []Ref
	for i := 0; i < 20; i++ {
		refs = append(refs, Ref{URL: srv.URL + "/" + string(rune('a'+i)), Kind: "link"})
	}
	New(Options{AllowInternal: true, Concurrency: 3}).Check(context.Background(), refs, false)
	if peak.Load() > 3 || peak.Load() == 0 {
		t.Errorf("peak concurrency %d, want 1..3", peak.Load())
	}
}

func FuzzExtract(f *testing.F) {
	f.Add(`<a href="https://x.example/a">`, "see https://y.example/b.")
	f.Add(`<style>.a{background:url("http://z.example/i.png")}</style><img srcset="http://a.example/1 1x, http://a.example/2 2x">`, "")
	f.Fuzz(func(t *testing.T, h, text string) {
		for _, r := range Extract(h, text) {
			if !strings.HasPrefix(strings.ToLower(r.URL), "http") {
				t.Fatalf("non-http URL %q", r.URL)
			}
		}
	})
}
