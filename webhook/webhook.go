// Package webhook posts every new message to configured URLs, reliably.
//
// Capture does nothing for webhooks: the store keeps, per URL, a mark of
// the last message handed over (store.ClaimNewWebhooks, webhookmarks.go in
// the store). A Sender runs one stream per URL that wakes when mail
// arrives, claims the messages after the mark under a lease (one small
// UPDATE; on PostgreSQL only one instance wins it, so instances sharing a
// store post each message once), posts them Concurrency at a time, and
// records the batch in one transaction: the mark moves on, and each
// delivery whose first attempt failed becomes a row of the retry queue
// (store.Webhook). A SIGKILL loses nothing: the messages after the mark
// are posted after a restart, once the dead sender's lease ends.
//
// Retries run like the relay's scheduler: one loop claims due rows with a
// lease (FOR UPDATE SKIP LOCKED on PostgreSQL), at the earliest due time or
// when a row is retried by hand, and hands them to a fixed pool of
// Concurrency workers; outcomes are recorded in batches. Each attempt is
// one POST, bounded by Timeout for the whole exchange (connect, headers and
// body), so a receiver that never answers holds a worker for Timeout at
// most.
//
// A 2xx response ends a delivery. Anything else (a connection error, a
// timeout, any other status, a redirect) is retried after an exponential
// backoff from RetryMin to RetryMax, until MaxAge has passed since the row
// was queued; then it is failed (given up). Redirects are never followed:
// a webhook URL is configured by whoever runs the sandbox, and a 3xx is
// reported as an error naming the Location, so the URL can be fixed.
// Delivered and failed rows are deleted after Keep. A delivery that
// succeeded at its first attempt leaves no row, only a count in its mark
// (store.WebhookCounts).
//
// Requests carry Content-Type application/json, User-Agent
// "mailsandbox-webhook", X-Mailsandbox-Delivery (store.WebhookDeliveryID:
// the message id and a hash of the URL, the same on every attempt, for
// de-duplication), X-Mailsandbox-Attempt (1
// for the first try) and, with a Secret, X-Mailsandbox-Signature:
// "sha256=" followed by the lower-case hex HMAC-SHA256 of the exact body
// bytes keyed with the secret.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/internal/sched"
)

// Header names sent with every webhook.
const (
	HeaderSignature = "X-Mailsandbox-Signature"
	HeaderDelivery  = "X-Mailsandbox-Delivery"
	HeaderAttempt   = "X-Mailsandbox-Attempt"
	UserAgent       = "mailsandbox-webhook"
)

// Store is what the sender needs from the store.
type Store interface {
	ClaimDueWebhooks(ctx context.Context, now time.Time, owner string, lease time.Duration, limit int) ([]store.Webhook, error)
	RecordWebhookAttempts(ctx context.Context, owner string, outs []store.WebhookOutcome) ([]int64, error)
	NextWebhookDue(ctx context.Context) (time.Time, bool, error)
	PruneWebhooks(ctx context.Context, cut time.Time) (int64, error)
	Subscribe(ctx context.Context) <-chan store.Event
	ClaimNewWebhooks(ctx context.Context, c store.NewWebhookClaim) (store.NewWebhookBatch, error)
	FinishNewWebhooks(ctx context.Context, r store.NewWebhookResult) error
}

var _ Store = (*store.Store)(nil)

// Defaults of Options' zero values.
const (
	DefaultRetryMin    = time.Second
	DefaultRetryMax    = 10 * time.Minute
	DefaultMaxAge      = 24 * time.Hour
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 16
	DefaultKeep        = 7 * 24 * time.Hour
)

// Options configure a Sender.
type Options struct {
	// URLs receive every new message; at least one is needed. The store
	// must have been opened with them (store.Options.WebhookURLs), so that
	// their marks exist before mail arrives.
	URLs []string
	// Secret signs each body (X-Mailsandbox-Signature); "" sends no
	// signature.
	Secret string
	// Payload builds the body posted for a message; required. The native
	// summary (api/rest) or Mailpit's MessageSummary (api/mailpit).
	Payload func(store.Message) ([]byte, error)
	// RetryMin and RetryMax bound the backoff between attempts (0: 1s and
	// 10m); MaxAge is how long a delivery is tried before it is given up
	// (0: 24h).
	RetryMin, RetryMax, MaxAge time.Duration
	// Timeout bounds one attempt, from dialling to the end of the response
	// body (0: 10s).
	Timeout time.Duration
	// Concurrency is the number of attempts in flight at once per URL for
	// first attempts, and for retries (0: 16).
	Concurrency int
	// Lease is how long a claimed row stays ours before another sender may
	// take it (0: 5×Timeout + 10s: a claimed row waits behind at most three
	// rounds of attempts before its own). After a crash, rows that were in
	// flight are posted again once their lease ends.
	Lease time.Duration
	// Keep is how long delivered and failed rows stay listed (0: 7 days).
	Keep time.Duration
	// Transport carries the requests; nil means a transport of our own
	// (proxies from the environment are not used).
	Transport http.RoundTripper
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.RetryMin <= 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = o.RetryMin
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Lease <= 0 {
		o.Lease = 5*o.Timeout + 10*time.Second
	}
	if o.Keep <= 0 {
		o.Keep = DefaultKeep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// CheckURL says what is wrong with a webhook URL, nil when it is usable:
// an absolute http or https URL with a host.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("bad URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("bad URL %q: want http:// or https://", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("bad URL %q: no host", raw)
	}
	return nil
}

// Validate checks the options a user gives.
func (o Options) Validate() error {
	if len(o.URLs) == 0 {
		return errors.New("webhook: no URL")
	}
	for _, u := range o.URLs {
		if err := CheckURL(u); err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
	}
	if o.Payload == nil {
		return errors.New("webhook: no payload builder")
	}
	if o.RetryMin < 0 || o.RetryMax < 0 || o.MaxAge < 0 || o.Timeout < 0 {
		return errors.New("webhook: durations must not be negative")
	}
	if o.RetryMin > 0 && o.RetryMax > 0 && o.RetryMin > o.RetryMax {
		return fmt.Errorf("webhook: retry max %s is below retry min %s", o.RetryMax, o.RetryMin)
	}
	return nil
}

// Backoff is the wait after the attempts-th failed attempt:
// min × 2^(attempts−1), at most max.
func Backoff(attempts int, minWait, maxWait time.Duration) time.Duration {
	d := minWait
	for i := 1; i < attempts; i++ {
		if d >= maxWait/2 {
			return maxWait
		}
		d *= 2
	}
	return min(d, maxWait)
}

// Sign returns the X-Mailsandbox-Signature value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is body's signature under secret (a helper
// for receivers written in Go).
func Verify(secret string, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(sig))
}

// Sender posts queued webhooks.
type Sender struct {
	st     Store
	opts   Options
	log    *slog.Logger
	owner  string
	client *http.Client

	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	held    map[int64]struct{} // claimed and not yet recorded
	wake    chan struct{}
	results chan store.WebhookOutcome
	work    chan store.Webhook
}

// New returns a sender over st; Start (or Run) sets it going.
func New(st Store, opts Options, log *slog.Logger) (*Sender, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.defaults()
	if log == nil {
		log = slog.Default()
	}
	// One stream per URL: a URL given twice would race itself for its mark.
	var urls []string
	for _, u := range opts.URLs {
		if !slices.Contains(urls, u) {
			urls = append(urls, u)
		}
	}
	opts.URLs = urls
	var b [6]byte
	_, _ = rand.Read(b[:])
	host, _ := os.Hostname()
	tr := opts.Transport
	if tr == nil {
		tr = &http.Transport{
			DialContext:           (&net.Dialer{Timeout: opts.Timeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          opts.Concurrency * 2,
			MaxIdleConnsPerHost:   opts.Concurrency,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   opts.Timeout,
			ResponseHeaderTimeout: opts.Timeout,
		}
	}
	s := &Sender{
		st: st, opts: opts, log: log,
		owner: fmt.Sprintf("webhook/%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:])),
		client: &http.Client{
			Transport: tr,
			// Never follow: the 3xx is the attempt's result.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		held:    map[int64]struct{}{},
		wake:    make(chan struct{}, 1),
		results: make(chan store.WebhookOutcome, opts.Concurrency*maxInFlightPerWorker),
		work:    make(chan store.Webhook, opts.Concurrency*maxInFlightPerWorker),
	}
	return s, nil
}

// maxInFlightPerWorker × Concurrency caps claimed rows held in memory:
// each waits behind at most three attempts per worker, which the lease
// allows.
const maxInFlightPerWorker = 4

// Store writes are spaced so that the sender never crowds out ingest (on
// SQLite both share one writer): a claim prompted by new mail waits until
// claimGap after the previous one, and outcomes are gathered for up to
// recordGap before they are written together.
const (
	claimGap  = 25 * time.Millisecond
	recordGap = 25 * time.Millisecond
)

// Start runs the sender in the background until Close.
func (s *Sender) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.Run(ctx); err != nil {
			s.log.Error("webhook sender stopped", "err", err)
		}
	}()
}

// Close stops a started sender: attempts in flight are cut, and every row
// it held is put back on the queue, due now.
func (s *Sender) Close() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
}

func (s *Sender) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run runs the streams of new messages and the retry scheduler; it
// returns when ctx ends, after recording the outcome of everything it
// claimed.
func (s *Sender) Run(ctx context.Context) error {
	var workers, recorder, streams sync.WaitGroup
	for range s.opts.Concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			s.worker(ctx)
		}()
	}
	recorder.Add(1)
	go func() {
		defer recorder.Done()
		s.record()
	}()
	wakes := make([]chan struct{}, len(s.opts.URLs))
	for i, u := range s.opts.URLs {
		wakes[i] = make(chan struct{}, 1)
		streams.Add(1)
		go func() {
			defer streams.Done()
			s.stream(ctx, u, wakes[i])
		}()
	}
	newMail := func() {
		for _, w := range wakes {
			select {
			case w <- struct{}{}:
			default:
			}
		}
	}
	defer func() {
		streams.Wait()
		workers.Wait()
		// Rows claimed but never tried go back, due now.
		for {
			select {
			case w := <-s.work:
				s.results <- store.WebhookOutcome{ID: w.ID, Status: store.DeliveryQueued, NextAttemptAt: s.opts.Now(), LastError: "not tried: sender stopped"}
				continue
			default:
			}
			break
		}
		close(s.results)
		recorder.Wait()
	}()

	subCtx, cancelSub := context.WithCancel(ctx)
	defer cancelSub()
	events := s.st.Subscribe(subCtx)
	resubscribe := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	s.prune(ctx)
	var lastClaim time.Time
	for {
		if ctx.Err() != nil {
			return nil
		}
		if gap := claimGap - time.Since(lastClaim); gap > 0 {
			// Too soon after the last claim: wait out the gap (retries
			// falling due meanwhile are claimed in one go).
			select {
			case <-ctx.Done():
				return nil
			case <-sched.After(timer, gap):
			}
		}
		lastClaim = time.Now()
		s.claim(ctx)
		var wait <-chan time.Time
		next, ok, err := s.st.NextWebhookDue(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("webhook: read queue", "err", err)
			wait = sched.After(timer, time.Second)
		} else if d, sleep := sched.Wait(next, ok, s.opts.Now(), s.full(), resubscribe); sleep {
			wait = sched.After(timer, d)
		}
	idle:
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-wait:
				break idle
			case <-s.wake:
				break idle
			case <-prune.C:
				s.prune(ctx)
			case ev, ok := <-events:
				if !ok {
					// Cut off for lagging (or the store is closing): the
					// streams and the queue catch up by reading, and we
					// subscribe again after a pause.
					events, resubscribe = nil, true
					newMail()
					break idle
				}
				switch ev.Kind {
				case store.EventMessage:
					// New mail is the streams' business; the retry queue
					// has nothing new, so it is not read (nor written).
					newMail()
				case store.EventWebhook:
					drain(events)
					break idle
				}
			}
		}
		if resubscribe {
			events, resubscribe = s.st.Subscribe(subCtx), false
		}
	}
}

// stream sends url every new message: it claims the messages after the
// URL's mark, posts them, records the batch, and sleeps until new mail
// arrives (or a second passes: mail another instance stored while our
// events were cut off).
func (s *Sender) stream(ctx context.Context, url string, wake <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var last time.Time
	for ctx.Err() == nil {
		b, err := s.st.ClaimNewWebhooks(ctx, store.NewWebhookClaim{URL: url, Owner: s.owner, Now: s.opts.Now(), Lease: s.opts.Lease, Limit: s.maxInFlight()})
		last = time.Now()
		var d time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("webhook: claim new messages", "url", url, "err", err)
			d = time.Second
		case len(b.Messages) > 0:
			s.sendBatch(ctx, b)
			if len(b.Messages) == s.maxInFlight() {
				continue // a backlog: on at once
			}
			// A small batch: let a few more messages gather, so a steady
			// flow of mail costs a few small store writes a second.
			d = claimGap - time.Since(last)
			if d <= 0 {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-sched.After(timer, d):
			}
			continue
		case b.Busy:
			d = 100 * time.Millisecond
		default:
			d = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-sched.After(timer, d):
		}
	}
}

// sendBatch posts a claimed batch, Concurrency at a time, and records it.
// Attempts cut by ctx (the sender stopping) are recorded as failures due
// at once, so a restart sends them first.
func (s *Sender) sendBatch(ctx context.Context, b store.NewWebhookBatch) {
	errs := make([]error, len(b.Messages))
	bodies := make([][]byte, len(b.Messages))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(s.opts.Concurrency, len(b.Messages)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body, err := s.opts.Payload(b.Messages[i])
				if err != nil {
					errs[i] = fmt.Errorf("build payload: %w", err)
					continue
				}
				bodies[i] = body
				errs[i] = s.post(ctx, store.Webhook{URL: b.URL, DeliveryID: b.DeliveryIDs[i], MessageID: b.Messages[i].ID, Attempts: 1, Payload: body})
			}
		}()
	}
	for i := range b.Messages {
		next <- i
	}
	close(next)
	wg.Wait()
	res := store.NewWebhookResult{URL: b.URL, Owner: s.owner, To: b.To}
	for i, err := range errs {
		if err == nil {
			res.Delivered++
			continue
		}
		m := b.Messages[i]
		w := store.Webhook{ID: 0, URL: b.URL, MessageID: m.ID, DeliveryID: b.DeliveryIDs[i], Attempts: 1, QueuedAt: m.ReceivedAt}
		o := s.outcome(ctx, w, err)
		res.Failed = append(res.Failed, store.FailedWebhook{DeliveryID: w.DeliveryID, MessageID: m.ID, Payload: bodies[i],
			Status: o.Status, NextAttemptAt: o.NextAttemptAt, LastError: o.LastError, ReceivedAt: m.ReceivedAt})
	}
	// Recorded even while stopping.
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.st.FinishNewWebhooks(rctx, res); err != nil {
		// The range stays claimed; once the lease ends it is posted again
		// (at least once, under the same delivery ids).
		s.log.Warn("webhook: record new deliveries", "url", b.URL, "count", len(b.Messages), "err", err)
		return
	}
	if len(res.Failed) > 0 {
		s.poke() // the retry queue has rows to schedule
	}
}

func drain(ch <-chan store.Event) {
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

func (s *Sender) maxInFlight() int { return s.opts.Concurrency * maxInFlightPerWorker }

func (s *Sender) full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held) >= s.maxInFlight()
}

func (s *Sender) prune(ctx context.Context) {
	n, err := s.st.PruneWebhooks(ctx, s.opts.Now().Add(-s.opts.Keep))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("webhook: prune finished deliveries", "err", err)
		}
		return
	}
	if n > 0 {
		s.log.Debug("webhook: pruned finished deliveries", "count", n)
	}
}

// claim takes due rows up to the in-flight cap and hands them to workers.
func (s *Sender) claim(ctx context.Context) {
	s.mu.Lock()
	held := len(s.held)
	free := s.maxInFlight() - held
	s.mu.Unlock()
	// Claim in large batches: wait until half the room is free (the
	// workers still have rows to work on meanwhile).
	if free <= 0 || (held > s.opts.Concurrency && free < s.maxInFlight()/2) {
		return
	}
	ws, err := s.st.ClaimDueWebhooks(ctx, s.opts.Now(), s.owner, s.opts.Lease, free)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("webhook: claim due deliveries", "err", err)
		}
		return
	}
	for _, w := range ws {
		s.mu.Lock()
		_, dup := s.held[w.ID]
		if !dup {
			s.held[w.ID] = struct{}{}
		}
		s.mu.Unlock()
		if dup {
			// Our lease ran out while it waited here; the claim renewed it
			// and it is already on its way.
			continue
		}
		s.work <- w // never blocks: work holds maxInFlight rows
	}
}

func (s *Sender) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-s.work:
			s.results <- s.attempt(ctx, w)
		}
	}
}

// attempt posts w once and says what to record.
func (s *Sender) attempt(ctx context.Context, w store.Webhook) store.WebhookOutcome {
	err := s.post(ctx, w)
	if err == nil {
		return store.WebhookOutcome{ID: w.ID, Status: store.DeliveryDelivered}
	}
	return s.outcome(ctx, w, err)
}

// outcome is what to record after attempt number w.Attempts failed with err:
// a retry after the backoff, or given up past the maximum age.
func (s *Sender) outcome(ctx context.Context, w store.Webhook, err error) store.WebhookOutcome {
	now := s.opts.Now()
	if ctx.Err() != nil {
		// Stopping: not the receiver's fault; try again at once after restart.
		return store.WebhookOutcome{ID: w.ID, Status: store.DeliveryQueued, NextAttemptAt: now, LastError: "interrupted: sender stopped"}
	}
	msg := err.Error()
	queued := w.QueuedAt
	if queued.IsZero() {
		queued = w.CreatedAt
	}
	deadline := queued.Add(s.opts.MaxAge)
	if !now.Before(deadline) {
		s.log.Info("webhook: given up", "url", w.URL, "message", w.MessageID, "attempts", w.Attempts, "err", msg)
		return store.WebhookOutcome{ID: w.ID, Status: store.DeliveryFailed, LastError: fmt.Sprintf("given up after %d attempts: %s", w.Attempts, msg)}
	}
	next := now.Add(Backoff(w.Attempts, s.opts.RetryMin, s.opts.RetryMax))
	if next.After(deadline) {
		next = deadline // one last try at the deadline
	}
	s.log.Debug("webhook: attempt failed", "url", w.URL, "message", w.MessageID, "attempt", w.Attempts, "err", msg)
	return store.WebhookOutcome{ID: w.ID, Status: store.DeliveryQueued, NextAttemptAt: next, LastError: msg}
}

// maxErrorBody is how much of a failed response's body goes in LastError.
const maxErrorBody = 200

func (s *Sender) post(ctx context.Context, w store.Webhook) error {
	actx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, w.URL, bytes.NewReader(w.Payload))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderDelivery, w.DeliveryID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(w.Attempts))
	if s.opts.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(s.opts.Secret, w.Payload))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(actx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s", s.opts.Timeout)
		}
		return fmt.Errorf("post: %w", unwrapURLError(err))
	}
	defer resp.Body.Close()
	// Read (a bounded amount of) the body so the connection can be reused;
	// the deadline covers a body that never ends.
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return fmt.Errorf("HTTP %s: redirect to %q not followed", resp.Status, resp.Header.Get("Location"))
	}
	detail := string(bytes.TrimSpace(bytes.ToValidUTF8(head, nil)))
	if detail != "" {
		return fmt.Errorf("HTTP %s: %s", resp.Status, detail)
	}
	return fmt.Errorf("HTTP %s", resp.Status)
}

// unwrapURLError drops url.Error's "Post <url>:" prefix: the URL is shown
// beside the error already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// record writes outcomes in batches: whatever has arrived by the time the
// previous write ends goes in the next transaction.
func (s *Sender) record() {
	batch := make([]store.WebhookOutcome, 0, s.maxInFlight())
	gather := time.NewTimer(time.Hour)
	defer gather.Stop()
	for o := range s.results {
		batch = append(batch[:0], o)
		gather.Reset(recordGap)
	fill:
		for len(batch) < cap(batch) {
			select {
			case o, ok := <-s.results:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			case <-gather.C:
				break fill
			}
		}
		// Outcomes are written even while stopping.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := s.st.RecordWebhookAttempts(ctx, s.owner, batch)
		cancel()
		if err != nil {
			// The rows stay leased; once the lease ends they are claimed
			// and posted again (at least once).
			s.log.Warn("webhook: record attempts", "count", len(batch), "err", err)
		}
		s.mu.Lock()
		for _, o := range batch {
			delete(s.held, o.ID)
		}
		s.mu.Unlock()
		s.poke()
	}
}
