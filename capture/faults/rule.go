// Package faults is the fault-injection rule engine behind the SMTP
// endpoint: rules say at which stage of an SMTP session, for which
// envelope, and with what chance the server misbehaves (refuses, stalls,
// hangs up, greylists, rate-limits, or slows its replies).
//
// The engine is a leaf package: the SMTP server asks it through a small
// interface it declares itself. The active rule set is immutable and
// swapped atomically, so a server with no rules pays one atomic load per
// question and takes no lock.
package faults

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Stage is a point in an SMTP session where a rule applies.
type Stage string

// The stages, in session order. StageData is the DATA command itself
// (before 354); StageMessage is after the message was received, before the
// reply to it.
const (
	StageConnect Stage = "connect"
	StageHelo    Stage = "helo"
	StageAuth    Stage = "auth"
	StageMail    Stage = "mail"
	StageRcpt    Stage = "rcpt"
	StageData    Stage = "data"
	StageMessage Stage = "message"
)

// Stages lists every stage in session order.
var Stages = [...]Stage{StageConnect, StageHelo, StageAuth, StageMail, StageRcpt, StageData, StageMessage}

func (s Stage) valid() bool {
	for _, v := range Stages {
		if s == v {
			return true
		}
	}
	return false
}

// MaxDelay caps every delay and greylist period, so a rule cannot hold a
// session (or shutdown) for longer.
const MaxDelay = 10 * time.Minute

// Duration is a time.Duration written in JSON as Go's duration text ("3s").
type Duration time.Duration

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "3s", or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var f float64
		if err2 := json.Unmarshal(b, &f); err2 != nil {
			return errors.New(`want a duration such as "3s"`)
		}
		*d = Duration(f * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"3s\": %q", s)
	}
	*d = Duration(v)
	return nil
}

// Rate is a rate limit: at most Messages events per Per, per client IP.
type Rate struct {
	Messages int      `json:"messages"`
	Per      Duration `json:"per"`
}

// Rule is one fault. Stage is required, and at least one action (Reply,
// Delay, Disconnect, Greylist, Rate, Bandwidth).
type Rule struct {
	// ID is assigned by the engine.
	ID    string `json:"id,omitempty"`
	Stage Stage  `json:"stage"`
	// From and To are globs (*, ?, [a-z]) on the envelope sender and
	// recipient, case-insensitive; "" matches anything. At data and message
	// a To glob matches when any recipient matches.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Probability is the chance (0–1) that a matching event is hit; nil
	// means 1.
	Probability *float64 `json:"probability,omitempty"`
	// Times retires the rule after that many hits; 0 means unlimited.
	Times int `json:"times,omitempty"`

	// Reply is "CODE [ENHANCED] TEXT", e.g. "451 4.7.1 Try again later".
	Reply string `json:"reply,omitempty"`
	// Delay stalls before the reply.
	Delay Duration `json:"delay,omitempty"`
	// Disconnect drops the connection without a reply.
	Disconnect bool `json:"disconnect,omitempty"`
	// Greylist refuses the first attempt per sender, recipient and client
	// IP with 451 4.7.1, and accepts a retry made after this period.
	Greylist Duration `json:"greylist,omitempty"`
	// Rate refuses, with 421 4.7.0 and a hang-up, a client IP over it.
	Rate *Rate `json:"rate,omitempty"`
	// Bandwidth slows the session's later replies to this many bytes a
	// second; with BandwidthMax, to a random speed between the two.
	Bandwidth    int `json:"bandwidth,omitempty"`
	BandwidthMax int `json:"bandwidth_max,omitempty"`

	// Origin says who made the rule: "" (the native API or SDK), "flag",
	// "chaos" (Mailpit's API) or "jim" (MailHog's).
	Origin string `json:"origin,omitempty"`
	// Hits counts the faults the rule produced (read-only).
	Hits int64 `json:"hits"`
}

// FieldError is a rule that does not validate; Field names the JSON field.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "fault rule: " + e.Field + ": " + e.Reason }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, a...)}
}

// Reply is a parsed SMTP reply.
type Reply struct {
	Code     int
	Enhanced [3]int // zero when the reply has none
	Text     string
}

// String renders the reply as a line without CRLF.
func (r Reply) String() string {
	if r.Enhanced[0] == 0 {
		return strconv.Itoa(r.Code) + " " + r.Text
	}
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Text)
}

// ParseReply reads "451 4.7.1 Try again later"; the enhanced code and text
// are optional, and the enhanced code's class must match the code's.
func ParseReply(s string) (Reply, error) {
	s = strings.TrimSpace(s)
	code, rest, _ := strings.Cut(s, " ")
	n, err := strconv.Atoi(code)
	if err != nil || len(code) != 3 {
		return Reply{}, fmt.Errorf("want \"CODE [X.Y.Z] text\", e.g. \"451 4.7.1 Try again later\": %q", s)
	}
	if n < 200 || n > 599 {
		return Reply{}, fmt.Errorf("code %d outside 200–599", n)
	}
	if strings.ContainsAny(rest, "\r\n") {
		return Reply{}, errors.New("text must be one line")
	}
	r := Reply{Code: n, Text: strings.TrimSpace(rest)}
	if first, after, _ := strings.Cut(r.Text, " "); strings.Count(first, ".") == 2 && first[0] >= '0' && first[0] <= '9' {
		parts := strings.Split(first, ".")
		for i, p := range parts {
			v, err := strconv.Atoi(p)
			if err != nil || v < 0 || v > 999 {
				return Reply{}, fmt.Errorf("bad enhanced code %q", first)
			}
			r.Enhanced[i] = v
		}
		if r.Enhanced[0] != n/100 {
			return Reply{}, fmt.Errorf("enhanced code %s does not match code %d", first, n)
		}
		r.Text = strings.TrimSpace(after)
	}
	if r.Text == "" {
		r.Text = defaultText(n)
	}
	return r, nil
}

func defaultText(code int) string {
	switch {
	case code >= 500:
		return "Refused (fault injected)"
	case code >= 400:
		return "Try again later (fault injected)"
	}
	return "Ok (fault injected)"
}

// compiled is a validated rule with its parsed parts.
type compiled struct {
	reply    *Reply
	from, to glob
	prob     float64
}

// validate checks r and returns its parsed parts. Errors name the field.
func validate(r *Rule) (compiled, error) {
	var c compiled
	if r.Stage == "" {
		return c, fieldErr("stage", "required: one of connect, helo, auth, mail, rcpt, data, message")
	}
	r.Stage = Stage(strings.ToLower(string(r.Stage)))
	if !r.Stage.valid() {
		return c, fieldErr("stage", "unknown stage %q: want connect, helo, auth, mail, rcpt, data or message", r.Stage)
	}
	var err error
	if c.from, err = compileGlob(r.From); err != nil {
		return c, fieldErr("from", "%v", err)
	}
	if c.to, err = compileGlob(r.To); err != nil {
		return c, fieldErr("to", "%v", err)
	}
	if r.To != "" && (r.Stage == StageConnect || r.Stage == StageHelo || r.Stage == StageAuth || r.Stage == StageMail) {
		return c, fieldErr("to", "the recipient is not known yet at stage %s", r.Stage)
	}
	if r.From != "" && (r.Stage == StageConnect || r.Stage == StageHelo || r.Stage == StageAuth) {
		return c, fieldErr("from", "the sender is not known yet at stage %s", r.Stage)
	}
	c.prob = 1
	if r.Probability != nil {
		p := *r.Probability
		if !(p >= 0 && p <= 1) {
			return c, fieldErr("probability", "%v outside 0–1", p)
		}
		c.prob = p
	}
	if r.Times < 0 {
		return c, fieldErr("times", "must not be negative")
	}
	actions := 0
	if r.Reply != "" {
		actions++
		rp, err := ParseReply(r.Reply)
		if err != nil {
			return c, fieldErr("reply", "%v", err)
		}
		// A reply is a refusal, except at message, where a 2xx is a server
		// that acknowledges mail and loses it.
		if rp.Code < 400 && r.Stage != StageMessage {
			return c, fieldErr("reply", "%d does not refuse: use a 4xx or 5xx code (a 2xx is allowed only at stage message)", rp.Code)
		}
		if rp.Code >= 300 && rp.Code < 400 {
			return c, fieldErr("reply", "%d is not a final reply", rp.Code)
		}
		c.reply = &rp
	}
	if r.Delay != 0 {
		actions++
		if r.Delay < 0 {
			return c, fieldErr("delay", "must not be negative")
		}
		if time.Duration(r.Delay) > MaxDelay {
			return c, fieldErr("delay", "at most %v", MaxDelay)
		}
	}
	if r.Disconnect {
		actions++
	}
	if r.Greylist != 0 {
		actions++
		if r.Greylist < 0 {
			return c, fieldErr("greylist", "must not be negative")
		}
		if time.Duration(r.Greylist) > MaxDelay {
			return c, fieldErr("greylist", "at most %v", MaxDelay)
		}
	}
	if r.Rate != nil {
		actions++
		if r.Rate.Messages < 1 {
			return c, fieldErr("rate.messages", "must be at least 1")
		}
		if r.Rate.Per <= 0 {
			return c, fieldErr("rate.per", "must be a positive duration")
		}
		if time.Duration(r.Rate.Per) > 24*time.Hour {
			return c, fieldErr("rate.per", "at most 24h")
		}
	}
	if r.Bandwidth != 0 || r.BandwidthMax != 0 {
		actions++
		if r.Bandwidth < 1 {
			return c, fieldErr("bandwidth", "must be at least 1 byte a second")
		}
		if r.BandwidthMax != 0 && r.BandwidthMax < r.Bandwidth {
			return c, fieldErr("bandwidth_max", "below bandwidth")
		}
	}
	if actions == 0 {
		return c, fieldErr("reply", "a rule needs an action: reply, delay, disconnect, greylist, rate or bandwidth")
	}
	terminal := 0
	for _, b := range []bool{c.reply != nil, r.Disconnect, r.Greylist != 0, r.Rate != nil} {
		if b {
			terminal++
		}
	}
	if terminal > 1 {
		return c, fieldErr("reply", "reply, disconnect, greylist and rate exclude each other")
	}
	return c, nil
}
