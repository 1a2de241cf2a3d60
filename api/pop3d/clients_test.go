package pop3d_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailsandbox/mailsandbox/api/pop3d"
)

// poplib runs testdata/popclient.py (Python's poplib) with the given steps
// against ts, logged in as user, and decodes its JSON result.
func poplib(t *testing.T, ts *testServer, user string, env []string, steps ...string) []any {
	t.Helper()
	host, port, _ := net.SplitHostPort(ts.addr)
	env = append([]string{"POP_HOST=" + host, "POP_PORT=" + port, "POP_USER=" + user}, env...)
	out := runTool(t, env, "python3", append([]string{"testdata/popclient.py"}, steps...)...)
	var res []any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("poplib output %q: %v", out, err)
	}
	if len(res) != len(steps) {
		t.Fatalf("poplib: %d results for %d steps: %v", len(res), len(steps), res)
	}
	return res
}

// joinLines turns poplib's message lines back into CRLF text.
func joinLines(v any) string {
	var b strings.Builder
	for _, l := range v.([]any) {
		b.WriteString(l.(string))
		b.WriteString("\r\n")
	}
	return b.String()
}

func TestPoplibReadsMailIntact(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(msgFirst, "bob@example.com")
	ts.ingest(msgBoth, "bob@example.com", "carol@example.com")
	ts.ingest(msgCarol, "carol@example.com")

	res := poplib(t, ts, "Bob@Example.com", nil, "capa", "stat", "list", "uidl", "retr:1", "retr:2", "top:1:1", "list:2", "retr:3", "quit")
	capa := fmt.Sprint(res[0])
	for _, c := range []string{"UIDL", "TOP", "RESP-CODES", "PIPELINING"} { // after login: no USER, SASL
		if !strings.Contains(capa, c) {
			t.Errorf("CAPA %s lacks %s", capa, c)
		}
	}
	if got, want := fmt.Sprint(res[1]), fmt.Sprint([]any{2.0, float64(len(msgFirst) + len(msgBoth))}); got != want {
		t.Errorf("stat = %s, want %s", got, want)
	}
	if got := res[2].([]any); len(got) != 2 || got[0] != fmt.Sprintf("1 %d", len(msgFirst)) {
		t.Errorf("list = %v", got)
	}
	if got := res[3].([]any); len(got) != 2 {
		t.Errorf("uidl = %v", got)
	}
	// Lines starting with "." come back exactly as sent.
	if got := joinLines(res[4]); got != msgFirst {
		t.Errorf("retr 1 = %q, want %q", got, msgFirst)
	}
	if got := joinLines(res[5]); got != msgBoth {
		t.Errorf("retr 2 = %q, want %q", got, msgBoth)
	}
	if got, want := joinLines(res[6]), "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: first\r\n\r\nHello Bob\r\n"; got != want {
		t.Errorf("top 1 1 = %q, want %q", got, want)
	}
	if got := res[7]; got != fmt.Sprintf("+OK 2 %d", len(msgBoth)) {
		t.Errorf("list 2 = %v", got)
	}
	if got, ok := res[8].(map[string]any); !ok || !strings.HasPrefix(fmt.Sprint(got["error"]), "-ERR") {
		t.Errorf("retr 3 = %v, want an error", res[8])
	}
}

func TestPoplibDownloadModes(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.ingest(msgFirst, "bob@example.com")
	ts.ingest(msgBoth, "bob@example.com", "carol@example.com")

	// Download and keep: twice the same UIDLs, nothing removed.
	keep1 := poplib(t, ts, "bob@example.com", nil, "uidl", "retr:1", "retr:2", "quit")
	keep2 := poplib(t, ts, "bob@example.com", nil, "uidl", "quit")
	if fmt.Sprint(keep1[0]) != fmt.Sprint(keep2[0]) {
		t.Fatalf("UIDL changed: %v then %v", keep1[0], keep2[0])
	}
	// DELE then RSET keeps.
	poplib(t, ts, "bob@example.com", nil, "dele:1", "dele:2", "rset", "quit")
	if n := len(ts.inbox("bob@example.com")); n != 2 {
		t.Fatalf("bob has %d messages after DELE+RSET, want 2", n)
	}
	// Download and delete.
	res := poplib(t, ts, "bob@example.com", nil, "retr:1", "dele:1", "retr:2", "dele:2", "stat", "quit")
	if fmt.Sprint(res[4]) != "[0 0]" {
		t.Fatalf("stat after deleting all = %v", res[4])
	}
	if n := len(ts.inbox("bob@example.com")); n != 0 {
		t.Fatalf("bob has %d messages after download-and-delete", n)
	}
	if n := len(ts.inbox("carol@example.com")); n != 1 {
		t.Fatalf("carol's copy went with bob's: %d messages", n)
	}
}

func TestPoplibTLS(t *testing.T) {
	t.Parallel()
	cfg, _, certPEM := selfSigned(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	auth := passwords{"bob@example.com": "secret"}

	t.Run("stls", func(t *testing.T) {
		ts := newTestServer(t, func(o *pop3d.Options) { o.TLSConfig = cfg; o.Auth = auth })
		ts.ingest(msgFirst, "bob@example.com")
		res := poplib(t, ts, "bob@example.com", []string{"POP_TLS=stls", "POP_CAFILE=" + caFile, "POP_PASS=secret"}, "retr:1", "quit")
		if got := joinLines(res[0]); got != msgFirst {
			t.Fatalf("retr over STLS = %q", got)
		}
	})
	t.Run("implicit", func(t *testing.T) {
		ts := &testServer{t: t, dsn: filepath.Join(t.TempDir(), "mail.db")}
		ts.st = openStore(t, ts.dsn)
		ts.start(ts.st, func(ln net.Listener) net.Listener { return tls.NewListener(ln, cfg) },
			func(o *pop3d.Options) { o.Auth = auth })
		ts.ingest(msgFirst, "bob@example.com")
		res := poplib(t, ts, "bob@example.com", []string{"POP_TLS=implicit", "POP_CAFILE=" + caFile, "POP_PASS=secret"}, "retr:1", "quit")
		if got := joinLines(res[0]); got != msgFirst {
			t.Fatalf("retr over pop3s = %q", got)
		}
	})
}

func TestCurl(t *testing.T) {
	t.Parallel()
	cfg, _, certPEM := selfSigned(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(o *pop3d.Options) { o.TLSConfig = cfg })
	ts.ingest(msgFirst, "bob@example.com")
	ts.ingest(msgBoth, "bob@example.com")
	url := "pop3://" + ts.addr + "/"
	curl := func(args ...string) string {
		return runTool(t, nil, "curl", append([]string{"-sS", "--max-time", "30", "-u", "bob@example.com:x"}, args...)...)
	}

	if got, want := curl(url), fmt.Sprintf("1 %d\r\n2 %d\r\n", len(msgFirst), len(msgBoth)); got != want {
		t.Errorf("curl LIST = %q, want %q", got, want)
	}
	if got := curl(url + "1"); got != msgFirst {
		t.Errorf("curl RETR 1 = %q, want %q", got, msgFirst)
	}
	if got := curl("--login-options", "AUTH=PLAIN", url+"2"); got != msgBoth {
		t.Errorf("curl RETR 2 with AUTH PLAIN = %q", got)
	}
	if got := curl("--ssl-reqd", "--cacert", caFile, url+"2"); got != msgBoth {
		t.Errorf("curl RETR 2 over STLS = %q", got)
	}
	if got := curl("-X", "UIDL", url); len(strings.Split(strings.TrimSpace(got), "\r\n")) != 2 {
		t.Errorf("curl UIDL = %q", got)
	}
	curl("-X", "DELE", "-I", url+"1")
	if n := len(ts.inbox("bob@example.com")); n != 1 {
		t.Errorf("bob has %d messages after curl DELE, want 1", n)
	}
}
