package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"
)

// The statements of every ingest, prepared once (see txStmt).
const (
	qInsertMessage = `INSERT INTO messages (id, received_at, mail_from, rcpt_to, size,
		from_name, from_addr, to_json, cc_json, subject, date, message_id, has_attachments, snippet,
		parse_error, search_to, search_from, search_subject, copies,
		username, reply_to_json, bcc_json, attachments, inlines, client_ip, helo)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
	qInsertBody  = `INSERT INTO bodies (seq, raw, text, text_off, text_len) VALUES (?, ?, ?, ?, ?)`
	qInsertEntry = `INSERT INTO entries (msg_seq, mailbox, folder_id, uid, seen, flags, received_at) VALUES (?,?,?,?,?,?,?)`
	qNextUIDs    = `UPDATE folders SET uidnext = uidnext + ? WHERE mailbox = ? AND name = ? RETURNING id, uidnext - ?, uidvalidity`
	// Messages go into the search index in batches, after their commits
	// (searchtail.go), one statement each: FTS5 flushes its pending terms
	// to a new segment at every statement, so a row per statement would
	// write (and later merge) a segment per message. The values are read
	// back from the rows written, so the index holds exactly what messages
	// holds (it reads messages again when a row is deleted).
	qInsertIndex = `INSERT INTO msg_search (rowid, search_to, search_from, search_subject)
		SELECT seq, search_to, search_from, search_subject FROM messages WHERE seq BETWEEN ? AND ?`
)

func (s *Store) hotQueries() []string {
	q := []string{qInsertMessage, qInsertBody, qInsertEntry, qNextUIDs}
	if !s.pg {
		q = append(q, qInsertIndex)
	}
	return q
}

// maxBatch bounds how many messages one group commit carries.
const maxBatch = 512

// ingestYields is how many times the writer yields to gather a batch.
const ingestYields = 3

type ingestReq struct {
	row  msgRow
	done chan error
}

// msgRow is a message ready to insert: everything parsed beforehand, so the
// single writer only writes.
type msgRow struct {
	id         string
	received   time.Time
	env        Envelope
	raw        []byte
	p          *mailparse.Message
	mailboxes  []string
	searchTo   string
	searchFrom string
	// text is the lower-cased body text for search, or, when textOff >= 0,
	// empty because the text is raw[textOff:textOff+textLen] (searchText).
	text             string
	textOff, textLen int64
	// Mailpit's view: Reply-To and Bcc as JSON, part counts.
	replyToJSON, bccJSON string
	attachments, inlines int
	// folder and flags place the message somewhere other than INBOX (IMAP
	// APPEND); folder "" means INBOX of every mailbox.
	folder     string
	flags      []string
	internal   time.Time
	deliveries []NewDelivery
	tags       []string // cleaned and capped
	// results, filled by the writer
	seq     int64
	entries []insertedEntry
}

type insertedEntry struct {
	mailbox  string
	folderID int64
	uid      uint32
	validity uint32
}

// Ingest stores raw as received with env, files it into the INBOX of every
// distinct (lower-cased) recipient, and returns its id once the write is
// durable. It never refuses a message for malformed MIME.
func (s *Store) Ingest(ctx context.Context, env Envelope, raw []byte) (string, error) {
	if len(env.To) == 0 {
		return "", fmt.Errorf("ingest: %w: no recipients", ErrInvalid)
	}
	row := s.newRow(env, raw)
	if s.opts.Enqueue != nil {
		row.deliveries = s.opts.Enqueue(env)
	}
	if s.opts.Tagger != nil {
		row.tags = autoTags(s.opts.Tagger(env, row.p, raw))
	}
	if err := s.submit(ctx, row); err != nil {
		return "", err
	}
	return row.id, nil
}

// Append stores raw straight into one folder of one mailbox, with flags and
// an internal date (IMAP APPEND). It returns the new entry.
func (s *Store) Append(ctx context.Context, mailbox, folder string, flags []string, internal time.Time, raw []byte) (Entry, error) {
	mailbox = NormalizeAddress(mailbox)
	if mailbox == "" || folder == "" {
		return Entry{}, fmt.Errorf("append: %w: mailbox and folder required", ErrInvalid)
	}
	row := s.newRow(Envelope{To: []string{mailbox}}, raw)
	row.folder = folder
	row.flags = flags
	if !internal.IsZero() {
		row.internal = internal
	}
	if err := s.submit(ctx, row); err != nil {
		return Entry{}, err
	}
	e := row.entries[0]
	return Entry{
		MessageID: row.id, Mailbox: mailbox, FolderID: e.folderID, UID: e.uid, Flags: normFlags(flags),
		Size: int64(len(raw)), ReceivedAt: row.internal, seq: row.seq,
	}, nil
}

func (s *Store) newRow(env Envelope, raw []byte) *msgRow {
	now := s.now().UTC()
	p := mailparse.Parse(raw)
	r := &msgRow{id: newID(now), received: now, internal: now, env: env, raw: raw, p: p}
	seen := map[string]bool{}
	var to strings.Builder
	for _, rc := range env.To {
		mb := NormalizeAddress(rc)
		if mb == "" || seen[mb] {
			continue
		}
		seen[mb] = true
		r.mailboxes = append(r.mailboxes, mb)
		to.WriteString(mb + "\n")
	}
	for _, a := range append(append([]Address{}, p.To...), p.Cc...) {
		to.WriteString(strings.ToLower(a.Name + " <" + a.Address + ">\n"))
	}
	r.searchTo = to.String()
	r.fillMailpit()
	r.searchFrom = strings.ToLower(p.From.Name + " <" + p.From.Address + ">\n" + env.From)
	if s.pg {
		// PostgreSQL's LIKE does not fold case: it always gets a lower-cased copy.
		r.text, r.textOff = p.SearchText(), -1
	} else {
		r.text, r.textOff, r.textLen = searchText(raw, p.SearchSource())
	}
	return r
}

// submit hands row to the writer and waits for its commit. Once handed
// over, the write is awaited even if ctx ends: the caller must learn the
// truth about a message that may already be stored.
func (s *Store) submit(ctx context.Context, row *msgRow) error {
	req := &ingestReq{row: *row, done: make(chan error, 1)}
	s.closeMu.RLock()
	if s.closing {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case s.ingestCh <- req:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return fmt.Errorf("ingest: %w", ctx.Err())
	}
	s.closeMu.RUnlock()
	err := <-req.done
	*row = req.row
	return err
}

func (s *Store) ingestLoop() {
	defer s.wg.Done()
	batch := make([]*ingestReq, 0, maxBatch)
	// The search index catches up once ingest pauses (or every indexEvery
	// messages, below).
	idle := cmp.Or(s.opts.indexIdle, indexIdle)
	pause := time.NewTimer(idle)
	defer pause.Stop()
	for {
		select {
		case <-pause.C:
			s.indexTailLogged()
		case r := <-s.ingestCh:
			batch = append(batch[:0], r)
			// Before committing, let the goroutines that are runnable run
			// (a few times), and take what they hand over: with 16 clients
			// sending, a commit that took only what was already queued
			// carried 1.3-1.5 messages on average, and every commit writes
			// the ~14 B-tree pages each message touches again; three
			// yields made it ~3 (server CPU per 1 KB message -17%). With
			// nothing else runnable (one client) a yield returns at once.
			for range ingestYields {
				runtime.Gosched()
			fill:
				for len(batch) < maxBatch {
					select {
					case r := <-s.ingestCh:
						batch = append(batch, r)
					default:
						break fill
					}
				}
			}
			s.commitBatch(batch)
			if s.tail.pending() >= indexEvery {
				s.indexTailLogged()
			}
		case <-s.stop:
			// Close holds closeMu, so no sender is mid-send: drain what is
			// left, and leave the index complete.
			for {
				select {
				case r := <-s.ingestCh:
					s.commitBatch([]*ingestReq{r})
				default:
					s.indexTailLogged()
					return
				}
			}
		}
		if s.tail.pending() > 0 {
			pause.Reset(idle)
		}
	}
}

func (s *Store) commitBatch(batch []*ingestReq) {
	// Writes must finish even while the store is closing.
	ctx := context.Background()
	err := s.insertRetry(ctx, batch)
	if err == nil || len(batch) == 1 {
		s.finish(batch, err)
		return
	}
	// One bad message must not fail the others: retry one by one.
	for _, r := range batch {
		s.finish([]*ingestReq{r}, s.insertRetry(ctx, []*ingestReq{r}))
	}
}

// finish publishes the events of a committed batch, then answers its
// callers: a client that saw 250 can count on the event having gone out.
// A batch that failed publishes nothing.
func (s *Store) finish(batch []*ingestReq, err error) {
	if err == nil {
		s.afterInsert(batch)
	}
	for _, r := range batch {
		r.done <- err
	}
}

func (s *Store) afterInsert(batch []*ingestReq) {
	evs := make([]Event, 0, len(batch))
	for _, r := range batch {
		if len(r.row.entries) == 0 {
			continue
		}
		evs = append(evs, Event{Kind: EventMessage, MessageID: r.row.id, Mailboxes: r.row.mailboxes})
		for _, e := range r.row.entries {
			evs = append(evs, Event{Kind: EventEntry, MessageID: r.row.id, Mailbox: e.mailbox, FolderID: e.folderID, UIDs: []uint32{e.uid}})
		}
		if len(r.row.deliveries) > 0 {
			evs = append(evs, Event{Kind: EventRelay, MessageID: r.row.id})
		}
	}
	s.publish(evs...)
	s.noteIngested(len(batch))
}

func (s *Store) insertRows(ctx context.Context, batch []*ingestReq) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ingest: begin: %w", err)
	}
	defer tx.Rollback()
	if s.pg {
		// lockFolders also takes the seq lock.
		if err := s.lockFolders(ctx, tx, batch); err != nil {
			return err
		}
		if err := s.insertRowsPG(ctx, tx, batch); err != nil {
			return err
		}
		batch = nil // filed
	}
	runs, err := s.allocBatchUIDs(ctx, tx, batch)
	if err != nil {
		return err
	}
	for _, r := range batch {
		r.row.entries = r.row.entries[:0]
		if err := s.insertRow(ctx, tx, &r.row, runs); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ingest: commit: %w", err)
	}
	if len(batch) > 0 {
		s.tail.noteCommitted(batch[len(batch)-1].row.seq) // SQLite: seqs rise through a batch
	}
	return nil
}

func (s *Store) insertRow(ctx context.Context, tx *sql.Tx, r *msgRow, runs map[uidKey]*uidRun) error {
	p := r.p
	toJSON, _ := json.Marshal(nonNil(p.To))
	ccJSON, _ := json.Marshal(nonNil(p.Cc))
	rcptJSON, _ := json.Marshal(nonNilS(r.env.To))
	hasAtt := 0
	if p.HasAttachments {
		hasAtt = 1
	}
	ins, err := s.txStmt(ctx, tx, qInsertMessage)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	res, err := ins.ExecContext(ctx,
		r.id, micros(r.received), r.env.From, string(rcptJSON), len(r.raw),
		p.From.Name, p.From.Address, string(toJSON), string(ccJSON), p.Subject, micros(p.Date), p.MessageID, hasAtt, p.Snippet,
		p.ParseError(), r.searchTo, r.searchFrom, strings.ToLower(p.Subject), len(r.mailboxes),
		r.env.Username, r.replyToJSON, r.bccJSON, r.attachments, r.inlines, r.env.ClientIP, r.env.Helo,
	)
	if err == nil {
		r.seq, err = res.LastInsertId() // SQLite only: seq is the rowid
	}
	if err != nil {
		return fmt.Errorf("ingest: insert message: %w", err)
	}
	if err := s.txExec(ctx, tx, qInsertBody, r.seq, r.raw, r.text, r.textOff, r.textLen); err != nil {
		return fmt.Errorf("ingest: insert body: %w", err)
	}
	folder := r.folder
	if folder == "" {
		folder = InboxName
	}
	seen, flags := flagCols(r.flags)
	for _, mb := range r.mailboxes {
		run := runs[uidKey{mb, folder}]
		uid := run.next
		run.next++
		if err := s.txExec(ctx, tx, qInsertEntry, r.seq, mb, run.folderID, uid, seen, flags, micros(r.internal)); err != nil {
			return fmt.Errorf("ingest: file into %s: %w", mb, err)
		}
		r.entries = append(r.entries, insertedEntry{mailbox: mb, folderID: run.folderID, uid: uid, validity: run.validity})
	}
	if len(r.tags) > 0 {
		if err := s.insertTags(ctx, tx, map[int64][]string{r.seq: r.tags}); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
	}
	return s.queueDeliveries(ctx, tx, r)
}

// queueDeliveries puts the row's relay deliveries on the queue, in the
// transaction that stores the message.
func (s *Store) queueDeliveries(ctx context.Context, tx *sql.Tx, r *msgRow) error {
	for _, d := range r.deliveries {
		if len(d.Recipients) == 0 {
			continue
		}
		if _, err := s.insertDelivery(ctx, tx, r.seq, r.id, r.env.From, d, r.received); err != nil {
			return err
		}
	}
	return nil
}

type uidKey struct{ mailbox, folder string }

// uidRun is a folder's UIDs taken for a batch; next is the next to use.
type uidRun struct {
	folderID       int64
	next, validity uint32
}

// allocBatchUIDs takes, for each folder a batch files into, all the UIDs it
// needs with one statement; entries use them in batch order. INBOXes are
// created as needed; other folders must exist (IMAP APPEND).
func (s *Store) allocBatchUIDs(ctx context.Context, tx *sql.Tx, batch []*ingestReq) (map[uidKey]*uidRun, error) {
	order, need, create := folderNeeds(batch, func(s string) string { return s })
	runs := make(map[uidKey]*uidRun, len(order))
	for _, k := range order {
		fid, first, v, err := s.allocUIDs(ctx, tx, k.mailbox, k.folder, create[k], need[k])
		if err != nil {
			return nil, err
		}
		runs[k] = &uidRun{folderID: fid, next: first, validity: v}
	}
	return runs, nil
}

// folderNeeds counts the entries a batch files into each folder, listing
// the folders in first-use order; create marks those that may be created
// (the INBOX of ingested mail). key maps names as the database returns them.
func folderNeeds(batch []*ingestReq, key func(string) string) (order []uidKey, need map[uidKey]int, create map[uidKey]bool) {
	need, create = map[uidKey]int{}, map[uidKey]bool{}
	for _, req := range batch {
		folder := req.row.folder
		if folder == "" {
			folder = InboxName
		}
		for _, mb := range req.row.mailboxes {
			k := uidKey{key(mb), key(folder)}
			if need[k] == 0 {
				order = append(order, k)
			}
			need[k]++
			create[k] = create[k] || req.row.folder == ""
		}
	}
	return order, need, create
}

// allocUID takes the next UID of a folder, creating the folder when create
// is set (INBOX always exists once a mailbox has had mail).
func (s *Store) allocUID(ctx context.Context, tx *sql.Tx, mailbox, folder string, create bool) (folderID int64, uid, validity uint32, err error) {
	return s.allocUIDs(ctx, tx, mailbox, folder, create, 1)
}

// allocUIDs takes n consecutive UIDs of a folder and returns the first.
func (s *Store) allocUIDs(ctx context.Context, tx *sql.Tx, mailbox, folder string, create bool, n int) (folderID int64, uid, validity uint32, err error) {
	for try := 0; try < 3; try++ {
		var next, v int64
		up, perr := s.txStmt(ctx, tx, qNextUIDs)
		if perr != nil {
			return 0, 0, 0, fmt.Errorf("allocate uid: %w", perr)
		}
		err = up.QueryRowContext(ctx, n, mailbox, folder, n).Scan(&folderID, &next, &v)
		if err == nil {
			return folderID, uint32(next), uint32(v), nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, 0, 0, fmt.Errorf("allocate uid in %s/%s: %w", mailbox, folder, err)
		}
		if !create {
			return 0, 0, 0, fmt.Errorf("folder %s of %s: %w", folder, mailbox, ErrNotFound)
		}
		if _, err := s.createFolder(ctx, tx, mailbox, folder, ""); err != nil && !errors.Is(err, ErrExists) {
			return 0, 0, 0, err
		}
	}
	return 0, 0, 0, fmt.Errorf("allocate uid in %s/%s: folder keeps vanishing", mailbox, folder)
}

// createFolder inserts a folder with a fresh UIDValidity, greater than any
// the store has handed out, so a re-created folder never reuses one.
func (s *Store) createFolder(ctx context.Context, tx *sql.Tx, mailbox, name, specialUse string) (Folder, error) {
	var maxV int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(uidvalidity), 0) FROM folders`).Scan(&maxV); err != nil {
		return Folder{}, fmt.Errorf("create folder %s: %w", name, err)
	}
	v := s.now().Unix()
	if v <= maxV {
		v = maxV + 1
	}
	// Folders deleted in this second (a mailbox emptied, DeleteAll) no
	// longer count in MAX: this process remembers what it handed out, so a
	// folder re-created at once never gets its old UIDVALIDITY back.
	for {
		last := s.lastValidity.Load()
		if v <= last {
			v = last + 1
		}
		if s.lastValidity.CompareAndSwap(last, v) {
			break
		}
	}
	f := Folder{Mailbox: mailbox, Name: name, UIDValidity: uint32(v), UIDNext: 1, SpecialUse: specialUse}
	err := tx.QueryRowContext(ctx, s.q(`INSERT INTO folders (mailbox, name, uidvalidity, uidnext, subscribed, special_use)
		VALUES (?,?,?,1,1,?) ON CONFLICT (mailbox, name) DO NOTHING RETURNING id`), mailbox, name, v, specialUse).Scan(&f.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return Folder{}, fmt.Errorf("create folder %s of %s: %w", name, mailbox, ErrExists)
	}
	if err != nil {
		return Folder{}, fmt.Errorf("create folder %s of %s: %w", name, mailbox, err)
	}
	// INBOX starts subscribed (clients that show only subscribed folders
	// still show it); other folders only when a client subscribes them.
	f.Subscribed = name == InboxName
	if f.Subscribed {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO subscriptions (mailbox, name) VALUES (?, ?) ON CONFLICT DO NOTHING`), mailbox, name); err != nil {
			return Folder{}, fmt.Errorf("subscribe %s of %s: %w", name, mailbox, err)
		}
	}
	return f, nil
}

func (s *Store) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	st, err := s.txStmt(ctx, tx, query)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, args...)
	return err
}

func nonNil(a []Address) []Address {
	if a == nil {
		return []Address{}
	}
	return a
}

func nonNilS(a []string) []string {
	if a == nil {
		return []string{}
	}
	return a
}

// fillMailpit computes the columns Mailpit's view reads: Bcc is the Bcc
// header's addresses, then every envelope recipient that neither To, Cc
// nor Bcc names.
func (r *msgRow) fillMailpit() {
	p := r.p
	named := map[string]bool{}
	for _, a := range append(append(append([]Address{}, p.To...), p.Cc...), p.Bcc...) {
		named[NormalizeAddress(a.Address)] = true
	}
	bcc := append([]Address{}, p.Bcc...)
	for _, rc := range r.env.To {
		mb := NormalizeAddress(rc)
		if mb == "" || named[mb] {
			continue
		}
		named[mb] = true
		bcc = append(bcc, Address{Address: strings.Trim(strings.TrimSpace(rc), "<>")})
	}
	b, _ := json.Marshal(bcc)
	rt, _ := json.Marshal(nonNil(p.ReplyTo))
	r.bccJSON, r.replyToJSON = string(b), string(rt)
	for _, a := range p.Attachments {
		if a.Inline {
			r.inlines++
		} else {
			r.attachments++
		}
	}
}
