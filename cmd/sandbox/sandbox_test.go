package sandbox_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/tlscert"
	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

func loopbackConfig() sandbox.Config {
	return sandbox.Config{SMTPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", POP3Addr: "127.0.0.1:0", IMAPAddr: "127.0.0.1:0"}
}

func TestStartServesEveryProtocolAndMetrics(t *testing.T) {
	sb, err := sandbox.Start(context.Background(), loopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	for name, addr := range map[string]string{"smtp": sb.SMTPAddr(), "http": sb.HTTPAddr(), "pop3": sb.POP3Addr(), "imap": sb.IMAPAddr()} {
		if addr == "" || strings.HasSuffix(addr, ":0") {
			t.Fatalf("%s address %q", name, addr)
		}
	}
	msg := "From: a@example.com\r\nTo: b@example.com\r\nSubject: metrics\r\n\r\nx\r\n"
	if err := smtp.SendMail(sb.SMTPAddr(), nil, "a@example.com", []string{"b@example.com"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(sb.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"mailsandbox_store_messages 1", "mailsandbox_messages_received_total 1", "mailsandbox_smtp_sessions_total 1", "mailsandbox_store_mailboxes 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := sb.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := sb.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestStartRefusesBadConfigNamingTheFlag(t *testing.T) {
	cfg := loopbackConfig()
	cfg.SMTPSAddr = "127.0.0.1:0" // no certificate
	_, err := sandbox.Start(context.Background(), cfg)
	var ce *sandbox.ConfigError
	if !errors.As(err, &ce) || ce.Flag != "smtps-addr" {
		t.Fatalf("err %v", err)
	}
	cfg = loopbackConfig()
	cfg.HTTPAuthFile = "/nonexistent/users"
	_, err = sandbox.Start(context.Background(), cfg)
	if !errors.As(err, &ce) || ce.Flag != "http-auth-file" {
		t.Fatalf("err %v", err)
	}
}

func TestSelfSignedTLSOffersSTARTTLS(t *testing.T) {
	cfg := loopbackConfig()
	cfg.TLSSelfSigned = true
	expectSTARTTLS(t, cfg, "--tls-self-signed")
}

// expectSTARTTLS starts a sandbox with cfg and checks that SMTP offers
// STARTTLS.
func expectSTARTTLS(t *testing.T, cfg sandbox.Config, with string) {
	t.Helper()
	sb, err := sandbox.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	c, err := smtp.Dial(sb.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatalf("STARTTLS not offered with %s", with)
	}
}

// TestTLSFilesNameTheWrongFlag: a bad --tls-key is reported as --tls-key,
// not --tls-cert, and a good pair starts and offers STARTTLS.
func TestTLSFilesNameTheWrongFlag(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pemKey := func(c tls.Certificate) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	one, err := tlscert.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlscert.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	cert, key, otherKey := write("cert.pem", tlscert.PEM(one)), write("key.pem", pemKey(one)), write("other.pem", pemKey(other))
	missing, garbage := filepath.Join(dir, "missing.pem"), write("garbage.pem", []byte("not pem\n"))
	for _, c := range []struct{ cert, key, flag string }{
		{missing, key, "tls-cert"},
		{cert, missing, "tls-key"},
		{garbage, key, "tls-cert"},
		{cert, garbage, "tls-key"},
		{cert, cert, "tls-key"},     // a certificate where the key belongs
		{cert, otherKey, "tls-key"}, // a key of another certificate
		{key, cert, "tls-cert"},     // the two swapped
	} {
		cfg := loopbackConfig()
		cfg.TLSCert, cfg.TLSKey = c.cert, c.key
		_, err := sandbox.Start(context.Background(), cfg)
		var ce *sandbox.ConfigError
		if !errors.As(err, &ce) || ce.Flag != c.flag {
			t.Errorf("cert %s key %s: %v, want an error naming --%s", filepath.Base(c.cert), filepath.Base(c.key), err, c.flag)
		}
	}
	cfg := loopbackConfig()
	cfg.TLSCert, cfg.TLSKey = cert, key
	expectSTARTTLS(t, cfg, "--tls-cert and --tls-key")
}
