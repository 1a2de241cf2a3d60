package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Fault is a fault-injection rule: at Stage, for mail matching From and To
// (globs on the envelope, "" for any), with Probability (nil: always), for
// the next Times events (0: unlimited), the SMTP server does one or more
// of: Reply, Delay, Disconnect, Greylist, Rate, Bandwidth.
type Fault struct {
	ID string // set by the server
	// Stage is connect, helo, auth, mail, rcpt, data (the DATA command) or
	// message (after the message, before its reply).
	Stage       string
	From, To    string
	Probability *float64
	Times       int

	Reply      string        // "451 4.7.1 Try again later"; a 5xx at rcpt refuses that recipient only
	Delay      time.Duration // stall before the reply
	Disconnect bool          // hang up without a reply
	// Greylist refuses a sender+recipient+client IP's first attempt with
	// 451 4.7.1 and accepts a retry made after this period.
	Greylist time.Duration
	// Rate: over RateMessages per RatePer from one client IP, 421 4.7.0
	// and a hang-up.
	RateMessages int
	RatePer      time.Duration
	Bandwidth    int // reply speed, bytes a second

	Origin string // "" (API), "flag", "chaos" or "jim"; set by the server
	Hits   int64  // faults produced so far; set by the server
}

type faultRateJSON struct {
	Messages int    `json:"messages"`
	Per      string `json:"per"`
}

type faultJSON struct {
	ID          string         `json:"id,omitempty"`
	Stage       string         `json:"stage"`
	From        string         `json:"from,omitempty"`
	To          string         `json:"to,omitempty"`
	Probability *float64       `json:"probability,omitempty"`
	Times       int            `json:"times,omitempty"`
	Reply       string         `json:"reply,omitempty"`
	Delay       string         `json:"delay,omitempty"`
	Disconnect  bool           `json:"disconnect,omitempty"`
	Greylist    string         `json:"greylist,omitempty"`
	Rate        *faultRateJSON `json:"rate,omitempty"`
	Bandwidth   int            `json:"bandwidth,omitempty"`
	Origin      string         `json:"origin,omitempty"`
	Hits        int64          `json:"hits,omitempty"`
}

func durText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// MarshalJSON writes the rule as the server's API takes it.
func (f Fault) MarshalJSON() ([]byte, error) {
	j := faultJSON{ID: f.ID, Stage: f.Stage, From: f.From, To: f.To, Probability: f.Probability, Times: f.Times,
		Reply: f.Reply, Delay: durText(f.Delay), Disconnect: f.Disconnect, Greylist: durText(f.Greylist),
		Bandwidth: f.Bandwidth, Origin: f.Origin, Hits: f.Hits}
	if f.RateMessages != 0 || f.RatePer != 0 {
		j.Rate = &faultRateJSON{Messages: f.RateMessages, Per: f.RatePer.String()}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the server's answer.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	parse := func(s string) time.Duration {
		d, _ := time.ParseDuration(s)
		return d
	}
	*f = Fault{ID: j.ID, Stage: j.Stage, From: j.From, To: j.To, Probability: j.Probability, Times: j.Times,
		Reply: j.Reply, Delay: parse(j.Delay), Disconnect: j.Disconnect, Greylist: parse(j.Greylist),
		Bandwidth: j.Bandwidth, Origin: j.Origin, Hits: j.Hits}
	if j.Rate != nil {
		f.RateMessages, f.RatePer = j.Rate.Messages, parse(j.Rate.Per)
	}
	return nil
}

// FaultHandle is a rule added by AddFault; defer its Remove.
type FaultHandle struct {
	c     *Client
	Fault Fault // as the server answered, with its ID
}

// Remove deletes the rule (a rule already retired by Times is not an
// error). It has its own 10-second timeout, so it can be deferred.
func (h *FaultHandle) Remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := h.c.RemoveFault(ctx, h.Fault.ID)
	if StatusCode(err) == http.StatusNotFound {
		return nil
	}
	return err
}

// AddFault adds a rule (POST /api/v1/faults). A bad rule is an *Error
// (400) naming the field.
func (c *Client) AddFault(ctx context.Context, f Fault) (*FaultHandle, error) {
	body, err := jsonBody(f)
	if err != nil {
		return nil, err
	}
	h := &FaultHandle{c: c}
	err = c.doJSON(ctx, request{method: http.MethodPost, path: "/faults", body: body, contentType: "application/json",
		context: "add fault at " + f.Stage}, &h.Fault)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// Faults lists the rules with their hit counts (GET /api/v1/faults).
func (c *Client) Faults(ctx context.Context) ([]Fault, error) {
	var out struct {
		Faults []Fault `json:"faults"`
	}
	err := c.doJSON(ctx, request{method: http.MethodGet, path: "/faults", context: "list faults"}, &out)
	return out.Faults, err
}

// RemoveFault deletes one rule (DELETE /api/v1/faults/{id}).
func (c *Client) RemoveFault(ctx context.Context, id string) error {
	return c.doJSON(ctx, request{method: http.MethodDelete, path: "/faults/" + esc(id), context: fmt.Sprintf("remove fault %q", id)}, nil)
}

// ClearFaults deletes every rule (DELETE /api/v1/faults).
func (c *Client) ClearFaults(ctx context.Context) error {
	return c.doJSON(ctx, request{method: http.MethodDelete, path: "/faults", context: "clear faults"}, nil)
}

// SetFaultsEnabled switches every rule on or off, keeping them
// (PUT /api/v1/faults/enabled).
func (c *Client) SetFaultsEnabled(ctx context.Context, on bool) error {
	body, err := jsonBody(map[string]bool{"enabled": on})
	if err != nil {
		return err
	}
	return c.doJSON(ctx, request{method: http.MethodPut, path: "/faults/enabled", body: body, contentType: "application/json",
		context: "switch faults"}, nil)
}

// SessionLine is one line of an SMTP session's transcript.
type SessionLine struct {
	At    time.Time `json:"at"`
	Dir   string    `json:"dir"` // "C" client, "S" server, "-" note
	Text  string    `json:"text"`
	Fault bool      `json:"fault"` // a fault rule produced this reply
}

// Session is one SMTP session from the server's session log.
type Session struct {
	ID      int64         `json:"id"`
	Client  string        `json:"client"` // ip:port
	Local   string        `json:"local"`
	Started time.Time     `json:"started"`
	Ended   *time.Time    `json:"ended"` // nil while open
	From    []string      `json:"from"`  // MAIL FROM addresses
	To      []string      `json:"to"`    // RCPT TO addresses
	Faults  int           `json:"faults"`
	Lines   []SessionLine `json:"lines"`
	Dropped int           `json:"dropped"`
}

// Replies returns the server's reply lines.
func (s Session) Replies() []string {
	var out []string
	for _, l := range s.Lines {
		if l.Dir == "S" {
			out = append(out, l.Text)
		}
	}
	return out
}

// Refused reports whether a reply starting with code (e.g. "451") was sent.
func (s Session) Refused(code string) bool {
	for _, r := range s.Replies() {
		if strings.HasPrefix(r, code) {
			return true
		}
	}
	return false
}

// SessionFilter selects sessions. Zero fields match everything.
type SessionFilter struct {
	From  string    // a MAIL FROM address contains this
	To    string    // a RCPT TO address contains this
	Since time.Time // started at or after
	// Ended keeps only sessions that have ended, whose transcript is whole.
	Ended bool
	// Match, when set, must also accept the session.
	Match func(Session) bool
}

// Sessions lists the sessions matching f, newest first
// (GET /api/v1/smtp/sessions).
func (c *Client) Sessions(ctx context.Context, f SessionFilter) ([]Session, error) {
	q := url.Values{}
	if f.From != "" {
		q.Set("from", f.From)
	}
	if f.To != "" {
		q.Set("to", f.To)
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	var out struct {
		Sessions []Session `json:"sessions"`
	}
	if err := c.doJSON(ctx, request{method: http.MethodGet, path: "/smtp/sessions", query: q, context: "list SMTP sessions"}, &out); err != nil {
		return nil, err
	}
	kept := out.Sessions[:0]
	for _, s := range out.Sessions {
		if (f.Ended && s.Ended == nil) || (f.Match != nil && !f.Match(s)) {
			continue
		}
		kept = append(kept, s)
	}
	return kept, nil
}

// WaitSession waits until a session matching f is logged and returns the
// oldest such session, or fails when ctx ends. A test asserts "after the
// 451 the app retried within 5 s" as a WaitSession with Since set to the
// refused session's start and a 5-second ctx.
func (c *Client) WaitSession(ctx context.Context, f SessionFilter) (*Session, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ss, err := c.Sessions(ctx, f)
		if err != nil && ctx.Err() == nil {
			return nil, err
		}
		if len(ss) > 0 {
			s := ss[len(ss)-1]
			return &s, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("sdk: wait for an SMTP session (from %q, to %q, since %s): %w", f.From, f.To, f.Since.Format(time.RFC3339Nano), ctx.Err())
		case <-tick.C:
		}
	}
}
