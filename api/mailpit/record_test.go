package mailpit_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"
)

// recordMailpit, when set, names a Mailpit v1.33 binary: TestRecordMailpit
// then starts it on free loopback ports, runs the conformance
// conversation, and writes testdata/mailpit-v1.33.json. CI never runs it.
//
//	go test ./api/mailpit -run TestRecordMailpit -record-mailpit /work/bin/mailpit
var recordMailpit = flag.String("record-mailpit", "", "path of a Mailpit binary to record testdata/mailpit-v1.33.json from")

const fixturePath = "testdata/mailpit-v1.33.json"

func TestRecordMailpit(t *testing.T) {
	if *recordMailpit == "" {
		t.Skip("recording only: -record-mailpit names a Mailpit binary")
	}
	smtpAddr, httpAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(*recordMailpit, "--smtp", smtpAddr, "--listen", httpAddr, "--max", "0",
		"--smtp-disable-rdns", "--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--database", t.TempDir()+"/mp.db")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + httpAddr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := collect(t, smtpAddr, base, nil)
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fixturePath, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "recorded %d answers into %s\n", len(out), fixturePath)
}

// freeAddr finds a free loopback port for a program that only takes a
// port number (the recorder's Mailpit).
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
