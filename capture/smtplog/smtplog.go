// Package smtplog keeps the last SMTP sessions in memory: client address,
// times, and the command/reply transcript (AUTH secrets masked, message
// bodies left out, a line cap per session), with the replies a fault
// produced marked. It is per process: on a shared PostgreSQL store each
// instance shows the sessions it served.
package smtplog

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
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
//
// Recording is on the SMTP hot path, so a line costs no allocation: its
// bytes go into one growing buffer per session and its facts into a small
// fixed record; strings are made only when the API reads (List). Past the
// line cap a line costs a counter increment (and, for MAIL and RCPT, the
// address kept for filters). The lock is the session's own, uncontended
// but for a reader listing sessions.
type Session struct {
	log *Log
	mu  sync.Mutex

	id      int64
	client  string
	local   string
	started time.Time
	ended   time.Time // zero while open
	from    []string
	to      []string
	faults  atomic.Int64
	dropped atomic.Int64
	full    atomic.Bool // the line cap is reached: lines are only counted
	text    []byte      // the kept lines' bytes, back to back
	lines   []entry     // the kept lines, in order
}

// entry is one kept line; its text is Session.text[off:off+n].
type entry struct {
	at    int64 // Unix nanoseconds
	off   int32
	n     int32
	dir   byte // 'C', 'S' or '-'
	fault bool
	cut   bool // longer than MaxLineBytes: shown with "…"
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
	s := &Session{log: l, client: client, local: local, started: l.opts.Now()}
	l.mu.Lock()
	l.seq++
	s.id = l.seq
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
func (s *Session) Command(text string) { s.add('C', nil, text, false) }

// CommandBytes is Command for a line the caller keeps no copy of (text is
// copied, not retained).
func (s *Session) CommandBytes(text []byte) { s.add('C', text, "", false) }

// Reply records a server line.
func (s *Session) Reply(text string, fault bool) { s.add('S', nil, text, fault) }

// ReplyBytes is Reply for bytes (copied, not retained).
func (s *Session) ReplyBytes(text []byte, fault bool) { s.add('S', text, "", fault) }

// Note records a remark about the session; fault marks one a fault
// caused (a dropped connection).
func (s *Session) Note(text string, fault bool) { s.add('-', nil, text, fault) }

// End marks the session closed.
func (s *Session) End() {
	now := s.log.opts.Now()
	s.mu.Lock()
	if s.ended.IsZero() {
		s.ended = now
	}
	s.mu.Unlock()
}

// add records a line given as b or str (the other empty).
func (s *Session) add(dir byte, b []byte, str string, fault bool) {
	o := &s.log.opts
	if fault {
		s.faults.Add(1)
	}
	if s.full.Load() {
		// Past the cap (a long session): count, and lock only to note an
		// envelope address.
		s.dropped.Add(1)
		if dir == 'C' && envelopeCmd(b, str) {
			s.mu.Lock()
			s.envelope(b, str)
			s.mu.Unlock()
		}
		return
	}
	n := len(b) + len(str)
	s.mu.Lock()
	defer s.mu.Unlock()
	if dir == 'C' {
		s.envelope(b, str)
	}
	if len(s.lines) >= o.MaxLines {
		s.full.Store(true)
		s.dropped.Add(1)
		return
	}
	cut := n > o.MaxLineBytes
	if cut {
		n = o.MaxLineBytes
		if len(b) > n {
			b = b[:n]
		}
		if len(str) > n {
			str = str[:n]
		}
	}
	off := len(s.text)
	s.text = append(append(s.text, b...), str...)
	s.lines = append(s.lines, entry{at: o.Now().UnixNano(), off: int32(off), n: int32(n), dir: dir, fault: fault, cut: cut})
}

// envelopeCmd reports whether a command is MAIL FROM or RCPT TO.
func envelopeCmd(b []byte, str string) bool {
	if b == nil {
		return len(str) >= 8 && (strings.EqualFold(str[:min(10, len(str))], "MAIL FROM:") || strings.EqualFold(str[:8], "RCPT TO:"))
	}
	return len(b) >= 8 && (bytes.EqualFold(b[:min(10, len(b))], []byte("MAIL FROM:")) || bytes.EqualFold(b[:8], []byte("RCPT TO:")))
}

// envelope notes the addresses of MAIL FROM and RCPT TO, for filters.
func (s *Session) envelope(b []byte, str string) {
	const maxAddrs = 100
	if b == nil {
		b = []byte(str) // the string API: notes and tests, not the hot path
	}
	var list *[]string
	switch {
	case len(b) >= 10 && bytes.EqualFold(b[:10], []byte("MAIL FROM:")):
		list, b = &s.from, b[10:]
	case len(b) >= 8 && bytes.EqualFold(b[:8], []byte("RCPT TO:")):
		list, b = &s.to, b[8:]
	default:
		return
	}
	b = bytes.TrimSpace(b)
	if i := bytes.IndexByte(b, '>'); len(b) > 0 && b[0] == '<' && i > 0 {
		b = b[1:i]
	} else if i := bytes.IndexAny(b, " \t"); i >= 0 {
		b = b[:i]
	}
	// Filters only ask whether an address was seen: a repeat (a mailer
	// sending many messages on one connection) is not kept again.
	for i := len(*list) - 1; i >= 0; i-- {
		if (*list)[i] == string(b) {
			return
		}
	}
	if len(*list) < maxAddrs {
		*list = append(*list, string(b))
	}
}

// view copies the session out; the caller holds s.mu.
func (s *Session) view() View {
	v := View{ID: s.id, Client: s.client, Local: s.local, Started: s.started, Faults: int(s.faults.Load()), Dropped: int(s.dropped.Load()),
		From: append([]string{}, s.from...), To: append([]string{}, s.to...), Lines: make([]Line, len(s.lines))}
	if !s.ended.IsZero() {
		e := s.ended
		v.Ended = &e
	}
	for i, e := range s.lines {
		text := string(s.text[e.off : e.off+e.n])
		if e.cut {
			text += "…"
		}
		v.Lines[i] = Line{At: time.Unix(0, e.at), Dir: dirName(e.dir), Text: text, Fault: e.fault}
	}
	return v
}

func dirName(d byte) string {
	switch d {
	case 'C':
		return "C"
	case 'S':
		return "S"
	}
	return "-"
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
		ok := s.started.Compare(f.Since) >= 0 && anyContains(s.from, f.From) && anyContains(s.to, f.To)
		var v View
		if ok {
			v = s.view()
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
