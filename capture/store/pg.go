package store

// What several instances sharing one PostgreSQL database need beyond the
// shared tables:
//
//   - Events. Every event published locally is also sent with NOTIFY on a
//     channel of the database schema (after the change committed), and each
//     instance LISTENs on a dedicated connection and feeds the events of the
//     other instances into its own hub. Payloads are JSON, {"i": instance,
//     "n": sequence, "e": [events]}, packed up to the 8000-byte NOTIFY limit;
//     an event too big for one payload is sent as {"reset": true}, which
//     makes every receiver cut its subscribers off, so they re-read the
//     state they follow (the hub's documented contract for lagging
//     subscribers). Receivers do the same after their LISTEN connection was
//     lost and came back, as events may have been missed meanwhile.
//   - POP3 maildrop locks. A lock is a session-level advisory lock, keyed by
//     a hash of the schema and the mailbox, on a connection pinned while
//     it is held; a dead instance's locks end with its connections.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

const (
	// eventChannel is the NOTIFY channel in the public schema; other
	// schemas add their name, so stores in different schemas of one
	// database never see each other's events.
	eventChannel = "mailsandbox_events"
	// maxNotifyPayload keeps payloads under PostgreSQL's 8000-byte limit.
	maxNotifyPayload = 7800
	// maxPendingNotify bounds the events waiting to be sent; past it they
	// are replaced by one reset.
	maxPendingNotify = 100000
)

// pgState is the cross-instance machinery of a PostgreSQL store.
type pgState struct {
	dsn      string
	instance string // in every payload, so an instance skips its own
	channel  string
	locks    *sql.DB // connections pinned by maildrop locks

	mu      sync.Mutex
	pending []Event
	reset   bool // send a reset instead of pending
	stopped bool
	seq     int64
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{} // the notifier flushed and returned

	cancelListen context.CancelFunc
	listenDone   chan struct{}
}

// notification is the NOTIFY payload.
type notification struct {
	Instance string  `json:"i"`
	Seq      int64   `json:"n"`
	Events   []Event `json:"e,omitempty"`
	Reset    bool    `json:"reset,omitempty"`
}

// startPG starts the notifier and the listener; it returns once the
// listener is listening, so events committed by other instances after Open
// returns are seen.
func (s *Store) startPG(ctx context.Context, dsn string) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	p := &pgState{
		dsn: dsn, instance: hex.EncodeToString(b[:]),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		listenDone: make(chan struct{}),
	}
	var schema string
	if err := s.rdb.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("open store: read schema: %w", err)
	}
	p.channel = eventChannel
	if schema != "public" {
		p.channel = eventChannel + ":" + schema
		if len(p.channel) > 63 { // identifiers are cut at 63 bytes
			p.channel = p.channel[:63]
		}
	}
	locks, err := openPGDB(dsn)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	locks.SetMaxIdleConns(2)
	p.locks = locks
	conn, err := s.listen(ctx, p)
	if err != nil {
		locks.Close()
		return fmt.Errorf("open store: listen for events of other instances: %w", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	p.cancelListen = cancel
	s.pgs = p
	go s.notifyLoop(p)
	go s.listenLoop(lctx, p, conn)
	return nil
}

// stopPG flushes pending notifications and stops the listener. It runs
// after every writer has stopped.
func (s *Store) stopPG() {
	p := s.pgs
	if p == nil {
		return
	}
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	p.cancelListen()
	<-p.listenDone
	p.locks.Close()
}

// notify queues evs for the other instances.
func (s *Store) notify(evs []Event) {
	p := s.pgs
	if p == nil || len(evs) == 0 {
		return
	}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	if !p.reset {
		p.pending = append(p.pending, evs...)
		if len(p.pending) > maxPendingNotify {
			p.pending, p.reset = nil, true
		}
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// notifyLoop sends queued events in order, as few NOTIFYs as fit.
func (s *Store) notifyLoop(p *pgState) {
	defer close(p.done)
	for {
		stopping := false
		select {
		case <-p.wake:
		case <-p.stop:
			stopping = true
		}
		p.mu.Lock()
		evs, reset := p.pending, p.reset
		p.pending, p.reset = nil, false
		p.mu.Unlock()
		if len(evs) > 0 || reset {
			s.sendNotifications(p, evs, reset)
		}
		if stopping {
			return
		}
	}
}

func (s *Store) sendNotifications(p *pgState, evs []Event, reset bool) {
	var payloads []string
	next := func(n notification) string {
		p.seq++
		n.Instance, n.Seq = p.instance, p.seq
		b, _ := json.Marshal(n)
		return string(b)
	}
	if reset {
		payloads = append(payloads, next(notification{Reset: true}))
	}
	var cur []Event
	size := 0
	const overhead = 64 // instance, sequence and punctuation
	for _, ev := range evs {
		b, _ := json.Marshal(ev)
		if len(b)+overhead > maxNotifyPayload {
			// Too big for any payload: receivers re-read instead.
			if len(cur) > 0 {
				payloads = append(payloads, next(notification{Events: cur}))
				cur, size = nil, 0
			}
			payloads = append(payloads, next(notification{Reset: true}))
			continue
		}
		if size+len(b)+1+overhead > maxNotifyPayload {
			payloads = append(payloads, next(notification{Events: cur}))
			cur, size = nil, 0
		}
		cur = append(cur, ev)
		size += len(b) + 1
	}
	if len(cur) > 0 {
		payloads = append(payloads, next(notification{Events: cur}))
	}
	// One statement, so one round trip and one transaction for them all.
	// A notification needs no durability: its commit need not wait for the
	// disk (each transaction that notifies gets a transaction id, so it
	// would otherwise cost a WAL flush).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.wdb.ExecContext(ctx, `SELECT pg_notify($1, t.p)
		FROM (SELECT set_config('synchronous_commit', 'off', true)) AS c,
			unnest($2::text[]) WITH ORDINALITY AS t(p, i) ORDER BY t.i`, p.channel, payloads); err != nil {
		s.log.Warn("store: could not tell other instances about changes", "events", len(evs), "err", err)
	}
}

// listen opens the dedicated connection and LISTENs on the channel.
func (s *Store) listen(ctx context.Context, p *pgState) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.dsn)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{p.channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// listenLoop feeds other instances' events into the local hub until ctx
// ends, reconnecting with backoff when the connection is lost.
func (s *Store) listenLoop(ctx context.Context, p *pgState, conn *pgx.Conn) {
	defer close(p.listenDone)
	backoff := 100 * time.Millisecond
	for {
		if conn == nil {
			c, err := s.listen(ctx, p)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("store: reconnecting for events of other instances", "err", err, "retry_in", backoff)
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			s.log.Info("store: listening again for events of other instances")
			conn, backoff = c, 100*time.Millisecond
			// Events may have been missed while disconnected.
			s.events.cutOff()
		}
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			conn.Close(cctx)
			cancel()
			conn = nil
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("store: lost the connection for events of other instances", "err", err)
			continue
		}
		s.receive(p, n.Payload)
	}
}

func (s *Store) receive(p *pgState, payload string) {
	var n notification
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		s.log.Warn("store: bad event notification", "err", err)
		s.events.cutOff()
		return
	}
	if n.Instance == p.instance {
		return
	}
	if n.Reset {
		s.events.cutOff()
		return
	}
	s.publishLocal(n.Events...)
}

// lockShared takes the cross-instance lock of a mailbox: a session-level
// advisory lock on a pinned connection, released by the returned func.
func (s *Store) lockShared(ctx context.Context, mailbox string) (func(), error) {
	const key = `hashtextextended(current_schema() || '/pop3/' || $1, 0)`
	conn, err := s.pgs.locks.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", mailbox, err)
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(`+key+`)`, mailbox).Scan(&ok); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lock %s: %w", mailbox, err)
	}
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("lock %s: %w", mailbox, ErrLocked)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var released bool
		err := conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock(`+key+`)`, mailbox).Scan(&released)
		if err != nil || !released {
			// Drop the connection instead: its session, and the lock, end.
			s.log.Warn("store: unlock mailbox; dropping its connection", "mailbox", mailbox, "err", err)
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		if err := conn.Close(); err != nil && !errors.Is(err, driver.ErrBadConn) && !errors.Is(err, sql.ErrConnDone) {
			s.log.Debug("store: release lock connection", "err", err)
		}
	}, nil
}

// lockFolders locks, in one order every instance shares, the folders a
// batch of ingests will take UIDs from, creating missing INBOXes in that
// order first. Without it two instances filing mail for the same
// mailboxes in different orders deadlock on the folder rows, whose lock
// also keeps UIDs appearing in ascending order.
func (s *Store) lockFolders(ctx context.Context, tx *sql.Tx, batch []*ingestReq) error {
	type key struct{ mailbox, folder string }
	create := map[key]bool{}
	for _, r := range batch {
		folder := r.row.folder
		if folder == "" {
			folder = InboxName
		}
		for _, mb := range r.row.mailboxes {
			k := key{pgText(mb), pgText(folder)} // as the database returns them
			create[k] = create[k] || r.row.folder == ""
		}
	}
	keys := make([]key, 0, len(create))
	for k := range create {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].mailbox != keys[j].mailbox {
			return keys[i].mailbox < keys[j].mailbox
		}
		return keys[i].folder < keys[j].folder
	})
	mbs, names := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		mbs[i], names[i] = k.mailbox, k.folder
	}
	lock := func() (map[key]bool, error) {
		// Rows are locked after sorting, so in this order (byte order, as
		// Go's sort above).
		// The same statement takes the seq lock, shared with every other
		// ingest (a webhook sender takes it exclusively to learn which seqs
		// are settled, settledSeqPG): one round trip instead of two.
		rows, err := tx.QueryContext(ctx, `SELECT f.mailbox, f.name FROM (SELECT pg_advisory_xact_lock_shared(`+seqLockKey+`)) AS seq_lock,
			folders f JOIN unnest($1::text[], $2::text[]) AS k(mb, nm) ON f.mailbox = k.mb AND f.name = k.nm
			ORDER BY f.mailbox COLLATE "C", f.name COLLATE "C" FOR UPDATE OF f`, mbs, names)
		if err != nil {
			return nil, fmt.Errorf("ingest: lock folders: %w", err)
		}
		defer rows.Close()
		have := map[key]bool{}
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.mailbox, &k.folder); err != nil {
				return nil, fmt.Errorf("ingest: lock folders: %w", err)
			}
			have[k] = true
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("ingest: lock folders: %w", err)
		}
		return have, nil
	}
	have, err := lock()
	if err != nil {
		return err
	}
	raced := false
	for _, k := range keys {
		if have[k] || !create[k] {
			continue
		}
		if _, err := s.createFolder(ctx, tx, k.mailbox, k.folder, ""); errors.Is(err, ErrExists) {
			raced = true // created meanwhile by another instance: not locked yet
		} else if err != nil {
			return err
		}
	}
	if raced {
		// Rarely out of order now; a deadlock is retried by insertRetry.
		_, err = lock()
	}
	return err
}

// insertRetry is insertRows, tried again when PostgreSQL aborts the
// transaction to break a deadlock or a serialization conflict with another
// instance.
func (s *Store) insertRetry(ctx context.Context, batch []*ingestReq) error {
	for try := 1; ; try++ {
		err := s.insertRows(ctx, batch)
		if err == nil || !s.pg || !retryable(err) || try == 5 {
			return err
		}
		s.log.Debug("store: ingest conflicted with another instance; retrying", "err", err, "try", try)
		time.Sleep(time.Duration(try) * 5 * time.Millisecond)
	}
}

// retryable reports a PostgreSQL error that a new attempt of the same
// transaction may not meet: a deadlock or a serialization failure.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// insertRowsPG files a whole batch with one statement per table instead of
// several per message: on PostgreSQL each statement is a network round
// trip, which would otherwise bound ingest. The folders are locked (and
// missing INBOXes created) by lockFolders first.
func (s *Store) insertRowsPG(ctx context.Context, tx *sql.Tx, batch []*ingestReq) error {
	n := len(batch)
	var (
		ids, froms, rcpts, fromNames, fromAddrs, tos, ccs, subjects, msgIDs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		snippets, parseErrs, searchTos, searchFroms, searchSubjects, texts  = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		received, sizes, dates                                              = make([]int64, n), make([]int64, n), make([]int64, n)
		hasAtts, copies                                                     = make([]int32, n), make([]int32, n)
		users, replyTos, bccs, atts, inls                                   = make([]string, n), make([]string, n), make([]string, n), make([]int32, n), make([]int32, n)
		clientIPs, helos                                                    = make([]string, n), make([]string, n)
		raws                                                                = make([][]byte, n)
	)
	for i, req := range batch {
		r, p := &req.row, req.row.p
		r.entries = r.entries[:0]
		to, _ := json.Marshal(nonNil(p.To))
		cc, _ := json.Marshal(nonNil(p.Cc))
		rc, _ := json.Marshal(nonNilS(r.env.To))
		ids[i], received[i], froms[i], rcpts[i], sizes[i] = r.id, micros(r.received), r.env.From, string(rc), int64(len(r.raw))
		fromNames[i], fromAddrs[i], tos[i], ccs[i], subjects[i], dates[i], msgIDs[i] = p.From.Name, p.From.Address, string(to), string(cc), p.Subject, micros(p.Date), p.MessageID
		if p.HasAttachments {
			hasAtts[i] = 1
		}
		snippets[i], parseErrs[i], searchTos[i], searchFroms[i], searchSubjects[i] = p.Snippet, p.ParseError(), r.searchTo, r.searchFrom, strings.ToLower(p.Subject)
		copies[i], raws[i], texts[i] = int32(len(r.mailboxes)), r.raw, r.text
		users[i], replyTos[i], bccs[i], atts[i], inls[i] = r.env.Username, r.replyToJSON, r.bccJSON, int32(r.attachments), int32(r.inlines)
		clientIPs[i], helos[i] = r.env.ClientIP, r.env.Helo
	}
	// Messages and their bodies in one statement (one round trip): the
	// bodies take the seqs the messages' insert returns, matched by id.
	rows, err := tx.QueryContext(ctx, `WITH m AS (INSERT INTO messages (id, received_at, mail_from, rcpt_to, size,
		from_name, from_addr, to_json, cc_json, subject, date, message_id, has_attachments, snippet,
		parse_error, search_to, search_from, search_subject, copies,
		username, reply_to_json, bcc_json, attachments, inlines, client_ip, helo)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[],
			$9::text[], $10::text[], $11::bigint[], $12::text[], $13::int[], $14::text[], $15::text[], $16::text[], $17::text[],
			$18::text[], $19::int[], $20::text[], $21::text[], $22::text[], $23::int[], $24::int[], $25::text[], $26::text[])
		RETURNING id, seq),
	b AS (INSERT INTO bodies (seq, raw, text)
		SELECT m.seq, u.raw, u.text FROM m JOIN unnest($1::text[], $27::bytea[], $28::text[]) AS u(id, raw, text) ON u.id = m.id)
	SELECT id, seq FROM m`,
		ids, received, froms, rcpts, sizes, fromNames, fromAddrs, tos, ccs, subjects, dates, msgIDs, hasAtts, snippets,
		parseErrs, searchTos, searchFroms, searchSubjects, copies, users, replyTos, bccs, atts, inls, clientIPs, helos, raws, texts)
	if err != nil {
		return fmt.Errorf("ingest: insert messages: %w", err)
	}
	seqOf := make(map[string]int64, n)
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			rows.Close()
			return fmt.Errorf("ingest: insert messages: %w", err)
		}
		seqOf[id] = seq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ingest: insert messages: %w", err)
	}
	for _, req := range batch {
		seq, ok := seqOf[req.row.id]
		if !ok {
			return fmt.Errorf("ingest: insert messages: no sequence number for %s", req.row.id)
		}
		req.row.seq = seq
	}

	// UIDs and entries in one statement (one round trip): each folder's
	// uidnext moves once by the number of entries it gets, and entries take
	// the UIDs in batch order: the k-th entry of a folder in the batch gets
	// its first UID + k.
	order, need, _ := folderNeeds(batch, pgText) // lockFolders made the INBOXes
	mbs, names, counts := make([]string, len(order)), make([]string, len(order)), make([]int64, len(order))
	for i, k := range order {
		mbs[i], names[i], counts[i] = k.mailbox, k.folder, int64(need[k])
	}
	var (
		eSeqs, eNth, eReceived     []int64
		eMailboxes, eNames, eFlags []string
		eSeen                      []int32
	)
	nth := make(map[uidKey]int64, len(order))
	for _, req := range batch {
		r := &req.row
		folder := r.folder
		if folder == "" {
			folder = InboxName
		}
		seen, flags := flagCols(r.flags)
		for _, mb := range r.mailboxes {
			k := uidKey{pgText(mb), pgText(folder)}
			eSeqs, eMailboxes, eNames, eNth = append(eSeqs, r.seq), append(eMailboxes, k.mailbox), append(eNames, k.folder), append(eNth, nth[k])
			eSeen, eFlags, eReceived = append(eSeen, int32(seen)), append(eFlags, flags), append(eReceived, micros(r.internal))
			nth[k]++
		}
	}
	rows, err = tx.QueryContext(ctx, `WITH u AS (UPDATE folders f SET uidnext = f.uidnext + k.n
		FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k(mb, nm, n)
		WHERE f.mailbox = k.mb AND f.name = k.nm
		RETURNING f.mailbox, f.name, f.id, f.uidnext - k.n AS first, f.uidvalidity),
	e AS (INSERT INTO entries (msg_seq, mailbox, folder_id, uid, seen, flags, received_at)
		SELECT x.seq, x.mb, u.id, u.first + x.nth, x.seen, x.flags, x.received
		FROM unnest($4::bigint[], $5::text[], $6::text[], $7::bigint[], $8::int[], $9::text[], $10::bigint[]) AS x(seq, mb, nm, nth, seen, flags, received)
		JOIN u ON u.mailbox = x.mb AND u.name = x.nm)
	SELECT mailbox, name, id, first, uidvalidity FROM u`,
		mbs, names, counts, eSeqs, eMailboxes, eNames, eNth, eSeen, eFlags, eReceived)
	if err != nil {
		return fmt.Errorf("ingest: file entries: %w", err)
	}
	type alloc struct {
		id       int64
		next     int64
		validity int64
	}
	allocs := make(map[uidKey]*alloc, len(order))
	for rows.Next() {
		var k uidKey
		var a alloc
		if err := rows.Scan(&k.mailbox, &k.folder, &a.id, &a.next, &a.validity); err != nil {
			rows.Close()
			return fmt.Errorf("ingest: file entries: %w", err)
		}
		allocs[k] = &a
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ingest: file entries: %w", err)
	}
	for _, req := range batch {
		r := &req.row
		folder := r.folder
		if folder == "" {
			folder = InboxName
		}
		for _, mb := range r.mailboxes {
			// A folder the update did not find filed nothing: the caller
			// rolls the batch back.
			a := allocs[uidKey{pgText(mb), pgText(folder)}]
			if a == nil {
				return fmt.Errorf("folder %s of %s: %w", folder, mb, ErrNotFound)
			}
			r.entries = append(r.entries, insertedEntry{mailbox: mb, folderID: a.id, uid: uint32(a.next), validity: uint32(a.validity)})
			a.next++
		}
	}
	for _, req := range batch {
		if err := s.queueDeliveries(ctx, tx, &req.row); err != nil {
			return err
		}
	}
	return s.insertBatchTags(ctx, tx, batch)
}

// openPGDB opens a pool whose connections make every string argument fit
// PostgreSQL's text type, which holds neither NUL nor invalid UTF-8 (SQLite
// keeps both). Stored and looked-up values go through the same mapping, so
// lookups of such values still match what was stored, and odd input (a
// header with a raw 0xff byte, a URL with %00) is never an error.
func openPGDB(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg)}), nil
}

type pgConnector struct{ driver.Connector }

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := dc.(*stdlib.Conn)
	if !ok {
		return dc, nil
	}
	return &pgConn{sc}, nil
}

// pgConn is the pgx connection with string arguments made valid text.
type pgConn struct{ *stdlib.Conn }

func (c *pgConn) CheckNamedValue(nv *driver.NamedValue) error {
	switch v := nv.Value.(type) {
	case string:
		nv.Value = pgText(v)
	case []string:
		var out []string
		for i, s := range v {
			if t := pgText(s); t != s {
				if out == nil {
					out = append([]string{}, v...)
				}
				out[i] = t
			}
		}
		if out != nil {
			nv.Value = out
		}
	}
	return c.Conn.CheckNamedValue(nv)
}

// pgText replaces NUL and invalid UTF-8 with U+FFFD.
func pgText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// forUpdate is the locking clause for a read that a write in the same
// transaction depends on. SQLite needs none: its write transactions are
// exclusive. On PostgreSQL, without it another instance may change the row
// between the read and the write (say, claim a delivery whose lease just
// ran out while its old owner records its outcome).
func (s *Store) forUpdate() string {
	if s.pg {
		return ` FOR UPDATE`
	}
	return ""
}
