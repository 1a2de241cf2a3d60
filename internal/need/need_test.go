package need

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestRequired(t *testing.T) {
	g := Group{Name: "x", Enable: "apt-get install x", Switch: "MAILSANDBOX_NEED_TEST_SWITCH"}
	for _, c := range []struct {
		ci, sw string
		want   bool
	}{
		{"", "", false}, {"true", "", true}, {"1", "", true}, {"false", "", false}, {"0", "", false},
		{"", "1", true}, {"", "0", false},
	} {
		t.Setenv("CI", c.ci)
		t.Setenv(g.Switch, c.sw)
		if got := Required(g); got != c.want {
			t.Errorf("CI=%q %s=%q: Required = %v, want %v", c.ci, g.Switch, c.sw, got, c.want)
		}
	}
}

// TestHelperCommand is run as a child process by TestCommandSkipsOrFails.
func TestHelperCommand(t *testing.T) {
	if os.Getenv("MAILSANDBOX_NEED_HELPER") != "1" {
		return
	}
	Command(t, Group{Name: "nothere", Enable: "apt-get install nothere"}, "mailsandbox-no-such-command")
	t.Log("reached past a missing command")
}

// A missing command skips with the enabling command, and fails under CI.
func TestCommandSkipsOrFails(t *testing.T) {
	run := func(ci string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCommand$", "-test.v")
		cmd.Env = append(os.Environ(), "MAILSANDBOX_NEED_HELPER=1", "CI="+ci)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("")
	if err != nil || !strings.Contains(out, "--- SKIP") || !strings.Contains(out, "apt-get install nothere") || strings.Contains(out, "reached past") {
		t.Errorf("without CI: want a skip naming the install command; err %v, output:\n%s", err, out)
	}
	out, err = run("true")
	if err == nil || !strings.Contains(out, "--- FAIL") || !strings.Contains(out, "required here") || strings.Contains(out, "reached past") {
		t.Errorf("with CI=true: want a failure; err %v, output:\n%s", err, out)
	}
}

func TestSwaksHasTLS(t *testing.T) {
	with := "=== Basic AUTH supported\n=== TLS supported\n"
	without := "=== Basic AUTH supported\n*** TLS not available: requires Net::SSLeay\n"
	if !swaksHasTLS(with) || swaksHasTLS(without) || swaksHasTLS("") {
		t.Error("swaks --support misread")
	}
}
