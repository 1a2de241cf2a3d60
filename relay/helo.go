package relay

import (
	"context"
	"net"
	"strings"
	"time"
)

// heloLookupTimeout bounds the name lookups made once at New: a resolver
// that does not answer must not hold up start-up.
const heloLookupTimeout = 3 * time.Second

// fqdn returns the host's fully qualified name: the host name when it has
// a dot and resolves, else a dotted name the host's addresses map back to
// (Debian's "127.0.1.1 vm.example.org vm" in /etc/hosts), checked to
// resolve forward. "" when there is none: destinations with
// reject_non_fqdn_helo_hostname refuse a bare "vm", so the caller greets
// with an address literal instead.
func fqdn(ctx context.Context, o Options) string {
	host, err := o.Hostname()
	if err != nil || host == "" {
		return ""
	}
	host = strings.TrimSuffix(host, ".")
	ctx, cancel := context.WithTimeout(ctx, heloLookupTimeout)
	defer cancel()
	resolves := func(name string) bool {
		addrs, err := o.LookupHost(ctx, name)
		return err == nil && len(addrs) > 0
	}
	if dotted(host) && resolves(host) {
		return host
	}
	addrs, err := o.LookupHost(ctx, host)
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		names, err := o.LookupAddr(ctx, a)
		if err != nil {
			continue
		}
		for _, n := range names {
			n = strings.TrimSuffix(n, ".")
			if dotted(n) && resolves(n) {
				return n
			}
		}
	}
	return ""
}

// dotted reports whether name looks fully qualified: it has a dot inside
// and is not a spelling of localhost, which says nothing about who we are.
func dotted(name string) bool {
	l := strings.ToLower(name)
	if strings.HasPrefix(l, "localhost") || net.ParseIP(name) != nil {
		return false
	}
	i := strings.Index(name, ".")
	return i > 0 && i < len(name)-1
}

// addressLiteral is the RFC 5321 address literal for the local end of c:
// "[192.0.2.1]" or "[IPv6:2001:db8::1]".
func addressLiteral(c net.Conn) string {
	ta, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok || ta.IP == nil {
		return "[127.0.0.1]"
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		return "[" + ip4.String() + "]"
	}
	return "[IPv6:" + ta.IP.String() + "]"
}

// heloFor is the name to greet with on c: the configured or resolved
// name, else c's address literal.
func (q *Queue) heloFor(c net.Conn) string {
	if q.helo != "" {
		return q.helo
	}
	return addressLiteral(c)
}

// validHelo accepts what may follow EHLO: a domain name or an address
// literal, printable ASCII without spaces.
func validHelo(name string) bool {
	if len(name) > 255 {
		return false
	}
	if strings.HasPrefix(name, "[") {
		return strings.HasSuffix(name, "]") && len(name) > 2
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return name != "" && name[0] != '.' && name[0] != '-'
}
