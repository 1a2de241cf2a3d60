package authcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// maxSPFLookups is RFC 7208's limit on DNS-querying terms (4.6.4).
const maxSPFLookups = 10

// checkSPF evaluates the SPF record of the MAIL FROM domain (or of the
// HELO name for a null sender) for the client IP.
func checkSPF(ctx context.Context, in Input, res Resolver) SPF {
	domain := domainOf(in.MailFrom)
	sender := in.MailFrom
	if domain == "" {
		domain = strings.ToLower(strings.TrimSuffix(in.HELO, "."))
		sender = "postmaster@" + domain
	}
	s := SPF{Domain: domain, Result: None}
	if domain == "" {
		s.Reason = "no envelope sender or HELO domain"
		return s
	}
	if in.ClientIP == nil {
		s.Reason = "the connecting IP is unknown, so SPF cannot be evaluated"
		return s
	}
	s.IP = in.ClientIP.String()
	e := &spfEval{ctx: ctx, res: res, ip: in.ClientIP, sender: sender, helo: in.HELO}
	result, record, reason := e.check(domain, 0)
	s.Result, s.Record, s.Reason = result, record, reason
	return s
}

type spfEval struct {
	ctx     context.Context
	res     Resolver
	ip      net.IP
	sender  string
	helo    string
	lookups int
}

// errLimit is returned when the evaluation goes past maxSPFLookups.
var errLimit = errors.New("more than 10 DNS-querying terms")

// check evaluates domain's record; depth bounds include/redirect recursion
// besides the lookup limit.
func (e *spfEval) check(domain string, depth int) (result, record, reason string) {
	if depth > maxSPFLookups {
		return PermError, "", errLimit.Error()
	}
	txts, err := e.res.LookupTXT(e.ctx, domain)
	if err != nil {
		if isNotFound(err) {
			return None, "", "no SPF record for " + domain
		}
		return TempError, "", fmt.Sprintf("TXT lookup for %s: %v", domain, err)
	}
	var recs []string
	for _, t := range txts {
		if t == "v=spf1" || strings.HasPrefix(strings.ToLower(t), "v=spf1 ") {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return None, "", "no SPF record for " + domain
	case 1:
	default:
		return PermError, "", "more than one SPF record for " + domain
	}
	record = recs[0]
	var redirect string
	for _, term := range strings.Fields(record)[1:] {
		lt := strings.ToLower(term)
		if v, ok := strings.CutPrefix(lt, "redirect="); ok {
			redirect = v
			continue
		}
		if strings.Contains(lt, "=") && !strings.ContainsAny(lt[:strings.Index(lt, "=")], ":/") {
			continue // another modifier (exp=…)
		}
		qual := Pass
		switch term[0] {
		case '+':
			term = term[1:]
		case '-':
			qual, term = Fail, term[1:]
		case '~':
			qual, term = SoftFail, term[1:]
		case '?':
			qual, term = Neutral, term[1:]
		}
		match, err := e.mechanism(domain, term, depth)
		if err != nil {
			if errors.Is(err, errTemp) {
				return TempError, record, err.Error()
			}
			return PermError, record, err.Error()
		}
		if match {
			return qual, record, fmt.Sprintf("%s matched %q", e.ip, term)
		}
	}
	if redirect != "" {
		if e.lookups++; e.lookups > maxSPFLookups {
			return PermError, record, errLimit.Error()
		}
		target, err := e.expand(redirect, domain)
		if err != nil {
			return PermError, record, err.Error()
		}
		r, _, why := e.check(target, depth+1)
		if r == None {
			r = PermError
		}
		return r, record, why
	}
	return Neutral, record, "no mechanism matched " + e.ip.String()
}

var errTemp = errors.New("temporary DNS error")

func (e *spfEval) mechanism(domain, term string, depth int) (bool, error) {
	name, arg, _ := strings.Cut(term, ":")
	cidr := ""
	if i := strings.IndexByte(name, '/'); i >= 0 {
		name, cidr = name[:i], name[i:]
	}
	if i := strings.IndexByte(arg, '/'); i >= 0 {
		arg, cidr = arg[:i], arg[i:]
	}
	name = strings.ToLower(name)
	target := domain
	if arg != "" {
		t, err := e.expand(arg, domain)
		if err != nil {
			return false, err
		}
		target = t
	}
	switch name {
	case "all":
		return true, nil
	case "ip4", "ip6":
		if arg == "" {
			return false, fmt.Errorf("%s without an address", name)
		}
		n := arg + cidr
		if !strings.Contains(n, "/") {
			if name == "ip4" {
				n += "/32"
			} else {
				n += "/128"
			}
		}
		_, ipnet, err := net.ParseCIDR(n)
		if err != nil {
			return false, fmt.Errorf("bad %s %q", name, arg+cidr)
		}
		return ipnet.Contains(e.ip), nil
	}
	if e.lookups++; e.lookups > maxSPFLookups {
		return false, errLimit
	}
	switch name {
	case "include":
		if arg == "" {
			return false, errors.New("include without a domain")
		}
		r, _, why := e.check(target, depth+1)
		switch r {
		case Pass:
			return true, nil
		case Fail, SoftFail, Neutral:
			return false, nil
		case TempError:
			return false, fmt.Errorf("%w: include:%s: %s", errTemp, target, why)
		}
		return false, fmt.Errorf("include:%s: %s", target, why)
	case "a":
		ips, err := e.res.LookupIPAddr(e.ctx, target)
		if err != nil {
			return false, dnsErr(err)
		}
		return e.anyIn(ips, cidr), nil
	case "mx":
		mxs, err := e.res.LookupMX(e.ctx, target)
		if err != nil {
			return false, dnsErr(err)
		}
		for i, mx := range mxs {
			if i >= maxSPFLookups {
				return false, errLimit
			}
			ips, err := e.res.LookupIPAddr(e.ctx, strings.TrimSuffix(mx.Host, "."))
			if err != nil {
				if isNotFound(err) {
					continue
				}
				return false, dnsErr(err)
			}
			if e.anyIn(ips, cidr) {
				return true, nil
			}
		}
		return false, nil
	case "exists":
		ips, err := e.res.LookupIPAddr(e.ctx, target)
		if err != nil {
			return false, dnsErr(err)
		}
		return len(ips) > 0, nil
	case "ptr":
		// Deprecated (RFC 7208 5.5) and costly; treated as no match.
		return false, nil
	}
	return false, fmt.Errorf("unknown mechanism %q", name)
}

// dnsErr turns "not found" into no match and others into temperror.
func dnsErr(err error) error {
	if isNotFound(err) {
		return nil
	}
	return fmt.Errorf("%w: %v", errTemp, err)
}

// anyIn reports whether the client IP is in any of ips, with an optional
// "/v4" or "/v4//v6" prefix length.
func (e *spfEval) anyIn(ips []net.IPAddr, cidr string) bool {
	v4, v6 := 32, 128
	if cidr != "" {
		parts := strings.Split(strings.TrimPrefix(cidr, "/"), "//")
		if n, err := strconv.Atoi(parts[0]); err == nil && parts[0] != "" {
			v4 = n
		}
		if len(parts) > 1 {
			if n, err := strconv.Atoi(parts[1]); err == nil {
				v6 = n
			}
		}
	}
	for _, a := range ips {
		bits, ones := 128, v6
		ip := a.IP
		if ip4 := ip.To4(); ip4 != nil {
			ip, bits, ones = ip4, 32, v4
		}
		n := net.IPNet{IP: ip.Mask(net.CIDRMask(ones, bits)), Mask: net.CIDRMask(ones, bits)}
		if n.Contains(e.ip) {
			return true
		}
	}
	return false
}

// expand expands the common SPF macros (RFC 7208 7): %{s} %{l} %{o} %{d}
// %{i} %{h} and %% %_ %-, without transformers.
func (e *spfEval) expand(s, domain string) (string, error) {
	if !strings.Contains(s, "%") {
		return strings.TrimSuffix(s, "."), nil
	}
	local, od, _ := strings.Cut(e.sender, "@")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("bad macro in %q", s)
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case '_':
			b.WriteByte(' ')
		case '-':
			b.WriteString("%20")
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 2 {
				return "", fmt.Errorf("bad macro in %q", s)
			}
			switch strings.ToLower(s[i+1 : i+2]) {
			case "s":
				b.WriteString(e.sender)
			case "l":
				b.WriteString(local)
			case "o":
				b.WriteString(od)
			case "d":
				b.WriteString(domain)
			case "i":
				b.WriteString(e.ip.String())
			case "h":
				b.WriteString(e.helo)
			default:
				return "", fmt.Errorf("unsupported macro in %q", s)
			}
			i += end
		default:
			return "", fmt.Errorf("bad macro in %q", s)
		}
	}
	return strings.TrimSuffix(b.String(), "."), nil
}
