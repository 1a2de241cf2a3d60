package faults

import (
	"errors"
	"fmt"
)

// ChaosTrigger is one of Mailpit's chaos triggers: an SMTP error code
// (400–599) returned with a probability in percent (0–100).
type ChaosTrigger struct {
	ErrorCode   int
	Probability int
}

func (t ChaosTrigger) check() error {
	if t.ErrorCode < 400 || t.ErrorCode > 599 {
		return errors.New("error code must be between 400 and 599")
	}
	if t.Probability < 0 || t.Probability > 100 {
		return errors.New("probability must be between 0 and 100")
	}
	return nil
}

// Chaos is Mailpit's chaos setting (its JSON field names).
type Chaos struct {
	Sender         ChaosTrigger
	Recipient      ChaosTrigger
	Authentication ChaosTrigger
}

// DefaultChaos is Mailpit's: every trigger off, with codes 451, 451, 535.
func DefaultChaos() Chaos {
	return Chaos{Sender: ChaosTrigger{ErrorCode: 451}, Recipient: ChaosTrigger{ErrorCode: 451},
		Authentication: ChaosTrigger{ErrorCode: 535}}
}

// Normalize fills omitted error codes with Mailpit's defaults (a trigger
// left out of a PUT is reset: code default, probability 0) and checks
// the ranges.
func (c *Chaos) Normalize() error {
	def := DefaultChaos()
	for _, p := range []struct {
		t   *ChaosTrigger
		def int
	}{{&c.Sender, def.Sender.ErrorCode}, {&c.Recipient, def.Recipient.ErrorCode}, {&c.Authentication, def.Authentication.ErrorCode}} {
		if p.t.ErrorCode == 0 {
			p.t.ErrorCode = p.def
		}
		if err := p.t.check(); err != nil {
			return err
		}
	}
	return nil
}

// rules maps the setting onto engine rules: Sender at MAIL, Recipient at
// RCPT, Authentication at AUTH, with Mailpit's reply texts.
func (c Chaos) rules() []Rule {
	var rs []Rule
	add := func(st Stage, t ChaosTrigger, text string) {
		if t.Probability == 0 {
			return
		}
		p := float64(t.Probability) / 100
		rs = append(rs, Rule{Stage: st, Probability: &p, Reply: fmt.Sprintf("%d %s", t.ErrorCode, text)})
	}
	add(StageMail, c.Sender, "Chaos sender error")
	add(StageRcpt, c.Recipient, "Chaos recipient error")
	add(StageAuth, c.Authentication, "Chaos authentication error")
	return rs
}

// SetChaos replaces the rules of origin "chaos" with c's.
func (e *Engine) SetChaos(c Chaos) error {
	if err := c.Normalize(); err != nil {
		return err
	}
	if err := e.ReplaceOrigin("chaos", c.rules()); err != nil {
		return err
	}
	e.mu.Lock()
	e.chaos = c
	e.mu.Unlock()
	return nil
}

// Chaos returns the current Mailpit chaos setting.
func (e *Engine) Chaos() Chaos {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.chaos == (Chaos{}) {
		return DefaultChaos()
	}
	return e.chaos
}

// Jim is MailHog's chaos monkey (its JSON field names): chances are 0–1,
// link speeds bytes a second.
type Jim struct {
	DisconnectChance      float64
	AcceptChance          float64
	LinkSpeedAffect       float64
	LinkSpeedMin          float64
	LinkSpeedMax          float64
	RejectSenderChance    float64
	RejectRecipientChance float64
	RejectAuthChance      float64
}

// DefaultJim is MailHog's default monkey.
func DefaultJim() Jim {
	return Jim{DisconnectChance: 0.005, AcceptChance: 0.99, LinkSpeedAffect: 0.1, LinkSpeedMin: 1024,
		LinkSpeedMax: 10240, RejectSenderChance: 0.05, RejectRecipientChance: 0.05, RejectAuthChance: 0.05}
}

// Check validates the fields, naming the bad one.
func (j Jim) Check() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"DisconnectChance", j.DisconnectChance}, {"AcceptChance", j.AcceptChance}, {"LinkSpeedAffect", j.LinkSpeedAffect},
		{"RejectSenderChance", j.RejectSenderChance}, {"RejectRecipientChance", j.RejectRecipientChance}, {"RejectAuthChance", j.RejectAuthChance}} {
		if !(f.v >= 0 && f.v <= 1) {
			return fieldErr(f.name, "%v outside 0–1", f.v)
		}
	}
	if j.LinkSpeedAffect > 0 && !(j.LinkSpeedMin >= 1) {
		return fieldErr("LinkSpeedMin", "must be at least 1 byte a second")
	}
	if j.LinkSpeedAffect > 0 && j.LinkSpeedMax < j.LinkSpeedMin {
		return fieldErr("LinkSpeedMax", "below LinkSpeedMin")
	}
	return nil
}

// rules maps Jim onto engine rules: a refused connection (1-AcceptChance)
// and a slow link at connect; a random hang-up at every command stage;
// refused senders, recipients and logins.
func (j Jim) rules() []Rule {
	var rs []Rule
	p := func(v float64) *float64 { return &v }
	if j.AcceptChance < 1 {
		rs = append(rs, Rule{Stage: StageConnect, Probability: p(1 - j.AcceptChance), Disconnect: true})
	}
	if j.LinkSpeedAffect > 0 {
		rs = append(rs, Rule{Stage: StageConnect, Probability: p(j.LinkSpeedAffect), Bandwidth: int(j.LinkSpeedMin), BandwidthMax: int(j.LinkSpeedMax)})
	}
	if j.DisconnectChance > 0 {
		for _, st := range []Stage{StageHelo, StageAuth, StageMail, StageRcpt, StageData} {
			rs = append(rs, Rule{Stage: st, Probability: p(j.DisconnectChance), Disconnect: true})
		}
	}
	if j.RejectSenderChance > 0 {
		rs = append(rs, Rule{Stage: StageMail, Probability: p(j.RejectSenderChance), Reply: "550 5.1.0 Sender rejected"})
	}
	if j.RejectRecipientChance > 0 {
		rs = append(rs, Rule{Stage: StageRcpt, Probability: p(j.RejectRecipientChance), Reply: "550 5.1.1 Recipient rejected"})
	}
	if j.RejectAuthChance > 0 {
		rs = append(rs, Rule{Stage: StageAuth, Probability: p(j.RejectAuthChance), Reply: "535 5.7.8 Authentication rejected"})
	}
	return rs
}

// SetJim invites Jim with j (nil sends him away: his rules are removed).
func (e *Engine) SetJim(j *Jim) error {
	var rs []Rule
	if j != nil {
		if err := j.Check(); err != nil {
			return err
		}
		rs = j.rules()
	}
	if err := e.ReplaceOrigin("jim", rs); err != nil {
		return err
	}
	e.mu.Lock()
	if j == nil {
		e.jim = nil
	} else {
		v := *j
		e.jim = &v
	}
	e.mu.Unlock()
	return nil
}

// Jim returns Jim's setting, or nil when he is not invited.
func (e *Engine) Jim() *Jim {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.jim == nil {
		return nil
	}
	v := *e.jim
	return &v
}
