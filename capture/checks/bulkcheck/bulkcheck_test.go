package bulkcheck

import (
	"testing"

	"github.com/mailsandbox/mailsandbox/capture/checks/authcheck"
	"github.com/mailsandbox/mailsandbox/capture/mailparse"
)

const good = "From: News <news@example.com>\r\n" +
	"To: r@example.org\r\n" +
	"Subject: s\r\n" +
	"List-Unsubscribe: <mailto:unsub@example.com?subject=u>, <https://example.com/u/1>\r\n" +
	"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=b\r\n\r\n" +
	"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>hello</p>\r\n--b--\r\n"

func signedBy(domain string, headers ...string) *authcheck.Result {
	return &authcheck.Result{FromDomain: "example.com",
		DKIM:  []authcheck.DKIM{{Domain: domain, Selector: "s", Result: authcheck.Pass, Headers: headers}},
		DMARC: authcheck.DMARC{DKIMAligned: domain == "example.com"}}
}

func TestAllPass(t *testing.T) {
	m := mailparse.Parse([]byte(good))
	r := Check(m, "bounce@example.com", signedBy("example.com", "from", "list-unsubscribe", "list-unsubscribe-post"))
	if !r.Pass || len(r.Rules) != 6 {
		t.Fatalf("%+v", r)
	}
}

func TestEachRuleFails(t *testing.T) {
	full := signedBy("example.com", "from", "list-unsubscribe", "list-unsubscribe-post")
	for _, tc := range []struct {
		name, raw, mailFrom string
		auth                *authcheck.Result
		rule                string
	}{
		{"no header", "From: a@example.com\r\n\r\nbody", "a@example.com", full, RuleListUnsubscribe},
		{"no brackets", "From: a@example.com\r\nList-Unsubscribe: https://example.com/u\r\n\r\nb", "a@example.com", full, RuleListUnsubscribe},
		{"mailto only", "From: a@example.com\r\nList-Unsubscribe: <mailto:u@example.com>\r\n\r\nb", "a@example.com", full, RuleHTTPSURI},
		{"http not https", "From: a@example.com\r\nList-Unsubscribe: <http://example.com/u>\r\n\r\nb", "a@example.com", full, RuleHTTPSURI},
		{"no post", "From: a@example.com\r\nList-Unsubscribe: <https://example.com/u>\r\n\r\nb", "a@example.com", full, RuleOneClickPost},
		{"wrong post", "From: a@example.com\r\nList-Unsubscribe-Post: yes\r\n\r\nb", "a@example.com", full, RuleOneClickPost},
		{"not covered", good, "a@example.com", signedBy("example.com", "from", "list-unsubscribe"), RuleOneClickDKIM},
		{"unsigned", good, "a@example.com", &authcheck.Result{}, RuleOneClickDKIM},
		{"failed signature", good, "a@example.com", &authcheck.Result{DKIM: []authcheck.DKIM{{Domain: "example.com", Result: authcheck.Fail,
			Headers: []string{"list-unsubscribe", "list-unsubscribe-post"}}}}, RuleOneClickDKIM},
		{"misaligned", good, "bounce@esp.example.net", signedBy("esp.example.net", "list-unsubscribe", "list-unsubscribe-post"), RuleFromAlignment},
		{"html only", "From: a@example.com\r\nContent-Type: text/html\r\n\r\n<p>x</p>", "a@example.com", full, RulePlainText},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(mailparse.Parse([]byte(tc.raw)), tc.mailFrom, tc.auth)
			rule := r.Rule(tc.rule)
			if rule == nil || rule.Pass || rule.Reason == "" || r.Pass {
				t.Errorf("rule %s: %+v (overall pass %v), want a failure with a reason", tc.rule, rule, r.Pass)
			}
		})
	}
}

func TestAlignmentByEnvelope(t *testing.T) {
	r := Check(mailparse.Parse([]byte(good)), "bounce@mail.example.com", &authcheck.Result{})
	if rule := r.Rule(RuleFromAlignment); !rule.Pass {
		t.Errorf("envelope mail.example.com vs From example.com (relaxed): %+v", rule)
	}
	if len(r.Rules) != 6 {
		t.Errorf("%d rules, want 6", len(r.Rules))
	}
}
