// Package need lets a test ask for something outside Go (a command, a
// database, a directory beside the checkout) and skip with one line saying
// how to get it, unless the run is CI, where a missing need is a failure.
//
// A run is CI when CI is set (to anything but "", "0" or "false"), or when
// the group's own switch is "1" (MAILSANDBOX_E2E, MAILSANDBOX_BROWSER,
// MAILSANDBOX_REQUIRE_PG). Every skip belongs to a Group; at the end of
// `go test ./...` the package that sorts last (zz/skipsummary, through
// Summarize) prints each skipped group once with the one command that
// enables it.
package need

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Group is one thing a set of tests needs, and how a newcomer gets it.
type Group struct {
	Name   string // short, e.g. "swaks"
	Enable string // the one command (or step) that enables the group
	Switch string // env var that, set to "1", makes the group required; "" means only CI
}

// The groups the suite knows. Add one here when a new kind of test appears.
var (
	Postgres  = Group{"PostgreSQL", `export MAILSANDBOX_TEST_PG='postgres://postgres:postgres@127.0.0.1:5432/mailsandbox_test?sslmode=disable'  # a running PostgreSQL; .ci/run starts one`, "MAILSANDBOX_REQUIRE_PG"}
	Docker    = Group{"Docker (e2e)", "install Docker (apt-get install docker.io) and let this user reach it", "MAILSANDBOX_E2E"}
	Chromium  = Group{"Chromium (UI browser tests)", "apt-get install chromium  # or set MAILSANDBOX_CHROMIUM=/path/to/chrome", "MAILSANDBOX_BROWSER"}
	Swaks     = Group{"swaks", "apt-get install swaks libnet-ssleay-perl", ""}
	Python    = Group{"python3 (smtplib, poplib, imaplib clients)", "apt-get install python3", ""}
	Curl      = Group{"curl", "apt-get install curl", ""}
	Mbsync    = Group{"mbsync", "apt-get install isync", ""}
	Corpus    = Group{"MIME corpus", "put the team's corpus at ../shared/mime-corpus beside the checkout", ""}
	Root      = Group{"tmpfs (disk-full, read-only store)", "sudo go test ./capture/smtpd/  # root mounts a small tmpfs", ""}
	Spamd     = Group{"SpamAssassin (spam check)", "apt-get install spamassassin spamd", ""}
	Postfix   = Group{"Postfix (relay to a real MTA)", "apt-get install postfix && sudo go test ./relay/  # its master starts as root", ""}
	Callers   = Group{"sendmail callers (PHP mail(), neomutt, s-nail)", "apt-get install php-cli neomutt s-nail", ""}
	SinkTools = Group{"Postfix's smtp-source and smtp-sink (ingest benchmark)", "apt-get install postfix  # its daemon need not run", ""}
	CanIEmail = Group{"caniemail data", "put the team's caniemail checkout at ../shared/caniemail beside the checkout", ""}
)

// CI reports whether missing needs fail instead of skipping.
func CI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "0" && v != "false"
}

// Required reports whether g must be present in this run.
func Required(g Group) bool {
	return CI() || (g.Switch != "" && os.Getenv(g.Switch) == "1")
}

// Skip skips t because g is missing (why says what exactly), or fails it
// when g is required.
func Skip(t testing.TB, g Group, why string) {
	t.Helper()
	if Required(g) {
		t.Fatalf("%s: %s (required here: CI or %s; to get it: %s)", g.Name, why, switchName(g), g.Enable)
	}
	if goPid := record(g); goPid != 0 {
		uncache(t, goPid)
	}
	t.Skipf("%s: %s; to run these tests: %s", g.Name, why, g.Enable)
}

// Command returns the path of the command name, or skips (fails in CI)
// with g's instructions.
func Command(t testing.TB, g Group, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Skip(t, g, name+" not installed")
	}
	return p
}

// SwaksTLS returns swaks' path when it can speak TLS, else skips (fails in
// CI). The ability, not the command: swaks without Perl's Net::SSLeay
// exists but prints "*** TLS not available" in `swaks --support`.
func SwaksTLS(t testing.TB) string {
	t.Helper()
	p := Command(t, Swaks, "swaks")
	out, _ := exec.Command(p, "--support").CombinedOutput() // exits 0 even with abilities missing
	if !swaksHasTLS(string(out)) {
		Skip(t, Swaks, "swaks cannot do TLS here (Perl's Net::SSLeay missing)")
	}
	return p
}

// swaksHasTLS reads `swaks --support`: "=== TLS supported" or
// "*** TLS not available: requires Net::SSLeay".
func swaksHasTLS(support string) bool {
	for _, l := range strings.Split(support, "\n") {
		if strings.TrimSpace(l) == "=== TLS supported" {
			return true
		}
	}
	return false
}

func switchName(g Group) string {
	if g.Switch == "" {
		return "CI=true"
	}
	return "CI=true or " + g.Switch + "=1"
}
