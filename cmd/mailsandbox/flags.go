package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
)

// envName is the environment variable for a flag: --smtp-addr ⇔
// MAILSANDBOX_SMTP_ADDR.
func envName(flagName string) string {
	return "MAILSANDBOX_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// listFlag is a repeatable flag; from the environment it takes a
// comma-separated list.
type listFlag struct{ v *[]string }

func (l listFlag) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l.v = append(*l.v, p)
		}
	}
	return nil
}

// routesFlag collects domain=host:port pairs.
type routesFlag struct{ m *map[string]string }

func (r routesFlag) String() string {
	if r.m == nil {
		return ""
	}
	var parts []string
	for d, hp := range *r.m {
		parts = append(parts, d+"="+hp)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (r routesFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		domain, hp, ok := strings.Cut(p, "=")
		if !ok || domain == "" || hp == "" {
			return fmt.Errorf("want domain=host:port, got %q", p)
		}
		if *r.m == nil {
			*r.m = map[string]string{}
		}
		(*r.m)[strings.ToLower(domain)] = hp
	}
	return nil
}

// sizeFlag accepts plain bytes or a K/M/G suffix (binary multiples).
type sizeFlag struct{ v *int64 }

func (s sizeFlag) String() string {
	if s.v == nil {
		return "0"
	}
	return strconv.FormatInt(*s.v, 10)
}

func (s sizeFlag) Set(v string) error {
	mult := int64(1)
	u := strings.ToUpper(strings.TrimSpace(v))
	for suffix, m := range map[string]int64{"K": 1 << 10, "KB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "G": 1 << 30, "GB": 1 << 30} {
		if strings.HasSuffix(u, suffix) && len(u) > len(suffix) {
			if _, err := strconv.ParseInt(strings.TrimSuffix(u, suffix), 10, 64); err == nil {
				mult, u = m, strings.TrimSuffix(u, suffix)
				break
			}
		}
	}
	n, err := strconv.ParseInt(u, 10, 64)
	if err != nil || n < 0 {
		return errors.New("want a number of bytes such as 1048576 or 10M")
	}
	*s.v = n * mult
	return nil
}

// runFlags is everything `mailsandbox [run]` accepts.
type runFlags struct {
	cfg       sandbox.Config
	logLevel  string
	logFormat string
	// fromEnv names the flags whose value came from the environment.
	fromEnv map[string]bool
	// fromMailpit names, by flag, the MP_ variable that set it
	// (mailpitenv.go); warnings are logged once the logger exists.
	fromMailpit map[string]string
	warnings    []string
}

// explain says where a bad setting came from: a *sandbox.ConfigError
// for a flag set through its environment variable names the variable too,
// as users of containers set only those.
func (rf *runFlags) explain(err error) string {
	var ce *sandbox.ConfigError
	if errors.As(err, &ce) && rf.fromMailpit[ce.Flag] != "" {
		return strings.Replace(err.Error(), "--"+ce.Flag+": ", "--"+ce.Flag+" (from "+rf.fromMailpit[ce.Flag]+"): ", 1)
	}
	if errors.As(err, &ce) && rf.fromEnv[ce.Flag] {
		return strings.Replace(err.Error(), "--"+ce.Flag+": ", "--"+ce.Flag+" (from "+envName(ce.Flag)+"): ", 1)
	}
	return err.Error()
}

func newRunFlagSet(rf *runFlags) *flag.FlagSet {
	rf.cfg = sandbox.DefaultConfig()
	c := &rf.cfg
	fs := flag.NewFlagSet("mailsandbox", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.SMTPAddr, "smtp-addr", c.SMTPAddr, "SMTP listen address (\"\" turns it off)")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "REST API, SSE, web UI, /healthz and /metrics listen address")
	fs.StringVar(&c.POP3Addr, "pop3-addr", c.POP3Addr, "POP3 listen address")
	fs.StringVar(&c.IMAPAddr, "imap-addr", c.IMAPAddr, "IMAP listen address")
	fs.StringVar(&c.SMTPSAddr, "smtps-addr", "", "implicit-TLS SMTP listen address (needs a certificate)")
	fs.StringVar(&c.POP3SAddr, "pop3s-addr", "", "implicit-TLS POP3 listen address (needs a certificate)")
	fs.StringVar(&c.IMAPSAddr, "imaps-addr", "", "implicit-TLS IMAP listen address (needs a certificate)")
	fs.StringVar(&c.DB, "db", "", "store: empty for a temporary store removed at exit, a file path for SQLite, or postgres://…")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate file for all TLS (STARTTLS, STLS and implicit TLS)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key file for --tls-cert")
	fs.BoolVar(&c.TLSSelfSigned, "tls-self-signed", false, "make a self-signed certificate at start and use it for all TLS")
	fs.Var(sizeFlag{&c.MaxMessageBytes}, "max-message-size", "largest message accepted, in bytes (K, M, G suffixes allowed); larger mail gets 552")
	fs.IntVar(&c.MaxMessages, "max-messages", 0, "keep at most this many messages, pruning the oldest (0 keeps all)")
	fs.DurationVar(&c.MaxAge, "max-age", 0, "prune messages older than this, e.g. 72h (0 keeps all)")
	fs.StringVar(&c.SMTPAuthFile, "smtp-auth-file", "", "htpasswd file (bcrypt); when set, SMTP AUTH with these credentials is required")
	fs.BoolVar(&c.SMTPAuthAllowInsecure, "smtp-auth-allow-insecure", false, "with --smtp-auth-file, also offer AUTH before TLS")
	fs.StringVar(&c.MailboxAuthFile, "mailbox-auth-file", "", "htpasswd file (bcrypt); when set, POP3 and IMAP logins need these credentials")
	fs.BoolVar(&c.MailboxAuthAllowInsecure, "mailbox-auth-allow-insecure", false, "with --mailbox-auth-file, also allow plain-text logins before TLS")
	fs.StringVar(&c.HTTPAuthFile, "http-auth-file", "", "htpasswd file (bcrypt); when set, HTTP basic auth is required (except /healthz)")
	fs.StringVar(&c.HTTPCORSOrigin, "http-cors-origin", "", "allow cross-origin browser requests from this origin (\"*\" for any)")
	fs.StringVar(&c.Relay.Smarthost, "relay-smarthost", "", "relay: deliver everything through this host:port")
	fs.StringVar(&c.Relay.SmarthostAuth, "relay-smarthost-auth", "", "relay: user:password for the smarthost")
	fs.BoolVar(&c.Relay.SmarthostInsecureTLS, "relay-smarthost-insecure-tls", false, "relay: do not verify the smarthost's TLS certificate")
	fs.BoolVar(&c.Relay.MX, "relay-mx", false, "relay: deliver directly to each recipient domain's MX hosts")
	fs.Var(routesFlag{&c.Relay.Routes}, "relay-route", "relay: fixed route domain=host:port (repeatable); beats MX and smarthost")
	fs.Var(listFlag{&c.Relay.Match}, "relay-match", "relay: auto-relay captured mail to recipients matching this glob, e.g. *@mycompany.com (repeatable)")
	fs.DurationVar(&c.Relay.MaxAge, "relay-max-age", c.Relay.MaxAge, "relay: give up on a delivery after this long and bounce")
	fs.DurationVar(&c.Relay.RetryMin, "relay-retry-min", c.Relay.RetryMin, "relay: first retry delay; doubles each try")
	fs.DurationVar(&c.Relay.RetryMax, "relay-retry-max", c.Relay.RetryMax, "relay: longest retry delay")
	fs.StringVar(&c.Relay.Helo, "relay-helo", "", "relay: name to greet destinations with (EHLO); default the host's FQDN, else an address literal like [192.0.2.1]")
	fs.StringVar(&c.SpamAssassin, "spamassassin", "", "spam check: spamd's host:port, e.g. localhost:783 (\"\" turns the spam check off)")
	fs.BoolVar(&c.AllowInternalLinkChecks, "allow-internal-link-checks", false, "link check: allow loopback, private and link-local targets")
	fs.StringVar(&c.Compat.SMTPAuth, "smtp-auth", "", "inline SMTP credentials \"user:pass user2:pass2\" (instead of --smtp-auth-file)")
	fs.StringVar(&c.Compat.MailboxAuth, "mailbox-auth", "", "inline POP3/IMAP credentials \"user:pass …\" (instead of --mailbox-auth-file)")
	fs.StringVar(&c.Compat.HTTPAuth, "http-auth", "", "inline HTTP basic-auth credentials \"user:pass …\" (instead of --http-auth-file)")
	fs.BoolVar(&c.Compat.SMTPRequireSTARTTLS, "smtp-require-starttls", false, "refuse MAIL before STARTTLS (needs a certificate)")
	fs.BoolVar(&c.Compat.SMTPRequireTLS, "smtp-require-tls", false, "make --smtp-addr speak implicit TLS (needs a certificate)")
	fs.IntVar(&c.Compat.SMTPMaxRecipients, "smtp-max-recipients", 1000, "most recipients per message; more get 452")
	fs.StringVar(&c.Compat.SMTPAllowedRecipients, "smtp-allowed-recipients", "", "refuse RCPT addresses this regular expression does not match (550)")
	fs.StringVar(&c.Compat.HTTPWebroot, "http-webroot", "", "serve all of HTTP (API, UI, /healthz, /metrics) under this path prefix, e.g. /mail/")
	fs.Var(ruleFlag{&c.Tags.Rules}, "tag", "tag mail matching a search: NAME=QUERY, QUERY in Mailpit's search syntax or re:FIELD:REGEXP (repeatable; one rule a line in the environment)")
	fs.BoolVar(&c.Tags.Username, "tag-username", false, "tag mail with the SMTP AUTH user name")
	fs.Var(listFlag{&c.Tags.Disable}, "tag-disable", "automatic tag sources to turn off, comma-separated: x-tags, plus-addresses")
	fs.Var(faultFlag{&c.Faults.Rules}, "fault", "fault rule STAGE[,from=GLOB][,to=GLOB]=ACTION, e.g. 'rcpt,to=*@bounce.test=550 5.1.1 No such user' (repeatable; env: one per line; see docs/faults.md)")
	fs.IntVar(&c.Faults.SMTPLogSessions, "smtp-log-sessions", c.Faults.SMTPLogSessions, "keep the transcripts of this many SMTP sessions in memory (0 turns the log off)")
	fs.BoolVar(&c.Faults.EnableChaos, "enable-chaos", false, "serve Mailpit's chaos API (GET/PUT /api/v1/chaos)")
	fs.StringVar(&c.Faults.ChaosTriggers, "chaos-triggers", "", "Mailpit chaos triggers at start, e.g. Sender:451:10,Recipient:550:5 (enables chaos)")
	fs.DurationVar(&c.Relay.Keep, "relay-keep", c.Relay.Keep, "relay: keep finished deliveries listed this long (0: as long as their message)")
	fs.Var(listFlag{&c.Webhook.URLs}, "webhook-url", "webhook: POST every new message as JSON to this http(s) URL (repeatable)")
	fs.StringVar(&c.Webhook.Secret, "webhook-secret", "", "webhook: sign each body with HMAC-SHA256 under this secret (X-Mailsandbox-Signature: sha256=<hex>)")
	fs.StringVar(&c.Webhook.Format, "webhook-format", c.Webhook.Format, "webhook: body format, native (the REST summary) or mailpit (Mailpit's MessageSummary)")
	fs.DurationVar(&c.Webhook.RetryMin, "webhook-retry-min", c.Webhook.RetryMin, "webhook: first retry delay; doubles each try")
	fs.DurationVar(&c.Webhook.RetryMax, "webhook-retry-max", c.Webhook.RetryMax, "webhook: longest retry delay")
	fs.DurationVar(&c.Webhook.MaxAge, "webhook-max-age", c.Webhook.MaxAge, "webhook: give up on a delivery after this long")
	fs.DurationVar(&c.Webhook.Timeout, "webhook-timeout", c.Webhook.Timeout, "webhook: longest one attempt may take, connecting to reading the answer")
	fs.StringVar(&rf.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&rf.logFormat, "log-format", "text", "log format: text or json")
	return fs
}

// parseRun parses args, then fills every flag not given on the command
// line from its environment variable (lookup is os.LookupEnv outside
// tests). Errors name the flag.
func parseRun(args []string, lookup func(string) (string, bool)) (*runFlags, error) {
	rf := &runFlags{fromEnv: map[string]bool{}}
	fs := newRunFlagSet(rf)
	if err := fs.Parse(args); err != nil {
		return nil, flagError(fs, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see mailsandbox --help)", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		v, ok := lookup(envName(f.Name))
		if !ok {
			return
		}
		// An empty variable (compose files write FOO= for "not set") means
		// unset for numbers, durations and switches; for an address it
		// still means off, as --smtp-addr "" does.
		if v == "" && !isStringFlag(f) {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("--%s (from %s): invalid value %q: %s", f.Name, envName(f.Name), v, hint(f, serr))
		}
		rf.fromEnv[f.Name] = true
	})
	if err != nil {
		return nil, err
	}
	if err := applyMailpitEnv(fs, rf, given, lookup); err != nil {
		return nil, err
	}
	switch rf.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("--log-level: want debug, info, warn or error, got %q", rf.logLevel)
	}
	if rf.logFormat != "text" && rf.logFormat != "json" {
		return nil, fmt.Errorf("--log-format: want text or json, got %q", rf.logFormat)
	}
	if err := rf.cfg.Validate(); err != nil {
		return nil, errors.New(rf.explain(err))
	}
	return rf, nil
}

func isStringFlag(f *flag.Flag) bool {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	_, ok = g.Get().(string)
	return ok
}

// hint replaces the flag package's bare "parse error" with what the flag
// wants.
func hint(f *flag.Flag, err error) string {
	if !errors.Is(err, strconv.ErrSyntax) && !errors.Is(err, strconv.ErrRange) && err.Error() != "parse error" {
		return err.Error()
	}
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case time.Duration:
			return "want a duration such as 90s, 30m or 72h"
		case bool:
			return "want true or false"
		case int, int64, uint, uint64:
			return "want a whole number"
		}
	}
	return err.Error()
}

// flagError rewrites the flag package's messages into one line that starts
// with the flag the way users type it.
func flagError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	// invalid value "x" for flag -max-age: parse error
	// invalid boolean value "x" for -tls-self-signed: parse error
	rest, ok := strings.CutPrefix(msg, "invalid value ")
	sep := " for flag -"
	if !ok {
		rest, ok = strings.CutPrefix(msg, "invalid boolean value ")
		sep = " for -"
	}
	if ok {
		if i := strings.LastIndex(rest, sep); i >= 0 {
			value := rest[:i]
			if uq, err := strconv.Unquote(value); err == nil {
				value = uq
			}
			name, detail, _ := strings.Cut(rest[i+len(sep):], ": ")
			if f := fs.Lookup(name); f != nil {
				detail = hint(f, errors.New(detail))
			}
			return fmt.Errorf("--%s: invalid value %q: %s", name, value, detail)
		}
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return fmt.Errorf("--%s: needs a value", strings.TrimLeft(name, "-"))
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return fmt.Errorf("--%s: unknown flag (see mailsandbox --help)", strings.TrimLeft(name, "-"))
	}
	return fmt.Errorf("%s", strings.ReplaceAll(msg, "\n", " "))
}

// usage prints every flag with its environment variable.
func usage(w io.Writer) {
	fmt.Fprint(w, `mailsandbox — a mail testing sandbox: SMTP in; REST, POP3, IMAP and a web UI out.

Usage:
  mailsandbox [run] [flags]                       start the sandbox
  mailsandbox sendmail [options] [rcpt...]        submit a message from stdin over SMTP,
                                                  with sendmail(1)'s options (-t, -i, -f, -S host:port…;
                                                  README "sendmail"); also as a link named sendmail
  mailsandbox healthcheck                         exit 0 when the sandbox's /healthz answers
  mailsandbox version                             print the version

Flags (each also read from its environment variable):
`)
	var rf runFlags
	fs := newRunFlagSet(&rf)
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if def != "" && def != "false" && def != "0" && def != "0s" {
			def = " (default " + def + ")"
		} else {
			def = ""
		}
		fmt.Fprintf(w, "  --%s  [%s]\n      %s%s\n", f.Name, envName(f.Name), f.Usage, def)
	})
}
