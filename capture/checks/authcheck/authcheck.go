// Package authcheck verifies a message's authentication as a receiving
// server would: every DKIM signature (go-msgauth), SPF for the envelope
// sender and the connecting IP (RFC 7208), and DMARC alignment of the From
// domain (RFC 7489).
//
// All DNS goes through a Resolver the caller passes in, so tests serve
// their own keys and records; the whole check is bounded by a timeout, and
// a resolver that fails or hangs gives temperror/none, never a hang.
package authcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"
)

// Resolver is the DNS the check needs; *net.Resolver implements it.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
}

var _ Resolver = (*net.Resolver)(nil)

// DefaultTimeout bounds a whole check when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// maxSignatures caps the DKIM signatures verified per message.
const maxSignatures = 10

// Options configure a check. The zero value uses net.DefaultResolver and
// DefaultTimeout.
type Options struct {
	Resolver Resolver
	Timeout  time.Duration
}

// Input is the message and what the SMTP session knew about it.
type Input struct {
	Raw []byte
	// MailFrom is the envelope sender ("" for a bounce: SPF then checks
	// HELO if given).
	MailFrom string
	// ClientIP is the connecting client's address; nil when unknown, and
	// SPF then answers none saying so.
	ClientIP net.IP
	// HELO is the client's HELO/EHLO name, if known.
	HELO string
}

// Results (RFC 8601 words).
const (
	Pass      = "pass"
	Fail      = "fail"
	SoftFail  = "softfail"
	Neutral   = "neutral"
	None      = "none"
	TempError = "temperror"
	PermError = "permerror"
)

// DKIM is one signature's verification.
type DKIM struct {
	Domain     string   `json:"domain"`
	Selector   string   `json:"selector"`
	Identifier string   `json:"identifier,omitempty"`
	Result     string   `json:"result"`
	Headers    []string `json:"headers"` // the header fields it covers (h=)
	Error      string   `json:"error,omitempty"`
}

// SPF is the sender policy result.
type SPF struct {
	Domain string `json:"domain"` // the MAIL FROM (or HELO) domain checked
	IP     string `json:"ip,omitempty"`
	Result string `json:"result"`
	Record string `json:"record,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// DMARC is the From domain's policy and whether DKIM or SPF align with it.
type DMARC struct {
	Domain      string `json:"domain"`
	Result      string `json:"result"`
	Policy      string `json:"policy,omitempty"`
	Record      string `json:"record,omitempty"`
	DKIMAligned bool   `json:"dkim_aligned"`
	SPFAligned  bool   `json:"spf_aligned"`
	Reason      string `json:"reason,omitempty"`
}

// Result is the whole check.
type Result struct {
	FromDomain string `json:"from_domain"`
	DKIM       []DKIM `json:"dkim"`
	SPF        SPF    `json:"spf"`
	DMARC      DMARC  `json:"dmarc"`
}

// DKIMPassFor reports whether a passing DKIM signature by domain (or, with
// relaxed alignment, by its organisational domain) covers every header
// named.
func (r *Result) DKIMPassFor(domain string, headers ...string) bool {
	for _, d := range r.DKIM {
		if d.Result != Pass || !aligned(d.Domain, domain, false) {
			continue
		}
		ok := true
		for _, h := range headers {
			if !containsFold(d.Headers, h) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), s) {
			return true
		}
	}
	return false
}

// Check verifies in. It returns when done or when the timeout ends, with
// whatever lookups were outstanding reported as temperror.
func Check(ctx context.Context, in Input, opts Options) *Result {
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	res := opts.Resolver

	r := &Result{FromDomain: fromDomain(in.Raw)}
	r.DKIM = verifyDKIM(ctx, in.Raw, res)
	// SPF and DMARC run apart too, so a resolver that ignores its context
	// still cannot hold the check past the timeout.
	type answer struct {
		spf   SPF
		dmarc DMARC
	}
	done := make(chan answer, 1)
	cp := *r // the goroutine's own copy: r may be returned while it runs
	go func() {
		cp.SPF = checkSPF(ctx, in, res)
		done <- answer{cp.SPF, checkDMARC(ctx, &cp, res)}
	}()
	select {
	case a := <-done:
		r.SPF, r.DMARC = a.spf, a.dmarc
	case <-ctx.Done():
		r.SPF = SPF{Domain: domainOf(in.MailFrom), Result: TempError, Reason: "timed out"}
		r.DMARC = DMARC{Domain: r.FromDomain, Result: TempError, Reason: "timed out"}
	}
	return r
}

// fromDomain is the domain of the first From address, lower-cased.
func fromDomain(raw []byte) string {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	from := msg.Header.Get("From")
	if as, err := mail.ParseAddressList(from); err == nil && len(as) > 0 {
		return domainOf(as[0].Address)
	}
	// Unparsable From: take what follows the last @.
	return domainOf(strings.Trim(from, "<> \t"))
}

func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(strings.Trim(addr[i+1:], "<> \t"), "."))
}

// verifyDKIM verifies every signature (up to maxSignatures). go-msgauth
// takes a context-free lookup, so the lookups are bound to ctx by closure,
// and the verification runs in a goroutine the check stops waiting for
// when ctx ends.
func verifyDKIM(ctx context.Context, raw []byte, res Resolver) []DKIM {
	sigs := signatureTags(raw)
	if len(sigs) == 0 {
		return []DKIM{}
	}
	out := make([]DKIM, len(sigs))
	for i, tags := range sigs {
		out[i] = DKIM{Domain: strings.ToLower(stripWS(tags["d"])), Selector: stripWS(tags["s"]), Identifier: stripWS(tags["i"]), Result: TempError, Error: "timed out"}
		for _, h := range strings.Split(tags["h"], ":") {
			if h = strings.TrimSpace(h); h != "" {
				out[i].Headers = append(out[i].Headers, strings.ToLower(h))
			}
		}
	}
	type answer struct {
		vs  []*dkim.Verification
		err error
	}
	done := make(chan answer, 1)
	go func() {
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
			MaxVerifications: maxSignatures,
			LookupTXT: func(name string) ([]string, error) {
				return res.LookupTXT(ctx, name)
			},
		})
		done <- answer{vs, err}
	}()
	select {
	case <-ctx.Done():
		return out
	case a := <-done:
		if len(a.vs) == 0 && a.err != nil && !errors.Is(a.err, dkim.ErrTooManySignatures) {
			for i := range out {
				out[i].Result, out[i].Error = PermError, a.err.Error()
			}
			return out
		}
		for i, v := range a.vs {
			if i >= len(out) {
				break
			}
			if v.Domain != "" {
				out[i].Domain = strings.ToLower(v.Domain)
			}
			if v.Identifier != "" {
				out[i].Identifier = v.Identifier
			}
			out[i].Result, out[i].Error = dkimResult(ctx, v.Err), ""
			if v.Err != nil {
				out[i].Error = v.Err.Error()
			}
		}
		for i := len(a.vs); i < len(out); i++ {
			out[i].Result, out[i].Error = None, fmt.Sprintf("not verified: over %d signatures", maxSignatures)
		}
	}
	return out
}

func dkimResult(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return Pass
	case dkim.IsTempFail(err) || ctx.Err() != nil:
		return TempError
	case dkim.IsPermFail(err):
		return PermError
	}
	return Fail
}

// signatureTags reads each DKIM-Signature header's tags, in header order
// (the order go-msgauth reports them in).
func signatureTags(raw []byte) []map[string]string {
	head := raw
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		head = raw[:i+2]
	} else if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		head = raw[:i+1]
	}
	var out []map[string]string
	var cur []byte
	flush := func() {
		if k, v, ok := bytes.Cut(cur, []byte(":")); ok && strings.EqualFold(strings.TrimSpace(string(k)), "DKIM-Signature") {
			tags := map[string]string{}
			for _, t := range strings.Split(string(v), ";") {
				if k, v, ok := strings.Cut(t, "="); ok {
					tags[strings.TrimSpace(k)] = strings.TrimSpace(v)
				}
			}
			out = append(out, tags)
		}
		cur = nil
	}
	for _, line := range bytes.SplitAfter(head, []byte("\n")) {
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			cur = append(cur, line...)
			continue
		}
		flush()
		cur = append(cur, line...)
	}
	flush()
	return out
}

func stripWS(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}

// orgDomain is the organisational domain (public suffix plus one label).
func orgDomain(d string) string {
	if o, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return o
	}
	return d
}

// aligned reports whether a and b align: equal under strict alignment,
// sharing the organisational domain under relaxed.
func aligned(a, b string, strict bool) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if a == "" || b == "" {
		return false
	}
	if strict {
		return a == b
	}
	return orgDomain(a) == orgDomain(b)
}

// checkDMARC looks up the From domain's policy (falling back to its
// organisational domain) and evaluates alignment.
func checkDMARC(ctx context.Context, r *Result, res Resolver) DMARC {
	d := DMARC{Domain: r.FromDomain, Result: None}
	if d.Domain == "" {
		d.Reason = "no From domain"
		return d
	}
	lookup := func(domain string) (*dmarc.Record, string, error) {
		var txt string
		rec, err := dmarc.LookupWithOptions(domain, &dmarc.LookupOptions{LookupTXT: func(name string) ([]string, error) {
			txts, err := res.LookupTXT(ctx, name)
			for _, t := range txts {
				if strings.HasPrefix(t, "v=DMARC1") {
					txt = t
				}
			}
			return txts, err
		}})
		return rec, txt, err
	}
	rec, txt, err := lookup(d.Domain)
	if errors.Is(err, dmarc.ErrNoPolicy) || isNotFound(err) {
		if org := orgDomain(d.Domain); org != d.Domain {
			rec, txt, err = lookup(org)
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, dmarc.ErrNoPolicy) || isNotFound(err):
		d.Reason = "no DMARC record"
		return d
	case dmarc.IsTempFail(err) || ctx.Err() != nil || isTemporary(err):
		d.Result, d.Reason = TempError, err.Error()
		return d
	default:
		d.Result, d.Reason = PermError, err.Error()
		return d
	}
	d.Record, d.Policy = txt, string(rec.Policy)
	for _, k := range r.DKIM {
		if k.Result == Pass && aligned(k.Domain, d.Domain, rec.DKIMAlignment == dmarc.AlignmentStrict) {
			d.DKIMAligned = true
		}
	}
	d.SPFAligned = r.SPF.Result == Pass && aligned(r.SPF.Domain, d.Domain, rec.SPFAlignment == dmarc.AlignmentStrict)
	if d.DKIMAligned || d.SPFAligned {
		d.Result = Pass
	} else {
		d.Result, d.Reason = Fail, "neither a passing DKIM signature nor a passing SPF check aligns with the From domain"
	}
	return d
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

func isTemporary(err error) bool {
	var de *net.DNSError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.As(err, &de) && (de.IsTimeout || de.IsTemporary)
}
