// Package smtpd is the sandbox's SMTP endpoint: a catch-all go-smtp backend
// that accepts mail for any recipient and hands each message to the store,
// answering 250 only once the store says the message is durable.
package smtpd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsandbox/mailsandbox/capture/connlimit"
	"github.com/mailsandbox/mailsandbox/capture/faults"
	"github.com/mailsandbox/mailsandbox/capture/smtplog"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// Store is what the SMTP endpoint needs of the store.
type Store interface {
	Ingest(ctx context.Context, env store.Envelope, raw []byte) (string, error)
}

// Authenticator checks SMTP AUTH credentials.
type Authenticator interface {
	Check(ctx context.Context, user, pass string) error
}

// Options configure the server. Zero values are documented per field.
type Options struct {
	// Domain is the name in the greeting and EHLO reply; "" means
	// "mailsandbox".
	Domain string
	// MaxMessageBytes caps a message; larger mail gets 552. 0 means 32 MiB.
	MaxMessageBytes int64
	// MaxLineBytes caps one command or message line. RFC 5321 says 1000,
	// but applications under test often send longer lines, and a sandbox
	// should capture what they send. 0 means 64 KiB.
	MaxLineBytes int
	// MaxRecipients caps recipients per message; more get 452. 0 means 1000.
	MaxRecipients int
	// ReadTimeout and WriteTimeout bound each read and write on a
	// connection, so idle and slow clients are cut off. 0 means 5 minutes
	// (RFC 5321 allows a server to wait that long for a command).
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// MaxConnections caps concurrent sessions; a client over the cap gets
	// 421 and is disconnected. 0 means 1000. MaxConnectionsPerIP caps one
	// client address; 0 means 100.
	MaxConnections      int
	MaxConnectionsPerIP int
	// TLSConfig enables STARTTLS; nil offers none (clients that upgrade
	// whenever offered and verify the certificate must work by default).
	TLSConfig *tls.Config
	// Auth, when set, requires AUTH before MAIL and checks credentials; nil
	// accepts any credentials and does not require AUTH.
	Auth Authenticator
	// AllowInsecureAuth offers AUTH on connections without TLS even when
	// Auth is set. Without Auth, AUTH is always offered.
	AllowInsecureAuth bool
	// Registerer receives the server's metrics; nil registers none.
	Registerer prometheus.Registerer
	// RequireTLS refuses MAIL on a connection without TLS (530, as
	// Mailpit's --smtp-require-starttls does); needs TLSConfig.
	RequireTLS bool
	// AllowedRecipients, when set, refuses RCPT addresses it does not
	// match (550, as Mailpit's --smtp-allowed-recipients does).
	AllowedRecipients *regexp.Regexp
	// Faults is asked at each stage (connect, helo, auth, mail, rcpt, data,
	// message) whether to misbehave; nil never does. See faults.go.
	Faults FaultHook
	// SessionLog records each session's transcript; nil records none.
	SessionLog *smtplog.Log
}

func (o *Options) setDefaults() {
	if o.Domain == "" {
		o.Domain = "mailsandbox"
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = 32 << 20
	}
	if o.MaxLineBytes == 0 {
		o.MaxLineBytes = 64 << 10
	}
	if o.MaxRecipients == 0 {
		o.MaxRecipients = 1000
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 5 * time.Minute
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 5 * time.Minute
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = 1000
	}
	if o.MaxConnectionsPerIP == 0 {
		o.MaxConnectionsPerIP = 100
	}
}

// Server is an SMTP server filing mail into a store.
type Server struct {
	st      Store
	opts    Options
	log     *slog.Logger
	smtp    *smtp.Server
	metrics *metrics

	limits  *connlimit.Limiter // shared by every listener
	closing chan struct{}
	once    sync.Once

	// noFastData turns off the DATA fast path (datafast.go), for tests
	// comparing it with go-smtp's reader; fastData counts bodies it took.
	noFastData atomic.Bool
	fastData   atomic.Int64
	scratch    *sync.Pool // DATA bodies are read into these

	mu       sync.Mutex
	sessions map[*session]struct{} // open sessions, for Shutdown
	// greeted are the connections go-smtp has no session for yet (it
	// makes one at EHLO): Shutdown hangs them up too, or a client that
	// connected and said nothing would hold it until its read timeout.
	greeted  map[*replyBuffer]struct{}
	draining bool // Shutdown began: sessions end at their next rest
}

// New returns a server; call Serve to accept connections.
func New(st Store, opts Options, log *slog.Logger) *Server {
	opts.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	s := &Server{st: st, opts: opts, log: log, closing: make(chan struct{}), metrics: newMetrics(opts.Registerer),
		sessions: map[*session]struct{}{}, greeted: map[*replyBuffer]struct{}{}, scratch: newScratchPool()}
	srv := smtp.NewServer(backend{s})
	srv.Domain = opts.Domain
	srv.MaxMessageBytes = opts.MaxMessageBytes
	srv.MaxLineLength = opts.MaxLineBytes
	// We enforce the recipient cap in Rcpt ourselves, to count rejections.
	srv.MaxRecipients = 0
	srv.ReadTimeout = opts.ReadTimeout
	srv.WriteTimeout = opts.WriteTimeout
	srv.TLSConfig = opts.TLSConfig
	srv.AllowInsecureAuth = opts.Auth == nil || opts.AllowInsecureAuth
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = slogAdapter{log}
	s.smtp = srv
	s.limits = s.newLimiter()
	return s
}

// Serve accepts connections on l until Close or Shutdown. For implicit TLS
// (SMTPS), pass a listener made with tls.NewListener and the same config
// as Options.TLSConfig.
func (s *Server) Serve(l net.Listener) error {
	err := s.smtp.Serve(replyListener{Listener: s.limits.Listen(l), tls: s.opts.TLSConfig, s: s})
	select {
	case <-s.closing:
		return nil
	default:
	}
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server at once.
func (s *Server) Close() error {
	s.once.Do(func() { close(s.closing) })
	return s.smtp.Close()
}

// Shutdown stops accepting and waits, until ctx ends, for sessions to end;
// transactions in flight finish.
//
// Sessions waiting for a command are told 421 and closed at once; a session
// in a mail transaction finishes it (its client gets the 250) and is closed
// then, so an idle client does not hold shutdown until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	var idle []*session
	for se := range s.sessions {
		if !se.busy {
			idle = append(idle, se)
		}
	}
	greeted := make([]*replyBuffer, 0, len(s.greeted))
	for rb := range s.greeted {
		greeted = append(greeted, rb)
	}
	s.mu.Unlock()
	for _, rb := range greeted {
		rb.hangUp(s.opts.Domain)
	}
	// Only now wake the sessions in fault delays: one woken before draining
	// was set could start a transaction (a delayed MAIL answered 250) that
	// the list above had already passed over as idle.
	s.once.Do(func() { close(s.closing) })
	for _, se := range idle {
		se.hangUp()
	}
	return s.smtp.Shutdown(ctx)
}

// errAuthRequired is RFC 4954's reply; go-smtp's own ErrAuthRequired is 502.
var errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.s.metrics.sessions.Inc()
	se := &session{s: b.s, conn: c, sc: sessionConnOf(c.Conn())}
	if err := se.fault(faults.Event{Stage: faults.StageHelo}); err != nil {
		return nil, err
	}
	if se.sc != nil {
		se.sc.se = se
		se.tlsCommand("EHLO "+c.Hostname(), nil, false, "")
	}
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if b.s.draining {
		return nil, errShuttingDown
	}
	if rb := connBufferOf(c.Conn()); rb != nil {
		delete(b.s.greeted, rb)
	}
	b.s.sessions[se] = struct{}{}
	return se, nil
}

var errShuttingDown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service shutting down, try again later"}

type session struct {
	s      *Server
	conn   *smtp.Conn
	sc     *sessionConn // nil without faults or a session log
	authed bool
	user   string // the SMTP AUTH user, stored with each message
	from   string
	rcpts  []string

	busy   bool // in a mail transaction (MAIL seen, not ended); guarded by s.mu
	hungUp sync.Once
}

// hangUp tells the client 421 and closes the connection; the session's
// goroutine then ends on its failed read.
func (se *session) hangUp() {
	se.hungUp.Do(func() {
		c := se.conn.Conn()
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(c, shutdownReply(se.s.opts.Domain))
		_ = c.Close()
	})
}

// shutdownReply is the 421 line a session gets when Shutdown ends it.
func shutdownReply(domain string) string {
	e := errShuttingDown
	return fmt.Sprintf("%d %d.%d.%d %s %s\r\n", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], domain, e.Message)
}

// rest marks the end of a transaction; during Shutdown the session ends.
func (se *session) rest() {
	se.s.mu.Lock()
	se.busy = false
	draining := se.s.draining
	se.s.mu.Unlock()
	if draining {
		se.hangUp()
	}
}

var _ smtp.AuthSession = (*session)(nil)

func (se *session) reject(err *smtp.SMTPError) error {
	se.s.metrics.rejections.WithLabelValues(strconv.Itoa(err.Code)).Inc()
	return err
}

func (se *session) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (se *session) Auth(mech string) (sasl.Server, error) {
	if err := se.fault(faults.Event{Stage: faults.StageAuth}); err != nil {
		se.tlsCommand("AUTH "+mech+" ***", err, true, "")
		return nil, err
	}
	se.tlsCommand("AUTH "+mech+" ***", nil, false, "")
	check := func(identity, user, pass string) error {
		err := se.checkAuth(identity, user, pass)
		se.tlsReply(err, false, "235 2.0.0 Authentication succeeded")
		return err
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(check), nil
	case sasl.Login:
		return &loginServer{check: func(u, p string) error { return check("", u, p) }}, nil
	}
	return nil, se.reject(smtp.ErrAuthUnknownMechanism)
}

// checkAuth checks credentials (any, without an Authenticator).
func (se *session) checkAuth(identity, user, pass string) error {
	if identity != "" && identity != user {
		return se.reject(smtp.ErrAuthFailed)
	}
	if se.s.opts.Auth != nil {
		if err := se.s.opts.Auth.Check(context.Background(), user, pass); err != nil {
			return se.reject(smtp.ErrAuthFailed)
		}
	}
	se.authed = true
	se.user = user
	return nil
}

func (se *session) Mail(from string, opts *smtp.MailOptions) error {
	fault, err := se.mail(from)
	se.tlsCommand("MAIL FROM:<"+from+">", err, fault, "250 2.0.0 Roger, accepting mail from <"+from+">")
	return err
}

// mail is Mail; fault says the error came from a fault rule.
func (se *session) mail(from string) (bool, error) {
	if err := se.requireTLS(); err != nil {
		return false, se.reject(err)
	}
	if se.s.opts.Auth != nil && !se.authed {
		return false, se.reject(errAuthRequired)
	}
	if err := se.fault(faults.Event{Stage: faults.StageMail, From: from}); err != nil {
		return true, err
	}
	se.s.mu.Lock()
	draining := se.s.draining
	se.busy = !draining
	se.s.mu.Unlock()
	if draining {
		se.hangUp()
		return false, errShuttingDown
	}
	se.from = from
	se.rcpts = se.rcpts[:0]
	return false, nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	fault, err := se.rcpt(to)
	se.tlsCommand("RCPT TO:<"+to+">", err, fault, "250 2.0.0 I'll make sure <"+to+"> gets this")
	return err
}

// rcpt is Rcpt; fault says the error came from a fault rule.
func (se *session) rcpt(to string) (bool, error) {
	if len(se.rcpts) >= se.s.opts.MaxRecipients {
		return false, se.reject(&smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3},
			Message: fmt.Sprintf("Too many recipients (at most %d per message)", se.s.opts.MaxRecipients)})
	}
	if store.NormalizeAddress(to) == "" {
		return false, se.reject(&smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Empty recipient address"})
	}
	if err := se.allowedRecipient(to); err != nil {
		return false, se.reject(err)
	}
	if se.s.hook() != nil {
		if err := se.fault(faults.Event{Stage: faults.StageRcpt, From: se.from, To: []string{to}}); err != nil {
			return true, err
		}
	}
	se.rcpts = append(se.rcpts, to)
	return false, nil
}

func (se *session) Data(r io.Reader) error {
	se.tlsCommand("DATA", nil, false, "354 Go ahead. End your data with <CR><LF>.<CR><LF>")
	fault, err := se.data(r)
	se.tlsReply(err, fault, "")
	return err
}

// data is Data; fault says the error came from a fault rule.
func (se *session) data(r io.Reader) (bool, error) {
	if se.s.hook() != nil && (se.sc == nil || se.sc.passive || se.sc.opaque.Load()) {
		// Encrypted, or the connection predates every rule: DATA was not
		// seen before its 354, so its fault answers after the message
		// instead.
		if err := se.fault(faults.Event{Stage: faults.StageData, From: se.from, To: se.rcpts}); err != nil {
			return true, err
		}
	}
	rb := replyBufferOf(se.conn.Conn())
	fast := rb != nil && !isBdat(r) && rb.armData()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		if fast {
			rb.takeMessage()
		}
		var serr *smtp.SMTPError
		if errors.As(err, &serr) {
			return false, se.reject(serr)
		}
		return false, fmt.Errorf("read message: %w", err)
	}
	raw := buf.Bytes()
	if fast {
		// The reply buffer took the body off the socket (datafast.go);
		// go-smtp read only the end-of-data line.
		if m, ok := rb.takeMessage(); ok {
			if buf.Len() > 0 {
				return false, fmt.Errorf("read message: %d bytes both captured and read", buf.Len())
			}
			raw = m
			se.s.fastData.Add(1)
		}
	}
	if se.s.hook() != nil {
		// A refusal here, or a 2xx (acknowledged and lost), stores nothing.
		if err := se.fault(faults.Event{Stage: faults.StageMessage, From: se.from, To: se.rcpts}); err != nil {
			return true, err
		}
	}
	env := store.Envelope{From: se.from, To: append([]string(nil), se.rcpts...), Username: se.user,
		ClientIP: remoteIP(se.conn.Conn()), Helo: se.conn.Hostname()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := se.s.st.Ingest(ctx, env, raw)
	if err != nil {
		se.s.log.Error("store message", "err", err, "from", se.from, "rcpts", len(se.rcpts))
		return false, se.reject(&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
			Message: "Message not stored, try again later"})
	}
	se.s.metrics.messages.Inc()
	se.s.metrics.bytes.Add(float64(len(raw)))
	se.s.log.Debug("message stored", "id", id, "from", se.from, "rcpts", len(se.rcpts), "size", len(raw))
	// The reply names the stored id, as Mailpit's does: clients log it and
	// look the message up by it. go-smtp writes a 250 "error" as it is.
	return false, &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as " + id}
}

func (se *session) Reset() {
	se.from = ""
	se.rcpts = se.rcpts[:0]
	se.rest()
}

func (se *session) Logout() error {
	se.s.mu.Lock()
	delete(se.s.sessions, se)
	se.s.mu.Unlock()
	return nil
}

// loginServer is the server side of the obsolete but still common LOGIN
// mechanism (Outlook, many PHP mailers): username and password as two
// base64 answers to two prompts.
type loginServer struct {
	check      func(user, pass string) error
	user       string
	step       int
	haveUser   bool
	initialRsp bool
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if response != nil && len(response) > 0 {
			l.user = string(response)
			l.step = 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(response)
		l.step = 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.check(l.user, string(response))
	}
	return nil, false, errors.New("unexpected client response")
}

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Printf(format string, v ...any) { a.log.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Println(v ...any)               { a.log.Warn(fmt.Sprint(v...)) }

// remoteIP is the client's IP address, "" when the connection has none
// (SPF in the authentication check needs it).
func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	if host, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
		return host
	}
	return ""
}
