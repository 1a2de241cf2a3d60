package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

func TestParseRunFlagsAndEnv(t *testing.T) {
	env := map[string]string{
		"MAILSANDBOX_SMTP_ADDR":   "0.0.0.0:2525",
		"MAILSANDBOX_MAX_AGE":     "72h",
		"MAILSANDBOX_RELAY_MATCH": "*@a.example, *@b.example",
		"MAILSANDBOX_RELAY_ROUTE": "a.example=127.0.0.1:2526",
		"MAILSANDBOX_HTTP_ADDR":   "127.0.0.1:9000",
	}
	rf, err := parseRun([]string{"--http-addr", "127.0.0.1:0", "--max-message-size", "10M"}, mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	c := rf.cfg
	if c.SMTPAddr != "0.0.0.0:2525" || c.HTTPAddr != "127.0.0.1:0" || c.MaxAge != 72*time.Hour || c.MaxMessageBytes != 10<<20 {
		t.Fatalf("config %+v", c)
	}
	if len(c.Relay.Match) != 2 || c.Relay.Routes["a.example"] != "127.0.0.1:2526" {
		t.Fatalf("relay %+v", c.Relay)
	}
	if c.POP3Addr != "127.0.0.1:1110" || c.IMAPAddr != "127.0.0.1:1143" {
		t.Fatalf("defaults lost: %+v", c)
	}
}

// mapEnv is an environment for parseRun.
func mapEnv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestBadValuesNameTheFlag(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		flag string
	}{
		{[]string{"--max-messages", "lots"}, nil, "--max-messages"},
		{[]string{"--smtp-addr", "nonsense"}, nil, "--smtp-addr"},
		{[]string{"--max-age", "-1h"}, nil, "--max-age"},
		{[]string{"--smtps-addr", "127.0.0.1:0"}, nil, "--smtps-addr"},
		{[]string{"--tls-cert", "x.pem"}, nil, "--tls-key"},
		{[]string{"--relay-route", "nodomain"}, nil, "--relay-route"},
		{[]string{"--relay-match", "*@x.example"}, nil, "--relay-match"},
		{[]string{"--no-such-flag"}, nil, "--no-such-flag"},
		{nil, map[string]string{"MAILSANDBOX_MAX_AGE": "forever"}, "--max-age"},
		{[]string{"--relay-smarthost", "h:25", "--relay-retry-min", "2h", "--relay-retry-max", "1h"}, nil, "--relay-retry-max"},
		{[]string{"--log-level", "loud"}, nil, "--log-level"},
	}
	for _, c := range cases {
		_, err := parseRun(c.args, mapEnv(c.env))
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%v %v: error %v does not name %s", c.args, c.env, err, c.flag)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error is not one line: %q", c.args, err)
		}
	}
}

// binPath is the binary TestMain builds for the tests that run it as a
// child process.
func buildBinary(t testing.TB) string {
	t.Helper()
	if builtBin == "" {
		t.Fatal("binary was not built")
	}
	return builtBin
}

var builtBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailsandbox-bin-")
	if err != nil {
		panic(err)
	}
	bin := filepath.Join(dir, "mailsandbox")
	if ci := os.Getenv("MAILSANDBOX_TEST_BINARY"); ci != "" {
		// Built once from this checkout by .ci/run for every package.
		builtBin = ci
	} else if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build mailsandbox: %v\n%s", err, out)
	} else {
		builtBin = bin
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestBinaryExitsTwoOnBadFlag(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	cmd := exec.Command(bin, "--max-message-size", "huge")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "--max-message-size") {
		t.Fatalf("stderr %q", stderr.String())
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "mailsandbox ") {
		t.Fatalf("version: %q %v", out, err)
	}
}

// child is a mailsandbox process whose listen addresses were read from its log.
type child struct {
	cmd   *exec.Cmd
	addrs map[string]string
}

func startChild(t testing.TB, bin string, args ...string) *child {
	t.Helper()
	args = append([]string{"--smtp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--pop3-addr", "127.0.0.1:0", "--imap-addr", "127.0.0.1:0"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "MAILSANDBOX_LOG_FORMAT=text")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := &child{cmd: cmd, addrs: map[string]string{}}
	re := regexp.MustCompile(`msg=listening protocol=(\w+) addr=(\S+)`)
	sc := bufio.NewScanner(stderr)
	deadline := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			c.addrs[m[1]] = m[2]
		}
		if strings.Contains(sc.Text(), "mailsandbox started") {
			go io.Copy(io.Discard, stderr)
			return c
		}
	}
	t.Fatalf("child did not start; addrs so far %v", c.addrs)
	return nil
}

// stopAndOpen stops the child with SIGTERM, which must end it with status
// 0, and opens the store it left in db (closed with the test).
func (c *child) stopAndOpen(t *testing.T, db string) *store.Store {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("graceful exit: %v", err)
	}
	st, err := store.Open(context.Background(), store.Options{DSN: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestAcknowledgedMailSurvivesSIGKILL kills the server right after clients
// saw 250 for a batch of messages, while others are mid-flight, then checks
// that every acknowledged message is stored, once and byte for byte.
func TestAcknowledgedMailSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and kills a child process")
	}
	bin := buildBinary(t)
	db := filepath.Join(t.TempDir(), "crash.db")
	for round := 0; round < 3; round++ {
		c := startChild(t, bin, "--db", db)
		var mu sync.Mutex
		acked := map[string][]byte{}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					subject := fmt.Sprintf("[r%d-w%d-%d]", round, w, i)
					body := []byte(fmt.Sprintf("From: a@example.com\r\nTo: b@example.com\r\nSubject: %s\r\n\r\nbody of %s\r\n", subject, subject))
					if err := smtp.SendMail(c.addrs["smtp"], nil, "a@example.com", []string{"b@example.com", "c@example.com"}, body); err != nil {
						return // the server died under us: not acknowledged
					}
					mu.Lock()
					acked[subject] = body
					n := len(acked)
					mu.Unlock()
					if n == 150 {
						c.cmd.Process.Signal(syscall.SIGKILL)
					}
				}
			}(w)
		}
		c.cmd.Wait()
		close(stop)
		wg.Wait()
		st, err := store.Open(context.Background(), store.Options{DSN: db})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		for subject, body := range acked {
			list, total, err := st.Search(context.Background(), store.Query{Subject: subject, Mailbox: "c@example.com"})
			if err != nil || total != 1 {
				t.Fatalf("round %d: acknowledged %q found %d times (%v)", round, subject, total, err)
			}
			raw, _ := st.Raw(context.Background(), list[0].ID)
			if !bytes.Equal(raw, body) {
				t.Fatalf("round %d: %q stored as %q", round, subject, raw)
			}
		}
		t.Logf("round %d: %d acknowledged messages all present after SIGKILL", round, len(acked))
		mu.Unlock()
		st.Close()
	}
}

func TestSendmailSubcommand(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a child process")
	}
	bin := buildBinary(t)
	db := filepath.Join(t.TempDir(), "sm.db")
	c := startChild(t, bin, "--db", db)
	cmd := exec.Command(bin, "sendmail", "-t", "-i")
	cmd.Env = append(os.Environ(), "MAILSANDBOX_SMTP_ADDR="+c.addrs["smtp"])
	// The flag beats the environment.
	flagged := exec.Command(bin, "sendmail", "--smtp-addr", c.addrs["smtp"], "-f", "ops@example.com", "flag@example.com")
	flagged.Env = append(os.Environ(), "MAILSANDBOX_SMTP_ADDR=127.0.0.1:1")
	flagged.Stdin = strings.NewReader("Subject: by flag\n\nx\n")
	if out, err := flagged.CombinedOutput(); err != nil {
		t.Fatalf("sendmail --smtp-addr: %v\n%s", err, out)
	}
	cmd.Stdin = strings.NewReader("From: App <app@example.com>\nTo: user@example.com\nBcc: audit@example.com\nSubject: from sendmail\n\nHello\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sendmail: %v\n%s", err, out)
	}
	st := c.stopAndOpen(t, db)
	list, _, _ := st.Search(context.Background(), store.Query{Subject: "from sendmail"})
	if len(list) != 1 || len(list[0].Mailboxes) != 2 || list[0].Envelope.From != "app@example.com" {
		t.Fatalf("stored %+v", list)
	}
	if byFlag, _, _ := st.Search(context.Background(), store.Query{Mailbox: "flag@example.com"}); len(byFlag) != 1 || byFlag[0].Envelope.From != "ops@example.com" {
		t.Fatalf("sendmail --smtp-addr stored %+v", byFlag)
	}
	raw, _ := st.Raw(context.Background(), list[0].ID)
	if bytes.Contains(raw, []byte("Bcc:")) || !bytes.Contains(raw, []byte("\r\nSubject: from sendmail\r\n")) {
		t.Fatalf("raw %q", raw)
	}
}

// TestBinaryBadValuesStopStartUp runs the binary with bad settings, from
// flags and from the environment: each must stop start-up with exit
// status 2 and one line that starts with the flag and says what it wants.
func TestBinaryBadValuesStopStartUp(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	free := []string{"--smtp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--pop3-addr", "127.0.0.1:0", "--imap-addr", "127.0.0.1:0"}
	cases := []struct {
		args []string
		env  []string
		want string // the start of the line after "mailsandbox: "
	}{
		{[]string{"--max-age", "3days"}, nil, `--max-age: invalid value "3days": want a duration`},
		{[]string{"--max-messages", "lots"}, nil, `--max-messages: invalid value "lots": want a whole number`},
		{[]string{"--max-message-size", "10X"}, nil, `--max-message-size: invalid value "10X": want a number of bytes`},
		{[]string{"--tls-self-signed=maybe"}, nil, `--tls-self-signed: invalid value "maybe": want true or false`},
		{nil, []string{"MAILSANDBOX_TLS_SELF_SIGNED=yes"}, `--tls-self-signed (from MAILSANDBOX_TLS_SELF_SIGNED): invalid value "yes": want true or false`},
		{[]string{"--smtp-addr"}, nil, "--smtp-addr: needs a value"},
		{[]string{"--no-such-flag"}, nil, "--no-such-flag: unknown flag"},
		{[]string{"--relay-mx", "--relay-max-age", "-1h"}, nil, "--relay-max-age: must not be negative"},
		{[]string{"--relay-mx", "--relay-retry-max", "-1s"}, nil, "--relay-retry-max: must not be negative"},
		{[]string{"--relay-mx", "--relay-smarthost", "127.0.0.1:1"}, nil, "--relay-mx: cannot be combined with --relay-smarthost"},
		{[]string{"--relay-smarthost-insecure-tls"}, nil, "--relay-smarthost-insecure-tls: needs --relay-smarthost"},
		{[]string{"--db", filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")}, nil, "--db: "},
		{[]string{"--db", "mysql://localhost/mail"}, nil, "--db: want a file path or a postgres:// URL"},
		// A refused PostgreSQL connection: the driver's message spans lines.
		{[]string{"--db", "postgres://nobody@127.0.0.1:1/x?connect_timeout=2"}, nil, "--db: "},
		{[]string{"--tls-cert", filepath.Join(t.TempDir(), "missing.pem"), "--tls-key", filepath.Join(t.TempDir(), "missing.key")}, nil, "--tls-cert: "},
		{[]string{"--mailbox-auth-file", filepath.Join(t.TempDir(), "missing")}, nil, "--mailbox-auth-file: "},
		// Set only through the environment, the line names the variable too.
		{nil, []string{"MAILSANDBOX_SMTPS_ADDR=nonsense"}, `--smtps-addr (from MAILSANDBOX_SMTPS_ADDR): want host:port`},
		{nil, []string{"MAILSANDBOX_MAILBOX_AUTH_FILE=" + filepath.Join(t.TempDir(), "missing")}, "--mailbox-auth-file (from MAILSANDBOX_MAILBOX_AUTH_FILE): "},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, bin, append(append([]string{}, free...), c.args...)...)
		cmd.Env = append(os.Environ(), c.env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("%v %v: exit %v, want status 2; stderr %q", c.args, c.env, err, stderr.String())
			continue
		}
		out := strings.TrimSuffix(stderr.String(), "\n")
		if strings.Contains(out, "\n") || !strings.HasPrefix(out, "mailsandbox: "+c.want) || strings.Contains(out, "parse error") {
			t.Errorf("%v %v: stderr %q, want one line starting %q", c.args, c.env, stderr.String(), "mailsandbox: "+c.want)
		}
	}
}

// TestEmptyEnvironmentVariables: compose files and shell scripts set
// FOO= to mean "not set". For a number, duration or switch that is the
// default; for an address it is off, as --smtp-addr "" is.
func TestEmptyEnvironmentVariables(t *testing.T) {
	rf, err := parseRun(nil, mapEnv(map[string]string{
		"MAILSANDBOX_MAX_AGE": "", "MAILSANDBOX_MAX_MESSAGES": "", "MAILSANDBOX_MAX_MESSAGE_SIZE": "",
		"MAILSANDBOX_TLS_SELF_SIGNED": "", "MAILSANDBOX_RELAY_RETRY_MIN": "", "MAILSANDBOX_SMTP_ADDR": "",
	}))
	if err != nil {
		t.Fatal(err)
	}
	c := rf.cfg
	if c.MaxAge != 0 || c.MaxMessages != 0 || c.MaxMessageBytes != 32<<20 || c.TLSSelfSigned || c.Relay.RetryMin != time.Minute {
		t.Fatalf("empty variables changed settings: %+v", c)
	}
	if c.SMTPAddr != "" || c.HTTPAddr != "127.0.0.1:8025" {
		t.Fatalf("addresses: smtp %q http %q", c.SMTPAddr, c.HTTPAddr)
	}
}

func TestVersionSpellings(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	for _, arg := range []string{"version", "--version", "-version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil || !strings.HasPrefix(string(out), "mailsandbox ") || strings.Count(string(out), "\n") != 1 {
			t.Errorf("%s: %q %v", arg, out, err)
		}
	}
}

// TestSendmailSenders: -f takes an address with or without angle brackets
// and "<>" is the null sender, as bounce-sending tools pass it; a sandbox
// that is not running gives one line saying so and a non-zero exit.
func TestSendmailSenders(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a child process")
	}
	bin := buildBinary(t)
	db := filepath.Join(t.TempDir(), "senders.db")
	c := startChild(t, bin, "--db", db)
	for _, tc := range []struct{ f, rcpt string }{{"<>", "null@example.com"}, {"<ops@example.com>", "angle@example.com"}} {
		cmd := exec.Command(bin, "sendmail", "--smtp-addr", c.addrs["smtp"], "-f", tc.f, tc.rcpt)
		cmd.Stdin = strings.NewReader("From: app@example.com\nSubject: sender " + tc.f + "\n\nx\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sendmail -f %q: %v\n%s", tc.f, err, out)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "sendmail", "x@example.com")
	cmd.Env = append(os.Environ(), "MAILSANDBOX_SMTP_ADDR="+down)
	cmd.Stdin = strings.NewReader("Subject: nobody home\n\nx\n")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("sendmail to a stopped sandbox: %v", err)
	}
	if msg := strings.TrimSuffix(string(out), "\n"); strings.Contains(msg, "\n") || !strings.Contains(msg, down) || !strings.Contains(msg, "is it running") {
		t.Fatalf("sendmail to a stopped sandbox said %q", out)
	}
	st := c.stopAndOpen(t, db)
	for rcpt, want := range map[string]string{"null@example.com": "", "angle@example.com": "ops@example.com"} {
		list, _, err := st.Search(context.Background(), store.Query{Mailbox: rcpt})
		if err != nil || len(list) != 1 || list[0].Envelope.From != want {
			t.Errorf("%s: envelope sender of %+v (%v), want %q", rcpt, list, err, want)
		}
	}
}

// TestSIGTERMWithIdleClients: clients idling on SMTP, POP3 and IMAP do not
// keep the process alive past docker stop's 10 s; it exits 0 with its store
// closed and the mail kept.
func TestSIGTERMWithIdleClients(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds a child process")
	}
	bin := buildBinary(t)
	db := filepath.Join(t.TempDir(), "term.db")
	c := startChild(t, bin, "--db", db)
	if err := smtp.SendMail(c.addrs["smtp"], nil, "a@example.com", []string{"kept@example.com"}, []byte("Subject: kept\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"smtp", "pop3", "imap"} {
		conn, err := net.Dial("tcp", c.addrs[p])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil { // the greeting
			t.Fatal(err)
		}
	}
	start := time.Now()
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running %s after SIGTERM", time.Since(start).Round(time.Second))
	}
	// A closed SQLite store has folded its write-ahead log back in.
	if _, err := os.Stat(db + "-wal"); err == nil {
		t.Errorf("%s-wal left behind: the store was not closed", db)
	}
	st, err := store.Open(context.Background(), store.Options{DSN: db})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if list, _, err := st.Search(context.Background(), store.Query{Mailbox: "kept@example.com"}); err != nil || len(list) != 1 {
		t.Fatalf("after restart: %+v %v", list, err)
	}
}
