package faults

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotFound is a rule id the engine does not know.
var ErrNotFound = errors.New("faults: no such rule")

// Options configure an Engine. Zero values are documented per field.
type Options struct {
	// Rand rolls probabilities; nil seeds one from the runtime. Tests pass
	// a seeded one so their outcome is fixed.
	Rand *rand.Rand
	// Now is the clock for greylisting and rate limits; nil is time.Now.
	Now func() time.Time
	// MaxTracked caps the greylist triples and rate-limited client IPs
	// remembered per rule; 0 means 100,000. Over it, the oldest half is
	// forgotten (those clients start over, as after a real server's restart).
	MaxTracked int
}

// Event is one SMTP event the server asks about.
type Event struct {
	Stage  Stage
	Client string   // client IP, without port
	From   string   // envelope sender, once known
	To     []string // recipients: the one being added at rcpt, all at data and message
}

// Outcome says what the server does. The zero Outcome is "behave".
type Outcome struct {
	Delay     time.Duration // stall this long first
	Bandwidth int           // from now on, replies at this many bytes a second
	// Then at most one of:
	Reply      *Reply // answer this instead
	Disconnect bool   // hang up without a reply
	Close      bool   // after Reply, hang up (rate limits)
	Rule       string // the id of the rule that decided Reply or Disconnect
}

// Fault reports whether the outcome changes the session at all.
func (o Outcome) Fault() bool {
	return o.Delay > 0 || o.Bandwidth > 0 || o.Reply != nil || o.Disconnect
}

// Engine holds the rules. Safe for concurrent use.
type Engine struct {
	// active is what Decide reads: nil when there are no rules or the
	// engine is switched off, so the common case costs one atomic load.
	active atomic.Pointer[ruleSet]

	mu      sync.Mutex // guards everything below; Decide takes it only to roll dice
	rules   []*rule
	enabled bool
	next    int
	rng     *rand.Rand
	now     func() time.Time
	max     int
	chaos   Chaos // Mailpit's setting, as last set
	jim     *Jim  // MailHog's monkey; nil when not invited
}

// ruleSet is the published rules, by stage, so an event looks only at
// its own stage's rules.
type ruleSet [len(Stages)][]*rule

func stageIndex(s Stage) int {
	for i, v := range Stages {
		if v == s {
			return i
		}
	}
	return -1
}

type rule struct {
	Rule
	c        compiled
	hits     atomic.Int64
	left     atomic.Int64 // hits left when Times > 0
	retired  atomic.Bool
	mu       sync.Mutex // guards seen and rates
	seen     map[string]time.Time
	rates    map[string][]time.Time
	maxTrack int
}

// New returns an engine with no rules, switched on.
func New(opts Options) *Engine {
	e := &Engine{enabled: true, rng: opts.Rand, now: opts.Now, max: opts.MaxTracked}
	if e.rng == nil {
		e.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.max <= 0 {
		e.max = 100_000
	}
	return e
}

// Validate checks a rule without adding it. Errors are *FieldError.
func Validate(r Rule) error {
	_, err := validate(&r)
	return err
}

// Add validates r and appends it; the answer carries its id.
func (e *Engine) Add(r Rule) (Rule, error) {
	c, err := validate(&r)
	if err != nil {
		return Rule{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.next++
	r.ID = "f" + strconv.Itoa(e.next)
	r.Hits = 0
	nr := &rule{Rule: r, c: c, maxTrack: e.max}
	nr.left.Store(int64(r.Times))
	e.rules = append(e.rules, nr)
	e.publishLocked()
	return r, nil
}

// Remove deletes the rule with that id.
func (e *Engine) Remove(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, r := range e.rules {
		if r.ID == id {
			e.rules = append(e.rules[:i:i], e.rules[i+1:]...)
			e.publishLocked()
			return nil
		}
	}
	return ErrNotFound
}

// Clear deletes every rule.
func (e *Engine) Clear() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules = nil
	e.publishLocked()
}

// ReplaceOrigin swaps every rule of one origin for rs (validated first: on
// an error nothing changes). Mailpit's and MailHog's APIs own their rules
// this way.
func (e *Engine) ReplaceOrigin(origin string, rs []Rule) error {
	cs := make([]compiled, len(rs))
	for i := range rs {
		var err error
		if cs[i], err = validate(&rs[i]); err != nil {
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	kept := e.rules[:0:0]
	for _, r := range e.rules {
		if r.Origin != origin {
			kept = append(kept, r)
		}
	}
	for i, r := range rs {
		e.next++
		r.ID = "f" + strconv.Itoa(e.next)
		r.Origin = origin
		r.Hits = 0
		nr := &rule{Rule: r, c: cs[i], maxTrack: e.max}
		nr.left.Store(int64(r.Times))
		kept = append(kept, nr)
	}
	e.rules = kept
	e.publishLocked()
	return nil
}

// List returns the rules in order, with their hit counts.
func (e *Engine) List() []Rule {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Rule, 0, len(e.rules))
	for _, r := range e.rules {
		v := r.Rule
		v.Hits = r.hits.Load()
		out = append(out, v)
	}
	return out
}

// SetEnabled switches every rule on or off; the rules are kept.
func (e *Engine) SetEnabled(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.enabled = on
	e.publishLocked()
}

// Enabled reports the switch.
func (e *Engine) Enabled() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.enabled
}

// Active reports whether any rule may apply: false is the fast path.
func (e *Engine) Active() bool { return e.active.Load() != nil }

func (e *Engine) publishLocked() {
	if !e.enabled || len(e.rules) == 0 {
		e.active.Store(nil)
		return
	}
	var set ruleSet
	for _, r := range e.rules {
		i := stageIndex(r.Stage)
		set[i] = append(set[i], r)
	}
	e.active.Store(&set)
}

func (e *Engine) retire(r *rule) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, x := range e.rules {
		if x == r {
			e.rules = append(e.rules[:i:i], e.rules[i+1:]...)
			e.publishLocked()
			return
		}
	}
}

func (e *Engine) roll(p float64) bool {
	if p >= 1 {
		return true
	}
	if p <= 0 {
		return false
	}
	e.mu.Lock()
	v := e.rng.Float64()
	e.mu.Unlock()
	return v < p
}

func (e *Engine) intn(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	e.mu.Lock()
	v := lo + e.rng.IntN(hi-lo+1)
	e.mu.Unlock()
	return v
}

// Decide answers what the server does at ev. Rules are tried in order:
// delays add up (capped at MaxDelay), the slowest bandwidth wins, and the
// first rule that refuses or hangs up decides.
func (e *Engine) Decide(ev Event) Outcome {
	set := e.active.Load()
	i := stageIndex(ev.Stage)
	if set == nil || i < 0 {
		return Outcome{}
	}
	var out Outcome
	for _, r := range set[i] {
		if r.retired.Load() || !r.matches(ev) {
			continue
		}
		terminal := r.c.reply != nil || r.Disconnect || r.Greylist > 0 || r.Rate != nil
		// Greylisting and rate limits decide from their own state; only
		// their refusals count as hits.
		var reply *Reply
		closeAfter := false
		switch {
		case r.Greylist > 0:
			if !r.greylisted(ev, e.now(), time.Duration(r.Greylist)) {
				continue
			}
			reply = &Reply{Code: 451, Enhanced: [3]int{4, 7, 1}, Text: "Greylisted, please try again later"}
		case r.Rate != nil:
			if !r.overRate(ev.Client, e.now()) {
				continue
			}
			reply = &Reply{Code: 421, Enhanced: [3]int{4, 7, 0}, Text: "Rate limit exceeded, closing connection"}
			closeAfter = true
		}
		if !e.roll(r.c.prob) || !r.take(e) {
			continue
		}
		if r.Delay > 0 {
			out.Delay = min(out.Delay+time.Duration(r.Delay), MaxDelay)
		}
		if r.Bandwidth > 0 {
			bw := e.intn(r.Bandwidth, max(r.Bandwidth, r.BandwidthMax))
			if out.Bandwidth == 0 || bw < out.Bandwidth {
				out.Bandwidth = bw
			}
		}
		if !terminal {
			continue
		}
		if reply == nil {
			reply = r.c.reply
		}
		out.Reply, out.Disconnect, out.Close, out.Rule = reply, r.Disconnect, closeAfter, r.ID
		if r.Disconnect {
			out.Reply = nil
		}
		break
	}
	return out
}

// take counts a hit, and retires the rule on its last one; false when
// another session took the last hit first.
func (r *rule) take(e *Engine) bool {
	if r.Times > 0 {
		left := r.left.Add(-1)
		if left < 0 {
			return false
		}
		if left == 0 {
			r.retired.Store(true)
			e.retire(r)
		}
	}
	r.hits.Add(1)
	return true
}

func (r *rule) matches(ev Event) bool {
	if !r.c.from.match(ev.From) {
		return false
	}
	if r.c.to.any {
		return true
	}
	for _, t := range ev.To {
		if r.c.to.match(t) {
			return true
		}
	}
	return false
}

// greylisted reports whether ev is refused: the first attempt of a
// sender+recipient+client triple is, and so is a retry inside the period;
// a retry after it passes, and the triple stays known.
func (r *rule) greylisted(ev Event, now time.Time, period time.Duration) bool {
	to := ""
	if len(ev.To) > 0 {
		to = lowerASCII(ev.To[0])
	}
	key := ev.Client + "\x00" + lowerASCII(ev.From) + "\x00" + to
	r.mu.Lock()
	defer r.mu.Unlock()
	first, ok := r.seen[key]
	if !ok {
		if r.seen == nil {
			r.seen = map[string]time.Time{}
		}
		if len(r.seen) >= r.maxTrack {
			pruneOldest(r.seen)
		}
		r.seen[key] = now
		return true
	}
	return now.Sub(first) < period
}

// pruneOldest forgets the older half of m.
func pruneOldest(m map[string]time.Time) {
	var mean int64
	for _, t := range m {
		mean += t.UnixNano() / int64(len(m))
	}
	for k, t := range m {
		if t.UnixNano() <= mean {
			delete(m, k)
		}
	}
}

// overRate records an event of client and reports whether it is over the
// rule's rate (a sliding window of the last Messages events).
func (r *rule) overRate(client string, now time.Time) bool {
	per := time.Duration(r.Rate.Per)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rates == nil {
		r.rates = map[string][]time.Time{}
	}
	ts := r.rates[client]
	cut := 0
	for cut < len(ts) && now.Sub(ts[cut]) >= per {
		cut++
	}
	ts = ts[cut:]
	if len(ts) >= r.Rate.Messages {
		r.rates[client] = ts
		return true
	}
	if len(ts) == 0 && len(r.rates) >= r.maxTrack {
		for k, v := range r.rates {
			if len(v) == 0 || now.Sub(v[len(v)-1]) >= per {
				delete(r.rates, k)
			}
		}
	}
	r.rates[client] = append(ts, now)
	return false
}
