package authcheck

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// zone is a test resolver: fixed records, NXDOMAIN for the rest.
type zone struct {
	txt  map[string][]string
	ip   map[string][]string
	mx   map[string][]string
	hang bool // every lookup blocks until its context ends
}

func (z *zone) wait(ctx context.Context, name string) error {
	if z.hang {
		<-ctx.Done()
		return &net.DNSError{Err: ctx.Err().Error(), Name: name, IsTimeout: true}
	}
	return nil
}

func nx(name string) error { return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true} }

func (z *zone) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if err := z.wait(ctx, name); err != nil {
		return nil, err
	}
	if v, ok := z.txt[strings.ToLower(strings.TrimSuffix(name, "."))]; ok {
		return v, nil
	}
	return nil, nx(name)
}

func (z *zone) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if err := z.wait(ctx, host); err != nil {
		return nil, err
	}
	v, ok := z.ip[strings.ToLower(host)]
	if !ok {
		return nil, nx(host)
	}
	var out []net.IPAddr
	for _, s := range v {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	return out, nil
}

func (z *zone) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	if err := z.wait(ctx, name); err != nil {
		return nil, err
	}
	v, ok := z.mx[strings.ToLower(name)]
	if !ok {
		return nil, nx(name)
	}
	var out []*net.MX
	for _, h := range v {
		out = append(out, &net.MX{Host: h, Pref: 10})
	}
	return out, nil
}

const plainMessage = "From: Alice <alice@example.com>\r\n" +
	"To: bob@example.org\r\n" +
	"Subject: signed\r\n" +
	"Date: Sat, 05 Dec 2026 06:00:00 +0000\r\n" +
	"Message-ID: <signed-1@example.com>\r\n" +
	"List-Unsubscribe: <https://example.com/u/1>\r\n" +
	"\r\n" +
	"Hello Bob.\r\n"

// sign DKIM-signs msg for domain/selector and returns the signed message
// and the DNS TXT record publishing the key.
func sign(t *testing.T, msg, domain, selector string, useRSA bool) ([]byte, string) {
	t.Helper()
	opts := &dkim.SignOptions{Domain: domain, Selector: selector,
		HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe"}}
	var record string
	if useRSA {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		opts.Signer = key
		record = "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	} else {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		opts.Signer = priv
		record = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	}
	var out bytes.Buffer
	if err := dkim.Sign(&out, strings.NewReader(msg), opts); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), record
}

func TestDKIMPassAndBodyAltered(t *testing.T) {
	signed, rec := sign(t, plainMessage, "example.com", "sel1", true)
	z := &zone{txt: map[string][]string{
		"sel1._domainkey.example.com": {rec},
		"_dmarc.example.com":          {"v=DMARC1; p=reject"},
	}}
	r := Check(context.Background(), Input{Raw: signed, MailFrom: "alice@example.com"}, Options{Resolver: z})
	if len(r.DKIM) != 1 {
		t.Fatalf("DKIM results %+v", r.DKIM)
	}
	d := r.DKIM[0]
	if d.Result != Pass || d.Domain != "example.com" || d.Selector != "sel1" {
		t.Errorf("signed message: %+v, want pass for example.com/sel1", d)
	}
	for _, h := range []string{"from", "subject", "list-unsubscribe"} {
		if !containsFold(d.Headers, h) {
			t.Errorf("covered headers %v lack %s", d.Headers, h)
		}
	}
	if r.DMARC.Result != Pass || !r.DMARC.DKIMAligned || r.DMARC.Policy != "reject" {
		t.Errorf("DMARC %+v, want pass by aligned DKIM, policy reject", r.DMARC)
	}
	if !r.DKIMPassFor("example.com", "List-Unsubscribe") {
		t.Error("DKIMPassFor says List-Unsubscribe is not covered")
	}

	altered := bytes.Replace(signed, []byte("Hello Bob."), []byte("Hello Eve."), 1)
	r = Check(context.Background(), Input{Raw: altered, MailFrom: "alice@example.com"}, Options{Resolver: z})
	if r.DKIM[0].Result != Fail || r.DKIM[0].Error == "" {
		t.Errorf("body altered after signing: %+v, want fail with a reason", r.DKIM[0])
	}
	if r.DMARC.Result != Fail {
		t.Errorf("DMARC %+v, want fail when the only signature fails", r.DMARC)
	}
}

func TestDKIMEd25519AndMissingKey(t *testing.T) {
	signed, rec := sign(t, plainMessage, "mail.example.com", "ed", false)
	z := &zone{txt: map[string][]string{"ed._domainkey.mail.example.com": {rec}}}
	r := Check(context.Background(), Input{Raw: signed}, Options{Resolver: z})
	if r.DKIM[0].Result != Pass {
		t.Errorf("ed25519: %+v", r.DKIM[0])
	}
	// Relaxed alignment: mail.example.com aligns with example.com, but
	// there is no DMARC record at all.
	if r.DMARC.Result != None {
		t.Errorf("DMARC %+v, want none without a record", r.DMARC)
	}
	r = Check(context.Background(), Input{Raw: signed}, Options{Resolver: &zone{}})
	if r.DKIM[0].Result != PermError {
		t.Errorf("no key published: %+v, want permerror", r.DKIM[0])
	}
	r = Check(context.Background(), Input{Raw: []byte(plainMessage)}, Options{Resolver: &zone{}})
	if len(r.DKIM) != 0 || r.FromDomain != "example.com" {
		t.Errorf("unsigned: %+v", r)
	}
}

func TestSPF(t *testing.T) {
	z := &zone{
		txt: map[string][]string{
			"example.com":        {"some other text", "v=spf1 ip4:192.0.2.0/24 include:_spf.example.net mx -all"},
			"_spf.example.net":   {"v=spf1 ip6:2001:db8::/32 a:relay.example.net ~all"},
			"soft.example":       {"v=spf1 ~all"},
			"redir.example":      {"v=spf1 redirect=example.com"},
			"loop.example":       {"v=spf1 include:loop.example -all"},
			"_dmarc.example.com": {"v=DMARC1; p=none; aspf=s"},
		},
		ip: map[string][]string{"relay.example.net": {"198.51.100.7"}, "mx.example.com": {"203.0.113.9"}},
		mx: map[string][]string{"example.com": {"mx.example.com."}},
	}
	for _, tc := range []struct{ from, ip, want string }{
		{"a@example.com", "192.0.2.10", Pass},
		{"a@example.com", "2001:db8::1", Pass},       // via include, ip6
		{"a@example.com", "198.51.100.7", Pass},      // via include, a:
		{"a@example.com", "203.0.113.9", Pass},       // mx
		{"a@example.com", "203.0.113.10", Fail},      // -all
		{"a@soft.example", "203.0.113.10", SoftFail}, // ~all
		{"a@redir.example", "192.0.2.1", Pass},       // redirect=
		{"a@nospf.example", "192.0.2.1", None},       // no record
		{"a@loop.example", "192.0.2.1", PermError},   // include loop hits the limit
	} {
		r := Check(context.Background(), Input{Raw: []byte(plainMessage), MailFrom: tc.from, ClientIP: net.ParseIP(tc.ip)}, Options{Resolver: z})
		if r.SPF.Result != tc.want {
			t.Errorf("%s from %s: %+v, want %s", tc.from, tc.ip, r.SPF, tc.want)
		}
	}
	r := Check(context.Background(), Input{Raw: []byte(plainMessage), MailFrom: "a@example.com", ClientIP: net.ParseIP("192.0.2.10")}, Options{Resolver: z})
	if r.DMARC.Result != Pass || !r.DMARC.SPFAligned {
		t.Errorf("DMARC %+v, want pass by aligned SPF", r.DMARC)
	}
	r = Check(context.Background(), Input{Raw: []byte(plainMessage), MailFrom: "a@example.com"}, Options{Resolver: z})
	if r.SPF.Result != None || !strings.Contains(r.SPF.Reason, "IP is unknown") {
		t.Errorf("no client IP: %+v, want none saying why", r.SPF)
	}
}

// TestOffline: a resolver that never answers gives temperror within the
// timeout, never a hang.
func TestOffline(t *testing.T) {
	signed, _ := sign(t, plainMessage, "example.com", "sel1", false)
	start := time.Now()
	done := make(chan *Result, 1)
	go func() {
		done <- Check(context.Background(), Input{Raw: signed, MailFrom: "a@example.com", ClientIP: net.ParseIP("192.0.2.1")},
			Options{Resolver: &zone{hang: true}, Timeout: 200 * time.Millisecond})
	}()
	select {
	case r := <-done:
		if r.DKIM[0].Result != TempError || r.SPF.Result != TempError || r.DMARC.Result != TempError {
			t.Errorf("offline: dkim %s, spf %s, dmarc %s; want temperror for all", r.DKIM[0].Result, r.SPF.Result, r.DMARC.Result)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("check still running after %v with a 200ms timeout", time.Since(start))
	}
}

func FuzzSignatureTags(f *testing.F) {
	f.Add([]byte(plainMessage))
	f.Add([]byte("DKIM-Signature: v=1; a=rsa-sha256; d=x; s=y;\r\n h=from:to; b=abc\r\n\r\nbody"))
	f.Add([]byte("DKIM-Signature:\n\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r := Check(context.Background(), Input{Raw: raw, MailFrom: "a@b.example", ClientIP: net.ParseIP("192.0.2.1")},
			Options{Resolver: &zone{}, Timeout: time.Second})
		if r == nil {
			t.Fatal("no result")
		}
	})
}

// deaf ignores its context: lookups block forever.
type deaf struct{ *zone }

func (deaf) LookupTXT(context.Context, string) ([]string, error) { select {} }

// TestResolverIgnoringContext: even a resolver that never returns cannot
// hold the check past its timeout.
func TestResolverIgnoringContext(t *testing.T) {
	signed, _ := sign(t, plainMessage, "example.com", "sel1", false)
	done := make(chan *Result, 1)
	go func() {
		done <- Check(context.Background(), Input{Raw: signed, MailFrom: "a@example.com", ClientIP: net.ParseIP("192.0.2.1")},
			Options{Resolver: deaf{&zone{}}, Timeout: 200 * time.Millisecond})
	}()
	select {
	case r := <-done:
		if r.DKIM[0].Result != TempError || r.SPF.Result != TempError || r.DMARC.Result != TempError {
			t.Errorf("dkim %s, spf %s, dmarc %s; want temperror", r.DKIM[0].Result, r.SPF.Result, r.DMARC.Result)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a deaf resolver held the check past its timeout")
	}
}
