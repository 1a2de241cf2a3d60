package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestRelayHeloFlag: --relay-helo and MAILSANDBOX_RELAY_HELO set the
// relay's EHLO name; a name that cannot follow EHLO stops start-up with
// one line naming the flag.
func TestRelayHeloFlag(t *testing.T) {
	t.Parallel()
	rf, err := parseRun([]string{"--relay-helo", "mta.example.org"}, mapEnv(nil))
	if err != nil || rf.cfg.Relay.Helo != "mta.example.org" {
		t.Fatalf("flag: %+v %v", rf.cfg.Relay, err)
	}
	rf, err = parseRun(nil, mapEnv(map[string]string{"MAILSANDBOX_RELAY_HELO": "[192.0.2.1]"}))
	if err != nil || rf.cfg.Relay.Helo != "[192.0.2.1]" {
		t.Fatalf("env: %+v %v", rf.cfg.Relay, err)
	}
	bin := buildBinary(t)
	cmd := exec.Command(bin, "--smtp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--pop3-addr", "127.0.0.1:0", "--imap-addr", "127.0.0.1:0",
		"--relay-smarthost", "127.0.0.1:1", "--relay-helo", "two words")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	out := strings.TrimSuffix(stderr.String(), "\n")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || strings.Contains(out, "\n") || !strings.HasPrefix(out, "mailsandbox: --relay-helo: ") {
		t.Fatalf("bad --relay-helo: %v %q", err, stderr.String())
	}
}
