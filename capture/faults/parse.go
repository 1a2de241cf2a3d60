package faults

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseFlag reads one --fault value:
//
//	STAGE[,from=GLOB][,to=GLOB][,probability=P][,times=N]=ACTION[;ACTION...]
//
// STAGE is connect, helo, auth, mail, rcpt, data or message. Options end
// at the next ',' or '=' (globs cannot contain them). Each ACTION is one of
//
//	reply:CODE [X.Y.Z] TEXT   or just CODE [X.Y.Z] TEXT
//	delay:DURATION            e.g. delay:3s
//	disconnect
//	greylist:DURATION         e.g. greylist:30s
//	rate:N/DURATION           e.g. rate:10/1m
//	bandwidth:BYTES[-BYTES]   bytes a second, e.g. bandwidth:512
//
// Actions are separated by ';'; a reply's text runs to the end, so a reply
// comes last. Examples:
//
//	rcpt,to=*@bounce.test=550 5.1.1 No such user
//	mail,from=app@*,times=1=reply:451 4.7.1 Try again later
//	data=delay:5s
//	rcpt=greylist:30s
//	mail=rate:10/1m
//
// The rule is validated as one from the API would be; errors name the part.
func ParseFlag(s string) (Rule, error) {
	var r Rule
	i := strings.IndexAny(s, ",=")
	if i < 0 {
		return r, fmt.Errorf("%q: want STAGE[,from=GLOB][,to=GLOB]=ACTION", s)
	}
	r.Stage = Stage(strings.TrimSpace(s[:i]))
	rest := s[i:]
	for strings.HasPrefix(rest, ",") {
		rest = rest[1:]
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			return r, fmt.Errorf("option %q: want key=value", rest)
		}
		j := strings.IndexAny(after, ",=")
		if j < 0 {
			return r, fmt.Errorf("%q: missing =ACTION", s)
		}
		val := after[:j]
		rest = after[j:]
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "from":
			r.From = val
		case "to":
			r.To = val
		case "probability", "p":
			p, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return r, fmt.Errorf("probability %q: not a number", val)
			}
			r.Probability = &p
		case "times":
			n, err := strconv.Atoi(val)
			if err != nil {
				return r, fmt.Errorf("times %q: not a whole number", val)
			}
			r.Times = n
		default:
			return r, fmt.Errorf("unknown option %q: want from, to, probability or times", key)
		}
	}
	if !strings.HasPrefix(rest, "=") {
		return r, fmt.Errorf("%q: missing =ACTION", s)
	}
	rest = rest[1:]
	if strings.TrimSpace(rest) == "" {
		return r, fmt.Errorf("%q: empty ACTION", s)
	}
	for rest != "" {
		// A reply's text may hold ';': it takes the rest of the value.
		if lead := strings.TrimSpace(rest); strings.HasPrefix(strings.ToLower(lead), "reply:") {
			r.Reply = lead[len("reply:"):]
			break
		} else if lead[0] >= '0' && lead[0] <= '9' {
			r.Reply = lead
			break
		}
		act := rest
		if k := strings.IndexByte(act, ';'); k >= 0 {
			act, rest = act[:k], act[k+1:]
		} else {
			rest = ""
		}
		name, arg, hasArg := strings.Cut(act, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		arg = strings.TrimSpace(arg)
		need := func() error {
			if !hasArg || arg == "" {
				return fmt.Errorf("action %s needs an argument (%s:...)", name, name)
			}
			return nil
		}
		switch name {
		case "delay", "greylist":
			if err := need(); err != nil {
				return r, err
			}
			d, err := time.ParseDuration(arg)
			if err != nil {
				return r, fmt.Errorf("%s %q: want a duration such as 3s", name, arg)
			}
			if name == "delay" {
				r.Delay = Duration(d)
			} else {
				r.Greylist = Duration(d)
			}
		case "disconnect":
			r.Disconnect = true
		case "rate":
			if err := need(); err != nil {
				return r, err
			}
			n, per, ok := strings.Cut(arg, "/")
			m, err := strconv.Atoi(n)
			if !ok || err != nil {
				return r, fmt.Errorf("rate %q: want N/DURATION, e.g. 10/1m", arg)
			}
			d, err := time.ParseDuration(per)
			if err != nil {
				return r, fmt.Errorf("rate %q: want N/DURATION, e.g. 10/1m", arg)
			}
			r.Rate = &Rate{Messages: m, Per: Duration(d)}
		case "bandwidth":
			if err := need(); err != nil {
				return r, err
			}
			lo, hi, _ := strings.Cut(arg, "-")
			a, err := strconv.Atoi(lo)
			if err != nil {
				return r, fmt.Errorf("bandwidth %q: want bytes a second", arg)
			}
			r.Bandwidth = a
			if hi != "" {
				if r.BandwidthMax, err = strconv.Atoi(hi); err != nil {
					return r, fmt.Errorf("bandwidth %q: want BYTES or BYTES-BYTES", arg)
				}
			}
		default:
			return r, fmt.Errorf("unknown action %q: want reply, delay, disconnect, greylist, rate or bandwidth", name)
		}
	}
	r.Origin = "flag"
	if _, err := validate(&r); err != nil {
		return r, err
	}
	return r, nil
}

// ParseChaosTriggers reads Mailpit's --chaos-triggers / MP_CHAOS_TRIGGERS
// value, "Trigger:ErrorCode:Probability" separated by commas, e.g.
// "Sender:451:10,Recipient:550:5"; triggers are Sender, Recipient and
// Authentication (also Auth), probability a percentage. The result is
// the Mailpit chaos setting it describes.
func ParseChaosTriggers(s string) (Chaos, error) {
	c := DefaultChaos()
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		f := strings.Split(part, ":")
		if len(f) != 3 {
			return c, fmt.Errorf("%q: want Trigger:ErrorCode:Probability", part)
		}
		code, err := strconv.Atoi(strings.TrimSpace(f[1]))
		if err != nil {
			return c, fmt.Errorf("%q: error code is not a number", part)
		}
		p, err := strconv.Atoi(strings.TrimSpace(f[2]))
		if err != nil {
			return c, fmt.Errorf("%q: probability is not a whole number", part)
		}
		t := ChaosTrigger{ErrorCode: code, Probability: p}
		if err := t.check(); err != nil {
			return c, fmt.Errorf("%q: %v", part, err)
		}
		switch strings.ToLower(strings.TrimSpace(f[0])) {
		case "sender":
			c.Sender = t
		case "recipient", "recipients":
			c.Recipient = t
		case "auth", "authentication":
			c.Authentication = t
		default:
			return c, fmt.Errorf("%q: unknown trigger (want Sender, Recipient or Authentication)", part)
		}
	}
	return c, nil
}
