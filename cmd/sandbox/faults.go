package sandbox

import (
	"github.com/mailsandbox/mailsandbox/api/faultsapi"
	"github.com/mailsandbox/mailsandbox/api/rest"
	"github.com/mailsandbox/mailsandbox/capture/faults"
	"github.com/mailsandbox/mailsandbox/capture/smtplog"
)

// FaultsConfig is fault injection's part of Config. Faults apply to the
// SMTP listeners that take mail from applications (smtp, smtps), never to
// the relay's outgoing connections.
type FaultsConfig struct {
	// Rules in force from start, in --fault's grammar (faults.ParseFlag).
	Rules []string
	// RuleValues are more rules as values (sandboxtest.WithFault).
	RuleValues []faults.Rule
	// SMTPLogSessions is how many SMTP sessions the in-memory session log
	// keeps (--smtp-log-sessions); 0 turns it off. Each instance keeps its
	// own, also on a shared PostgreSQL store.
	SMTPLogSessions int
	// EnableChaos serves Mailpit's chaos API (--enable-chaos).
	EnableChaos bool
	// ChaosTriggers sets Mailpit's chaos at start (--chaos-triggers,
	// "Sender:451:10,Recipient:550:5"); it enables chaos, as in Mailpit.
	ChaosTriggers string
}

func (c FaultsConfig) validate() error {
	for _, r := range c.Rules {
		if _, err := faults.ParseFlag(r); err != nil {
			return bad("fault", "%v", err)
		}
	}
	for _, r := range c.RuleValues {
		if err := faults.Validate(r); err != nil {
			return bad("fault", "%v", err)
		}
	}
	if c.SMTPLogSessions < 0 {
		return bad("smtp-log-sessions", "must not be negative")
	}
	if c.ChaosTriggers != "" {
		if _, err := faults.ParseChaosTriggers(c.ChaosTriggers); err != nil {
			return bad("chaos-triggers", "%v", err)
		}
	}
	return nil
}

// build makes the engine with the start-up rules, the session log (nil
// when off) and the HTTP routes serving both.
func (c FaultsConfig) build() (*faults.Engine, *smtplog.Log, rest.Mount, error) {
	e := faults.New(faults.Options{})
	for _, s := range c.Rules {
		r, err := faults.ParseFlag(s)
		if err != nil {
			return nil, nil, rest.Mount{}, bad("fault", "%v", err)
		}
		if _, err := e.Add(r); err != nil {
			return nil, nil, rest.Mount{}, bad("fault", "%v", err)
		}
	}
	for _, r := range c.RuleValues {
		if _, err := e.Add(r); err != nil {
			return nil, nil, rest.Mount{}, bad("fault", "%v", err)
		}
	}
	chaos := c.EnableChaos
	if c.ChaosTriggers != "" {
		ch, err := faults.ParseChaosTriggers(c.ChaosTriggers)
		if err == nil {
			err = e.SetChaos(ch)
		}
		if err != nil {
			return nil, nil, rest.Mount{}, bad("chaos-triggers", "%v", err)
		}
		chaos = true
	}
	var log *smtplog.Log
	if c.SMTPLogSessions > 0 {
		log = smtplog.New(smtplog.Options{MaxSessions: c.SMTPLogSessions})
	}
	return e, log, faultsapi.Mount(faultsapi.Options{Engine: e, Log: log, ChaosEnabled: chaos}), nil
}
