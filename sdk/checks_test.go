package sdk_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/checks/spamcheck/spamdtest"
	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
	"github.com/mailsandbox/mailsandbox/internal/need"
	"github.com/mailsandbox/mailsandbox/sdk"
	"github.com/mailsandbox/mailsandbox/sdk/sandboxtest"
)

func newsletterRaw(t *testing.T) []byte {
	b, err := os.ReadFile("../capture/checks/htmlcheck/testdata/newsletter.eml")
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.ReplaceAll(string(b), "\n", "\r\n"))
}

func sendAndGet(t *testing.T, c *sdk.Client, raw []byte) *sdk.Message {
	t.Helper()
	ctx := context.Background()
	id, err := c.SendRaw(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHTMLCheckSDK(t *testing.T) {
	s := sandboxtest.New(t)
	ctx := context.Background()
	m := sendAndGet(t, s.Client(), newsletterRaw(t))
	h, err := m.HTMLCheck(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !h.HasHTML || h.Finding("css-display-flex") == nil || len(h.Families) == 0 {
		t.Fatalf("%+v", h)
	}
	err = h.RequireSupported("outlook")
	if err == nil || !strings.Contains(err.Error(), "css-display-flex") || !strings.Contains(err.Error(), "Outlook Windows") {
		t.Errorf("RequireSupported(outlook) should name flexbox and Outlook on Windows: %v", err)
	}
	if err := h.RequireScore(100); err == nil || !strings.Contains(err.Error(), "worst:") {
		t.Errorf("RequireScore(100): %v", err)
	}
	ios, err := m.HTMLCheck(ctx, sdk.Platforms("ios"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ios.Findings {
		for _, c := range f.Clients {
			if c.Platform != "ios" {
				t.Fatalf("Platforms(ios) ignored: %+v", c)
			}
		}
	}
	if _, err := s.Client().HTMLCheck(ctx, "no-such-id"); sdk.StatusCode(err) != http.StatusNotFound {
		t.Errorf("unknown id: %v", err)
	}
}

func TestLinkCheckSDK(t *testing.T) {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusMovedPermanently)
		default:
			http.NotFound(w, r)
		}
	}))
	defer site.Close()
	s := sandboxtest.New(t, sandboxtest.WithConfig(func(c *sandbox.Config) { c.AllowInternalLinkChecks = true }))
	m := sendAndGet(t, s.Client(), []byte("From: a@example.com\r\nTo: b@example.org\r\nSubject: links\r\nContent-Type: text/html\r\n\r\n"+
		`<a href="`+site.URL+`/ok">ok</a> <a href="`+site.URL+`/moved">moved</a> <img src="`+site.URL+`/gone.png">`+"\r\n"))
	l, err := m.LinkCheck(context.Background(), sdk.FollowRedirects())
	if err != nil {
		t.Fatal(err)
	}
	err = l.Err()
	if l.Errors != 1 || err == nil || !strings.Contains(err.Error(), "/gone.png: 404") || strings.Contains(err.Error(), "/ok") {
		t.Errorf("link check: %+v\n%v", l, err)
	}
}

func TestSpamCheckSDK(t *testing.T) {
	addr, stop, err := spamdtest.Start()
	if err != nil {
		need.Skip(t, need.Spamd, err.Error())
	}
	defer stop()
	s := sandboxtest.New(t, sandboxtest.WithConfig(func(c *sandbox.Config) { c.SpamAssassin = addr }))
	m := sendAndGet(t, s.Client(), []byte("From: a@example.com\r\nTo: b@example.org\r\nSubject: gtube\r\n\r\n"+
		"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sc, err := m.SpamCheck(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = sc.RequireBelow(5)
	if !sc.IsSpam || err == nil || !strings.Contains(err.Error(), "GTUBE") {
		t.Errorf("GTUBE: %+v\n%v", sc, err)
	}
}

// TestAuthAndBulkSDK runs offline: with no DNS the unsigned message's
// checks still answer, and the assertion errors say what is missing.
func TestAuthAndBulkSDK(t *testing.T) {
	s := sandboxtest.New(t)
	m := sendAndGet(t, s.Client(), []byte("From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n"+
		"List-Unsubscribe: <mailto:u@example.com>\r\n\r\nhello\r\n"))
	ctx := context.Background()
	a, err := m.AuthCheck(ctx, sdk.ClientIP("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	if a.FromDomain != "example.com" || a.SPF.IP != "192.0.2.1" {
		t.Errorf("%+v", a)
	}
	if err := a.RequireDKIMPass("example.com"); err == nil || !strings.Contains(err.Error(), "signatures: none") {
		t.Errorf("RequireDKIMPass on an unsigned message: %v", err)
	}
	b, err := m.BulkCheck(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Err()
	if b.Pass || err == nil || !strings.Contains(err.Error(), "only a mailto: URI") || !strings.Contains(err.Error(), "no List-Unsubscribe-Post") {
		t.Errorf("bulk: %+v\n%v", b, err)
	}
}
