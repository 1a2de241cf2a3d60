package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/tlscert"
)

// TestMailpitEnvMapsOntoFlags: each supported MP_ variable sets its native
// flag, in Mailpit's value forms; a MAILSANDBOX_ variable or a flag for the
// same setting wins; bad values name the MP_ variable.
func TestMailpitEnvMapsOntoFlags(t *testing.T) {
	t.Parallel()
	rf, err := parseRun(nil, mapEnv(map[string]string{
		"MP_DATABASE":                  "/data/mail.db",
		"MP_MAX_MESSAGES":              "25",
		"MP_MAX_AGE":                   "7d",
		"MP_SMTP_AUTH":                 "u1:p1 u2:p2",
		"MP_SMTP_AUTH_ALLOW_INSECURE":  "YES",
		"MP_SMTP_MAX_RECIPIENTS":       "3",
		"MP_SMTP_ALLOWED_RECIPIENTS":   `@example\.com$`,
		"MP_UI_AUTH":                   "admin:pw",
		"MP_WEBROOT":                   "mail",
		"MP_POP3_AUTH":                 "bob@example.com:pw",
		"MP_SMTP_RELAY_HOST":           "smtp.example.net",
		"MP_SMTP_RELAY_USERNAME":       "relayuser",
		"MP_SMTP_RELAY_PASSWORD":       "relaypass",
		"MP_SMTP_RELAY_ALL":            "1",
		"MP_SMTP_RELAY_ALLOW_INSECURE": "true",
		"MP_SMTP_RELAY_STARTTLS":       "true",
		"MP_SMTP_REQUIRE_STARTTLS":     "false", // Mailpit: anything but 1/true/yes is off
		"MP_ENABLE_CHAOS":              "true",
		"MP_CHAOS_TRIGGERS":            "Sender:451:50",
	}))
	if err != nil {
		t.Fatal(err)
	}
	c := rf.cfg
	m := c.Compat
	if c.DB != "/data/mail.db" || c.MaxMessages != 25 || c.MaxAge != 7*24*time.Hour || !c.SMTPAuthAllowInsecure {
		t.Errorf("store/auth settings: %+v", c)
	}
	if m.SMTPAuth != "u1:p1 u2:p2" || m.HTTPAuth != "admin:pw" || m.MailboxAuth != "bob@example.com:pw" || m.SMTPMaxRecipients != 3 ||
		m.SMTPAllowedRecipients != `@example\.com$` || m.HTTPWebroot != "mail" || m.SMTPRequireSTARTTLS {
		t.Errorf("compat settings: %+v", m)
	}
	if !c.Faults.EnableChaos || c.Faults.ChaosTriggers != "Sender:451:50" {
		t.Errorf("chaos settings: %+v", c.Faults)
	}
	if r := c.Relay; r.Smarthost != "smtp.example.net:25" || r.SmarthostAuth != "relayuser:relaypass" || len(r.Match) != 1 || r.Match[0] != "*" || !r.SmarthostInsecureTLS {
		t.Errorf("relay: %+v", r)
	}

	// Native settings win over MP_ ones; Mailpit's default (500 messages)
	// does not apply unless set.
	rf, err = parseRun([]string{"--max-messages", "9"}, mapEnv(map[string]string{
		"MP_MAX_MESSAGES": "25", "MP_DATABASE": "/mp.db", "MAILSANDBOX_DB": "/native.db", "MP_SMTP_RELAY_HOST": "h", "MP_SMTP_RELAY_PORT": "2525",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if rf.cfg.MaxMessages != 9 || rf.cfg.DB != "/native.db" || rf.cfg.Relay.Smarthost != "h:2525" {
		t.Errorf("precedence: max %d db %q smarthost %q", rf.cfg.MaxMessages, rf.cfg.DB, rf.cfg.Relay.Smarthost)
	}
	if rf, _ := parseRun(nil, mapEnv(nil)); rf.cfg.MaxMessages != 0 || rf.cfg.Compat.SMTPMaxRecipients != 1000 {
		t.Errorf("defaults changed: %+v", rf.cfg)
	}

	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"MP_MAX_AGE": "3w"}, `--max-age (from MP_MAX_AGE): invalid value "3w": want hours or days`},
		{map[string]string{"MP_MAX_MESSAGES": "lots"}, `--max-messages (from MP_MAX_MESSAGES): invalid value "lots": want a whole number`},
		{map[string]string{"MP_SMTP_ALLOWED_RECIPIENTS": "("}, `--smtp-allowed-recipients (from MP_SMTP_ALLOWED_RECIPIENTS): not a regular expression`},
		{map[string]string{"MP_SMTP_AUTH": "nopassword", "MP_SMTP_AUTH_ALLOW_INSECURE": "1"}, `--smtp-auth (from MP_SMTP_AUTH): want user:password pairs`},
		{map[string]string{"MP_SMTP_AUTH": "a:b"}, `--smtp-auth (from MP_SMTP_AUTH): AUTH is offered only over TLS`},
		{map[string]string{"MP_SMTP_REQUIRE_TLS": "1"}, `--smtp-require-tls (from MP_SMTP_REQUIRE_TLS): needs a certificate`},
		{map[string]string{"MP_SMTP_AUTH": "a:b", "MP_SMTP_AUTH_ACCEPT_ANY": "true"}, `MP_SMTP_AUTH_ACCEPT_ANY: cannot be combined`},
		{map[string]string{"MP_SMTP_RELAY_ALL": "true"}, `--relay-match (from MP_SMTP_RELAY_ALL): needs a destination`},
	} {
		_, err := parseRun(nil, mapEnv(tc.env))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %v, want one line starting %q", tc.env, err, tc.want)
		}
	}
}

func TestMailpitAge(t *testing.T) {
	for in, want := range map[string]time.Duration{"24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "1D": 24 * time.Hour, "0h": 0} {
		got, err := mailpitAge(in)
		if err != nil || got != want.String() {
			t.Errorf("%q: %q %v, want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "7", "1.5d", "-1d", "3w", "7 d", "99999999999999999999d"} {
		if _, err := mailpitAge(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// mpChild is a binary started with an environment; it keeps every log
// line.
type mpChild struct {
	cmd   *exec.Cmd
	addrs map[string]string
	mu    sync.Mutex
	lines []string
}

func startEnvChild(t *testing.T, env []string, args ...string) *mpChild {
	t.Helper()
	bin := buildBinary(t)
	args = append([]string{"--smtp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--pop3-addr", "127.0.0.1:0", "--imap-addr", "127.0.0.1:0"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "MAILSANDBOX_LOG_FORMAT=text"), env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := &mpChild{cmd: cmd, addrs: map[string]string{}}
	re := regexp.MustCompile(`msg=listening protocol=(\w+) addr=(\S+)|"msg":"listening","protocol":"(\w+)","addr":"([^"]+)"`)
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				c.addrs[m[1]+m[3]] = m[2] + m[4]
			}
			c.mu.Unlock()
			if strings.Contains(sc.Text(), "mailsandbox started") {
				once.Do(func() { close(started) })
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatalf("child did not start: %v", c.log())
	}
	return c
}

func (c *mpChild) log() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// waitLine waits for a log line matching re.
func (c *mpChild) waitLine(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range c.log() {
			if rx.MatchString(l) {
				return l
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log line matches %s:\n%s", re, strings.Join(c.log(), "\n"))
	return ""
}

// smtpSession runs one transaction and returns the first error reply.
func smtpSession(addr string, auth smtp.Auth, rcpts ...string) error {
	cl, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	if auth != nil {
		if err := cl.Auth(auth); err != nil {
			return err
		}
	}
	if err := cl.Mail("app@example.com"); err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := cl.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Subject: mp test\r\n\r\nx\r\n")
	if err := w.Close(); err != nil {
		return err
	}
	return cl.Quit()
}

func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// plainAuth is PLAIN over a plain connection (net/smtp's PlainAuth refuses
// that except to localhost by name).
type plainAuth struct{ user, pass string }

func (a plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}
func (a plainAuth) Next([]byte, bool) ([]byte, error) { return nil, nil }

// TestBinaryWithMailpitEnv starts the binary as a Mailpit container would
// be started (MP_ variables only) and checks each setting over the wire.
func TestBinaryWithMailpitEnv(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs a child process")
	}
	c := startEnvChild(t, []string{
		"MP_SMTP_AUTH=alice:secret bob:hunter2", "MP_SMTP_AUTH_ALLOW_INSECURE=true", "MP_MAX_MESSAGES=2",
		`MP_SMTP_ALLOWED_RECIPIENTS=@example\.com$`, "MP_SMTP_MAX_RECIPIENTS=2", "MP_WEBROOT=/mail/",
		"MP_UI_AUTH=admin:pw", "MP_NOT_A_THING=1", "MP_ENABLE_SPAMASSASSIN=127.0.0.1:783",
	})
	smtpAddr, httpBase := c.addrs["smtp"], "http://"+c.addrs["http"]

	// The lines testcontainers-python and Quarkus wait for, and one warning
	// naming every unsupported MP_ variable.
	c.waitLine(t, `\[smtpd\] starting on `+regexp.QuoteMeta(smtpAddr))
	c.waitLine(t, `.*\[http\] accessible via http://127\.0\.0\.1:\d+/mail/`)
	warn := c.waitLine(t, `level=WARN .*Mailpit settings not supported`)
	if !strings.Contains(warn, "MP_NOT_A_THING") || !strings.Contains(warn, "MP_ENABLE_SPAMASSASSIN") || strings.Contains(warn, "MP_SMTP_AUTH") {
		t.Errorf("warning %q", warn)
	}

	// SMTP needs the credentials.
	if err := smtpSession(smtpAddr, nil, "x@example.com"); replyCode(err) != 530 {
		t.Errorf("no credentials: %v, want 530", err)
	}
	if err := smtpSession(smtpAddr, plainAuth{"alice", "wrong"}, "x@example.com"); replyCode(err) != 535 {
		t.Errorf("wrong credentials: %v, want 535", err)
	}
	// Recipients: the regexp and the cap, with Mailpit's replies.
	if err := smtpSession(smtpAddr, plainAuth{"alice", "secret"}, "x@other.org"); replyCode(err) != 550 {
		t.Errorf("recipient outside MP_SMTP_ALLOWED_RECIPIENTS: %v, want 550", err)
	}
	if err := smtpSession(smtpAddr, plainAuth{"alice", "secret"}, "a@example.com", "b@example.com", "c@example.com"); replyCode(err) != 452 {
		t.Errorf("third recipient: %v, want 452", err)
	}
	for i := 0; i < 3; i++ {
		if err := smtpSession(smtpAddr, plainAuth{"bob", "hunter2"}, fmt.Sprintf("n%d@example.com", i)); err != nil {
			t.Fatalf("right credentials refused: %v", err)
		}
	}

	// HTTP: only under the webroot, behind MP_UI_AUTH.
	get := func(path string, auth bool) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, httpBase+path, nil)
		if auth {
			req.SetBasicAuth("admin", "pw")
		}
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b strings.Builder
		bufio.NewReader(res.Body).WriteTo(&b)
		return res, []byte(b.String())
	}
	if res, _ := get("/mail/healthz", false); res.StatusCode != 200 {
		t.Errorf("/mail/healthz: %d", res.StatusCode)
	}
	if res, _ := get("/healthz", false); res.StatusCode != 404 {
		t.Errorf("/healthz outside the webroot: %d", res.StatusCode)
	}
	if res, _ := get("/mail", true); res.StatusCode != 301 || res.Header.Get("Location") != "/mail/" {
		t.Errorf("/mail: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := get("/mail/api/v1/messages/search", false); res.StatusCode != 401 {
		t.Errorf("without MP_UI_AUTH credentials: %d", res.StatusCode)
	}
	res, body := get("/mail/api/v1/messages/search", true)
	var list struct{ Total int }
	json.Unmarshal(body, &list)
	if res.StatusCode != 200 || list.Total != 2 {
		t.Errorf("MP_MAX_MESSAGES=2 keeps %d messages (%d %s)", list.Total, res.StatusCode, body)
	}
	if res, body := get("/mail/", true); res.StatusCode != 200 || !strings.Contains(string(body), `src="js/main.js"`) {
		t.Errorf("UI under the webroot: %d", res.StatusCode)
	}

	// The container HEALTHCHECK finds /healthz under the webroot too.
	hc := exec.Command(buildBinary(t), "healthcheck")
	hc.Env = append(os.Environ(), "MAILSANDBOX_HTTP_ADDR="+c.addrs["http"], "MP_WEBROOT=/mail/")
	if out, err := hc.CombinedOutput(); err != nil {
		t.Errorf("healthcheck under MP_WEBROOT: %v %s", err, out)
	}
}

// TestBinaryMailpitTLS: MP_SMTP_TLS_CERT/KEY with MP_SMTP_REQUIRE_STARTTLS
// refuse MAIL before STARTTLS (Mailpit's 530); MP_SMTP_REQUIRE_TLS makes
// the SMTP port implicit TLS. The JSON log has the ready lines too.
func TestBinaryMailpitTLS(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs a child process")
	}
	cert, err := tlscert.SelfSigned("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, tlscert.PEM(cert), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600)
	tlsCfg := &tls.Config{RootCAs: tlscert.Pool(cert), ServerName: "localhost"}

	c := startEnvChild(t, []string{"MP_SMTP_TLS_CERT=" + certFile, "MP_SMTP_TLS_KEY=" + keyFile, "MP_SMTP_REQUIRE_STARTTLS=true"})
	if err := smtpSession(c.addrs["smtp"], nil, "x@example.com"); replyCode(err) != 530 || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("MAIL before STARTTLS: %v, want 530", err)
	}
	cl, err := smtp.Dial(c.addrs["smtp"])
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.StartTLS(tlsCfg); err != nil {
		t.Fatal(err)
	}
	if err := cl.Mail("a@example.com"); err != nil {
		t.Errorf("MAIL after STARTTLS: %v", err)
	}
	cl.Close()

	c2 := startEnvChild(t, []string{"MP_SMTP_TLS_CERT=" + certFile, "MP_SMTP_TLS_KEY=" + keyFile, "MP_SMTP_REQUIRE_TLS=1", "MAILSANDBOX_LOG_FORMAT=json"})
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", c2.addrs["smtp"], tlsCfg)
	if err != nil {
		t.Fatalf("implicit TLS on the SMTP port: %v", err)
	}
	greeting, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.HasPrefix(greeting, "220 ") {
		t.Errorf("greeting over TLS: %q", greeting)
	}
	c2.waitLine(t, `"msg":"\[http\] accessible via http://`)
	c2.waitLine(t, `"msg":"\[smtpd\] starting on `)
}
