// Package store keeps captured mail: each message's original bytes once, its
// parsed summary, and an entry in every recipient's mailbox with that
// mailbox's own state (folder, UID, flags). It also holds the relay queue and
// publishes an event for every change.
//
// One Store works over SQLite (a file, or a temporary file removed on Close)
// or PostgreSQL, chosen by the DSN given to Open; the SQL is shared and only
// the schema and placeholders differ. Writes that acknowledge mail (Ingest)
// are grouped: many callers' messages are committed in one transaction, and
// each caller returns only after that commit, so an SMTP 250 always follows
// a durable write.
//
// Errors are the sentinels below, checked with errors.Is; anything else is
// wrapped with what was being done.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Sentinel errors.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	ErrLocked   = errors.New("store: mailbox is locked by another session")
	ErrClosed   = errors.New("store: closed")
	ErrInvalid  = errors.New("store: invalid argument")
)

// Options configure Open. The zero value opens a temporary SQLite store.
type Options struct {
	// DSN selects the backend: "" is a temporary SQLite file removed on
	// Close; "postgres://…" or "postgresql://…" is PostgreSQL; anything else
	// is the path of a persistent SQLite file.
	DSN string
	// Logger receives store diagnostics; nil means slog.Default().
	Logger *slog.Logger
	// MaxMessages and MaxAge bound retention; zero keeps everything. The
	// oldest messages are pruned first.
	MaxMessages int
	MaxAge      time.Duration
	// RelayKeep is how long finished (delivered or failed) relay
	// deliveries stay listed after they finish; zero keeps them as long as
	// their message. Deleting or pruning a message drops its finished
	// deliveries.
	RelayKeep time.Duration
	// Enqueue, when set, is asked at ingest which recipients of a message
	// leave the sandbox; the deliveries it returns are queued in the same
	// transaction as the message, so a crash cannot separate the two.
	Enqueue func(env Envelope) []NewDelivery
	// WebhookURLs are the webhook URLs this instance posts new messages
	// to. Open gives each one it has never seen a mark at the newest
	// message, so every message stored from then on is announced (see
	// webhookmarks.go); ingest itself does nothing for webhooks.
	WebhookURLs []string
	// Tagger, when set, gives the tags of a message at ingest (X-Tags,
	// plus-addresses, rules), from the parsed message, in memory; they are
	// cleaned (CleanTag), de-duplicated and capped (MaxTagsPerMessage),
	// and stored in the same transaction as the message.
	Tagger func(env Envelope, p *mailparse.Message, raw []byte) []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// indexIdle overrides how long ingest pauses before the search index
	// catches up (tests hold the index back with it); zero means indexIdle.
	indexIdle time.Duration
}

// Store is an open mail store. It is safe for concurrent use.
type Store struct {
	opts   Options
	log    *slog.Logger
	pg     bool
	wdb    *sql.DB // writes: a single connection on SQLite
	rdb    *sql.DB // reads
	tmpDir string  // removed on Close for temporary stores

	ingestCh chan *ingestReq
	stop     chan struct{}
	wg       sync.WaitGroup

	events eventHub
	locks  lockTable
	pgs    *pgState // cross-instance events and locks; nil on SQLite

	// closeMu orders Close after every in-flight hand-over to the writer.
	closeMu sync.RWMutex
	closing bool

	ingested chan struct{} // pokes the retention loop
	wrote    chan struct{} // pokes the checkpoint loop
	compact  chan struct{} // PostgreSQL only: pokes the live count's compaction
	trgm     bool          // PostgreSQL only: the trigram index of search columns exists (pgtrgm.go)
	// plain makes searches take no shortcut (no recent window, probe,
	// candidate list or walk): tests compare the shortcuts' results with it.
	plain bool
	ckdb  *sql.DB    // SQLite only: the checkpoint connection
	tail  searchTail // SQLite only: how far the search index has caught up (searchtail.go)

	stmts map[string]*sql.Stmt // hot write statements, prepared at Open; read-only after

	lastValidity atomic.Int64 // the highest UIDVALIDITY this Store handed out

	closeOnce sync.Once
	closed    chan struct{}
}

// Open opens (creating and migrating when needed) the store named by
// opts.DSN.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{
		opts:     opts,
		log:      opts.Logger,
		ingestCh: make(chan *ingestReq, 1024),
		stop:     make(chan struct{}),
		closed:   make(chan struct{}),
		ingested: make(chan struct{}, 1),
		wrote:    make(chan struct{}, 1),
	}
	s.locks.init()
	s.events.init()
	var err error
	switch {
	case strings.HasPrefix(opts.DSN, "postgres://") || strings.HasPrefix(opts.DSN, "postgresql://"):
		s.pg = true
		err = s.openPostgres(ctx, opts.DSN)
	default:
		err = s.openSQLite(ctx, opts.DSN)
	}
	if err != nil {
		s.closeDBs()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.closeDBs()
		return nil, err
	}
	if s.pg {
		s.ensureTrigram(ctx, "pg_trgm")
	}
	if err := s.EnsureWebhookMarks(ctx, opts.WebhookURLs); err != nil {
		s.closeDBs()
		return nil, err
	}
	if s.pg {
		if err := s.startPG(ctx, opts.DSN); err != nil {
			s.closeDBs()
			return nil, err
		}
	}
	if err := s.prepareHot(ctx); err != nil {
		s.closeDBs()
		return nil, err
	}
	if err := s.loadSearchTail(ctx); err != nil {
		s.closeDBs()
		return nil, err
	}
	s.wg.Add(1)
	go s.ingestLoop()
	if s.ckdb != nil {
		s.wg.Add(1)
		go s.checkpointLoop()
	}
	if s.pg {
		s.compact = make(chan struct{}, 1)
		s.wg.Add(1)
		go s.compactLoop()
	}
	if opts.MaxAge > 0 || opts.MaxMessages > 0 || opts.RelayKeep > 0 {
		s.wg.Add(1)
		go s.retentionLoop()
	}
	return s, nil
}

func (s *Store) openSQLite(ctx context.Context, path string) error {
	// "mail.db?sync=full" fsyncs every commit, surviving power loss as well;
	// the default (NORMAL, in WAL mode) survives any process crash, kill -9
	// included, and costs no fsync per commit.
	sync := "NORMAL"
	if p, opt, ok := strings.Cut(path, "?"); ok {
		path = p
		switch strings.ToLower(opt) {
		case "sync=full":
			sync = "FULL"
		case "sync=normal":
		default:
			return fmt.Errorf("open store %s: unknown option %q (want sync=full or sync=normal)", path, opt)
		}
	}
	if path == "" {
		dir, err := os.MkdirTemp("", "mailsandbox-")
		if err != nil {
			return fmt.Errorf("open store: make temporary directory: %w", err)
		}
		s.tmpDir = dir
		path = filepath.Join(dir, "mail.db")
		// A temporary store is removed at exit anyway; an application crash
		// loses nothing with OFF, only a power cut would.
		sync = "OFF"
	}
	// Pages stay at SQLite's 4 KiB: a commit writes every page it touched,
	// and a small message touches ~20 B-trees (larger pages measured 20-55%
	// slower for 1 KB mail, and no faster for 100 KB).
	base := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(" + sync + ")"
	// The writer checkpoints only as a backstop (80 MB of WAL); checkpoints
	// normally run on their own connection, off the commit path.
	w, err := sql.Open("sqlite", base+"&_txlock=immediate&_pragma=wal_autocheckpoint(20000)")
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	s.wdb = w
	// Readers map the file (up to 1 GiB) instead of read()ing each page:
	// a scan of every body (text search) spends two thirds of its time
	// copying pages in otherwise. The writer is left as it is.
	r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)&_pragma=mmap_size(1073741824)")
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	s.rdb = r
	if err := w.PingContext(ctx); err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	ck, err := sql.Open("sqlite", base)
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	ck.SetMaxOpenConns(1)
	s.ckdb = ck
	return nil
}

// checkpointLoop copies the WAL into the database file in the background,
// at most a few times a second and only after writes, so commits never wait
// for it.
func (s *Store) checkpointLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.wrote:
		}
		if _, err := s.ckdb.Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
			s.log.Warn("wal checkpoint failed", "err", err)
		}
		select {
		case <-s.stop:
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (s *Store) openPostgres(ctx context.Context, dsn string) error {
	db, err := openPGDB(dsn)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	s.wdb, s.rdb = db, db
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("open store: connect to postgres: %w", err)
	}
	return nil
}

// txStmt returns a hot query bound to tx, prepared once at Open (parsing
// SQL is a large share of an ingest's cost on SQLite). Queries not prepared
// at Open are prepared on the transaction itself: on SQLite the write pool
// has one connection, which the transaction holds.
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts[query]; ok {
		return tx.StmtContext(ctx, st), nil
	}
	st, err := tx.PrepareContext(ctx, s.q(query))
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return st, nil
}

func (s *Store) prepareHot(ctx context.Context) error {
	s.stmts = map[string]*sql.Stmt{}
	for _, q := range s.hotQueries() {
		st, err := s.wdb.PrepareContext(ctx, s.q(q))
		if err != nil {
			return fmt.Errorf("open store: prepare: %w", err)
		}
		s.stmts[q] = st
	}
	return nil
}

// Postgres reports whether the store is on PostgreSQL.
func (s *Store) Postgres() bool { return s.pg }

// Close stops the background work, waits for pending ingests to finish and
// closes the database. A temporary store's files are removed. Safe to call
// more than once.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closeMu.Lock()
		s.closing = true
		s.closeMu.Unlock()
		close(s.stop)
		s.wg.Wait()
		s.stopPG()
		close(s.closed)
		s.events.closeAll()
		err = s.closeDBs()
		if s.tmpDir != "" {
			if rerr := os.RemoveAll(s.tmpDir); rerr != nil && err == nil {
				err = fmt.Errorf("remove temporary store: %w", rerr)
			}
		}
	})
	return err
}

func (s *Store) closeDBs() error {
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	if s.ckdb != nil {
		errs = append(errs, s.ckdb.Close())
	}
	if s.rdb != nil && s.rdb != s.wdb {
		errs = append(errs, s.rdb.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	return errors.Join(errs...)
}

// q rewrites ? placeholders into PostgreSQL's $n form. Our SQL has no ? in
// string literals, so a plain scan is enough.
func (s *Store) q(query string) string {
	if !s.pg {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func (s *Store) now() time.Time { return s.opts.Now() }

// newID returns a sortable unique message id: 48 bits of milliseconds and 80
// random bits in Crockford base32 (a ULID).
func newID(t time.Time) string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	var out [26]byte
	// 128 bits into 26 base32 digits, most significant first.
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 | uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 | uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	for i := 25; i >= 0; i-- {
		out[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// NormalizeAddress returns the mailbox name for an address: trimmed, angle
// brackets removed, lower-cased.
func NormalizeAddress(a string) string {
	return strings.ToLower(strings.Trim(strings.TrimSpace(a), "<>"))
}
