package imapd_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dovecot is Debian's dovecot-imapd run for one test on a loopback port:
// the reference server the issue compares us with. Any password logs in;
// mail is in Maildir (LAYOUT=fs, so "/" separates levels) under dir.
type dovecot struct {
	addr string
	dir  string
	uid  int
	gid  int
}

// startDovecot starts Dovecot, or skips the test (with one line naming
// the package) when it cannot: these comparisons are not needed in CI,
// where each behaviour has a test of its own against our server alone.
func startDovecot(tb testing.TB) *dovecot {
	tb.Helper()
	d, why := tryDovecot(tb)
	if d == nil {
		tb.Skip(why)
	}
	return d
}

// tryDovecot starts Dovecot, or says why it cannot.
func tryDovecot(tb testing.TB) (*dovecot, string) {
	tb.Helper()
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		return nil, "dovecot not installed (Debian package dovecot-imapd): comparison with Dovecot skipped"
	}
	if os.Geteuid() != 0 {
		return nil, "Dovecot comparison needs root (Dovecot switches to its own users): skipped"
	}
	u, err := user.Lookup("dovecot")
	if err != nil {
		return nil, "no dovecot user (Debian package dovecot-core): comparison with Dovecot skipped"
	}
	if _, err := user.Lookup("dovenull"); err != nil {
		return nil, "no dovenull user (Debian package dovecot-core): comparison with Dovecot skipped"
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// A short path: Dovecot's sockets live under base_dir.
	dir, err := os.MkdirTemp("", "dv")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // Dovecot's users must reach the mail
		tb.Fatal(err)
	}
	for _, d := range []string{"run", "state", "mail", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	for _, d := range []string{"mail", "home"} {
		if err := os.Chown(filepath.Join(dir, d), uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := fmt.Sprintf(`protocols = imap
listen = 127.0.0.1
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = /dev/stderr
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
mail_location = maildir:%[1]s/mail/%%u:LAYOUT=fs
mail_uid = dovecot
mail_gid = dovecot
first_valid_uid = 1
first_valid_gid = 1
namespace inbox {
  inbox = yes
  separator = /
}
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=%[1]s/home/%%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]d
  }
  inet_listener imaps {
    port = 0
  }
  process_min_avail = 1
}
service imap {
  process_limit = 200
}
protocol imap {
  mail_max_userip_connections = 200
}
`, dir, port)
	confPath := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-F", "-c", confPath)
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start dovecot: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			tb.Logf("dovecot log:\n%s", b)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			tb.Fatalf("dovecot did not start: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &dovecot{addr: addr, dir: dir, uid: uid, gid: gid}, ""
}

// deliver puts messages into a user's INBOX as a local delivery agent
// does: written to tmp/, renamed into new/.
func (d *dovecot) deliver(tb testing.TB, user string, msgs []string) {
	tb.Helper()
	root := filepath.Join(d.dir, "mail", user)
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		p := filepath.Join(root, sub)
		if err := os.MkdirAll(p, 0o700); err != nil {
			tb.Fatal(err)
		}
		os.Chown(p, d.uid, d.gid)
	}
	stamp := time.Now().UnixNano()
	for i, m := range msgs {
		name := fmt.Sprintf("%d.M%dP%d.sandbox", stamp/1e9, stamp%1e9+int64(i), os.Getpid())
		tmp := filepath.Join(root, "tmp", name)
		if err := os.WriteFile(tmp, []byte(m), 0o600); err != nil {
			tb.Fatal(err)
		}
		os.Chown(tmp, d.uid, d.gid)
		if err := os.Rename(tmp, filepath.Join(root, "new", name)); err != nil {
			tb.Fatal(err)
		}
	}
}

// imapConn is a plain IMAP client for comparisons and benchmarks: no
// testing.T inside, so it can run in goroutines.
type imapConn struct {
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func dialIMAP(addr string) (*imapConn, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &imapConn{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	if _, err := c.line(); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

var literalEnd = regexp.MustCompile(`\{(\d+)\}$`)

// line reads one response with its literals inlined.
func (c *imapConn) line() (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	var b strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		l = strings.TrimSuffix(l, "\r\n")
		b.WriteString(l)
		m := literalEnd.FindStringSubmatch(l)
		if m == nil {
			return b.String(), nil
		}
		n, _ := strconv.Atoi(m[1])
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return "", err
		}
		b.Write(buf)
	}
}

// do runs one command and returns its untagged responses and status.
func (c *imapConn) do(cmd string) ([]string, string, error) {
	c.n++
	tag := fmt.Sprintf("t%d", c.n)
	if _, err := io.WriteString(c.conn, tag+" "+cmd+"\r\n"); err != nil {
		return nil, "", err
	}
	var out []string
	for {
		l, err := c.line()
		if err != nil {
			return out, "", fmt.Errorf("%s: %w", cmd, err)
		}
		if strings.HasPrefix(l, tag+" ") {
			return out, strings.TrimPrefix(l, tag+" "), nil
		}
		out = append(out, l)
	}
}

// script runs commands and returns a transcript normalised for
// comparison: untagged lines and the status word of each command, with
// values that differ between any two servers (UIDVALIDITY, texts after
// the status, CAPABILITY lists) masked.
func (c *imapConn) script(cmds []string) ([]string, error) {
	var out []string
	for _, cmd := range cmds {
		u, st, err := c.do(cmd)
		if err != nil {
			return out, err
		}
		out = append(out, "> "+cmd)
		for _, l := range u {
			out = append(out, normalizeLine(l))
		}
		word, _, _ := strings.Cut(st, " ")
		if strings.HasPrefix(st, word+" [") {
			code, _, _ := strings.Cut(strings.TrimPrefix(st, word+" ["), "]")
			code, _, _ = strings.Cut(code, " ")
			word += " [" + code + "]"
		}
		out = append(out, "= "+word)
	}
	return out, nil
}

var (
	uidValidityRE = regexp.MustCompile(`UIDVALIDITY \d+|COPYUID \d+`)
	okTextRE      = regexp.MustCompile(`^(\* OK \[[^\]]*\]).*$`)
)

func normalizeLine(l string) string {
	l = uidValidityRE.ReplaceAllStringFunc(l, func(s string) string { return strings.Fields(s)[0] + " V" })
	if m := okTextRE.FindStringSubmatch(l); m != nil {
		l = m[1]
	}
	return l
}
