// Package linkcheck checks the links, images and stylesheets a message
// points at: HTTP status (HEAD, then GET where HEAD is refused), redirects
// followed on request, a timeout per URL, bounded concurrency and a result
// cache.
//
// A sandbox must not become a way into the network it runs in, so
// loopback, private, link-local and other non-public addresses are refused
// unless Options.AllowInternal is set. The refusal is made on the address
// actually dialed (a net.Dialer Control func), so it holds after DNS
// resolution and on every redirect.
package linkcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults for zero Options fields.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 5
	DefaultCacheTTL    = 5 * time.Minute
	DefaultMaxLinks    = 500
	maxRedirects       = 10
	maxCacheEntries    = 10000
	userAgent          = "mailsandbox-linkcheck/1"
)

// Options configure a Checker. The zero value refuses internal addresses
// and uses the defaults above.
type Options struct {
	// AllowInternal permits loopback, private and link-local targets
	// (--allow-internal-link-checks).
	AllowInternal bool
	// Timeout bounds each URL's check, redirects included.
	Timeout time.Duration
	// Concurrency caps the URLs checked at once.
	Concurrency int
	// CacheTTL is how long a URL's result is reused; negative disables
	// the cache.
	CacheTTL time.Duration
	// MaxLinks caps the URLs checked per message; the rest are listed as
	// not checked.
	MaxLinks int

	// permit, when set (tests), decides which dialed addresses pass
	// instead of the public/internal rule.
	permit func(netip.Addr) bool
}

// Checker checks URLs; it is safe for concurrent use.
type Checker struct {
	opts   Options
	client *http.Client

	mu    sync.Mutex
	cache map[cacheKey]cacheEntry
}

type cacheKey struct {
	url    string
	follow bool
}

type cacheEntry struct {
	link    Link
	expires time.Time
}

// ErrRefused is wrapped by the dial error for a refused address.
var ErrRefused = errors.New("linkcheck: internal address refused")

// New returns a Checker.
func New(opts Options) *Checker {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.MaxLinks <= 0 {
		opts.MaxLinks = DefaultMaxLinks
	}
	c := &Checker{opts: opts, cache: map[cacheKey]cacheEntry{}}
	dialer := &net.Dialer{Timeout: opts.Timeout, Control: c.control}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the control
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   opts.Timeout,
		ResponseHeaderTimeout: opts.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
	}
	c.client = &http.Client{Transport: tr}
	return c
}

// control runs after DNS resolution, for every connection (redirects
// included), with the address about to be dialed.
func (c *Checker) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %q", ErrRefused, address)
	}
	ip := ap.Addr().Unmap()
	if c.opts.permit != nil {
		if !c.opts.permit(ip) {
			return fmt.Errorf("%w: %s", ErrRefused, ip)
		}
		return nil
	}
	if c.opts.AllowInternal {
		return nil
	}
	if why := internal(ip); why != "" {
		return fmt.Errorf("%w: %s is %s", ErrRefused, ip, why)
	}
	return nil
}

// nonPublic are ranges beyond netip's predicates that must not be reached.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach IPv4 internals
}

// internal names why ip is not a public address, or "".
func internal(ip netip.Addr) string {
	switch {
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsPrivate():
		return "a private address"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "a link-local address"
	case ip.IsUnspecified():
		return "an unspecified address"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return "a multicast address"
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return "a reserved address"
		}
	}
	return ""
}

// Link is one URL's outcome.
type Link struct {
	URL  string `json:"url"`
	Kind string `json:"kind"` // link, image, stylesheet
	// StatusCode is the final HTTP status; 0 when there was none (Status
	// then says why).
	StatusCode int    `json:"status_code"`
	Status     string `json:"status"`
	// Location is where a redirect points (when not followed), or the
	// final URL after following redirects, when it differs.
	Location string `json:"location,omitempty"`
	Method   string `json:"method,omitempty"` // HEAD or GET
	OK       bool   `json:"ok"`
	Refused  bool   `json:"refused,omitempty"`
	Cached   bool   `json:"cached,omitempty"`
}

// Result lists the links checked and counts the failures.
type Result struct {
	Errors int    `json:"errors"`
	Links  []Link `json:"links"`
}

// Check checks every ref (deduplicated by URL), follow deciding whether
// redirects are followed.
func (c *Checker) Check(ctx context.Context, refs []Ref, follow bool) *Result {
	seen := map[string]bool{}
	var todo []Ref
	for _, r := range refs {
		if !seen[r.URL] {
			seen[r.URL] = true
			todo = append(todo, r)
		}
	}
	res := &Result{Links: make([]Link, len(todo))}
	sem := make(chan struct{}, c.opts.Concurrency)
	var wg sync.WaitGroup
	for i, r := range todo {
		if i >= c.opts.MaxLinks {
			res.Links[i] = Link{URL: r.URL, Kind: r.Kind, Status: fmt.Sprintf("not checked: over %d links", c.opts.MaxLinks)}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				res.Links[i] = Link{URL: r.URL, Kind: r.Kind, Status: "not checked: " + ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			l := c.one(ctx, r.URL, follow)
			l.Kind = r.Kind
			res.Links[i] = l
		}()
	}
	wg.Wait()
	for _, l := range res.Links {
		if !l.OK {
			res.Errors++
		}
	}
	sort.SliceStable(res.Links, func(i, j int) bool { return !res.Links[i].OK && res.Links[j].OK })
	return res
}

// one checks a URL, from the cache when fresh.
func (c *Checker) one(ctx context.Context, raw string, follow bool) Link {
	key := cacheKey{raw, follow}
	if c.opts.CacheTTL > 0 {
		c.mu.Lock()
		e, ok := c.cache[key]
		c.mu.Unlock()
		if ok && time.Now().Before(e.expires) {
			e.link.Cached = true
			return e.link
		}
	}
	l := c.fetch(ctx, raw, follow)
	if c.opts.CacheTTL > 0 && ctx.Err() == nil {
		now := time.Now()
		c.mu.Lock()
		if len(c.cache) >= maxCacheEntries {
			for k, e := range c.cache {
				if now.After(e.expires) {
					delete(c.cache, k)
				}
			}
			if len(c.cache) >= maxCacheEntries {
				clear(c.cache)
			}
		}
		c.cache[key] = cacheEntry{link: l, expires: now.Add(c.opts.CacheTTL)}
		c.mu.Unlock()
	}
	return l
}

func (c *Checker) fetch(ctx context.Context, raw string, follow bool) Link {
	l := Link{URL: raw}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		l.Status = "not an http(s) URL"
		return l
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodHead, raw, follow)
	l.Method = http.MethodHead
	if err == nil && headRefused(resp.StatusCode) {
		resp.Body.Close()
		resp, err = c.do(ctx, http.MethodGet, raw, follow)
		l.Method = http.MethodGet
	}
	if err != nil {
		l.Status, l.Refused = summary(ctx, err)
		return l
	}
	defer resp.Body.Close()
	io.CopyN(io.Discard, resp.Body, 4096) // lets the connection be reused
	l.StatusCode = resp.StatusCode
	l.Status = http.StatusText(resp.StatusCode)
	if l.Status == "" {
		l.Status = fmt.Sprintf("status %d", resp.StatusCode)
	}
	if loc := resp.Header.Get("Location"); !follow && loc != "" && resp.StatusCode/100 == 3 {
		if ref, err := resp.Request.URL.Parse(loc); err == nil {
			l.Location = ref.String()
		}
	} else if final := resp.Request.URL.String(); final != raw {
		l.Location = final
	}
	l.OK = resp.StatusCode < 400
	return l
}

// headRefused: statuses that mean "not for HEAD" rather than "missing".
func headRefused(code int) bool {
	switch code {
	case http.StatusMethodNotAllowed, http.StatusNotImplemented, http.StatusBadRequest, http.StatusForbidden:
		return true
	}
	return false
}

func (c *Checker) do(ctx context.Context, method, raw string, follow bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, raw, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	client := *c.client
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !follow {
			return http.ErrUseLastResponse
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
	return client.Do(req)
}

// summary turns a request error into a short status.
func summary(ctx context.Context, err error) (status string, refused bool) {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, ErrRefused):
		msg := err.Error()
		if i := strings.Index(msg, ErrRefused.Error()); i >= 0 {
			msg = msg[i+len(ErrRefused.Error()):]
		}
		return "refused" + msg + " (allow with --allow-internal-link-checks)", true
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return "timeout", false
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "no such host", false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout", false
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg, false
}
