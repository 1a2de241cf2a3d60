package main

import (
	"strings"
	"testing"
	"time"
)

// --relay-keep defaults to 7 days, reads MAILSANDBOX_RELAY_KEEP like every
// flag, and refuses a negative value naming the flag.
func TestRelayKeepFlag(t *testing.T) {
	rf, err := parseRun(nil, mapEnv(nil))
	if err != nil || rf.cfg.Relay.Keep != 7*24*time.Hour {
		t.Fatalf("default relay keep = %v, %v; want 168h", rf.cfg.Relay.Keep, err)
	}
	rf, err = parseRun(nil, mapEnv(map[string]string{"MAILSANDBOX_RELAY_KEEP": "36h"}))
	if err != nil || rf.cfg.Relay.Keep != 36*time.Hour {
		t.Fatalf("MAILSANDBOX_RELAY_KEEP=36h: %v, %v", rf.cfg.Relay.Keep, err)
	}
	rf, err = parseRun([]string{"--relay-keep", "1h"}, mapEnv(map[string]string{"MAILSANDBOX_RELAY_KEEP": "36h"}))
	if err != nil || rf.cfg.Relay.Keep != time.Hour {
		t.Fatalf("--relay-keep 1h over the env: %v, %v", rf.cfg.Relay.Keep, err)
	}
	rf, err = parseRun([]string{"--relay-keep", "-1h"}, mapEnv(nil))
	if err == nil {
		err = rf.cfg.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "--relay-keep") {
		t.Fatalf("--relay-keep -1h: %v, want an error naming --relay-keep", err)
	}
}
