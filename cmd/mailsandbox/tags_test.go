package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestBadTagRuleStopsStartUp: a tag rule that does not compile stops the
// binary with status 2 and one line naming --tag and the rule.
func TestBadTagRuleStopsStartUp(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	free := []string{"--smtp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--pop3-addr", "127.0.0.1:0", "--imap-addr", "127.0.0.1:0"}
	cases := []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--tag", `billing=re:subject:^Invoice ([0-9]+`}, nil, `--tag: invalid tag rule "billing=re:subject:^Invoice ([0-9]+": error parsing regexp`},
		{[]string{"--tag", "ok=subject:x", "--tag", "no-equals-sign"}, nil, `--tag: invalid tag rule "no-equals-sign": want NAME=QUERY`},
		{[]string{"--tag", "a/b=subject:x"}, nil, `--tag: invalid tag rule "a/b=subject:x": tag name`},
		{[]string{"--tag", "late=before:someday"}, nil, `--tag: invalid tag rule "late=before:someday"`},
		{[]string{"--tag", "empty="}, nil, `--tag: invalid tag rule "empty=": empty query`},
		{[]string{"--tag", "x=re:sub ject:y"}, nil, `--tag: invalid tag rule "x=re:sub ject:y": unknown field`},
		{[]string{"--tag-disable", "x-tags,smoke-signals"}, nil, `--tag-disable: unknown source "smoke-signals"`},
		{nil, []string{"MAILSANDBOX_TAG=good=subject:a\nbad=re:to:["}, `--tag (from MAILSANDBOX_TAG): invalid tag rule "bad=re:to:["`},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, bin, append(append([]string{}, free...), c.args...)...)
		cmd.Env = append(os.Environ(), c.env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("%q %q: exit %v, want status 2; stderr %q", c.args, c.env, err, stderr.String())
			continue
		}
		out := strings.TrimSuffix(stderr.String(), "\n")
		if strings.Contains(out, "\n") || !strings.HasPrefix(out, "mailsandbox: "+c.want) {
			t.Errorf("%q %q: stderr %q, want one line starting %q", c.args, c.env, stderr.String(), "mailsandbox: "+c.want)
		}
	}
}

// TestTagFlagsAndMailpitEnv: --tag is repeatable and keeps commas; the
// environment gives one rule a line; Mailpit's MP_TAG* map onto the same
// flags, and native settings win.
func TestTagFlagsAndMailpitEnv(t *testing.T) {
	rf, err := parseRun([]string{"--tag", `a=subject:"x, y"`, "--tag", "b=re:subject:^Invoice \\d+"}, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := rf.cfg.Tags.Rules; len(got) != 2 || got[0] != `a=subject:"x, y"` || got[1] != `b=re:subject:^Invoice \d+` {
		t.Errorf("--tag rules: %q", got)
	}
	rf, err = parseRun(nil, mapEnv(map[string]string{
		"MP_TAG":             `github=from:github.com "Sign up"="subject:welcome aboard"`,
		"MP_TAGS_USERNAME":   "true",
		"MP_TAGS_DISABLE":    "plus-addresses,x-tags",
		"MP_TAGS_TITLE_CASE": "1",
		"MP_TAGS_CONFIG":     "/etc/tags.yml",
	}))
	if err != nil {
		t.Fatal(err)
	}
	c := rf.cfg.Tags
	if len(c.Rules) != 2 || c.Rules[0] != "github=from:github.com" || c.Rules[1] != "Sign up=subject:welcome aboard" || !c.Username ||
		len(c.Disable) != 2 || c.Disable[0] != "plus-addresses" {
		t.Errorf("from MP_TAG*: %+v", c)
	}
	if w := strings.Join(rf.warnings, "; "); !strings.Contains(w, "MP_TAGS_TITLE_CASE") || !strings.Contains(w, "MP_TAGS_CONFIG") {
		t.Errorf("warnings %q do not name the unsupported MP_TAGS_ variables", w)
	}
	rf, err = parseRun(nil, mapEnv(map[string]string{"MAILSANDBOX_TAG": "native=subject:n\nsecond=subject:s", "MP_TAG": "mp=subject:m"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := rf.cfg.Tags.Rules; len(got) != 2 || got[0] != "native=subject:n" || got[1] != "second=subject:s" {
		t.Errorf("native environment beside MP_TAG: %q", got)
	}
	if _, err := parseRun(nil, mapEnv(map[string]string{"MP_TAG": `a="subject:x`})); err == nil || !strings.Contains(err.Error(), "MP_TAG") {
		t.Errorf("unbalanced quote in MP_TAG: %v", err)
	}
}
