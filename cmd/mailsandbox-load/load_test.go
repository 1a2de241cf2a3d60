package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func shortConfig(out io.Writer) Config {
	return Config{
		Duration: 3 * time.Second, SMTPConns: 2, Size: 2048, Readers: 1, Waiters: 1, POP3: 1, IMAP: 1,
		Mailboxes: 5, MaxMessages: 100000, Seed: 1, Out: out,
	}
}

// TestLoadShort runs the load for a few seconds against an in-process
// sandbox: no operation may fail, and every message acknowledged with 250
// must read back exactly once, byte for byte.
func TestLoadShort(t *testing.T) {
	var out bytes.Buffer
	res, err := runLoad(context.Background(), shortConfig(&out))
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted == 0 {
		t.Fatal("no message was acknowledged")
	}
	if !res.OK() {
		t.Fatalf("verification failed: %+v", res.Verify)
	}
	if res.Errors != 0 {
		t.Fatalf("%d operations failed", res.Errors)
	}
	for _, op := range []string{"smtp_send", "rest_search", "pop3_session", "imap_session"} {
		if res.Ops[op].Count == 0 {
			t.Errorf("no %s ran", op)
		}
	}
}

// TestCrashShort SIGKILLs a child sandbox three times under load and checks
// that acknowledged mail survives exactly once and the store stays sound.
func TestCrashShort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills child processes")
	}
	var out bytes.Buffer
	cfg := shortConfig(&out)
	cfg.Crash = 3
	cfg.Duration = 6 * time.Second
	// .ci/run builds the binary once from this checkout for every package.
	bin := os.Getenv("MAILSANDBOX_TEST_BINARY")
	if bin == "" {
		var err error
		if bin, err = buildBinary(context.Background(), t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Binary = bin
	res, err := runCrash(context.Background(), cfg)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Kills != 3 {
		t.Fatalf("%d kills, want 3", res.Kills)
	}
	if res.Verify.Accepted == 0 {
		t.Fatal("no message was acknowledged")
	}
	if !res.OK() {
		t.Fatalf("crash check failed: integrity %v, verify %+v", res.Integrity, res.Verify)
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // error substring; "" for success
	}{
		{nil, ""},
		{[]string{"--duration", "0s"}, "--duration"},
		{[]string{"--target", "smtp=10.1.2.3:25,http=127.0.0.1:8025"}, "not a loopback"},
		{[]string{"--target", "http=127.0.0.1:8025"}, "smtp= and http= are required"},
		{[]string{"--target", "smtp=127.0.0.1:1025,http=127.0.0.1:8025,ftp=127.0.0.1:21"}, "unknown listener"},
		{[]string{"--target", "smtp=127.0.0.1:1025,http=[::1]:8025"}, ""},
		{[]string{"--crash", "2", "--target", "smtp=127.0.0.1:1025,http=127.0.0.1:8025"}, "do not combine"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
		}
	}
}
