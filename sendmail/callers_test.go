package sendmail_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
	"github.com/mailsandbox/mailsandbox/internal/need"
	"github.com/mailsandbox/mailsandbox/sdk"
	"github.com/mailsandbox/mailsandbox/sdk/sandboxtest"
)

// bin is the built binary and its links (sendmail, mailq, newaliases),
// built once on first use: fuzz workers, which run this test binary too,
// never need it.
var bin struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

func build() (string, error) {
	dir, err := os.MkdirTemp("", "sendmail-bin-")
	if err != nil {
		return "", err
	}
	if ci := os.Getenv("MAILSANDBOX_TEST_BINARY"); ci != "" {
		// Built once from this checkout by .ci/run for every package.
		if err := os.Symlink(ci, filepath.Join(dir, "mailsandbox")); err != nil {
			return dir, err
		}
	} else if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "mailsandbox"), "../cmd/mailsandbox").CombinedOutput(); err != nil {
		return dir, fmt.Errorf("build mailsandbox: %v\n%s", err, out)
	}
	for _, n := range []string{"sendmail", "mailq", "newaliases"} {
		if err := os.Symlink("mailsandbox", filepath.Join(dir, n)); err != nil {
			return dir, err
		}
	}
	return dir, nil
}

// link is the path of one of the binary's names.
func link(t *testing.T, name string) string {
	t.Helper()
	bin.once.Do(func() { bin.dir, bin.err = build() })
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return filepath.Join(bin.dir, name)
}

// needTool skips when a caller under test is not installed, naming its
// Debian package; in CI (CI=true) a missing tool fails instead.
func needTool(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	need.Skip(t, need.Callers, fmt.Sprintf("%s not found (Debian package %s)", tool, pkg))
	return ""
}

// env is the environment a caller runs in, pointing at sb.
func env(sb *sandboxtest.Sandbox, extra ...string) []string {
	e := []string{"MAILSANDBOX_SMTP_ADDR=" + sb.SMTPAddr(), "PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "LANG=C.UTF-8"}
	return append(e, extra...)
}

func wait(t *testing.T, sb *sandboxtest.Sandbox, f sdk.Filter) (*sdk.Message, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m, err := sb.Client().Wait(ctx, f)
	if err != nil {
		t.Fatalf("wait %+v: %v", f, err)
	}
	raw, err := sb.Client().Raw(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return m, string(raw)
}

var (
	postfixDate = regexp.MustCompile(`(?m)^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [ 123][0-9] [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4} \([A-Za-z0-9+-]+\)\r$`)
	postfixID   = regexp.MustCompile(`(?m)^Message-Id: <\d{14}\.[0-9A-F]{10}@[^>\s]+>\r$`)
)

// postfixFields checks that raw got the Date and Message-Id Postfix adds.
func postfixFields(t *testing.T, raw string) {
	t.Helper()
	if !postfixDate.MatchString(raw) || !postfixID.MatchString(raw) {
		t.Errorf("Date or Message-Id missing or not in Postfix's form:\n%s", raw)
	}
}

// TestPHPMail runs PHP's mail() with its default sendmail_path arguments
// pointed at the link, with and without the fifth argument.
func TestPHPMail(t *testing.T) {
	php := needTool(t, "php", "php-cli")
	sb := sandboxtest.New(t)
	def, err := exec.Command(php, "-n", "-r", `echo ini_get("sendmail_path");`).Output()
	if err != nil {
		t.Fatal(err)
	}
	// "/usr/sbin/sendmail -t -i": keep PHP's own arguments.
	_, defArgs, _ := strings.Cut(strings.TrimSpace(string(def)), " ")
	path := link(t, "sendmail") + " " + defArgs
	mail := func(subject, fifth string) (string, error) {
		call := `mail("bob@example.com", "` + subject + `", "Hello from PHP\n.\nafter the dot", "From: App <app@example.com>\r\nBcc: audit@example.com"`
		if fifth != "" {
			call += `, "` + fifth + `"`
		}
		cmd := exec.Command(php, "-n", "-d", "sendmail_path="+path, "-r", "exit("+call+") ? 0 : 3);")
		cmd.Env = env(sb)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := mail("php plain", ""); err != nil {
		t.Fatalf("mail() without a fifth argument: %v %s", err, out)
	}
	m, raw := wait(t, sb, sdk.Filter{Subject: "php plain", Mailbox: "audit@example.com"})
	if m.Envelope.MailFrom != "app@example.com" || strings.Contains(raw, "Bcc:") || !strings.Contains(raw, "\r\n.\r\nafter the dot") {
		t.Errorf("envelope %+v raw:\n%s", m.Envelope, raw)
	}
	postfixFields(t, raw)
	if out, err := mail("php fifth", "-fbounce@example.org"); err != nil {
		t.Fatalf("mail() with -f: %v %s", err, out)
	}
	m, _ = wait(t, sb, sdk.Filter{Subject: "php fifth"})
	if m.Envelope.MailFrom != "bounce@example.org" {
		t.Errorf("-f from PHP: envelope %+v", m.Envelope)
	}
	// A sandbox that is not there: mail() returns false.
	cmd := exec.Command(php, "-n", "-d", "sendmail_path="+path, "-r", `exit(mail("x@example.com", "s", "b") ? 0 : 3);`)
	cmd.Env = []string{"MAILSANDBOX_SMTP_ADDR=" + downAddr(t)}
	if err := cmd.Run(); exitCode(err) != 3 {
		t.Errorf("mail() to a stopped sandbox: %v, want false (exit 3)", err)
	}
}

// TestNeomutt sends with neomutt in batch mode using its default $sendmail
// arguments ("-oem -oi", then "--" and the recipients).
func TestNeomutt(t *testing.T) {
	nm := needTool(t, "neomutt", "neomutt")
	sb := sandboxtest.New(t)
	out, err := exec.Command(nm, "-n", "-F", "/dev/null", "-Q", "sendmail").Output()
	if err != nil {
		t.Fatal(err)
	}
	// set sendmail = "/usr/sbin/sendmail -oem -oi"
	def := regexp.MustCompile(`"([^"]*)"`).FindStringSubmatch(string(out))
	if def == nil {
		t.Fatalf("neomutt's default $sendmail: %q", out)
	}
	_, args, _ := strings.Cut(def[1], " ")
	home := t.TempDir()
	cmd := exec.Command(nm, "-n", "-F", "/dev/null",
		"-e", `set sendmail="`+link(t, "sendmail")+" "+args+`"`,
		"-e", `set from="Ann <ann@example.com>" use_envelope_from=yes record="" realname="Ann"`,
		"-s", "neomutt batch", "bob@example.com", "carol@example.com")
	cmd.Env = env(sb, "HOME="+home)
	cmd.Stdin = strings.NewReader("Hello from neomutt\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("neomutt: %v %s", err, out)
	}
	m, raw := wait(t, sb, sdk.Filter{Subject: "neomutt batch", Mailbox: "carol@example.com"})
	if m.Envelope.MailFrom != "ann@example.com" || len(m.Envelope.RcptTo) != 2 {
		t.Errorf("envelope %+v", m.Envelope)
	}
	if !strings.Contains(raw, "Hello from neomutt") {
		t.Errorf("raw:\n%s", raw)
	}
}

// TestSNail sends with s-nail pointed at the link as its mta, with its
// default arguments ("-i", "--", recipients).
func TestSNail(t *testing.T) {
	sn := needTool(t, "s-nail", "s-nail")
	sb := sandboxtest.New(t)
	cmd := exec.Command(sn, "-:/", "-S", "mta="+link(t, "sendmail"), "-S", "from=sam@example.com", "-s", "s-nail batch", "dan@example.com")
	cmd.Env = env(sb, "HOME="+t.TempDir())
	cmd.Stdin = strings.NewReader("Hello from s-nail\n.\nstill here\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("s-nail: %v %s", err, out)
	}
	m, raw := wait(t, sb, sdk.Filter{Subject: "s-nail batch"})
	if m.Envelope.MailFrom != "sam@example.com" || !strings.Contains(raw, "\r\n.\r\nstill here") {
		t.Errorf("envelope %+v raw:\n%s", m.Envelope, raw)
	}
}

// TestCommonCallers: the command lines of git send-email, cron, msmtp-
// style scripts and Mailpit's sendmail, run through the sendmail link
// and through `mailsandbox sendmail`.
func TestCommonCallers(t *testing.T) {
	sb := sandboxtest.New(t)
	cases := []struct {
		name  string
		args  []string
		env   []string
		in    string
		check func(t *testing.T, m *sdk.Message, raw string)
	}{
		{"git send-email", []string{"-i", "gina@example.com", "hal@example.com"}, nil,
			"From: Gina <gina@example.com>\nSubject: [PATCH] git\n\n.\nfix\n",
			func(t *testing.T, m *sdk.Message, raw string) {
				if len(m.Envelope.RcptTo) != 2 || !strings.Contains(raw, "\r\n.\r\nfix") {
					t.Errorf("%+v %q", m.Envelope, raw)
				}
			}},
		{"cron", []string{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root@example.com"}, nil,
			"Subject: Cron <root@vm> run-parts\nContent-Type: text/plain; charset=UTF-8\n\nöutput\n",
			func(t *testing.T, m *sdk.Message, raw string) {
				if !regexp.MustCompile(`(?m)^From: CronDaemon <[^@\s]+@[^>\s]+>\r$`).MatchString(raw) {
					t.Errorf("no From with the full name:\n%s", raw)
				}
				postfixFields(t, raw)
			}},
		{"msmtp-style -t", []string{"-oi", "-t"}, nil,
			"From: ops@example.com\nTo: Ivy <ivy@example.com>\nCc: undisclosed-recipients:;\nSubject: msmtp -t\n\nx\n",
			func(t *testing.T, m *sdk.Message, raw string) {
				if m.Envelope.MailFrom != "ops@example.com" || len(m.Envelope.RcptTo) != 1 || m.Envelope.RcptTo[0] != "ivy@example.com" {
					t.Errorf("%+v", m.Envelope)
				}
			}},
		{"msmtp-style -f and --", []string{"-f", "<noreply@example.com>", "-N", "never", "--", "jo@example.com"}, nil,
			"Subject: msmtp -f\n\nx\n",
			func(t *testing.T, m *sdk.Message, raw string) {
				// The added From carries the account's name when it has one.
				if m.Envelope.MailFrom != "noreply@example.com" || !regexp.MustCompile(`(?m)^From: (.+ <noreply@example\.com>|noreply@example\.com)\r$`).MatchString(raw) {
					t.Errorf("%+v\n%s", m.Envelope, raw)
				}
			}},
		{"null sender", []string{"-f<>", "kim@example.com"}, nil, "From: robot@example.com\nSubject: null sender\n\nx\n",
			func(t *testing.T, m *sdk.Message, raw string) {
				if m.Envelope.MailFrom != "" {
					t.Errorf("%+v", m.Envelope)
				}
			}},
		{"Mailpit -S", []string{"-S", sb.SMTPAddr(), "lee@example.com"}, []string{"MAILSANDBOX_SMTP_ADDR=" + downAddr(t)},
			"Subject: mailpit -S\n\nx\n", func(t *testing.T, m *sdk.Message, raw string) {}},
		{"without -i a lone dot ends the message", []string{"-odb", "-v", "max@example.com"}, nil,
			"Subject: lone dot\n\nkept\n.\ndropped\n",
			func(t *testing.T, m *sdk.Message, raw string) {
				if !strings.HasSuffix(raw, "\r\n\r\nkept\r\n") {
					t.Errorf("%q", raw)
				}
			}},
	}
	for i, c := range cases {
		for _, via := range []string{"link", "subcommand"} {
			t.Run(c.name+" via "+via, func(t *testing.T) {
				subject := fmt.Sprintf("%d-%s", i, via)
				in := strings.Replace(c.in, "Subject: ", "Subject: "+subject+" ", 1)
				var cmd *exec.Cmd
				if via == "link" {
					cmd = exec.Command(link(t, "sendmail"), c.args...)
				} else {
					cmd = exec.Command(link(t, "mailsandbox"), append([]string{"sendmail"}, c.args...)...)
				}
				cmd.Env = env(sb, c.env...)
				cmd.Stdin = strings.NewReader(in)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Run(); err != nil {
					t.Fatalf("%v: %v %s", c.args, err, stderr.String())
				}
				m, raw := wait(t, sb, sdk.Filter{Subject: subject + " "})
				c.check(t, m, raw)
				// -v shows the dialogue; otherwise success is silent.
				verbose := strings.Contains(strings.Join(c.args, " "), "-v")
				if verbose != strings.Contains(stderr.String(), "MAIL FROM:<") || !verbose && stderr.Len() > 0 {
					t.Errorf("stderr with %v: %q", c.args, stderr.String())
				}
			})
		}
	}
}

// TestBinaryNames: mailq and newaliases do what they can for a sandbox.
func TestBinaryNames(t *testing.T) {
	out, err := exec.Command(link(t, "mailq")).CombinedOutput()
	if err != nil || string(out) != "Mail queue is empty\n" {
		t.Errorf("mailq: %q %v", out, err)
	}
	if out, err := exec.Command(link(t, "newaliases")).CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("newaliases: %q %v", out, err)
	}
	if out, err := exec.Command(link(t, "sendmail"), "-bp").CombinedOutput(); err != nil || string(out) != "Mail queue is empty\n" {
		t.Errorf("sendmail -bp: %q %v", out, err)
	}
	if out, err := exec.Command(link(t, "sendmail"), "-q").CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("sendmail -q: %q %v", out, err)
	}
}

// TestStandaloneSMTP: -bs carries an SMTP dialogue on stdin/stdout to
// the sandbox.
func TestStandaloneSMTP(t *testing.T) {
	sb := sandboxtest.New(t)
	cmd := exec.Command(link(t, "sendmail"), "-bs")
	cmd.Env = env(sb)
	cmd.Stdin = strings.NewReader("EHLO client\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<bs@example.com>\r\nDATA\r\nSubject: via -bs\r\n\r\nx\r\n.\r\nQUIT\r\n")
	out, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(out), "220 ") || !strings.Contains(string(out), "\r\n221 ") {
		t.Fatalf("-bs: %v %q", err, out)
	}
	if m, _ := wait(t, sb, sdk.Filter{Subject: "via -bs"}); m.Envelope.MailFrom != "a@example.com" {
		t.Errorf("%+v", m.Envelope)
	}
}

// TestBadInput: each failure is a non-zero exit with one line saying what
// went wrong, and nothing is stored.
func TestBadInput(t *testing.T) {
	sb := sandboxtest.New(t, sandboxtest.WithConfig(func(c *sandbox.Config) { c.MaxMessageBytes = 4096 }))
	big := "Subject: too big\n\n" + strings.Repeat("0123456789abcdef\n", 400)
	cases := []struct {
		name string
		args []string
		env  []string
		in   string
		code int
		want string
	}{
		{"unknown option", []string{"-Q", "x@example.com"}, nil, "", 64, "unknown option -Q"},
		{"unknown long option", []string{"--smtp", "h:1"}, nil, "", 64, "unknown option --smtp"},
		{"missing value", []string{"-t", "-f"}, nil, "", 64, "option -f needs a value"},
		{"no recipients", nil, nil, "Subject: x\n\n", 64, "recipient addresses must be specified"},
		{"-t without any", []string{"-t"}, nil, "Subject: x\n\n", 64, "no recipient addresses found"},
		{"unreadable To", []string{"-t"}, nil, "To: <<<\n\n", 65, "-t: cannot read the To field"},
		{"over the size limit", []string{"big@example.com"}, nil, big, 69, "over the sandbox's limit of 4096 bytes"},
		{"unreachable", []string{"x@example.com"}, []string{"MAILSANDBOX_SMTP_ADDR=" + downAddr(t)}, "Subject: x\n\n", 75, "cannot reach the sandbox"},
		{"daemon mode", []string{"-bd"}, nil, "", 69, "daemon mode"},
	}
	for _, c := range cases {
		cmd := exec.Command(link(t, "sendmail"), c.args...)
		cmd.Env = append(env(sb), c.env...)
		cmd.Stdin = strings.NewReader(c.in)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		msg := strings.TrimSuffix(stderr.String(), "\n")
		if exitCode(err) != c.code || strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "sendmail: ") || !strings.Contains(msg, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and one line with %q", c.name, exitCode(err), stderr.String(), c.code, c.want)
		}
	}
	ctx := context.Background()
	if list, err := sb.Client().Search(ctx, sdk.Filter{}); err != nil || list.Total != 0 {
		t.Errorf("bad input stored mail: %+v %v", list, err)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
