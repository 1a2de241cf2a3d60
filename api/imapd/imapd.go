// Package imapd is the sandbox's IMAP server: go-imap's imapserver in front
// of the store. A user logs in with a mailbox address and sees that
// mailbox's folders; every change (flags, copies, moves, expunges, folders)
// is a store write, so REST, POP3 and the UI see what IMAP did, and IMAP
// sessions see what they did.
//
// No mail is kept in memory: a selected folder is held as its list of
// entries (UIDs, flags, sizes) and bodies are read from the store when a
// command needs them (ENVELOPE and BODYSTRUCTURE are worked out once per
// message and kept in a bounded cache). Each selected folder has one shared
// view; a single goroutine per Server follows the store's event stream and
// refreshes the views, waking sessions in IDLE. Each session keeps its own
// view of the folder, as its client was told it, and at every command end
// (and in IDLE at every wake-up) compares it with the shared one and writes
// the difference: FLAGS (and PERMANENTFLAGS) for keywords new to the
// client, EXPUNGE, FETCH FLAGS, EXISTS, RECENT. No queue of updates can be
// lost or replayed out of order, so sessions cannot drift apart. Every
// command end reads the selected folder's change counter in the store
// (store.FolderModSeq) and re-reads the folder only when it moved, so
// clients never wait on the event stream; several instances sharing one PostgreSQL store see each
// other's changes at every command, and during IDLE through the store's
// cross-instance events. \Recent is claimed in the store (ClaimRecent): a
// new message is recent in exactly the one session that first has the
// folder selected after it arrived.
//
// Special-use folders: at every IMAP login, Drafts, Sent and Trash are
// created with their RFC 6154 attributes unless a folder of that name or
// attribute exists (so a deleted Trash comes back at the next login, as
// with Dovecot's auto = create); clients may mark others with
// CREATE … (USE (…)).
//
// Work-arounds for imapserver v2.0.0-beta.8, all in this package:
// EXPUNGE and MOVE write no EXPUNGE responses themselves (the library's
// in-memory example writes them and also queues them, giving duplicates
// and a bogus "* 0 EXPUNGE"); every expunge reaches the client in the
// poll that precedes the tagged OK. LSUB is told from LIST (SUBSCRIBED) by
// the ListWriter's unexported field. A mailbox name that is not modified
// UTF-7 fails in the library's decoder, before any session method, with
// "NO [SERVERBUG]"; replyConn rewrites that answer (see replyfilter.go),
// over TLS through a relay that keeps the library's TLS in-process
// (tlsrelay.go). During a FETCH, replyConn gathers the library's small writes
// (one per response) into few.
// The library's MailboxTracker is not used (see above). EXAMINE is
// enforced here (STORE, EXPUNGE, MOVE answer NO, FETCH never sets \Seen),
// since the library only prints [READ-ONLY]. Keywords keep their case (the
// example lower-cases them). Single parts without a Content-Type get the
// RFC 2045 default text/plain; charset=us-ascii in BODYSTRUCTURE. MOVE and
// NAMESPACE are implemented (the library panics at connect time when they
// are advertised without).
//
// LITERAL+ is not offered, only the library's LITERAL-: when the library
// refuses a literal (too big for APPENDLIMIT) it does not read it, so the
// bytes of a refused non-synchronizing literal would be run as commands,
// a message body turned into IMAP commands. With LITERAL- a client sends
// at most 4096 bytes unasked, which never exceeds the limit.
//
// Known library limits left as they are: a line without a tag and a
// command name (or longer than 50 KiB) ends the connection without a
// reply, and an unknown command before login gets BAD then BYE (the
// library's guard against cross-protocol attacks).
package imapd

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsandbox/mailsandbox/capture/connlimit"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// Store is what the IMAP server needs of the store.
type Store interface {
	Folder(ctx context.Context, mailbox, name string) (store.Folder, error)
	Folders(ctx context.Context, mailbox string) ([]store.Folder, error)
	Entries(ctx context.Context, folderID int64) ([]store.Entry, error)
	EntryFlags(ctx context.Context, folderID int64) ([]store.Entry, error)
	FolderModSeq(ctx context.Context, folderID int64) (int64, error)
	EntriesFrom(ctx context.Context, folderID int64, minUID uint32) ([]store.Entry, error)
	Raw(ctx context.Context, id string) ([]byte, error)
	RawMany(ctx context.Context, ids []string) (map[string][]byte, error)
	Append(ctx context.Context, mailbox, folder string, flags []string, internal time.Time, raw []byte) (store.Entry, error)
	CreateFolder(ctx context.Context, mailbox, name, specialUse string) (store.Folder, error)
	DeleteFolder(ctx context.Context, mailbox, name string) error
	RenameFolder(ctx context.Context, mailbox, oldName, newName string) error
	SetSubscribed(ctx context.Context, mailbox, name string, subscribed bool) error
	UpdateFlags(ctx context.Context, folderID int64, uids []uint32, op store.FlagOp, flags []string) ([]store.Entry, error)
	CopyEntries(ctx context.Context, srcFolderID int64, uids []uint32, dstFolderID int64) ([]uint32, []uint32, error)
	MoveEntries(ctx context.Context, srcFolderID int64, uids []uint32, dstFolderID int64) ([]uint32, []uint32, error)
	Expunge(ctx context.Context, folderID int64, uids []uint32) ([]uint32, error)
	Subscribe(ctx context.Context) <-chan store.Event
	ClaimRecent(ctx context.Context, folderID int64, upTo uint32) (uint32, error)
	Subscriptions(ctx context.Context, mailbox string) ([]string, error)
}

var _ Store = (*store.Store)(nil)

// Authenticator checks login credentials.
type Authenticator interface {
	Check(ctx context.Context, user, pass string) error
}

// Options configure the server. Zero values are documented per field; New
// keeps a copy, so later changes have no effect.
type Options struct {
	// TLSConfig enables STARTTLS; nil offers none. For implicit TLS (IMAPS)
	// the caller wraps the listener with tls.NewListener, with this same
	// config: the connection limiter rebuilds each TLS connection with it
	// (see capture/connlimit).
	TLSConfig *tls.Config
	// Auth, when set, checks LOGIN and AUTHENTICATE PLAIN credentials (the
	// user name as typed); nil accepts any password for any mailbox.
	Auth Authenticator
	// AllowInsecureAuth allows login on connections without TLS even when
	// Auth is set. Without Auth, or without TLSConfig (no certificate, so
	// no way to get TLS), login is always allowed and LOGINDISABLED is
	// never announced.
	AllowInsecureAuth bool
	// MaxLiteralBytes caps an APPEND message (announced as APPENDLIMIT);
	// larger ones get NO [TOOBIG], before the client sends them when the
	// cap is 4096 or more (LITERAL- lets a client send 4096 bytes unasked,
	// so smaller caps are announced as 4096 and checked once read).
	// 0 means 32 MiB.
	MaxLiteralBytes int64
	// IdleTimeout closes a connection that sent no command for this long,
	// except while it IDLEs (clients renew IDLE within 29 minutes).
	// 0 means 30 minutes, the RFC 3501 minimum.
	IdleTimeout time.Duration
	// Debug, when set, receives every byte read and written (credentials
	// included).
	Debug io.Writer
	// MaxConnections caps concurrent connections over all listeners, and
	// MaxConnectionsPerIP those from one client address; a client beyond
	// either is greeted with "* BYE [UNAVAILABLE] too many connections"
	// and disconnected before a session starts. 0 means 1000 and 100;
	// negative means no cap.
	MaxConnections      int
	MaxConnectionsPerIP int
}

const (
	// summaryCacheSize bounds the ENVELOPE/BODYSTRUCTURE cache (a few KiB
	// each): a client's first sync of a large folder fetches them all.
	summaryCacheSize      = 20000
	defaultMaxLiteral     = 32 << 20
	defaultIdleTimeout    = 30 * time.Minute
	defaultMaxConnections = 1000
	defaultMaxConnsPerIP  = 100
)

// Server is an IMAP server over a store.
type Server struct {
	st   Store
	opts Options
	log  *slog.Logger
	srv  *imapserver.Server
	// limits caps connections across every listener.
	limits *connlimit.Limiter
	// maxAppend is the caller's MaxLiteralBytes before the 4096 floor.
	maxAppend int64
	// inner is the TLS between the library and the TLS relay
	// (tlsrelay.go); nil without TLSConfig.
	inner *innerTLS
	// routes carries ENVELOPE source routes past the library (routes.go).
	routes routeMark

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	views     map[int64]*folderView
	summaries *summaryCache
	listeners map[net.Listener]struct{}
	// serving counts the calls of imapserver's Serve under way: its Close
	// must not start while one may be between taking the listener and
	// counting it (imapserver adds to a WaitGroup that Close waits on,
	// which the race detector reports as a race), so ours waits for them.
	serving  sync.WaitGroup
	sessions map[*session]struct{}
	closed   bool
	idle     chan struct{} // closed when the last session ends (see waitSessions)
}

// New returns a server; call Serve to accept connections.
func New(st Store, opts Options, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	if opts.MaxLiteralBytes <= 0 {
		opts.MaxLiteralBytes = defaultMaxLiteral
	}
	maxAppend := opts.MaxLiteralBytes
	if opts.MaxLiteralBytes < 4096 {
		opts.MaxLiteralBytes = 4096 // LITERAL- lets clients send this much unasked
	}
	if opts.MaxLiteralBytes > 1<<32-1 {
		opts.MaxLiteralBytes = 1<<32 - 1
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = defaultIdleTimeout
	}
	if opts.MaxConnections == 0 {
		opts.MaxConnections = defaultMaxConnections
	}
	if opts.MaxConnectionsPerIP == 0 {
		opts.MaxConnectionsPerIP = defaultMaxConnsPerIP
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		st: st, opts: opts, log: log, ctx: ctx, cancel: cancel, maxAppend: maxAppend,
		routes:    newRouteMark(),
		views:     map[int64]*folderView{},
		summaries: newSummaryCache(summaryCacheSize),
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*session]struct{}{},
		limits: connlimit.New(connlimit.Options{
			MaxConnections:      opts.MaxConnections,
			MaxConnectionsPerIP: opts.MaxConnectionsPerIP,
			Refusal:             connlimit.IMAP(),
			TLSConfig:           opts.TLSConfig,
		}),
	}
	libTLS := opts.TLSConfig
	if opts.TLSConfig != nil {
		inner, err := newInnerTLS()
		if err != nil {
			// Served without the relay: TLS works, but an undecodable
			// mailbox name gets the library's SERVERBUG over TLS.
			log.Error("imap: TLS relay unavailable", "err", err)
		} else {
			s.inner, libTLS = inner, inner.server
		}
	}
	io := &imapserver.Options{
		NewSession: s.newSession,
		Caps: imap.CapSet{
			imap.CapIMAP4rev1:        {},
			imap.CapIMAP4rev2:        {},
			imap.CapNamespace:        {},
			imap.CapUIDPlus:          {},
			imap.CapMove:             {},
			imap.CapIdle:             {},
			imap.CapUnselect:         {},
			imap.CapSpecialUse:       {},
			imap.CapCreateSpecialUse: {},
			imap.CapListExtended:     {},
			imap.CapListStatus:       {},
			imap.CapChildren:         {},
			imap.CapESearch:          {},
			imap.CapSearchRes:        {},
			imap.CapStatusSize:       {},
			imap.CapBinary:           {},
			imap.CapUnauthenticate:   {},
		},
		Logger:       slogPrintf{log},
		TLSConfig:    libTLS,
		InsecureAuth: opts.Auth == nil || opts.AllowInsecureAuth || opts.TLSConfig == nil,
	}
	if opts.Debug != nil {
		io.DebugWriter = opts.Debug
	}
	s.srv = imapserver.New(io)
	s.wg.Add(1)
	go s.followEvents()
	return s
}

// slogPrintf adapts slog to the library's Printf logger.
type slogPrintf struct{ log *slog.Logger }

// Panics in a command are errors; the rest (clients dropping the
// connection, unreadable commands) is routine.
func (l slogPrintf) Printf(format string, args ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	if strings.Contains(msg, "panic") {
		l.log.Error("imap: " + msg)
		return
	}
	l.log.Debug("imap: " + msg)
}

// ErrServerClosed is returned by Serve after Close or Shutdown. It wraps
// net.ErrClosed, so callers that check for a closed listener see it too.
var ErrServerClosed = fmt.Errorf("imapd: server closed: %w", net.ErrClosed)

// Serve accepts connections on ln until Close or Shutdown; it then returns
// ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.serving.Add(1)
	s.mu.Unlock()
	err := s.srv.Serve(replyListener{Listener: s.limits.Listen(ln), tls: s.opts.TLSConfig, inner: s.inner, routes: s.routes})
	s.serving.Done()
	s.mu.Lock()
	delete(s.listeners, ln)
	closed := s.closed
	s.mu.Unlock()
	if closed || err == nil {
		return ErrServerClosed
	}
	return fmt.Errorf("imap serve: %w", err)
}

// Close stops listening, drops every connection at once and waits (up to
// five seconds, then it logs and returns) for their sessions to end. Safe
// to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	s.mu.Unlock()
	if !already {
		s.serving.Wait()  // each Serve returns on its closed listener
		_ = s.srv.Close() // errors only on a second call
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.waitSessions(ctx); err != nil {
		s.log.Warn("imap close: sessions still running", "err", err)
	}
	s.cancel()
	s.wg.Wait()
	return nil
}

// Shutdown stops listening, says BYE to every client (IMAP connections are
// long-lived, so waiting for clients to leave on their own could take
// forever), and waits until their sessions end or ctx is done; then it
// closes whatever is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	var conns []*imapserver.Conn
	for sess := range s.sessions {
		conns = append(conns, sess.conn)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Bye("Server shutting down")
	}
	err := s.waitSessions(ctx)
	s.serving.Wait() // each Serve returns on its closed listener
	_ = s.srv.Close()
	s.cancel()
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("imap shutdown: %w", err)
	}
	return nil
}

// waitSessions waits until no session is left or ctx ends.
func (s *Server) waitSessions(ctx context.Context) error {
	s.mu.Lock()
	if len(s.sessions) == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) addSession(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.sessions[sess] = struct{}{}
	return true
}

func (s *Server) removeSession(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
	if len(s.sessions) == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// followEvents keeps selected folders in step with the store. When the
// store cuts the subscription off (this goroutine fell behind), it
// subscribes again and re-reads every selected folder.
func (s *Server) followEvents() {
	defer s.wg.Done()
	for {
		ch := s.st.Subscribe(s.ctx)
		s.syncAll()
		for ev := range ch {
			// Per folder: true when only new mail arrived (then only the
			// new entries are read), false when anything else changed.
			dirty := map[int64]bool{}
			note := func(ev store.Event) {
				if ev.FolderID == 0 {
					return
				}
				switch ev.Kind {
				case store.EventEntry:
					if _, ok := dirty[ev.FolderID]; !ok {
						dirty[ev.FolderID] = true
					}
				case store.EventFlags, store.EventDeleted:
					dirty[ev.FolderID] = false
				}
			}
			note(ev)
		drain:
			for {
				select {
				case ev, ok := <-ch:
					if !ok {
						break drain
					}
					note(ev)
				default:
					break drain
				}
			}
			for id, onlyNew := range dirty {
				if v := s.view(id); v != nil {
					s.safeSync(v, onlyNew)
				}
			}
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(100 * time.Millisecond): // a closed store: do not spin
		}
	}
}

func (s *Server) syncAll() {
	s.mu.Lock()
	views := make([]*folderView, 0, len(s.views))
	for _, v := range s.views {
		views = append(views, v)
	}
	s.mu.Unlock()
	for _, v := range views {
		s.safeSync(v, false)
	}
}

// safeSync keeps a bug in a folder update from taking the process down:
// sessions of that folder get their updates at their next command
// instead, where a panic only ends that connection.
func (s *Server) safeSync(v *folderView, onlyNew bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("imap: folder update failed", "folder", v.id, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.syncLocked(s.ctx, onlyNew)
}

func (s *Server) view(id int64) *folderView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.views[id]
}

// acquireView returns the shared view of a folder, loading it on first use
// (fresh: just read from the store).
func (s *Server) acquireView(f store.Folder) (v *folderView, fresh bool, err error) {
	s.mu.Lock()
	v = s.views[f.ID]
	if v != nil {
		v.refs++
		s.mu.Unlock()
		return v, false, nil
	}
	s.mu.Unlock()
	entries, err := s.st.Entries(s.ctx, f.ID)
	if err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.views[f.ID]; v != nil { // another session won the race
		v.refs++
		return v, false, nil
	}
	// f was read before entries: its change counter vouches for them.
	v = &folderView{st: s.st, log: s.log, id: f.ID, refs: 1, entries: entries, claimed: f.RecentUID, modseq: f.ModSeq, modseqOK: true}
	s.views[f.ID] = v
	return v, true, nil
}

func (s *Server) releaseView(v *folderView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v.refs--
	if v.refs <= 0 && s.views[v.id] == v {
		delete(s.views, v.id)
	}
}
