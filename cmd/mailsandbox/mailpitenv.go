package main

import (
	"flag"
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Mailpit's environment variables, so a container started with Mailpit's
// settings behaves the same. Each MP_ variable sets a native flag, but only
// when that flag was neither given on the command line nor set through its
// MAILSANDBOX_ variable. An empty variable is unset, as in Mailpit. Every
// other MP_ variable in the environment is named in one warning at start.
//
// Later features add rows here (chaos, tags, webhooks).

// mpRow maps one MP_ variable. Simple rows name a flag (and may convert the
// value); rows with apply handle variables that combine or only check.
type mpRow struct {
	name  string
	flag  string
	conv  func(v string) (string, error) // nil: the value as is
	apply func(m *mpEnv, v string) error
}

var mailpitRows = []mpRow{
	{name: "MP_DATABASE", flag: "db"},
	{name: "MP_MAX_MESSAGES", flag: "max-messages"},
	{name: "MP_MAX_AGE", flag: "max-age", conv: mailpitAge},
	{name: "MP_SMTP_AUTH", flag: "smtp-auth"},
	{name: "MP_SMTP_AUTH_FILE", flag: "smtp-auth-file"},
	{name: "MP_SMTP_AUTH_ALLOW_INSECURE", flag: "smtp-auth-allow-insecure", conv: mailpitBool},
	{name: "MP_SMTP_REQUIRE_STARTTLS", flag: "smtp-require-starttls", conv: mailpitBool},
	{name: "MP_SMTP_REQUIRE_TLS", flag: "smtp-require-tls", conv: mailpitBool},
	{name: "MP_SMTP_TLS_CERT", flag: "tls-cert"},
	{name: "MP_SMTP_TLS_KEY", flag: "tls-key"},
	{name: "MP_SMTP_MAX_RECIPIENTS", flag: "smtp-max-recipients"},
	{name: "MP_SMTP_ALLOWED_RECIPIENTS", flag: "smtp-allowed-recipients"},
	{name: "MP_UI_AUTH", flag: "http-auth"},
	{name: "MP_UI_AUTH_FILE", flag: "http-auth-file"},
	{name: "MP_WEBROOT", flag: "http-webroot"},
	{name: "MP_POP3_AUTH", flag: "mailbox-auth"},
	{name: "MP_POP3_AUTH_FILE", flag: "mailbox-auth-file"},
	{name: "MP_ENABLE_CHAOS", flag: "enable-chaos", conv: mailpitBool},
	{name: "MP_CHAOS_TRIGGERS", flag: "chaos-triggers"},
	{name: "MP_SENDMAIL_SMTP_ADDR", apply: func(*mpEnv, string) error { return nil }}, // read by mailsandbox sendmail
	{name: "MP_SMTP_RELAY_HOST", apply: relayHost},
	{name: "MP_SMTP_RELAY_PORT", apply: func(*mpEnv, string) error { return nil }}, // read by MP_SMTP_RELAY_HOST
	{name: "MP_SMTP_RELAY_USERNAME", apply: relayAuth},
	{name: "MP_SMTP_RELAY_PASSWORD", apply: func(*mpEnv, string) error { return nil }}, // read by MP_SMTP_RELAY_USERNAME
	{name: "MP_SMTP_RELAY_ALL", flag: "relay-match", conv: func(v string) (string, error) {
		if b, _ := mailpitBool(v); b == "true" {
			return "*", nil
		}
		return "", nil
	}},
	{name: "MP_SMTP_RELAY_ALLOW_INSECURE", flag: "relay-smarthost-insecure-tls", conv: mailpitBool},
	// The relay always upgrades with STARTTLS when the smarthost offers it.
	{name: "MP_SMTP_RELAY_STARTTLS", apply: func(*mpEnv, string) error { return nil }},
	{name: "MP_SMTP_RELAY_TLS", apply: func(m *mpEnv, v string) error {
		if b, _ := mailpitBool(v); b == "true" {
			m.unsupported(m.row.name + "=" + v + " (implicit-TLS smarthost)")
		}
		return nil
	}},
	{name: "MP_SMTP_RELAY_AUTH", apply: func(m *mpEnv, v string) error {
		switch strings.ToLower(v) {
		case "none", "plain":
		default:
			m.unsupported(m.row.name + "=" + v + " (only plain)")
		}
		return nil
	}},
	// Our default already accepts any credentials; with credentials set the
	// two contradict each other, as Mailpit says too.
	{name: "MP_SMTP_AUTH_ACCEPT_ANY", apply: func(m *mpEnv, v string) error {
		if b, _ := mailpitBool(v); b != "true" {
			return nil
		}
		if m.rf.cfg.Compat.SMTPAuth != "" || m.rf.cfg.SMTPAuthFile != "" {
			return fmt.Errorf("%s: cannot be combined with SMTP credentials (MP_SMTP_AUTH, MP_SMTP_AUTH_FILE, --smtp-auth or --smtp-auth-file)", m.row.name)
		}
		return nil
	}},
	// Webhooks: Mailpit posts its MessageSummary, so its URL comes with that
	// format (unless --webhook-format was set natively). MP_WEBHOOK_LIMIT
	// caps Mailpit's rate by dropping calls; ours are queued, never dropped.
	{name: "MP_WEBHOOK_URL", apply: func(m *mpEnv, v string) error {
		if err := m.set("webhook-url", v); err != nil {
			return err
		}
		return m.set("webhook-format", "mailpit")
	}},
	{name: "MP_WEBHOOK_LIMIT", apply: func(*mpEnv, string) error { return nil }},
	// Tags (autotag).
	{name: "MP_TAG", flag: "tag", conv: mailpitTagArgs},
	{name: "MP_TAGS_USERNAME", flag: "tag-username", conv: mailpitBool},
	{name: "MP_TAGS_DISABLE", flag: "tag-disable"},
	{name: "MP_TAGS_CONFIG", apply: func(m *mpEnv, v string) error {
		m.unsupported(m.row.name + "=" + v + " (a YAML file of tag filters; give each as --tag NAME=QUERY)")
		return nil
	}},
	{name: "MP_TAGS_TITLE_CASE", apply: func(m *mpEnv, v string) error {
		if b, _ := mailpitBool(v); b == "true" {
			m.unsupported(m.row.name + "=" + v + " (tags keep the case they were given)")
		}
		return nil
	}},
}

// mpEnv is the state one applyMailpitEnv call works on.
type mpEnv struct {
	fs     *flag.FlagSet
	rf     *runFlags
	given  map[string]bool
	lookup func(string) (string, bool)
	row    mpRow
}

// get returns an MP_ variable's value; empty means unset.
func (m *mpEnv) get(name string) string {
	v, _ := m.lookup(name)
	return v
}

func (m *mpEnv) unsupported(what string) { m.rf.warnings = append(m.rf.warnings, what) }

// set gives flag the value v from the MP_ variable of the current row,
// unless the flag was set natively.
func (m *mpEnv) set(flagName, v string) error {
	if m.given[flagName] || m.rf.fromEnv[flagName] {
		return nil
	}
	f := m.fs.Lookup(flagName)
	if err := m.fs.Set(flagName, v); err != nil {
		return fmt.Errorf("--%s (from %s): invalid value %q: %s", flagName, m.row.name, v, hint(f, err))
	}
	m.rf.fromMailpit[flagName] = m.row.name
	return nil
}

// applyMailpitEnv applies mailpitRows; flags already set natively win.
func applyMailpitEnv(fs *flag.FlagSet, rf *runFlags, given map[string]bool, lookup func(string) (string, bool)) error {
	if rf.fromMailpit == nil {
		rf.fromMailpit = map[string]string{}
	}
	m := &mpEnv{fs: fs, rf: rf, given: given, lookup: lookup}
	for _, row := range mailpitRows {
		v := m.get(row.name)
		if v == "" {
			continue
		}
		m.row = row
		if row.apply != nil {
			if err := row.apply(m, v); err != nil {
				return err
			}
			continue
		}
		fv := v
		if row.conv != nil {
			var err error
			if fv, err = row.conv(v); err != nil {
				return fmt.Errorf("--%s (from %s): invalid value %q: %v", row.flag, row.name, v, err)
			}
			if fv == "" {
				continue // a switch turned off: nothing to set
			}
		}
		if err := m.set(row.flag, fv); err != nil {
			return err
		}
	}
	return nil
}

// relayHost sets the smarthost from MP_SMTP_RELAY_HOST and _PORT (25 when
// unset, as Mailpit).
func relayHost(m *mpEnv, host string) error {
	port := m.get("MP_SMTP_RELAY_PORT")
	if port == "" {
		port = "25"
	}
	return m.set("relay-smarthost", net.JoinHostPort(host, port))
}

// relayAuth sets smarthost credentials from MP_SMTP_RELAY_USERNAME and
// _PASSWORD.
func relayAuth(m *mpEnv, user string) error {
	return m.set("relay-smarthost-auth", user+":"+m.get("MP_SMTP_RELAY_PASSWORD"))
}

// mailpitBool reads a switch as Mailpit does: 1, true or yes (any case)
// turn it on; anything else leaves it off ("" here: set nothing).
func mailpitBool(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes":
		return "true", nil
	}
	return "", nil
}

var mailpitAgeRE = regexp.MustCompile(`^(\d+)([hd])$`)

// mailpitAge converts Mailpit's max age ("24h", "7d": whole hours or days)
// to a Go duration.
func mailpitAge(v string) (string, error) {
	m := mailpitAgeRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(v)))
	if m == nil {
		return "", fmt.Errorf("want hours or days such as 24h or 7d")
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n > 100000 {
		return "", fmt.Errorf("want hours or days such as 24h or 7d")
	}
	unit := time.Hour
	if m[2] == "d" {
		unit = 24 * time.Hour
	}
	return (time.Duration(n) * unit).String(), nil
}

// mailpitWarning is the one start-up warning naming every MP_ variable in
// environ that is not supported (or a value that is not), or "" when none.
func mailpitWarning(environ []string, rf *runFlags) string {
	known := map[string]bool{}
	for _, r := range mailpitRows {
		known[r.name] = true
	}
	what := slices.Clone(rf.warnings)
	for _, kv := range environ {
		name, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "MP_") && !known[name] && v != "" {
			what = append(what, name)
		}
	}
	if len(what) == 0 {
		return ""
	}
	sort.Strings(what)
	return "Mailpit settings not supported, ignored: " + strings.Join(what, ", ")
}
