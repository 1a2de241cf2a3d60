package pop3d

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// handlers maps each verb of the command table to its handler. A handler
// writes its reply; its error is a connection error that ends the session.
var handlers = map[string]func(*session, command) error{
	"CAPA": (*session).cmdCapa,
	"QUIT": (*session).cmdQuit,
	"USER": (*session).cmdUser,
	"PASS": (*session).cmdPass,
	"AUTH": (*session).cmdAuth,
	"STLS": (*session).cmdStls,
	"STAT": (*session).cmdStat,
	"LIST": (*session).cmdList,
	"UIDL": (*session).cmdUidl,
	"RETR": (*session).cmdRetr,
	"TOP":  (*session).cmdTop,
	"DELE": (*session).cmdDele,
	"RSET": (*session).cmdRset,
	"NOOP": (*session).cmdNoop,
}

var (
	errLineTooLong = errors.New("line too long")
	errStopping    = errors.New("server shutting down")
)

// session is one connection.
type session struct {
	srv  *Server
	conn net.Conn // the accepted connection: deadlines and Close
	log  *slog.Logger

	dl sync.Mutex // orders read deadlines against interrupt

	r     *bufio.Reader
	w     *bufio.Writer
	isTLS bool

	phase   phase
	user    string // mailbox named by USER, waiting for PASS
	mailbox string // logged in mailbox (TRANSACTION)
	unlock  func() // releases the maildrop lock
	msgs    []*msg // the maildrop, message n at index n-1
	bad     int    // bad commands so far
	done    bool   // end the session after this reply
}

// msg is one message of the maildrop snapshot.
type msg struct {
	entryID   int64
	messageID string
	rawSize   int64
	size      int64 // POP3 octets, -1 until known
	uidl      string
	deleted   bool
}

func newSession(srv *Server, c net.Conn) *session {
	s := &session{
		srv:   srv,
		conn:  c,
		log:   srv.log.With("proto", "pop3", "remote", c.RemoteAddr().String()),
		phase: phaseAuth,
	}
	_, s.isTLS = c.(*tls.Conn)
	s.setStream(c)
	return s
}

// setStream points the reader and writer at c (the connection, or its TLS
// layer after STLS). Anything buffered from before is dropped.
func (s *session) setStream(c net.Conn) {
	s.r = bufio.NewReaderSize(c, s.srv.opts.MaxLineBytes)
	s.w = bufio.NewWriter(deadlineWriter{s: s, w: c})
}

// deadlineWriter renews the write deadline before each write, so a client
// that stops reading is dropped after the idle timeout.
type deadlineWriter struct {
	s *session
	w io.Writer
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	d.s.conn.SetWriteDeadline(time.Now().Add(d.s.srv.opts.IdleTimeout))
	return d.w.Write(p)
}

// interrupt makes a pending or future read fail at once; used by Shutdown.
func (s *session) interrupt() {
	s.dl.Lock()
	defer s.dl.Unlock()
	s.conn.SetReadDeadline(time.Now())
}

// serve runs the session; the caller closes the connection.
func (s *session) serve() {
	defer s.releaseLock()
	s.log.Debug("pop3 connection")
	s.reply("+OK mailsandbox POP3 server ready")
	if s.flush() != nil {
		return
	}
	for !s.done {
		line, err := s.readLine()
		switch {
		case errors.Is(err, errLineTooLong):
			s.badCommand("line too long")
		case err != nil:
			s.hangUp(err)
			return
		default:
			if err := s.run(line); err != nil {
				s.log.Debug("pop3 connection error", "err", err)
				return
			}
		}
		if s.done || s.r.Buffered() == 0 {
			if err := s.flush(); err != nil {
				s.log.Debug("pop3 write", "err", err)
				return
			}
		}
	}
}

// releaseLock releases the maildrop lock, if held; safe to call twice.
func (s *session) releaseLock() {
	if s.unlock != nil {
		unlock := s.unlock
		s.unlock = nil
		unlock()
	}
}

// hangUp ends a session whose read failed: EOF, idle timeout or shutdown.
// Nothing marked for deletion is deleted. On the autologout timer RFC 1939
// says to close without a response; on shutdown the client is told why.
func (s *session) hangUp(err error) {
	if errors.Is(err, errStopping) || s.srv.stopping.Load() {
		s.reply("-ERR [SYS/TEMP] server shutting down")
		s.conn.SetWriteDeadline(time.Now().Add(time.Second))
		s.w.Flush()
	}
	s.log.Debug("pop3 connection closed", "reason", err, "user", s.mailbox)
}

// readLine reads one line, CRLF or LF ended, without the ending. A line
// longer than MaxLineBytes is read to its end and dropped, never buffered
// whole, and reported as errLineTooLong.
func (s *session) readLine() (string, error) {
	s.dl.Lock()
	if s.srv.stopping.Load() {
		s.dl.Unlock()
		return "", errStopping
	}
	s.conn.SetReadDeadline(time.Now().Add(s.srv.opts.IdleTimeout))
	s.dl.Unlock()
	tooLong := false
	for {
		line, err := s.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			tooLong = true
			continue
		}
		if err != nil {
			return "", err
		}
		if tooLong {
			return "", errLineTooLong
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
		return string(line), nil
	}
}

// run parses and runs one command line. A panic in a handler is logged and
// answered with -ERR, and ends the session.
func (s *session) run(line string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("pop3 panic", "panic", p, "stack", string(debug.Stack()))
			s.reply("-ERR [SYS/TEMP] internal server error")
			s.done = true
			err = nil
		}
	}()
	cmd, perr := parseCommand(line)
	switch {
	case errors.Is(perr, errEmpty):
		s.badCommand("empty command")
		return nil
	case errors.Is(perr, errUnknown):
		s.badCommand("unknown command")
		return nil
	case perr != nil:
		s.badCommand("syntax error in " + strings.ToUpper(strings.Fields(line)[0]))
		return nil
	}
	if commands[cmd.verb].phases&s.phase == 0 {
		if s.phase == phaseAuth {
			s.badCommand(cmd.verb + " not allowed before login")
		} else {
			s.badCommand(cmd.verb + " not allowed after login")
		}
		return nil
	}
	return handlers[cmd.verb](s, cmd)
}

func (s *session) reply(line string) {
	s.w.WriteString(line)
	s.w.WriteString("\r\n")
}

func (s *session) flush() error { return s.w.Flush() }

// badCommand answers -ERR and counts a bad command; past MaxBadCommands the
// session ends.
func (s *session) badCommand(text string) {
	s.bad++
	if s.bad >= s.srv.opts.MaxBadCommands {
		s.reply("-ERR " + text + "; too many bad commands, closing connection")
		s.log.Info("pop3 too many bad commands", "user", s.mailbox)
		s.done = true
		return
	}
	s.reply("-ERR " + text)
}

// plainAllowed reports whether a password may be sent on this connection.
// Without a certificate there is no way to TLS, so refusing would lock
// everyone out; IMAP follows the same rule.
func (s *session) plainAllowed() bool {
	return s.isTLS || s.srv.opts.Auth == nil || s.srv.opts.AllowInsecureAuth || s.srv.opts.TLSConfig == nil
}

func (s *session) cmdCapa(command) error {
	s.reply("+OK capability list follows")
	if s.phase == phaseAuth && s.plainAllowed() {
		s.reply("USER")
		s.reply("SASL PLAIN")
	}
	if s.phase == phaseAuth && !s.isTLS && s.srv.opts.TLSConfig != nil {
		s.reply("STLS")
	}
	for _, c := range []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION mailsandbox"} {
		s.reply(c)
	}
	s.reply(".")
	return nil
}

func (s *session) cmdQuit(command) error {
	s.done = true
	if s.phase != phaseTrans {
		s.reply("+OK mailsandbox POP3 server signing off")
		return nil
	}
	// UPDATE: remove what was marked, then sign off.
	var ids []int64
	for _, m := range s.msgs {
		if m.deleted {
			ids = append(ids, m.entryID)
		}
	}
	var err error
	if len(ids) > 0 {
		err = s.srv.st.DeleteEntries(s.srv.ctx, s.mailbox, ids)
	}
	// RFC 1939 UPDATE: the maildrop is released before the reply, so a
	// client that reconnects as soon as it reads +OK can log in again.
	s.releaseLock()
	if err != nil {
		s.log.Error("pop3 update", "user", s.mailbox, "err", err)
		s.reply("-ERR [SYS/TEMP] some deleted messages not removed")
		return nil
	}
	s.log.Debug("pop3 logout", "user", s.mailbox, "deleted", len(ids))
	s.reply(fmt.Sprintf("+OK mailsandbox POP3 server signing off (%d messages left)", len(s.msgs)-len(ids)))
	return nil
}

func (s *session) cmdUser(cmd command) error {
	if !s.plainAllowed() {
		s.badCommand("plain-text login is disabled on this connection, use STLS first")
		return nil
	}
	user := store.NormalizeAddress(cmd.args[0])
	if !validMailbox(user) {
		s.badCommand("[AUTH] invalid user name")
		return nil
	}
	s.user = user
	s.reply("+OK send PASS")
	return nil
}

func (s *session) cmdPass(cmd command) error {
	if s.user == "" {
		s.badCommand("USER first")
		return nil
	}
	user := s.user
	s.user = ""
	pass := ""
	if len(cmd.args) > 0 {
		pass = cmd.args[0]
	}
	s.login(user, pass)
	return nil
}

func (s *session) cmdAuth(cmd command) error {
	s.user = ""
	if len(cmd.args) == 0 {
		// Not in RFC 5034, but long-standing practice: list mechanisms.
		s.reply("+OK SASL mechanisms follow")
		if s.plainAllowed() {
			s.reply("PLAIN")
		}
		s.reply(".")
		return nil
	}
	if !strings.EqualFold(cmd.args[0], "PLAIN") {
		s.badCommand("unsupported SASL mechanism")
		return nil
	}
	if !s.plainAllowed() {
		s.badCommand("plain-text login is disabled on this connection, use STLS first")
		return nil
	}
	resp := ""
	if len(cmd.args) > 1 {
		resp = cmd.args[1]
		if resp == "=" {
			resp = ""
		}
	} else {
		s.reply("+ ")
		if err := s.flush(); err != nil {
			return err
		}
		line, err := s.readLine()
		if errors.Is(err, errLineTooLong) {
			s.badCommand("line too long")
			return nil
		}
		if err != nil {
			return err
		}
		if line == "*" {
			s.reply("-ERR authentication canceled")
			return nil
		}
		resp = line
	}
	dec, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		s.badCommand("invalid base64 in AUTH response")
		return nil
	}
	parts := strings.Split(string(dec), "\x00")
	if len(parts) != 3 || parts[1] == "" {
		s.badCommand("invalid PLAIN response")
		return nil
	}
	authz, user, pass := parts[0], parts[1], parts[2]
	if authz != "" && store.NormalizeAddress(authz) != store.NormalizeAddress(user) {
		s.badCommand("[AUTH] authorization identity must be empty or the user")
		return nil
	}
	s.login(user, pass)
	return nil
}

// login checks the password, locks the mailbox and takes the snapshot that
// is the maildrop of this session.
func (s *session) login(user, pass string) {
	mailbox := store.NormalizeAddress(user)
	if !validMailbox(mailbox) {
		s.badCommand("[AUTH] invalid user name")
		return
	}
	ctx := s.srv.ctx
	if a := s.srv.opts.Auth; a != nil {
		if err := a.Check(ctx, mailbox, pass); err != nil {
			s.log.Info("pop3 login failed", "user", mailbox, "err", err)
			s.badCommand("[AUTH] invalid user name or password")
			return
		}
	}
	unlock, err := s.srv.st.LockMailbox(ctx, mailbox)
	if errors.Is(err, store.ErrLocked) {
		s.reply("-ERR [IN-USE] maildrop already locked")
		return
	}
	if err != nil {
		s.log.Error("pop3 lock", "user", mailbox, "err", err)
		s.reply("-ERR [SYS/TEMP] cannot open maildrop")
		return
	}
	s.unlock = unlock // released by serve on every exit, panics included
	msgs, err := s.snapshot(ctx, mailbox)
	if err != nil {
		unlock()
		s.unlock = nil
		s.log.Error("pop3 open maildrop", "user", mailbox, "err", err)
		s.reply("-ERR [SYS/TEMP] cannot open maildrop")
		return
	}
	s.phase, s.mailbox, s.msgs = phaseTrans, mailbox, msgs
	s.log.Debug("pop3 login", "user", mailbox, "messages", len(msgs))
	s.reply(fmt.Sprintf("+OK %s has %d messages", mailbox, len(msgs)))
}

// maxMailboxBytes bounds a mailbox name (RFC 5321: a path is at most 256
// octets).
const maxMailboxBytes = 256

// validMailbox reports whether name can be a mailbox: not empty, not too
// long, valid UTF-8 and free of control characters (a name from AUTH PLAIN
// may hold anything, and it is echoed in the reply).
func validMailbox(name string) bool {
	if name == "" || len(name) > maxMailboxBytes || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// snapshot lists the INBOX of mailbox. A mailbox without folders (no mail
// yet) is an empty maildrop; nothing is created for it.
func (s *session) snapshot(ctx context.Context, mailbox string) ([]*msg, error) {
	folders, err := s.srv.st.Folders(ctx, mailbox)
	if err != nil {
		return nil, err
	}
	for _, f := range folders {
		if f.Name != store.InboxName {
			continue
		}
		entries, err := s.srv.st.Entries(ctx, f.ID)
		if err != nil {
			return nil, err
		}
		msgs := make([]*msg, len(entries))
		for i, e := range entries {
			msgs[i] = &msg{
				entryID:   e.ID,
				messageID: e.MessageID,
				rawSize:   e.Size,
				size:      -1,
				uidl:      strconv.FormatUint(uint64(f.UIDValidity), 10) + "." + strconv.FormatInt(e.ID, 10),
			}
		}
		return msgs, nil
	}
	return nil, nil
}

func (s *session) cmdStls(command) error {
	if s.isTLS {
		s.badCommand("already using TLS")
		return nil
	}
	cfg := s.srv.opts.TLSConfig
	if cfg == nil {
		s.badCommand("STLS not available")
		return nil
	}
	// Commands pipelined after STLS were sent in the clear: drop them
	// (RFC 2595 section 4 requires a client to wait).
	s.reply("+OK begin TLS negotiation")
	if err := s.flush(); err != nil {
		return err
	}
	tc := tls.Server(s.conn, cfg)
	s.conn.SetDeadline(time.Now().Add(s.srv.opts.IdleTimeout))
	if err := tc.HandshakeContext(s.srv.ctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	s.setStream(tc)
	s.isTLS = true
	s.user = ""
	return nil
}

// message returns message n of the maildrop, or answers -ERR and returns
// nil when there is none or it is marked deleted.
func (s *session) message(n int) *msg {
	if n < 1 || n > len(s.msgs) {
		s.reply("-ERR no such message")
		return nil
	}
	m := s.msgs[n-1]
	if m.deleted {
		s.reply(fmt.Sprintf("-ERR message %d already deleted", n))
		return nil
	}
	return m
}

// size returns the octets RETR sends for m, reading the message once and
// caching the result. If the message cannot be read, the stored size is
// used.
func (s *session) size(m *msg) int64 {
	if m.size >= 0 {
		return m.size
	}
	if n, ok := s.srv.sizes.get(m.messageID); ok {
		m.size = n
		return n
	}
	raw, err := s.srv.st.Raw(s.srv.ctx, m.messageID)
	if err != nil {
		s.log.Warn("pop3 message size", "message", m.messageID, "err", err)
		return m.rawSize
	}
	m.size = messageSize(raw)
	s.srv.sizes.put(m.messageID, m.size)
	return m.size
}

// stat returns the number and total size of messages not marked deleted.
func (s *session) stat() (int, int64) {
	var n int
	var total int64
	for _, m := range s.msgs {
		if !m.deleted {
			n++
			total += s.size(m)
		}
	}
	return n, total
}

func (s *session) cmdStat(command) error {
	n, total := s.stat()
	s.reply(fmt.Sprintf("+OK %d %d", n, total))
	return nil
}

func (s *session) cmdList(cmd command) error {
	if len(cmd.args) > 0 {
		if m := s.message(cmd.nums[0]); m != nil {
			s.reply(fmt.Sprintf("+OK %d %d", cmd.nums[0], s.size(m)))
		}
		return nil
	}
	n, total := s.stat()
	s.reply(fmt.Sprintf("+OK %d messages (%d octets)", n, total))
	for i, m := range s.msgs {
		if !m.deleted {
			s.reply(fmt.Sprintf("%d %d", i+1, s.size(m)))
		}
	}
	s.reply(".")
	return nil
}

func (s *session) cmdUidl(cmd command) error {
	if len(cmd.args) > 0 {
		if m := s.message(cmd.nums[0]); m != nil {
			s.reply(fmt.Sprintf("+OK %d %s", cmd.nums[0], m.uidl))
		}
		return nil
	}
	s.reply("+OK unique-id listing follows")
	for i, m := range s.msgs {
		if !m.deleted {
			s.reply(fmt.Sprintf("%d %s", i+1, m.uidl))
		}
	}
	s.reply(".")
	return nil
}

func (s *session) cmdRetr(cmd command) error {
	return s.send(cmd.nums[0], -1)
}

func (s *session) cmdTop(cmd command) error {
	return s.send(cmd.nums[0], cmd.nums[1])
}

// send writes message n, whole (bodyLines < 0) or its header and first
// bodyLines body lines, as a multi-line response.
func (s *session) send(n, bodyLines int) error {
	m := s.message(n)
	if m == nil {
		return nil
	}
	raw, err := s.srv.st.Raw(s.srv.ctx, m.messageID)
	if errors.Is(err, store.ErrNotFound) {
		s.reply(fmt.Sprintf("-ERR message %d is no longer available", n))
		return nil
	}
	if err != nil {
		s.log.Error("pop3 read message", "message", m.messageID, "err", err)
		s.reply("-ERR [SYS/TEMP] cannot read message")
		return nil
	}
	if m.size < 0 {
		m.size = messageSize(raw)
		s.srv.sizes.put(m.messageID, m.size)
	}
	if bodyLines < 0 {
		s.reply(fmt.Sprintf("+OK %d octets", m.size))
	} else {
		s.reply("+OK top of message follows")
	}
	if _, err := writeMessage(s.w, raw, bodyLines, true); err != nil {
		return err
	}
	s.reply(".")
	return nil
}

func (s *session) cmdDele(cmd command) error {
	if m := s.message(cmd.nums[0]); m != nil {
		m.deleted = true
		s.reply(fmt.Sprintf("+OK message %d deleted", cmd.nums[0]))
	}
	return nil
}

func (s *session) cmdRset(command) error {
	for _, m := range s.msgs {
		m.deleted = false
	}
	n, total := s.stat()
	s.reply(fmt.Sprintf("+OK maildrop has %d messages (%d octets)", n, total))
	return nil
}

func (s *session) cmdNoop(command) error {
	s.reply("+OK")
	return nil
}
