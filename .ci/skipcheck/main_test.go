package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestParseAllow(t *testing.T) {
	a, err := parseAllow(strings.NewReader("# comment\n\ncmd/sandbox TestHelper  # a helper process, not a test\n"), "example.com/m")
	if err != nil {
		t.Fatal(err)
	}
	if !a.allowed("example.com/m/cmd/sandbox", "TestHelper") || !a.allowed("example.com/m/cmd/sandbox", "TestHelper/sub") {
		t.Errorf("entry not honoured: %v", a)
	}
	if a.allowed("example.com/m/cmd/sandbox", "TestHelperX") || a.allowed("example.com/m/other", "TestHelper") {
		t.Errorf("entry too wide: %v", a)
	}
	for _, bad := range []string{"cmd/sandbox TestX\n", "cmd/sandbox  # why\n", "cmd/sandbox NotATest # why\n"} {
		if _, err := parseAllow(strings.NewReader(bad), "example.com/m"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// goTestJSON runs the real `go test -json` on a throw-away module holding
// the given test file and returns its stream.
func goTestJSON(t *testing.T, test string) []byte {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/m\n\ngo 1.22\n"), 0o600)
	os.MkdirAll(filepath.Join(dir, "p"), 0o700)
	os.WriteFile(filepath.Join(dir, "p", "p_test.go"), []byte(test), 0o600)
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "test", "-json", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	out, _ := cmd.Output() // failing tests exit 1; the stream is what matters
	return out
}

func TestCheck(t *testing.T) {
	stream := goTestJSON(t, `package p
import "testing"
func TestPass(t *testing.T) {}
func TestAllowed(t *testing.T) { t.Skip("allowed reason") }
func TestBanned(t *testing.T) { t.Run("sub", func(t *testing.T) { t.Skip("tool missing") }) }
func TestFails(t *testing.T) { t.Log("a log line"); t.Error("broke") }
`)
	allow, _ := parseAllow(strings.NewReader("p TestAllowed # fine\n"), "example.com/m")
	var out bytes.Buffer
	if check(bytes.NewReader(stream), &out, allow, "allow-list") {
		t.Errorf("check passed a failing, badly skipping package")
	}
	o := out.String()
	for _, want := range []string{"--- FAIL: TestFails", "a log line", "broke",
		"--- SKIP not allowed", "TestBanned/sub", "tool missing", "FAIL\texample.com/m/p"} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q:\n%s", want, o)
		}
	}
	for _, bad := range []string{"TestAllowed", "=== RUN", "TestPass"} {
		if strings.Contains(o, bad) {
			t.Errorf("output has %q, which plain go test would not print:\n%s", bad, o)
		}
	}
	lines := strings.Split(strings.TrimSpace(o), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "FAIL") {
		t.Errorf("last line %q is not a FAIL line", last)
	}

	// Allowed skips and passes only: success, and just go's ok line.
	stream = goTestJSON(t, `package p
import "testing"
func TestPass(t *testing.T) {}
func TestAllowed(t *testing.T) { t.Skip("allowed reason") }
`)
	out.Reset()
	if !check(bytes.NewReader(stream), &out, allow, "allow-list") {
		t.Errorf("check failed a clean run:\n%s", out.String())
	}
	if o := strings.TrimSpace(out.String()); !strings.HasPrefix(o, "ok  \texample.com/m/p") || strings.Contains(o, "\n") {
		t.Errorf("clean run printed %q, want just the ok line", o)
	}
}
