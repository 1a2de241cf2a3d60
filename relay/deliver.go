package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/relay/dsn"
	"github.com/mailsandbox/mailsandbox/relay/sevenbit"
)

// outcome is one recipient's result in one attempt.
type outcome struct {
	kind  string // delivered, deferred, failed
	reply string // "250 2.0.0 ok", "451 4.3.0 busy", or an error text
	// local: no destination said this (the relay's own decision, or
	// connection trouble), so a bounce names no remote MTA; status and
	// text are then the enhanced code ("" if none) and the bare reason.
	local        bool
	status, text string
}

const (
	delivered = "delivered"
	deferred  = "deferred"
	failed    = "failed"
)

// tempError marks an error as temporary whatever it wraps (e.g. a 535 from
// a smarthost: a configuration problem, not the recipient's).
type tempError struct{ err error }

func (e tempError) Error() string { return e.err.Error() }
func (e tempError) Unwrap() error { return e.err }

// localError is a reply the relay makes up itself (a null MX, a loop, a
// destination without SMTPUTF8), as opposed to one a destination sent.
type localError struct{ se *smtp.SMTPError }

func (e localError) Error() string { return formatReply(e.se) }
func (e localError) Unwrap() error { return e.se }

// permanent builds a 5xx reply of our own.
func permanent(code int, enhanced smtp.EnhancedCode, msg string) error {
	return localError{&smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: msg}}
}

// formatReply renders an SMTP error as its reply line.
func formatReply(se *smtp.SMTPError) string {
	msg := strings.Join(strings.Fields(se.Message), " ")
	if se.EnhancedCode[0] > 0 {
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], msg)
	}
	return fmt.Sprintf("%d %s", se.Code, msg)
}

// classify turns an error into an outcome: 5xx replies are permanent,
// everything else (4xx, connection trouble, unknown errors) temporary.
func classify(err error) outcome {
	var te tempError
	temp := errors.As(err, &te)
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		kind := deferred
		if se.Code >= 500 && se.Code < 600 && !temp {
			kind = failed
		}
		o := outcome{kind: kind, reply: formatReply(se)}
		var le localError
		if errors.As(err, &le) {
			o.local, o.text = true, strings.Join(strings.Fields(se.Message), " ")
			if se.EnhancedCode[0] > 0 {
				o.status = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
			}
		}
		return o
	}
	text := strings.Join(strings.Fields(err.Error()), " ")
	return outcome{kind: deferred, reply: text, local: true, text: text}
}

// bounced describes o for a delivery status notification about addr.
// status, when set, overrides the status o implies (5.4.7 on expiry).
func (o outcome) bounced(addr, host, status string, at time.Time) dsn.Recipient {
	r := dsn.Recipient{Address: addr, Status: status, RemoteMTA: host, Diagnostic: o.reply, LastAttempt: at}
	if o.local {
		r.RemoteMTA, r.Diagnostic = "", o.text
		if r.Status == "" {
			r.Status = o.status
		}
	}
	return r
}

// connBroken reports whether err leaves the connection unusable.
func connBroken(err error) bool {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code == 421
	}
	return true
}

func allPending(d store.Delivery, o outcome) map[string]outcome {
	res := map[string]outcome{}
	for _, r := range d.Pending() {
		res[r] = o
	}
	return res
}

// conn is an open SMTP session with a destination.
type conn struct {
	c        *smtp.Client
	host     string
	eightBit bool
	utf8     bool
	once     sync.Once
}

func (cn *conn) close() {
	cn.once.Do(func() {
		if err := cn.c.Quit(); err != nil {
			cn.c.Close()
		}
	})
}

type tlsMode int

const (
	tlsNone tlsMode = iota
	tlsOpportunistic
	tlsVerify
)

// connect opens a session with a destination: the smarthost, a route, or
// a domain's MX hosts (every host is tried before giving up).
func (q *Queue) connect(ctx context.Context, dest string) (*conn, error) {
	if domain, ok := strings.CutPrefix(dest, mxPrefix); ok {
		hosts, implicit, err := q.mxHosts(ctx, domain)
		if err != nil {
			return nil, err
		}
		var errs []error
		for _, h := range hosts {
			cn, err := q.open(ctx, net.JoinHostPort(h, strconv.Itoa(q.opts.MXPort)), h, q.tlsFor(tlsOpportunistic), "")
			if err == nil {
				return cn, nil
			}
			var de *net.DNSError
			if implicit && errors.As(err, &de) && de.IsNotFound {
				// No MX and no address: the recipient's domain does not exist.
				return nil, permanent(550, smtp.EnhancedCode{5, 1, 2}, "domain "+domain+" not found")
			}
			errs = append(errs, err)
		}
		return nil, lastErr(errs)
	}
	host, _, err := net.SplitHostPort(dest)
	if err != nil {
		return nil, permanent(550, smtp.EnhancedCode{5, 4, 4}, "bad destination "+dest)
	}
	if dest == q.opts.Smarthost {
		mode := tlsVerify
		if q.opts.SmarthostInsecureTLS {
			mode = tlsOpportunistic
		}
		return q.open(ctx, dest, host, q.tlsFor(mode), q.opts.SmarthostAuth)
	}
	return q.open(ctx, dest, host, q.tlsFor(tlsOpportunistic), "")
}

func (q *Queue) tlsFor(m tlsMode) tlsMode {
	if q.opts.NoTLS {
		return tlsNone
	}
	return m
}

// lastErr prefers a temporary error: if any host failed temporarily the
// attempt is retried.
func lastErr(errs []error) error {
	if len(errs) == 0 {
		return errors.New("no hosts to try")
	}
	for _, e := range errs {
		if classify(e).kind == deferred {
			return e
		}
	}
	return errs[len(errs)-1]
}

// mxHosts returns the hosts to try for a domain, lowest preference first;
// the domain itself (implicit MX, RFC 5321 5.1) when it has no MX records.
func (q *Queue) mxHosts(ctx context.Context, domain string) (hosts []string, implicit bool, err error) {
	mxs, err := q.opts.LookupMX(ctx, domain)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return []string{domain}, true, nil
		}
		return nil, false, fmt.Errorf("look up MX of %s: %w", domain, err)
	}
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		return nil, false, permanent(556, smtp.EnhancedCode{5, 1, 10}, "domain "+domain+" does not accept mail (null MX)")
	}
	if len(mxs) == 0 {
		return []string{domain}, true, nil
	}
	sort.SliceStable(mxs, func(i, j int) bool { return mxs[i].Pref < mxs[j].Pref })
	hosts = make([]string, 0, len(mxs))
	for _, mx := range mxs {
		hosts = append(hosts, strings.TrimSuffix(mx.Host, "."))
	}
	return hosts, false, nil
}

// replayConn lets a second go-smtp client continue an open session: its
// greeting is served from prefix.
type replayConn struct {
	net.Conn
	prefix []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// startTLS upgrades the session on raw, whose EHLO has been answered:
// go-smtp's client offers STARTTLS only through NewClientStartTLS, which
// greets again with its own name, so the command goes out here and a new
// client continues inside TLS with a replayed greeting. The wire carries
// EHLO helo, STARTTLS, EHLO helo and nothing else.
func (q *Queue) startTLS(raw net.Conn, host, helo string, cfg *tls.Config) (*smtp.Client, error) {
	_ = raw.SetDeadline(time.Now().Add(q.opts.CommandTimeout))
	if _, err := io.WriteString(raw, "STARTTLS\r\n"); err != nil {
		return nil, fmt.Errorf("send STARTTLS: %w", err)
	}
	// The server sends nothing after its reply until our TLS hello, so a
	// buffered reader here cannot swallow handshake bytes.
	code, msg, err := textproto.NewReader(bufio.NewReader(raw)).ReadResponse(220)
	if err != nil {
		return nil, fmt.Errorf("STARTTLS answered %d %s: %w", code, msg, err)
	}
	_ = raw.SetDeadline(time.Time{})
	tc := tls.Client(raw, cfg)
	c := smtp.NewClient(&replayConn{Conn: tc, prefix: []byte("220 " + host + " ESMTP\r\n")})
	c.CommandTimeout = q.opts.CommandTimeout
	// The handshake happens on this first command after STARTTLS.
	if err := c.Hello(helo); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// open dials addr, greets, upgrades with STARTTLS as mode asks and
// authenticates when auth ("user:pass") is set.
func (q *Queue) open(ctx context.Context, addr, host string, mode tlsMode, auth string) (*conn, error) {
	cn, err := q.openOnce(ctx, addr, host, mode, auth)
	if err != nil && mode == tlsOpportunistic && errors.Is(err, errTLS) {
		q.log.Info("relay: STARTTLS failed, retrying without TLS", "addr", addr, "err", err)
		return q.openOnce(ctx, addr, host, tlsNone, auth)
	}
	return cn, err
}

var errTLS = errors.New("starttls")

func (q *Queue) openOnce(ctx context.Context, addr, host string, mode tlsMode, auth string) (*conn, error) {
	raw, err := q.opts.Dial(ctx, "tcp", addr)
	if err != nil {
		// Temporary, also when the name is not found: a configured route
		// or smarthost (or a container that is being restarted) may come
		// back.
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	// Stop a blocked greeting or command when ctx ends.
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Now()) })
	helo := q.heloFor(raw)
	c := smtp.NewClient(raw)
	c.CommandTimeout = q.opts.CommandTimeout
	// Hello first, so the client never greets with its own "localhost".
	if err := c.Hello(helo); err != nil {
		stop()
		c.Close()
		return nil, fmt.Errorf("greeting from %s: %w", addr, err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok && mode != tlsNone {
		cfg := &tls.Config{}
		if q.opts.TLSConfig != nil {
			cfg = q.opts.TLSConfig.Clone()
		}
		cfg.ServerName = host
		if mode == tlsOpportunistic {
			cfg.InsecureSkipVerify = true
		}
		c2, err := q.startTLS(raw, host, helo, cfg)
		if err != nil {
			stop()
			raw.Close()
			return nil, fmt.Errorf("%w with %s: %w", errTLS, addr, err)
		}
		c = c2
	} else if mode == tlsVerify && auth != "" {
		q.log.Warn("relay: smarthost offers no STARTTLS; authenticating in plain text", "addr", addr)
	}
	if auth != "" {
		user, pass, _ := strings.Cut(auth, ":")
		if ok, _ := c.Extension("AUTH"); !ok {
			stop()
			c.Close()
			return nil, fmt.Errorf("smarthost %s offers no AUTH", addr)
		}
		if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
			stop()
			c.Close()
			return nil, tempError{fmt.Errorf("authenticate to %s: %w", addr, err)}
		}
	}
	stop()
	cn := &conn{c: c, host: host}
	cn.eightBit, _ = c.Extension("8BITMIME")
	cn.utf8, _ = c.Extension("SMTPUTF8")
	return cn, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// deliver sends one delivery over cn and records the outcome. It reports
// whether the connection is no longer usable.
func (q *Queue) deliver(ctx context.Context, cn *conn, d store.Delivery) (broken bool) {
	raw, err := q.st.Raw(ctx, d.MessageID)
	if err != nil {
		o := classify(err)
		if errors.Is(err, store.ErrNotFound) {
			o = classify(permanent(554, smtp.EnhancedCode{5, 6, 0}, "the message was deleted before it could be sent"))
		}
		q.finish(ctx, d, allPending(d, o), cn.host)
		return false
	}
	stop := context.AfterFunc(ctx, func() { cn.c.Close() })
	defer stop()
	res, broken := q.send(cn, d, raw)
	q.finishWith(ctx, d, res, cn.host, raw)
	return broken
}

// send runs one SMTP transaction with per-recipient results.
func (q *Queue) send(cn *conn, d store.Delivery, raw []byte) (map[string]outcome, bool) {
	pending := d.Pending()
	needUTF8 := !isASCII(d.MailFrom)
	for _, r := range pending {
		needUTF8 = needUTF8 || !isASCII(r)
	}
	noUTF8 := permanent(553, smtp.EnhancedCode{5, 6, 7},
		"the destination "+cn.host+" does not support SMTPUTF8, which this message needs (non-ASCII addresses)")
	if needUTF8 && !cn.utf8 {
		return allPending(d, classify(noUTF8)), false
	}
	if n := hops(raw); n >= maxHops {
		return allPending(d, classify(permanent(554, smtp.EnhancedCode{5, 4, 6},
			fmt.Sprintf("mail loop: the message has %d Received fields", n)))), false
	}
	if sevenbit.HeaderIs8Bit(raw) {
		if cn.utf8 {
			needUTF8 = true
		} else {
			// UTF-8 header fields (RFC 6532) need SMTPUTF8; without it they
			// go as RFC 2047 encoded-words, unless a mailbox is non-ASCII.
			down, ok := sevenbit.DowngradeHeader(raw)
			if !ok {
				return allPending(d, classify(noUTF8)), false
			}
			raw = down
		}
	}
	raw = q.traced(raw, d)
	body := raw
	if !cn.eightBit && sevenbit.Is8Bit(raw) {
		conv, err := sevenbit.Convert(raw)
		if err != nil {
			return allPending(d, classify(permanent(554, smtp.EnhancedCode{5, 6, 3}, "cannot convert the message to 7-bit: "+err.Error()))), false
		}
		body = conv
	}
	res := map[string]outcome{}
	if err := cn.c.Mail(d.MailFrom, &smtp.MailOptions{Size: int64(len(body)), UTF8: needUTF8}); err != nil {
		return allPending(d, classify(err)), connBroken(err)
	}
	var accepted []string
	for i, r := range pending {
		if err := cn.c.Rcpt(r, nil); err != nil {
			res[r] = classify(err)
			if connBroken(err) {
				for _, rest := range pending[i+1:] {
					res[rest] = classify(err)
				}
				return res, true
			}
			continue
		}
		accepted = append(accepted, r)
	}
	if len(accepted) == 0 {
		return res, false
	}
	setAccepted := func(o outcome) {
		for _, r := range accepted {
			res[r] = o
		}
	}
	w, err := cn.c.Data()
	if err != nil {
		setAccepted(classify(err))
		return res, connBroken(err)
	}
	if _, err := w.Write(body); err != nil {
		setAccepted(classify(err))
		return res, true
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		setAccepted(classify(err))
		return res, connBroken(err)
	}
	setAccepted(outcome{kind: delivered, reply: "250 " + strings.Join(strings.Fields(resp.StatusText), " ")})
	return res, false
}

func (q *Queue) finish(ctx context.Context, d store.Delivery, res map[string]outcome, host string) {
	q.finishWith(ctx, d, res, host, nil)
}

// finishWith records an attempt: per-recipient state, the next try or the
// end, and a bounce for recipients that failed for good (or ran out of
// time). raw, when known, gives the bounce its original header.
func (q *Queue) finishWith(ctx context.Context, d store.Delivery, res map[string]outcome, host string, raw []byte) {
	defer q.done1(d.ID)
	ctx = context.WithoutCancel(ctx)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	now := q.opts.Now().UTC()
	deadline := d.QueuedAt.Add(q.opts.MaxAge)
	expired := !now.Before(deadline)

	state := map[string]store.RecipientStatus{}
	for _, rs := range d.RecipientStatus {
		state[strings.ToLower(rs.Address)] = rs
	}
	var bounce []dsn.Recipient
	var lastErr []string
	pendingLeft := 0
	anyFailed := false
	for _, r := range d.Recipients {
		key := strings.ToLower(r)
		rs, ok := state[key]
		if !ok {
			rs = store.RecipientStatus{Address: r, Status: store.DeliveryQueued}
		}
		if o, tried := res[r]; tried && rs.Status == store.DeliveryQueued {
			rs.Attempts++
			rs.Reply = o.reply
			switch o.kind {
			case delivered:
				rs.Status = store.DeliveryDelivered
				q.m.recipients.WithLabelValues("delivered").Inc()
			case failed:
				rs.Status = store.DeliveryFailed
				q.m.recipients.WithLabelValues("failed").Inc()
				bounce = append(bounce, o.bounced(r, host, "", now))
				lastErr = append(lastErr, r+": "+o.reply)
			default:
				if expired {
					rs.Status = store.DeliveryFailed
					q.m.recipients.WithLabelValues("expired").Inc()
					bounce = append(bounce, o.bounced(r, host, "5.4.7", now))
					lastErr = append(lastErr, r+": gave up after "+q.opts.MaxAge.String()+": "+o.reply)
				} else {
					q.m.recipients.WithLabelValues("deferred").Inc()
					lastErr = append(lastErr, r+": "+o.reply)
				}
			}
		}
		switch rs.Status {
		case store.DeliveryQueued:
			pendingLeft++
		case store.DeliveryFailed:
			anyFailed = true
		}
		state[key] = rs
	}
	statuses := make([]store.RecipientStatus, 0, len(d.Recipients))
	for _, r := range d.Recipients {
		statuses = append(statuses, state[strings.ToLower(r)])
	}
	a := store.Attempt{RecipientStatus: statuses, LastError: strings.Join(lastErr, "; ")}
	switch {
	case pendingLeft > 0:
		a.Status = store.DeliveryQueued
		next := now.Add(Backoff(d.Attempts, q.opts.RetryMin, q.opts.RetryMax))
		if next.After(deadline) {
			next = deadline
		}
		a.NextAttemptAt = next
		q.m.attempts.WithLabelValues("deferred").Inc()
	case anyFailed:
		a.Status = store.DeliveryFailed
		q.m.attempts.WithLabelValues("failed").Inc()
	default:
		a.Status = store.DeliveryDelivered
		q.m.attempts.WithLabelValues("delivered").Inc()
	}
	if len(bounce) > 0 {
		q.bounce(ctx, d, bounce, raw, expired)
	}
	// Recorded, a retry can be due (and claimed) within milliseconds, before
	// done1 runs; a claim of an id still held is taken for a lease renewal
	// and dropped, which would strand the retry until its new lease ran out.
	// Until recorded, the delivery is leased to us and nobody can claim it.
	q.unhold(d.ID)
	if err := q.st.RecordAttempt(ctx, d.ID, q.owner, a); err != nil {
		q.log.Warn("relay: record attempt", "id", d.ID, "err", err)
		return
	}
	if q.testAfterRecord != nil {
		q.testAfterRecord()
	}
	q.log.Info("relay: attempt", "id", d.ID, "message", d.MessageID, "destination", d.Destination,
		"status", a.Status, "attempt", d.Attempts, "error", a.LastError)
}

// bounce files a delivery status notification into the envelope sender's
// mailbox. Mail with a null sender (itself a bounce) is never bounced.
func (q *Queue) bounce(ctx context.Context, d store.Delivery, rcpts []dsn.Recipient, raw []byte, expired bool) {
	if d.MailFrom == "" {
		q.log.Info("relay: not bouncing mail with a null sender", "id", d.ID)
		return
	}
	if raw == nil {
		raw, _ = q.st.Raw(ctx, d.MessageID)
	}
	var arrival time.Time
	if m, err := q.st.Get(ctx, d.MessageID); err == nil {
		arrival = m.ReceivedAt
	}
	reason := ""
	if expired {
		reason = fmt.Sprintf("Delivery was tried for %s without success; the relay gave up.", q.opts.MaxAge)
	}
	msg := dsn.Build(dsn.Report{
		ReportingMTA:   q.mtaName,
		To:             d.MailFrom,
		Arrival:        arrival,
		Date:           q.opts.Now(),
		Recipients:     rcpts,
		OriginalHeader: dsn.Header(raw),
		Reason:         reason,
	})
	if _, err := q.st.Ingest(ctx, store.Envelope{From: "", To: []string{d.MailFrom}}, msg); err != nil {
		q.log.Warn("relay: file bounce", "id", d.ID, "to", d.MailFrom, "err", err)
		return
	}
	q.m.bounces.Inc()
}

// maxHops is the Received count at which a message is taken to be looping
// (a route back into the sandbox itself, say).
const maxHops = 30

// hops counts the Received fields in the header of raw.
func hops(raw []byte) int {
	n := 0
	for _, line := range strings.Split(string(dsn.Header(raw)), "\n") {
		if len(line) >= 9 && strings.EqualFold(line[:9], "received:") {
			n++
		}
	}
	return n
}

// traced prepends the trace field a relaying MTA adds (RFC 5321 4.4).
func (q *Queue) traced(raw []byte, d store.Delivery) []byte {
	var b strings.Builder
	b.WriteString("Received: by " + q.mtaName + " (mailsandbox relay) id " + strconv.FormatInt(d.ID, 10))
	if p := d.Pending(); len(p) == 1 && isASCII(p[0]) {
		b.WriteString("\r\n\tfor <" + p[0] + ">")
	}
	b.WriteString(";\r\n\t" + q.opts.Now().Format(time.RFC1123Z) + "\r\n")
	return append([]byte(b.String()), raw...)
}
