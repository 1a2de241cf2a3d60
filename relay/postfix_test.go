package relay

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
	"github.com/mailsandbox/mailsandbox/capture/tlscert"
	"github.com/mailsandbox/mailsandbox/internal/need"
)

// postfixDest is Debian's Postfix run as a destination on a loopback
// port, from its own config directory: it refuses a HELO name that is not
// fully qualified (smtpd_helo_required, reject_non_fqdn_helo_hostname),
// offers STARTTLS, discards what it accepts and logs to a file, where its
// "disconnect ... ehlo=2 starttls=1 ..." line counts our commands.
type postfixDest struct {
	addr, dir, log string
}

// needPostfix skips without Postfix or root (its master must start as
// root); in CI (CI=true) either fails instead.
func needPostfix(t *testing.T) {
	t.Helper()
	why := ""
	if _, err := exec.LookPath("postfix"); err != nil {
		why = "postfix not found: install the Debian package postfix"
	} else if _, err := user.Lookup("postfix"); err != nil {
		why = "no postfix user: install the Debian package postfix"
	} else if os.Geteuid() != 0 {
		why = "Postfix's master must start as root"
	}
	if why == "" {
		return
	}
	need.Skip(t, need.Postfix, why)
}

func startPostfix(t *testing.T) *postfixDest {
	t.Helper()
	needPostfix(t)
	// Postfix's daemons run as the postfix user: the directory must be
	// reachable by it, which t.TempDir (0700) is not.
	dir, err := os.MkdirTemp("", "relay-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"etc", "queue", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pf, _ := user.Lookup("postfix")
	var uid, gid int
	fmt.Sscan(pf.Uid, &uid)
	fmt.Sscan(pf.Gid, &gid)
	if err := os.Chown(filepath.Join(dir, "data"), uid, gid); err != nil {
		t.Fatal(err)
	}
	cert, err := tlscert.SelfSigned("dest.test")
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/cert.pem", string(tlscert.PEM(cert)))
	write("etc/key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})))
	// Postfix listens where master.cf says; a port is picked free first
	// (the daemon cannot take a listener from us).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d := &postfixDest{addr: addr, dir: dir, log: filepath.Join(dir, "maillog")}
	write("etc/main.cf", strings.Join([]string{
		"compatibility_level = 3.6",
		"queue_directory = " + dir + "/queue",
		"data_directory = " + dir + "/data",
		"myhostname = dest.test",
		"mydestination =",
		"relay_domains = dest.test",
		"relay_transport = discard:",
		"default_transport = discard:",
		"inet_interfaces = 127.0.0.1",
		"inet_protocols = ipv4",
		"mynetworks = 127.0.0.0/8",
		"alias_maps =",
		"alias_database =",
		"smtpd_helo_required = yes",
		"smtpd_helo_restrictions = reject_non_fqdn_helo_hostname",
		"smtpd_tls_cert_file = " + dir + "/etc/cert.pem",
		"smtpd_tls_key_file = " + dir + "/etc/key.pem",
		"smtpd_tls_security_level = may",
		"maillog_file_prefixes = " + dir,
		"maillog_file = " + d.log,
		"",
	}, "\n"))
	services := []string{addr + " inet n - n - - smtpd"}
	for _, s := range []string{"cleanup unix n - n - 0 cleanup", "qmgr unix n - n 300 1 qmgr", "rewrite unix - - n - - trivial-rewrite",
		"bounce unix - - n - 0 bounce", "defer unix - - n - 0 bounce", "trace unix - - n - 0 bounce", "verify unix - - n - 1 verify",
		"proxymap unix - - n - - proxymap", "discard unix - - n - - discard", "error unix - - n - - error", "retry unix - - n - - error",
		"anvil unix - - n - 1 anvil", "scache unix - - n - 1 scache", "tlsmgr unix - - n 1000? 1 tlsmgr", "postlog unix-dgram n - n - 1 postlogd"} {
		services = append(services, s)
	}
	write("etc/master.cf", strings.Join(services, "\n")+"\n")
	cmd := exec.Command("postfix", "-c", dir+"/etc", "start-fg")
	out, err := os.Create(filepath.Join(dir, "start.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("postfix", "-c", dir+"/etc", "stop").Run()
		_ = cmd.Wait()
		out.Close()
	})
	// Ready when it greets.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, "QUIT\r\n")
			c.Close()
			if strings.HasPrefix(line, "220 ") {
				return d
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "start.log"))
			l, _ := os.ReadFile(d.log)
			t.Fatalf("postfix did not start on %s: %s %s", addr, b, l)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitLog waits until Postfix's log has a line containing all of parts.
func (d *postfixDest) waitLog(t *testing.T, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(d.log)
		for _, line := range strings.Split(string(b), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line with %q in Postfix's log:\n%s", parts, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPostfixDestinationRequiresFQDN: a relay on a host whose name is a
// bare "vm" is accepted by a Postfix that rejects non-FQDN HELO names,
// greeting with its address literal once before STARTTLS and once after;
// the same Postfix refuses "EHLO vm", which is what the relay sent before.
func TestPostfixDestinationRequiresFQDN(t *testing.T) {
	t.Parallel() // its Postfix has its own directories and port
	dest := startPostfix(t)
	bare := func(_ context.Context, h string) ([]string, error) {
		if h == "vm" {
			return []string{"127.0.0.1"}, nil
		}
		return nil, errors.New("no such host")
	}
	run := func(helo string) *testQueue {
		o := testOptions(Options{Routes: map[string]string{"dest.test": dest.addr}, Match: []string{"*@dest.test"}})
		o.HeloName = helo
		o.Hostname = func() (string, error) { return "vm", nil }
		o.LookupHost = bare
		o.LookupAddr = func(context.Context, string) ([]string, error) { return []string{"localhost", "vm"}, nil }
		o.MaxAge = time.Hour
		tq := &testQueue{path: sqliteDSN(t)}
		var qp *Queue
		tq.st = openStore(t, tq.path, &qp)
		q, err := New(tq.st, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		qp, tq.q = q, q
		q.Start()
		t.Cleanup(func() { q.Close() })
		return tq
	}

	tq := run("")
	tq.ingest(t, "a@sender.test", []string{"b@dest.test"}, mail("a@sender.test", "b@dest.test", "fqdn-default", "x"))
	waitQueue(t, tq.st, "delivered", allStatus(store.DeliveryDelivered, 1))
	dest.waitLog(t, "disconnect from", "ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1")

	// A bare name, as the relay used to send: refused for good.
	tq = run("vm")
	tq.ingest(t, "a@sender.test", []string{"c@dest.test"}, mail("a@sender.test", "c@dest.test", "bare-helo", "x"))
	ds := waitQueue(t, tq.st, "failed", allStatus(store.DeliveryFailed, 1))
	if !strings.Contains(ds[0].LastError, "need fully-qualified hostname") {
		t.Fatalf("EHLO vm: %+v", ds[0])
	}
	dest.waitLog(t, "reject:", "helo=<vm>")
}
