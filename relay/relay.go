// Package relay sends chosen captured mail on to real mail servers.
//
// Nothing leaves the sandbox unless a rule (Options.Match) or a release by
// hand (Release) names the recipient, and only when a route exists for it:
// a fixed route for its domain, the smarthost, or direct MX delivery.
//
// The queue lives in the store (store.Delivery rows): one row per message
// and destination, with the pending recipients, each recipient's tries and
// last reply, and the time of the next attempt. Rules are applied at ingest
// (Enqueue is the store's Options.Enqueue hook), so a captured message and
// its queue rows are committed together.
//
// One scheduler loop (Run) wakes at the earliest due time or when the queue
// changes, claims due rows from the store with a lease, and hands them to
// per-destination workers. A worker opens one SMTP connection and sends
// message after message over it (RSET between), up to MaxPerConnection,
// and waits briefly for more before it says QUIT; at most
// MaxParallelPerDestination connections run per destination. Each attempt
// ends with per-recipient results: 2xx delivered, 5xx failed for good, 4xx
// and connection trouble tried again after Backoff. A recipient that fails
// for good, or is still pending when MaxAge has passed, is reported to the
// envelope sender with a delivery status notification (package dsn) filed
// into the sender's mailbox; mail with a null sender is never bounced.
//
// Each relayed copy gets a Received trace field; a message that already
// carries 30 of them is failed as a mail loop (5.4.6), so a route that
// points back into the sandbox cannot spin forever. A recipient domain
// with a null MX, or with neither MX nor address, fails at once; a route
// or smarthost whose name does not resolve is retried.
//
// A process that dies mid-attempt leaves its rows leased; the lease runs
// out and the rows are claimed again (at-least-once delivery). On start all
// pending rows are scheduled.
//
// Notes on go-smtp's client (v0.25): it has no StartTLS on an open
// connection, so the worker greets the server on a plain client, and when
// STARTTLS is offered continues on the same socket with
// smtp.NewClientStartTLS (a replayed greeting lets that second client
// start). TLS handshake errors surface on the first command after
// STARTTLS, which is the EHLO the worker sends right away. The client adds
// BODY=8BITMIME whenever the server offers it; when the server does not,
// the message is converted to 7-bit first (package sevenbit). UTF-8 header
// fields go with SMTPUTF8 when offered, else as RFC 2047 encoded-words; a
// non-ASCII mailbox (envelope or header) needs SMTPUTF8 and fails for good
// without it (5.6.7). DSN parameters are not used: the relay reports
// failures itself.
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// Store is what the relay needs from the store.
type Store interface {
	Get(ctx context.Context, id string) (store.Message, error)
	Raw(ctx context.Context, id string) ([]byte, error)
	Ingest(ctx context.Context, env store.Envelope, raw []byte) (string, error)
	Enqueue(ctx context.Context, messageID string, ds []store.NewDelivery) ([]int64, error)
	ClaimDue(ctx context.Context, now time.Time, owner string, lease time.Duration, limit int) ([]store.Delivery, error)
	RecordAttempt(ctx context.Context, id int64, owner string, a store.Attempt) error
	NextDue(ctx context.Context) (time.Time, bool, error)
	Subscribe(ctx context.Context) <-chan store.Event
}

var _ Store = (*store.Store)(nil)

// Errors. Both wrap store.ErrInvalid, so an API maps them to a 4xx.
var (
	// ErrNoRoute: relay is not configured for a recipient's domain.
	ErrNoRoute = fmt.Errorf("relay: no route to recipient: %w", store.ErrInvalid)
	// ErrBadAddress: a recipient is not an address.
	ErrBadAddress = fmt.Errorf("relay: bad recipient address: %w", store.ErrInvalid)
)

// Options configure a Queue. Zero values have the defaults noted.
type Options struct {
	// Smarthost "host:port" carries all mail that no Route names. Empty: none.
	Smarthost string
	// SmarthostAuth "user:pass" is sent with AUTH PLAIN to the smarthost.
	SmarthostAuth string
	// MX delivers to each recipient domain's MX hosts when neither a route
	// nor the smarthost applies.
	MX bool
	// MXPort is the port used for MX hosts: 0 means 25.
	MXPort int
	// Routes maps a recipient domain (lower case) to "host:port"; a route
	// beats the smarthost and MX.
	Routes map[string]string
	// Match lists globs (path.Match syntax, matched against lower-cased
	// addresses, e.g. "*@mycompany.com"): captured mail to a matching
	// recipient is relayed automatically.
	Match []string
	// MaxAge is how long a delivery may be retried before it fails and is
	// bounced: 0 means 24h.
	MaxAge time.Duration
	// RetryMin and RetryMax bound the exponential backoff: 0 means 1m and
	// 1h.
	RetryMin, RetryMax time.Duration
	// TLSConfig is the base TLS configuration (e.g. RootCAs). The smarthost's
	// certificate is verified with it, unless SmarthostInsecureTLS; MX hosts
	// and routes use STARTTLS opportunistically without verification and
	// fall back to plain text when the handshake fails. nil: system roots.
	TLSConfig *tls.Config
	// SmarthostInsecureTLS skips verifying the smarthost's certificate.
	SmarthostInsecureTLS bool
	// NoTLS never uses STARTTLS.
	NoTLS bool
	// MaxPerConnection caps the messages sent over one connection: 0 means
	// 100.
	MaxPerConnection int
	// MaxParallelPerDestination caps the connections to one destination at
	// once: 0 means 2.
	MaxParallelPerDestination int
	// MaxConnections caps all connections at once: 0 means 16.
	MaxConnections int
	// ConnectionIdle is how long a connection waits for more messages before
	// QUIT: 0 means 1s; negative means not at all.
	ConnectionIdle time.Duration
	// CommandTimeout bounds each SMTP command: 0 means 5m.
	CommandTimeout time.Duration
	// Lease is how long a claimed delivery stays reserved for this process;
	// after it, another worker (or this one after a restart) may take it: 0
	// means 10m.
	Lease time.Duration
	// HeloName is sent with EHLO (once before STARTTLS, once after) and
	// names the reporting MTA in bounces: "" means the host's fully
	// qualified name when one resolves, else the address literal of the
	// connection's local end ("[192.0.2.1]"), as a bare "vm" is refused
	// by destinations with reject_non_fqdn_helo_hostname.
	HeloName string
	// Hostname names this host: nil means os.Hostname.
	Hostname func() (string, error)
	// LookupHost and LookupAddr resolve names for the default HeloName:
	// nil means net.DefaultResolver's.
	LookupHost func(ctx context.Context, host string) ([]string, error)
	LookupAddr func(ctx context.Context, addr string) ([]string, error)
	// Dial opens connections: nil means a net.Dialer with a 30s timeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// LookupMX resolves MX records: nil means net.DefaultResolver.LookupMX.
	LookupMX func(ctx context.Context, domain string) ([]*net.MX, error)
	// Now is the clock: nil means time.Now.
	Now func() time.Time
	// Registerer, when set, gets the relay's Prometheus metrics.
	Registerer prometheus.Registerer
}

// Enabled reports whether any route is configured.
func (o Options) Enabled() bool {
	return o.Smarthost != "" || o.MX || len(o.Routes) > 0
}

func (o *Options) setDefaults() {
	if o.MXPort == 0 {
		o.MXPort = 25
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.RetryMin <= 0 {
		o.RetryMin = time.Minute
	}
	if o.RetryMax <= 0 {
		o.RetryMax = time.Hour
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = o.RetryMin
	}
	if o.MaxPerConnection <= 0 {
		o.MaxPerConnection = 100
	}
	if o.MaxParallelPerDestination <= 0 {
		o.MaxParallelPerDestination = 2
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 16
	}
	if o.ConnectionIdle == 0 {
		o.ConnectionIdle = time.Second
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 5 * time.Minute
	}
	if o.Lease <= 0 {
		o.Lease = 10 * time.Minute
	}
	if o.Hostname == nil {
		o.Hostname = os.Hostname
	}
	if o.LookupHost == nil {
		o.LookupHost = net.DefaultResolver.LookupHost
	}
	if o.LookupAddr == nil {
		o.LookupAddr = net.DefaultResolver.LookupAddr
	}
	if o.Dial == nil {
		d := &net.Dialer{Timeout: 30 * time.Second}
		o.Dial = d.DialContext
	}
	if o.LookupMX == nil {
		o.LookupMX = net.DefaultResolver.LookupMX
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	routes := map[string]string{}
	for d, r := range o.Routes {
		routes[strings.ToLower(strings.TrimSuffix(d, "."))] = r
	}
	o.Routes = routes
	match := make([]string, len(o.Match))
	for i, m := range o.Match {
		match[i] = strings.ToLower(m)
	}
	o.Match = match
}

// Validate checks the options: globs, host:port values, auth.
func (o Options) Validate() error {
	for _, m := range o.Match {
		if _, err := path.Match(strings.ToLower(m), "x@example.com"); err != nil {
			return fmt.Errorf("relay match pattern %q: %w", m, err)
		}
	}
	if o.Smarthost != "" {
		if _, _, err := net.SplitHostPort(o.Smarthost); err != nil {
			return fmt.Errorf("relay smarthost %q: want host:port", o.Smarthost)
		}
	}
	if o.HeloName != "" && !validHelo(o.HeloName) {
		return fmt.Errorf("relay helo name %q: want a domain name or an address literal such as [192.0.2.1]", o.HeloName)
	}
	if o.SmarthostAuth != "" && !strings.Contains(o.SmarthostAuth, ":") {
		return errors.New("relay smarthost auth: want user:pass")
	}
	for d, r := range o.Routes {
		if d == "" || strings.Contains(d, "@") {
			return fmt.Errorf("relay route %q: want domain=host:port", d)
		}
		if _, _, err := net.SplitHostPort(r); err != nil {
			return fmt.Errorf("relay route %s=%s: want host:port", d, r)
		}
	}
	return nil
}

// Queue is the relay: routing rules, the scheduler and its workers.
type Queue struct {
	st    Store
	opts  Options
	log   *slog.Logger
	owner string
	m     *metrics

	mu      sync.Mutex
	dests   map[string]*destState
	claimed int                // deliveries claimed and not yet recorded
	held    map[int64]struct{} // their ids
	conns   chan struct{}
	wake    chan struct{}
	workers sync.WaitGroup

	startOnce sync.Once
	cancel    context.CancelFunc
	done      chan struct{}

	testAfterRecord func() // tests: runs after an attempt is recorded

	// helo is HeloName or the resolved FQDN; "" greets with the address
	// literal of each connection. mtaName names us in bounces and trace
	// fields: helo, else the host name.
	helo, mtaName string
}

// New builds a queue over st. It sends nothing until Run (or Start).
func New(st Store, opts Options, log *slog.Logger) (*Queue, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	host, _ := os.Hostname()
	q := &Queue{
		st: st, opts: opts, log: log,
		owner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), randHex(6)),
		dests: map[string]*destState{},
		held:  map[int64]struct{}{},
		conns: make(chan struct{}, opts.MaxConnections),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	q.helo = opts.HeloName
	if q.helo == "" {
		q.helo = fqdn(context.Background(), opts)
	}
	q.mtaName = q.helo
	if q.mtaName == "" {
		q.mtaName = host
		if q.mtaName == "" {
			q.mtaName = "localhost"
		}
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	q.m = m
	return q, nil
}

// Destination key prefixes. A destination is "host:port" (smarthost or
// route) or "mx:domain".
const mxPrefix = "mx:"

// route returns the destination for one address, or "" when none.
func (q *Queue) route(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	domain := strings.ToLower(strings.TrimSuffix(addr[at+1:], "."))
	if r, ok := q.opts.Routes[domain]; ok {
		return r
	}
	if q.opts.Smarthost != "" {
		return q.opts.Smarthost
	}
	if q.opts.MX && domain != "" {
		return mxPrefix + domain
	}
	return ""
}

// Matches reports whether addr is relayed automatically by a Match rule.
func (q *Queue) Matches(addr string) bool { return matchAny(q.opts.Match, addr) }

func matchAny(globs []string, addr string) bool {
	a := store.NormalizeAddress(addr)
	for _, g := range globs {
		if ok, _ := path.Match(g, a); ok {
			return true
		}
	}
	return false
}

// group routes recipients and groups them by destination, in a stable
// order. Recipients without a route are returned separately.
func (q *Queue) group(rcpts []string) (ds []store.NewDelivery, unrouted []string) {
	by := map[string][]string{}
	seen := map[string]bool{}
	for _, r := range rcpts {
		a := strings.Trim(strings.TrimSpace(r), "<>")
		if seen[strings.ToLower(a)] {
			continue
		}
		seen[strings.ToLower(a)] = true
		dest := q.route(a)
		if dest == "" {
			unrouted = append(unrouted, a)
			continue
		}
		by[dest] = append(by[dest], a)
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ds = append(ds, store.NewDelivery{Recipients: by[k], Destination: k})
	}
	return ds, unrouted
}

// Enqueue is the store's ingest hook (store.Options.Enqueue): it returns a
// delivery for the recipients of env that a Match rule names and that have
// a route. Everything else only stays captured.
func (q *Queue) Enqueue(env store.Envelope) []store.NewDelivery {
	if len(q.opts.Match) == 0 {
		return nil
	}
	var chosen []string
	for _, r := range env.To {
		if matchAny(q.opts.Match, r) {
			chosen = append(chosen, r)
		}
	}
	if len(chosen) == 0 {
		return nil
	}
	ds, unrouted := q.group(chosen)
	if len(unrouted) > 0 {
		q.log.Warn("relay rule matches recipients without a route", "recipients", unrouted)
	}
	return ds
}

// Release puts captured message id on the queue for the given recipients,
// or for its original envelope recipients when to is empty. It fails with
// ErrNoRoute (queueing nothing) when a recipient has no route, and with
// store.ErrNotFound when the message does not exist.
func (q *Queue) Release(ctx context.Context, messageID string, to []string) error {
	if len(to) == 0 {
		m, err := q.st.Get(ctx, messageID)
		if err != nil {
			return fmt.Errorf("release %s: %w", messageID, err)
		}
		to = m.Envelope.To
	}
	for _, a := range to {
		a = strings.Trim(strings.TrimSpace(a), "<>")
		at := strings.LastIndexByte(a, '@')
		if at <= 0 || at == len(a)-1 || strings.ContainsAny(a, " \t\r\n<>") {
			return fmt.Errorf("release %s: %q: %w", messageID, a, ErrBadAddress)
		}
	}
	ds, unrouted := q.group(to)
	if len(unrouted) > 0 {
		if !q.opts.Enabled() {
			return fmt.Errorf("release %s: relay is not configured: %w", messageID, ErrNoRoute)
		}
		return fmt.Errorf("release %s: %s: %w", messageID, strings.Join(unrouted, ", "), ErrNoRoute)
	}
	if _, err := q.st.Enqueue(ctx, messageID, ds); err != nil {
		return fmt.Errorf("release %s: %w", messageID, err)
	}
	q.poke()
	return nil
}

// Start runs the scheduler in the background until Close.
func (q *Queue) Start() {
	q.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		q.cancel = cancel
		go func() {
			defer close(q.done)
			_ = q.Run(ctx)
		}()
	})
}

// Close stops a queue started with Start and waits for its connections to
// end. Deliveries in flight are left leased and are tried again after a
// restart. Safe to call more than once.
func (q *Queue) Close() error {
	started := false
	q.startOnce.Do(func() {}) // a Close before Start starts nothing
	if q.cancel != nil {
		q.cancel()
		started = true
	}
	if started {
		<-q.done
	}
	return nil
}

func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Backoff is the delay after the given number of failed attempts:
// min × 2^(attempts−1), capped at max.
func Backoff(attempts int, min, max time.Duration) time.Duration {
	if attempts < 1 {
		attempts = 1
	}
	d := min
	for i := 1; i < attempts; i++ {
		d *= 2
		if d >= max || d <= 0 {
			return max
		}
	}
	if d > max {
		return max
	}
	return d
}
