package checks

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/api/rest"
	"github.com/mailsandbox/mailsandbox/capture/checks/spamcheck/spamdtest"
	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/internal/need"
)

var spamdAddr string

func TestMain(m *testing.M) { spamdtest.RunTests(m, "api/checks", &spamdAddr) }

// zone is a fixed DNS for the authentication check.
type zone map[string][]string

func (z zone) LookupTXT(_ context.Context, name string) ([]string, error) {
	if v, ok := z[strings.TrimSuffix(name, ".")]; ok {
		return v, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (z zone) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (z zone) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

type env struct {
	st   *store.Store
	url  string
	http *http.Client
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(t.TempDir(), "mail.db"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := New(st, opts, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := rest.New(st, rest.Options{Mounts: []rest.Mount{{Register: h.Register}}}, log)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return &env{st: st, url: "http://" + l.Addr().String(), http: &http.Client{Timeout: 30 * time.Second}}
}

func (e *env) ingest(t *testing.T, from string, raw []byte) string {
	t.Helper()
	id, err := e.st.Ingest(context.Background(), store.Envelope{From: from, To: []string{"reader@example.org"}}, raw)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) get(t *testing.T, path string, out any) (int, string, string) {
	t.Helper()
	resp, err := e.http.Get(e.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func newsletter(t *testing.T) []byte {
	b, err := os.ReadFile("../../capture/checks/htmlcheck/testdata/newsletter.eml")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

func TestHTMLRoutes(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.ingest(t, "news@example.com", newsletter(t))

	var native struct {
		HasHTML  bool `json:"has_html"`
		Findings []struct {
			Slug    string
			Clients []struct{ Platform string }
		} `json:"findings"`
		Families []struct{ Family string } `json:"families"`
		Score    struct{ Supported float64 }
	}
	code, _, body := e.get(t, "/api/v1/messages/"+id+"/checks/html?platform=ios", &native)
	if code != 200 || !native.HasHTML || len(native.Findings) == 0 || len(native.Families) == 0 {
		t.Fatalf("native html: %d %s", code, body)
	}
	for _, f := range native.Findings {
		for _, c := range f.Clients {
			if c.Platform != "ios" {
				t.Fatalf("platform filter ignored: %s lists %s", f.Slug, c.Platform)
			}
		}
	}

	var mp struct {
		Platforms map[string][]string
		Total     struct{ Nodes, Tests int }
		Warnings  []struct {
			Slug    string
			Score   struct{ Found int }
			Results []struct{ Name, Support string }
		}
	}
	code, _, body = e.get(t, "/api/v1/message/"+id+"/html-check", &mp)
	if code != 200 || mp.Total.Nodes == 0 || len(mp.Warnings) == 0 || len(mp.Platforms) == 0 {
		t.Fatalf("mailpit html-check: %d %s", code, body)
	}
	var flex bool
	for _, w := range mp.Warnings {
		if w.Slug == "css-display-flex" && w.Score.Found == 1 && len(w.Results) > 10 && strings.Contains(w.Results[0].Name, "(") {
			flex = true
		}
	}
	if !flex {
		t.Errorf("css-display-flex missing from Mailpit shape: %s", body[:min(len(body), 500)])
	}
	// latest is the newest message.
	if code, _, _ := e.get(t, "/api/v1/message/latest/html-check", nil); code != 200 {
		t.Errorf("latest: %d", code)
	}

	// Errors: native JSON, Mailpit plain text.
	code, ct, body := e.get(t, "/api/v1/messages/nope/checks/html", nil)
	if code != 404 || !strings.Contains(ct, "json") || !strings.Contains(body, `"error"`) {
		t.Errorf("native unknown id: %d %s %s", code, ct, body)
	}
	code, ct, body = e.get(t, "/api/v1/message/nope/html-check", nil)
	if code != 404 || !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("mailpit unknown id: %d %s %s", code, ct, body)
	}
	textOnly := e.ingest(t, "a@example.com", []byte("From: a@example.com\r\nSubject: t\r\n\r\nplain\r\n"))
	code, ct, body = e.get(t, "/api/v1/message/"+textOnly+"/html-check", nil)
	if code != 400 || !strings.HasPrefix(ct, "text/plain") || !strings.Contains(body, "HTML") {
		t.Errorf("mailpit html-check of a text message: %d %s %s", code, ct, body)
	}
}

func TestLinkRoutes(t *testing.T) {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer site.Close()
	raw := []byte("From: a@example.com\r\nSubject: links\r\nContent-Type: text/html\r\n\r\n" +
		`<a href="` + site.URL + `/ok">ok</a> <a href="` + site.URL + `/gone">gone</a> <img src="` + site.URL + `/moved">` + "\r\n")

	// Internal targets refused by default: the answer says so.
	e := newEnv(t, Options{})
	id := e.ingest(t, "a@example.com", raw)
	var mp struct {
		Errors int
		Links  []struct {
			URL        string
			StatusCode int
			Status     string
		}
	}
	if code, _, body := e.get(t, "/api/v1/message/"+id+"/link-check", &mp); code != 200 || mp.Errors != 3 ||
		!strings.Contains(body, "allow-internal-link-checks") {
		t.Errorf("refused links: %d %s", code, body)
	}

	e = newEnv(t, Options{AllowInternalLinks: true})
	id = e.ingest(t, "a@example.com", raw)
	code, _, body := e.get(t, "/api/v1/message/"+id+"/link-check", &mp)
	if code != 200 || mp.Errors != 1 || len(mp.Links) != 3 {
		t.Fatalf("link-check: %d %s", code, body)
	}
	codes := map[string]int{}
	for _, l := range mp.Links {
		codes[strings.TrimPrefix(l.URL, site.URL)] = l.StatusCode
	}
	if codes["/ok"] != 200 || codes["/gone"] != 404 || codes["/moved"] != 302 {
		t.Errorf("statuses %v", codes)
	}
	e.get(t, "/api/v1/message/"+id+"/link-check?follow=true", &mp)
	for _, l := range mp.Links {
		if strings.HasSuffix(l.URL, "/moved") && l.StatusCode != 200 {
			t.Errorf("follow=true: %+v", l)
		}
	}
	var native struct {
		Errors int
		Links  []struct{ Kind string }
	}
	if code, _, body := e.get(t, "/api/v1/messages/"+id+"/checks/links?follow=maybe", nil); code != 400 || !strings.Contains(body, "follow") {
		t.Errorf("bad follow: %d %s", code, body)
	}
	if code, _, body := e.get(t, "/api/v1/messages/"+id+"/checks/links", &native); code != 200 || native.Errors != 1 || len(native.Links) != 3 {
		t.Errorf("native links: %d %s", code, body)
	}
}

func TestSpamRoutes(t *testing.T) {
	// Not configured, and spamd down: 200 with the error inside.
	e := newEnv(t, Options{})
	id := e.ingest(t, "a@example.com", []byte("From: a@example.com\r\nSubject: s\r\n\r\nhello\r\n"))
	var mp struct {
		IsSpam bool
		Error  string
		Score  float64
		Rules  []struct {
			Name, Description string
			Score             float64
		}
	}
	if code, _, body := e.get(t, "/api/v1/message/"+id+"/sa-check", &mp); code != 200 || !strings.Contains(mp.Error, "--spamassassin") {
		t.Errorf("not configured: %d %s", code, body)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := l.Addr().String()
	l.Close()
	e = newEnv(t, Options{SpamAssassin: down})
	id = e.ingest(t, "a@example.com", []byte("From: a@example.com\r\nSubject: s\r\n\r\nhello\r\n"))
	if code, _, body := e.get(t, "/api/v1/message/"+id+"/sa-check", &mp); code != 200 || mp.Error == "" || mp.Rules == nil {
		t.Errorf("spamd down: %d %s", code, body)
	}
	if code, _, body := e.get(t, "/api/v1/messages/"+id+"/checks/spam", nil); code != 200 || !strings.Contains(body, `"error"`) {
		t.Errorf("native, spamd down: %d %s", code, body)
	}

	if spamdAddr == "" {
		need.Skip(t, need.Spamd, "spamd not available")
	}
	e = newEnv(t, Options{SpamAssassin: spamdAddr, SpamTimeout: time.Minute})
	id = e.ingest(t, "a@example.com", []byte("From: a@example.com\r\nSubject: gtube\r\n\r\n"+
		"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"))
	code, _, body := e.get(t, "/api/v1/message/"+id+"/sa-check", &mp)
	if code != 200 || !mp.IsSpam || mp.Score < 100 || mp.Error != "" {
		t.Fatalf("GTUBE: %d %s", code, body)
	}
	found := false
	for _, r := range mp.Rules {
		found = found || r.Name == "GTUBE" && r.Description != ""
	}
	if !found {
		t.Errorf("GTUBE rule missing: %s", body)
	}
}

func TestAuthAndBulkRoutes(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: News <news@example.com>\r\nTo: r@example.org\r\nSubject: bulk\r\n" +
		"List-Unsubscribe: <https://example.com/u/1>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
	var signed bytes.Buffer
	if err := dkim.Sign(&signed, strings.NewReader(msg), &dkim.SignOptions{Domain: "example.com", Selector: "s1", Signer: priv,
		HeaderKeys: []string{"From", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post"}}); err != nil {
		t.Fatal(err)
	}
	z := zone{
		"s1._domainkey.example.com": {"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)},
		"_dmarc.example.com":        {"v=DMARC1; p=quarantine"},
		"example.com":               {"v=spf1 ip4:192.0.2.0/24 -all"},
	}
	e := newEnv(t, Options{Resolver: z})
	id := e.ingest(t, "bounce@example.com", signed.Bytes())

	var auth struct {
		DKIM  []struct{ Domain, Selector, Result string }
		SPF   struct{ Result, Reason string }
		DMARC struct {
			Result string
			Policy string
		}
	}
	code, _, body := e.get(t, "/api/v1/messages/"+id+"/checks/auth?ip=192.0.2.5", &auth)
	if code != 200 || len(auth.DKIM) != 1 || auth.DKIM[0].Result != "pass" || auth.DKIM[0].Selector != "s1" ||
		auth.SPF.Result != "pass" || auth.DMARC.Result != "pass" || auth.DMARC.Policy != "quarantine" {
		t.Fatalf("auth: %d %s", code, body)
	}
	e.get(t, "/api/v1/messages/"+id+"/checks/auth", &auth)
	if auth.SPF.Result != "none" || !strings.Contains(auth.SPF.Reason, "IP is unknown") {
		t.Errorf("without ?ip: %+v", auth.SPF)
	}
	// Mail that came over SMTP carries its client's address: SPF uses it
	// without ?ip= (here one the record allows, then one it refuses).
	for ip, want := range map[string]string{"192.0.2.5": "pass", "198.51.100.7": "fail"} {
		sid, err := e.st.Ingest(context.Background(), store.Envelope{From: "bounce@example.com", To: []string{"reader@example.org"}, ClientIP: ip, Helo: "mta.example.com"}, signed.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		e.get(t, "/api/v1/messages/"+sid+"/checks/auth", &auth)
		if auth.SPF.Result != want {
			t.Errorf("stored client %s: SPF %+v, want %s", ip, auth.SPF, want)
		}
	}
	if code, _, body := e.get(t, "/api/v1/messages/"+id+"/checks/auth?ip=nonsense", nil); code != 400 || !strings.Contains(body, "ip") {
		t.Errorf("bad ip: %d %s", code, body)
	}

	var bulk struct {
		Pass  bool
		Rules []struct {
			ID     string
			Pass   bool
			Reason string
		}
	}
	code, _, body = e.get(t, "/api/v1/messages/"+id+"/checks/bulk", &bulk)
	if code != 200 || !bulk.Pass || len(bulk.Rules) != 6 {
		t.Fatalf("bulk: %d %s", code, body)
	}
	// Altered after signing: the one-click rule fails, saying why.
	tampered := e.ingest(t, "bounce@example.com", bytes.Replace(signed.Bytes(), []byte("hello"), []byte("HELLO"), 1))
	e.get(t, "/api/v1/messages/"+tampered+"/checks/bulk", &bulk)
	if bulk.Pass {
		t.Errorf("tampered message passes: %+v", bulk)
	}
	for _, r := range bulk.Rules {
		if r.ID == "one-click-dkim" && (r.Pass || !strings.Contains(r.Reason, "fail")) {
			t.Errorf("one-click-dkim on a tampered message: %+v", r)
		}
	}
}

// TestOpenAPI: the native routes are exactly the ones api/rest's
// openapi.json marks "x-mount": "api/checks".
func TestOpenAPI(t *testing.T) {
	e := newEnv(t, Options{})
	var doc struct {
		Paths map[string]map[string]map[string]any `json:"paths"`
	}
	if code, _, body := e.get(t, "/api/v1/openapi.json", &doc); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m, op := range ops {
			if op["x-mount"] == "api/checks" {
				documented[strings.ToUpper(m)+" /api/v1"+p] = true
			}
		}
	}
	h, err := New(e.st, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ec := echo.New()
	h.Register(ec)
	routed := map[string]bool{}
	for _, rt := range ec.Routes() {
		if strings.HasPrefix(rt.Path, "/api/v1/messages/") {
			routed[rt.Method+" "+strings.Replace(rt.Path, ":id", "{id}", 1)] = true
		}
	}
	if len(routed) != 5 || fmt.Sprint(routed) != fmt.Sprint(documented) {
		t.Errorf("routed %v, documented %v", routed, documented)
	}
}
