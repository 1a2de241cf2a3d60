// Package smtplog keeps the last SMTP sessions in memory: client address,
// times, and the command/reply transcript (AUTH secrets masked, message
// bodies left out, a line cap per session), with the replies a fault
// produced marked. It is per process: on a shared PostgreSQL store each
// instance shows the sessions it served.
package smtplog

import (
	"strings"
	"sync"
	"time"
)

// Options bound a Log. Zero values are documented per field.
type Options struct {
	// MaxSessions is how many sessions are kept; the oldest go first.
	// 0 means 1,000.
	MaxSessions int
	// MaxLines caps the lines kept per session; later lines are counted
	// in Dropped. 0 means 200.
	MaxLines int
	// MaxLineBytes cuts longer lines. 0 means 512.
	MaxLineBytes int
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Log is a ring of sessions. Safe for concurrent use.
type Log struct {
	opts Options
	mu   sync.Mutex
	ring []*Session // oldest first once full
	head int        // next slot to overwrite when full
	seq  int64
}

// New returns an empty log.
func New(opts Options) *Log {
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 1000
	}
	if opts.MaxLines <= 0 {
		opts.MaxLines = 200
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = 512
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Log{opts: opts}
}

// Line is one line of a transcript.
type Line struct {
	At time.Time `json:"at"`
	// Dir is "C" for the client's command, "S" for the server's reply,
	// "-" for a note (TLS began, the connection dropped).
	Dir   string `json:"dir"`
	Text  string `json:"text"`
	Fault bool   `json:"fault,omitempty"` // the reply came from a fault rule
}

// Session is one SMTP connection's record.
type Session struct {
	log *Log
	mu  sync.Mutex
	v   View
}

// View is a copy of a session, as the API shows it.
type View struct {
	ID      int64      `json:"id"`
	Client  string     `json:"client"`
	Local   string     `json:"local"`
	Started time.Time  `json:"started"`
	Ended   *time.Time `json:"ended"` // nil while open
	From    []string   `json:"from"`  // envelope senders seen (MAIL FROM)
	To      []string   `json:"to"`    // envelope recipients seen (RCPT TO)
	Faults  int        `json:"faults"`
	Lines   []Line     `json:"lines"`
	Dropped int        `json:"dropped"` // lines over the cap
}

// Start records a new session, evicting the oldest when full.
func (l *Log) Start(client, local string) *Session {
	s := &Session{log: l}
	l.mu.Lock()
	l.seq++
	s.v = View{ID: l.seq, Client: client, Local: local, Started: l.opts.Now(), From: []string{}, To: []string{}, Lines: []Line{}}
	if len(l.ring) < l.opts.MaxSessions {
		l.ring = append(l.ring, s)
	} else {
		l.ring[l.head] = s
		l.head = (l.head + 1) % len(l.ring)
	}
	l.mu.Unlock()
	return s
}

// Command records a client line; the caller has masked secrets.
func (s *Session) Command(text string) { s.add("C", text, false) }

// Reply records a server line.
func (s *Session) Reply(text string, fault bool) { s.add("S", text, fault) }

// Note records a remark about the session; fault marks one a fault
// caused (a dropped connection).
func (s *Session) Note(text string, fault bool) { s.add("-", text, fault) }

// End marks the session closed.
func (s *Session) End() {
	now := s.log.opts.Now()
	s.mu.Lock()
	if s.v.Ended == nil {
		s.v.Ended = &now
	}
	s.mu.Unlock()
}

func (s *Session) add(dir, text string, fault bool) {
	o := &s.log.opts
	if len(text) > o.MaxLineBytes {
		text = text[:o.MaxLineBytes] + "…"
	}
	now := o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if fault {
		s.v.Faults++
	}
	if dir == "C" {
		s.envelope(text)
	}
	if len(s.v.Lines) >= o.MaxLines {
		s.v.Dropped++
		return
	}
	s.v.Lines = append(s.v.Lines, Line{At: now, Dir: dir, Text: text, Fault: fault})
}

// envelope notes the addresses of MAIL FROM and RCPT TO, for filters.
func (s *Session) envelope(cmd string) {
	const maxAddrs = 100
	up := strings.ToUpper(cmd)
	var list *[]string
	switch {
	case strings.HasPrefix(up, "MAIL FROM:"):
		list = &s.v.From
	case strings.HasPrefix(up, "RCPT TO:"):
		list = &s.v.To
	default:
		return
	}
	_, arg, _ := strings.Cut(cmd, ":")
	arg = strings.TrimSpace(arg)
	if i := strings.IndexByte(arg, '>'); strings.HasPrefix(arg, "<") && i > 0 {
		arg = arg[1:i]
	} else if f := strings.Fields(arg); len(f) > 0 {
		arg = f[0]
	}
	if len(*list) < maxAddrs {
		*list = append(*list, arg)
	}
}

// Filter selects sessions; zero fields match everything.
type Filter struct {
	From  string    // a MAIL FROM address contains this (any case)
	To    string    // a RCPT TO address contains this (any case)
	Since time.Time // started at or after
	// Limit caps the answer (newest first); 0 means no cap.
	Limit int
}

// List returns copies of the matching sessions, newest first.
func (l *Log) List(f Filter) []View {
	l.mu.Lock()
	ss := make([]*Session, 0, len(l.ring))
	for i := range l.ring {
		ss = append(ss, l.ring[(l.head+len(l.ring)-1-i)%len(l.ring)])
	}
	l.mu.Unlock()
	out := []View{}
	for _, s := range ss {
		s.mu.Lock()
		ok := s.v.Started.Compare(f.Since) >= 0 && anyContains(s.v.From, f.From) && anyContains(s.v.To, f.To)
		var v View
		if ok {
			v = s.v
			v.From = append([]string(nil), s.v.From...)
			v.To = append([]string(nil), s.v.To...)
			v.Lines = append([]Line(nil), s.v.Lines...)
			if s.v.Ended != nil {
				e := *s.v.Ended
				v.Ended = &e
			}
		}
		s.mu.Unlock()
		if ok {
			out = append(out, v)
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
	}
	return out
}

// Len is the number of sessions kept.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ring)
}

func anyContains(list []string, sub string) bool {
	if sub == "" {
		return true
	}
	sub = strings.ToLower(sub)
	for _, a := range list {
		if strings.Contains(strings.ToLower(a), sub) {
			return true
		}
	}
	return false
}
