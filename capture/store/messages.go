package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

const summaryCols = `m.seq, m.id, m.received_at, m.mail_from, m.rcpt_to, m.size, m.from_name, m.from_addr,
	m.to_json, m.cc_json, m.subject, m.date, m.message_id, m.has_attachments, m.snippet, m.parse_error,
	m.username, m.reply_to_json, m.bcc_json, m.attachments, m.inlines, m.client_ip, m.helo`

type rowScanner interface{ Scan(dest ...any) error }

func scanSummary(sc rowScanner, extra ...any) (Message, error) {
	var m Message
	var received, date int64
	var rcpt, toJSON, ccJSON, replyToJSON, bccJSON string
	var hasAtt int
	dest := append([]any{&m.seq, &m.ID, &received, &m.Envelope.From, &rcpt, &m.Size, &m.From.Name, &m.From.Address,
		&toJSON, &ccJSON, &m.Subject, &date, &m.MessageID, &hasAtt, &m.Snippet, &m.ParseError,
		&m.Envelope.Username, &replyToJSON, &bccJSON, &m.Attachments, &m.Inlines, &m.Envelope.ClientIP, &m.Envelope.Helo}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return m, err
	}
	m.ReceivedAt, m.Date = fromMicros(received), fromMicros(date)
	m.HasAttachments = hasAtt != 0
	_ = json.Unmarshal([]byte(rcpt), &m.Envelope.To)
	_ = json.Unmarshal([]byte(toJSON), &m.To)
	_ = json.Unmarshal([]byte(ccJSON), &m.Cc)
	_ = json.Unmarshal([]byte(replyToJSON), &m.ReplyTo)
	_ = json.Unmarshal([]byte(bccJSON), &m.Bcc)
	m.To, m.Cc, m.Envelope.To = nonNil(m.To), nonNil(m.Cc), nonNilS(m.Envelope.To)
	m.ReplyTo, m.Bcc = nonNil(m.ReplyTo), nonNil(m.Bcc)
	m.Mailboxes = []string{}
	return m, nil
}

// Get returns the summary of message id with all its mailboxes; Seen is true
// when every copy is seen.
func (s *Store) Get(ctx context.Context, id string) (Message, error) {
	row := s.rdb.QueryRowContext(ctx, s.q(`SELECT `+summaryCols+` FROM messages m WHERE m.id = ? AND m.copies > 0`), id)
	m, err := scanSummary(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, fmt.Errorf("message %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Message{}, fmt.Errorf("get message %s: %w", id, err)
	}
	ms := []Message{m}
	if err := s.fillMailboxes(ctx, ms, ""); err != nil {
		return Message{}, err
	}
	return ms[0], nil
}

// Raw returns the exact bytes received for message id. Messages that are
// no longer in any mailbox but still wait in the relay queue stay readable.
func (s *Store) Raw(ctx context.Context, id string) ([]byte, error) {
	var raw []byte
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT b.raw FROM messages m JOIN bodies b ON b.seq = m.seq WHERE m.id = ?`), id).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read message %s: %w", id, err)
	}
	return raw, nil
}

// Search returns the page of messages matching q, newest first, and the
// number of all matches.
func (s *Store) Search(ctx context.Context, q Query) ([]Message, int, error) {
	msgs, total, _, err := s.search(ctx, q, countExact)
	return msgs, total, err
}

// SearchCapped is Search with the count of matches stopped at limit
// (CountCap when 0): total is exact when exact is true, else at least
// limit. Listings whose counts are kept (all mail, a mailbox, a folder,
// without filters) are always exact. The count walks the matches in the
// page's order, so a filter matching many costs about limit rows.
func (s *Store) SearchCapped(ctx context.Context, q Query, limit int) (msgs []Message, total int, exact bool, err error) {
	if limit <= 0 {
		limit = CountCap
	}
	return s.search(ctx, q, limit)
}

// Find returns the page of messages matching q, newest first, without
// counting every match: its cost follows the page asked for (and, for a
// filter matching few, the index lookup), never the number of matches.
func (s *Store) Find(ctx context.Context, q Query) ([]Message, error) {
	msgs, _, _, err := s.search(ctx, q, countNone)
	return msgs, err
}

// search's counting modes; a positive value counts up to that many.
const (
	countExact = 0
	countNone  = -1
)

func (s *Store) search(ctx context.Context, q Query, countLimit int) ([]Message, int, bool, error) {
	wantTotal := countLimit != countNone
	if q.Limit < 0 || q.Offset < 0 {
		return nil, 0, false, fmt.Errorf("search: %w: negative limit or offset", ErrInvalid)
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit > MaxLimit {
		q.Limit = MaxLimit
	}
	var where, filters []string
	var args, filterArgs []any
	mailbox := NormalizeAddress(q.Mailbox)
	from, cols, order := `messages m`, summaryCols, `m.seq DESC`
	// count is the cheap way to count when no filter applies; kept is
	// set when that is the kept count of all mail (livecount.go).
	var count string
	var countArgs []any
	kept := false
	switch {
	case mailbox != "" && q.Folder != "":
		var fid int64
		err := s.rdb.QueryRowContext(ctx, s.q(`SELECT id FROM folders WHERE mailbox = ? AND name = ?`), mailbox, q.Folder).Scan(&fid)
		if errors.Is(err, sql.ErrNoRows) {
			return []Message{}, 0, true, nil
		}
		if err != nil {
			return nil, 0, false, fmt.Errorf("search: find folder: %w", err)
		}
		// Walks entries_folder_seq backwards: no sort, no temporary table.
		// A folder may hold two copies of one message (IMAP COPY): the
		// first stands for both.
		from, cols, order = `entries e JOIN messages m ON m.seq = e.msg_seq`, summaryCols+`, e.seen`, `e.msg_seq DESC`
		where = append(where, `e.folder_id = ?`)
		args = append(args, fid)
		if !s.noCopies(ctx, `c.folder_id = ?`, fid) {
			where = append(where, `e.id = (SELECT MIN(e2.id) FROM entries e2 WHERE e2.msg_seq = e.msg_seq AND e2.folder_id = e.folder_id)`)
		}
		count, countArgs = `SELECT COALESCE((SELECT msgs FROM folder_counts WHERE folder_id = ?), 0)`, []any{fid}
	case mailbox != "":
		// One row per message even when it sits in several folders: the
		// mailbox's first entry stands for it.
		from, order = `entries e JOIN messages m ON m.seq = e.msg_seq`, `e.msg_seq DESC`
		cols += `, (SELECT MIN(e3.seen) FROM entries e3 WHERE e3.msg_seq = e.msg_seq AND e3.mailbox = e.mailbox)`
		where = append(where, `e.mailbox = ?`)
		args = append(args, mailbox)
		if !s.noCopies(ctx, `c.folder_id IN (SELECT id FROM folders WHERE mailbox = ?)`, mailbox) {
			where = append(where, `e.id = (SELECT MIN(e2.id) FROM entries e2 WHERE e2.msg_seq = e.msg_seq AND e2.mailbox = e.mailbox)`)
		}
		// A mailbox with one folder has its kept count; across folders a
		// message may sit in several, so they are counted.
		count = `SELECT CASE WHEN (SELECT COUNT(*) FROM folders WHERE mailbox = ?) <= 1
			THEN COALESCE((SELECT c.msgs FROM folders f JOIN folder_counts c ON c.folder_id = f.id WHERE f.mailbox = ?), 0)
			ELSE (SELECT COUNT(DISTINCT msg_seq) FROM entries WHERE mailbox = ?) END`
		countArgs = []any{mailbox, mailbox, mailbox}
	default:
		// "+" keeps the planner walking seq backwards, which finds a page
		// at once (an index on copies would need a sort).
		where = append(where, `+m.copies > 0`)
		kept = true
	}
	key := `m.seq`
	if mailbox != "" {
		key = `e.msg_seq`
	}
	var cursor int64
	if q.BeforeID != "" {
		var err error
		if cursor, err = s.cursorSeq(ctx, q.BeforeID); err != nil {
			return nil, 0, false, err
		}
	}
	if !wantTotal && !s.plain && (q.To != "" || q.From != "" || q.Subject != "" || q.Tag != "" || len(q.Conds) > 0) {
		out, ok, err := s.recentPage(ctx, q, where, args, from, cols, order, key, mailbox, cursor)
		if err != nil {
			return nil, 0, false, err
		}
		if ok {
			return out, 0, true, nil
		}
	}
	filters, filterArgs, noMatch, walk := s.filters(ctx, q)
	if noMatch {
		return []Message{}, 0, true, nil
	}
	where, args = append(where, filters...), append(args, filterArgs...)
	cond := ` WHERE ` + strings.Join(where, ` AND `)
	// pageFrom is what the page (and the capped count) read: on
	// PostgreSQL, for a filter matching many, messages walked newest first
	// below the cursor (walkFrom).
	pageFrom, pageFromArgs, countFrom := from, []any(nil), from
	if walk && mailbox == "" {
		pageFrom, pageFromArgs = walkFrom(cursor)
		countFrom, _ = walkFrom(0)
	}
	capped := false
	if len(filters) > 0 {
		kept = false
		count, countArgs = `SELECT COUNT(*) FROM `+from+cond, args
		if countLimit > 0 {
			// Walks the matches in the page's order and stops one past
			// the cap: a filter matching many costs about countLimit rows.
			count = `SELECT COUNT(*) FROM (SELECT 1 FROM ` + countFrom + cond + ` ORDER BY ` + order + ` LIMIT ?) capped`
			countArgs = append(append([]any{}, args...), countLimit+1)
			capped = true
		}
	}
	var total int
	exact := true
	if wantTotal && kept {
		var err error
		if total, err = s.liveCount(ctx); err != nil {
			return nil, 0, false, fmt.Errorf("search: %w", err)
		}
	} else if wantTotal {
		if err := s.rdb.QueryRowContext(ctx, s.q(count), countArgs...).Scan(&total); err != nil {
			return nil, 0, false, fmt.Errorf("search: count: %w", err)
		}
		if capped && total > countLimit {
			total, exact = countLimit, false
		}
	}
	if wantTotal && exact && total <= q.Offset {
		return []Message{}, total, exact, nil
	}
	// The cursor bounds the key the page walks, so a deep page costs what
	// the first does; it is not part of the count (total stays "all
	// matches", as with offset).
	pageCond, pageArgs := cond, args
	if cursor != 0 {
		pageCond, pageArgs = cond+` AND `+key+` < ?`, append(append([]any{}, args...), cursor)
		if s.pg && key != `m.seq` {
			// PostgreSQL carries no bound across the join: without it, a
			// merge join walks messages from the newest down to the cursor.
			pageCond, pageArgs = pageCond+` AND m.seq < ?`, append(pageArgs, cursor)
		}
	}
	out, err := s.page(ctx, `SELECT `+cols+` FROM `+pageFrom+pageCond+` ORDER BY `+order+` LIMIT ? OFFSET ?`,
		append(append(pageFromArgs, pageArgs...), q.Limit, q.Offset), mailbox)
	if err != nil {
		return nil, 0, false, err
	}
	return out, total, exact, nil
}

// walkFrom (PostgreSQL) is messages m as live messages walked newest
// first, below cursor when it is not 0. OFFSET 0 keeps the planner from
// merging it into the query around it (which filters it and stops at a
// page): it cannot then choose to read every match of a filter it
// misjudges as selective and sort them. The cursor is inside, as no
// condition is carried into such a subquery.
func walkFrom(cursor int64) (string, []any) {
	if cursor != 0 {
		return `(SELECT * FROM messages WHERE copies > 0 AND seq < ? ORDER BY seq DESC OFFSET 0) m`, []any{cursor}
	}
	return `(SELECT * FROM messages WHERE copies > 0 ORDER BY seq DESC OFFSET 0) m`, nil
}

// page runs a listing's query and reads its summaries, with their
// mailboxes (and that mailbox's seen state when mailbox is set).
func (s *Store) page(ctx context.Context, query string, args []any, mailbox string) ([]Message, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	out := []Message{}
	for rows.Next() {
		var seen int
		var extra []any
		if mailbox != "" {
			extra = append(extra, &seen)
		}
		m, err := scanSummary(rows, extra...)
		if err != nil {
			return nil, fmt.Errorf("search: scan: %w", err)
		}
		m.Seen = seen != 0
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	rows.Close()
	if err := s.fillMailboxes(ctx, out, mailbox); err != nil {
		return nil, err
	}
	return out, nil
}

// recentWindow is how many of the newest messages (below the cursor) a
// page without a count first looks in: the mail a test waits for has
// usually just arrived, and checking a thousand rows' columns costs less
// than asking the trigram index about every match.
const recentWindow = 1000

// recentPage looks for q's page among the newest recentWindow messages
// below cursor (0: none), checking each row's columns. ok is false when
// the window does not hold a whole page, or q's filters need an index
// (body text) to be cheap.
func (s *Store) recentPage(ctx context.Context, q Query, base []string, baseArgs []any, from, cols, order, key, mailbox string, cursor int64) (_ []Message, ok bool, _ error) {
	if q.ID != "" || q.Text != "" {
		return nil, false, nil
	}
	pattern := func(v string) string { return "%" + escapeLike(strings.ToLower(v)) + "%" }
	where, args := append([]string{}, base...), append([]any{}, baseArgs...)
	add := func(f string, a ...any) { where, args = append(where, f), append(args, a...) }
	if q.To != "" {
		add(`m.search_to LIKE ? ESCAPE '\'`, pattern(q.To))
	}
	if q.From != "" {
		add(`m.search_from LIKE ? ESCAPE '\'`, pattern(q.From))
	}
	if q.Subject != "" {
		add(`m.search_subject LIKE ? ESCAPE '\'`, pattern(q.Subject))
	}
	if q.Tag != "" {
		add(tagRowSQL, strings.ToLower(strings.TrimSpace(q.Tag)))
	}
	if !q.Since.IsZero() {
		add(`m.received_at >= ?`, micros(q.Since))
	}
	if !q.Before.IsZero() {
		add(`m.received_at < ?`, micros(q.Before))
	}
	for _, c := range q.Conds {
		switch c.Field {
		case CondText:
			return nil, false, nil // reads bodies: the full path resolves it once
		case CondTag:
			f := tagRowSQL
			if c.Not {
				f = `NOT ` + f
			}
			add(f, strings.ToLower(strings.TrimSpace(c.Text)))
			continue
		}
		f, a := s.condSQL(c)
		add(f, a...)
	}
	top := cursor
	if top == 0 {
		if err := s.rdb.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM messages`).Scan(&top); err != nil {
			return nil, false, fmt.Errorf("search: newest message: %w", err)
		}
	}
	add(key+` < ?`, top)
	add(key+` >= ?`, top-recentWindow)
	var fromArgs []any
	if s.pg {
		// The window's rows are read and checked one by one: PostgreSQL
		// would otherwise also ask the trigram index for every match of
		// a needle and intersect (19 ms for a needle of common trigrams,
		// where the window takes 1). OFFSET 0 keeps the conditions out.
		from = strings.Replace(from, `messages m`, `(SELECT * FROM messages WHERE seq < ? AND seq >= ? ORDER BY seq DESC OFFSET 0) m`, 1)
		fromArgs = []any{top, top - recentWindow}
	}
	out, err := s.page(ctx, `SELECT `+cols+` FROM `+from+` WHERE `+strings.Join(where, ` AND `)+` ORDER BY `+order+` LIMIT ? OFFSET ?`,
		append(append(fromArgs, args...), q.Limit, q.Offset), mailbox)
	if err != nil || len(out) < q.Limit {
		return nil, false, err
	}
	return out, true, nil
}

// filters compiles q's conditions (all but mailbox, folder and paging)
// into SQL over messages m. noMatch is true when one of them is known to
// match nothing.
//
// walk is set on PostgreSQL when a filter matches many of the newest
// messages: the page and the capped count then walk messages newest first
// (walkFrom), as SQLite's plan does by itself. PostgreSQL's planner,
// misjudging how many rows such a filter keeps (it has no statistics for
// LOWER(to_json) and the like), would otherwise read and sort every match.
func (s *Store) filters(ctx context.Context, q Query) (filters []string, filterArgs []any, noMatch, walk bool) {
	pattern := func(v string) string { return "%" + escapeLike(strings.ToLower(v)) + "%" }
	narrowed := false // a filter already keeps few candidates
	like := func(col, v string) {
		if q.ID != "" || s.plain || (!s.pg && strings.ContainsAny(v, `%_\`)) {
			filters = append(filters, `m.`+col+` LIKE ? ESCAPE '\'`)
			filterArgs = append(filterArgs, pattern(v))
			return
		}
		// The trigram index answers LIKE without reading every row, but
		// on SQLite only without an ESCAPE clause: needles with LIKE's
		// special characters take the scan above, as does a query for one
		// message. A selective needle is resolved once, here, so that the
		// count and the page do not both search the index.
		pat, cond := "%"+strings.ToLower(v)+"%", `m.`+col+` LIKE ?`
		if s.pg {
			pat, cond = pattern(v), cond+` ESCAPE '\'`
		}
		if s.dense(ctx, col, pat) {
			// Matches are everywhere: walking messages newest first finds
			// a page within a few rows, where the trigram index would
			// read the postings of every match.
			filters = append(filters, cond)
			filterArgs = append(filterArgs, pat)
			walk = walk || s.pg
			return
		}
		if ids, ok := s.ftsCandidates(ctx, col, pat); ok {
			if len(ids) == 0 {
				noMatch = true
				return
			}
			narrowed = narrowed || len(ids) <= narrowEnough
			filters = append(filters, `m.seq IN (`+strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+`)`)
			filterArgs = append(filterArgs, ids...)
			return
		}
		// Too many matches to list (or, on PostgreSQL, no trigram index):
		// so many rows match that walking messages newest first and
		// checking the column finds a page after few rows, where the
		// subquery would collect every match.
		filters = append(filters, cond)
		filterArgs = append(filterArgs, pat)
	}
	if q.To != "" {
		like(`search_to`, q.To)
	}
	if q.From != "" {
		like(`search_from`, q.From)
	}
	if q.Subject != "" {
		like(`search_subject`, q.Subject)
	}
	if q.Text != "" {
		// Resolved once when it matches few, so that the count and the
		// page do not both read every body.
		if ids, ok := s.textCandidates(ctx, q.Text, `search_subject`); ok && q.ID == "" {
			if len(ids) == 0 {
				noMatch = true
			} else {
				filters = append(filters, `m.seq IN (`+strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+`)`)
				filterArgs = append(filterArgs, ids...)
			}
		} else {
			f, a := s.textCond(q.Text)
			filters, filterArgs = append(filters, f), append(filterArgs, a...)
		}
	}
	if q.Tag != "" {
		f, a, none, many := s.tagCond(ctx, q.Tag)
		if none {
			return nil, nil, true, false
		}
		filters, filterArgs = append(filters, f), append(filterArgs, a...)
		walk = walk || (many && s.pg)
	}
	if q.ID != "" {
		// One row: reading its columns beats any index of all rows.
		filters = append(filters, `m.id = ?`)
		filterArgs = append(filterArgs, q.ID)
	}
	if !q.Since.IsZero() {
		filters = append(filters, `m.received_at >= ?`)
		filterArgs = append(filterArgs, micros(q.Since))
	}
	if !q.Before.IsZero() {
		filters = append(filters, `m.received_at < ?`)
		filterArgs = append(filterArgs, micros(q.Before))
	}
	// Subjects first: usually the most selective, they may leave so few
	// candidates that the other conditions need no index lookup.
	conds := make([]Cond, 0, len(q.Conds))
	for _, c := range q.Conds {
		if c.Field == CondSubject {
			conds = append(conds, c)
		}
	}
	for _, c := range q.Conds {
		if c.Field != CondSubject {
			conds = append(conds, c)
		}
	}
	for _, c := range conds {
		// Positive substring conditions on indexed columns take the
		// trigram index, as the fields above do.
		// Sender and recipient conditions first narrow through the index
		// of search_from / search_to (which hold, lower-cased, every name
		// and address of those headers, and the envelope), then check the
		// header itself.
		if !c.Not && c.Text != "" {
			switch c.Field {
			case CondSubject:
				like(`search_subject`, c.Text)
				continue
			case CondFrom:
				if !narrowed {
					like(`search_from`, c.Text)
				}
			case CondTo, CondCc:
				if !narrowed {
					like(`search_to`, c.Text)
				}
			case CondTag:
				f, a, none, many := s.tagCond(ctx, c.Text)
				if none {
					noMatch = true
				}
				filters, filterArgs = append(filters, f), append(filterArgs, a...)
				walk = walk || (many && s.pg)
				continue
			case CondText:
				if narrowed {
					break
				}
				if ids, ok := s.textCandidates(ctx, c.Text); ok && q.ID == "" {
					if len(ids) == 0 {
						noMatch = true
						continue
					}
					filters = append(filters, `m.seq IN (`+strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+`)`)
					filterArgs = append(filterArgs, ids...)
					continue
				}
			}
		}
		f, a := s.condSQL(c)
		filters, filterArgs = append(filters, f), append(filterArgs, a...)
	}
	return filters, filterArgs, noMatch, walk
}

// tagCond is the condition "message m has tag". A tag on many of the
// newest messages is checked row by row as the page walks newest first
// (a page is found within a few rows); a rarer one lists its messages
// once. none is true when no message has the tag, many when it is on
// many of the newest.
func (s *Store) tagCond(ctx context.Context, tag string) (cond string, args []any, none, many bool) {
	key := strings.ToLower(strings.TrimSpace(tag))
	var id int64
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT id FROM tag_names WHERE key = ?`), key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return `1 = 0`, nil, true, false
	}
	if err != nil {
		return tagSQL, []any{key}, false, false // the page's query reports the error
	}
	var recent int
	err = s.rdb.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM message_tags
		WHERE tag_id = ? AND msg_seq > (SELECT COALESCE(MAX(seq), 0) FROM messages) - ?`), id, denseProbe).Scan(&recent)
	if err == nil && recent >= denseShare && !s.plain {
		return `EXISTS (SELECT 1 FROM message_tags mt WHERE mt.msg_seq = m.seq AND mt.tag_id = ?)`, []any{id}, false, true
	}
	return `m.seq IN (SELECT mt.msg_seq FROM message_tags mt WHERE mt.tag_id = ?)`, []any{id}, false, false
}

// textCandidates resolves a word of Mailpit's search (sender, recipients,
// subject or body) once: the header columns through the trigram index,
// the bodies in one scan, instead of scanning both for the count and
// again for the page. ok is false when that does not apply (no trigram
// index on PostgreSQL) or matches too many.
func (s *Store) textCandidates(ctx context.Context, v string, cols ...string) (ids []any, ok bool) {
	if strings.ContainsAny(v, `%_\`) || (s.pg && !s.trgm) || s.plain {
		return nil, false
	}
	pat := "%" + strings.ToLower(v) + "%"
	seen := map[int64]bool{}
	add := func(list []any) {
		for _, id := range list {
			if seq := id.(int64); !seen[seq] {
				seen[seq] = true
				ids = append(ids, seq)
			}
		}
	}
	if len(cols) == 0 {
		cols = []string{`search_from`, `search_to`, `search_subject`}
	}
	for _, col := range cols {
		list, ok := s.ftsCandidates(ctx, col, pat)
		if !ok {
			return nil, false
		}
		add(list)
	}
	body, err := s.bodyMatches(ctx, pat, maxCandidates+1)
	if err != nil || len(body) > maxCandidates {
		return nil, false
	}
	add(body)
	return ids, len(ids) <= maxCandidates
}

// bodyMatches lists the messages whose body text matches the LIKE
// pattern (without LIKE's special characters), stopping at limit.
func (s *Store) bodyMatches(ctx context.Context, pat string, limit int) ([]any, error) {
	query := `SELECT seq FROM bodies
		WHERE (CASE WHEN text_off < 0 THEN text ELSE CAST(substr(raw, text_off + 1, text_len) AS TEXT) END) LIKE ? LIMIT ?`
	if s.pg {
		query = `SELECT seq FROM bodies WHERE text LIKE $1 LIMIT $2` // PostgreSQL keeps the text itself
	}
	rows, err := s.rdb.QueryContext(ctx, query, pat, limit)
	if err != nil {
		return nil, fmt.Errorf("search bodies: %w", err)
	}
	defer rows.Close()
	var out []any
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return nil, fmt.Errorf("search bodies: %w", err)
		}
		out = append(out, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search bodies: %w", err)
	}
	return out, nil
}

// textCond matches the subject or the decoded body text.
func (s *Store) textCond(v string) (string, []any) {
	pat := "%" + escapeLike(strings.ToLower(v)) + "%"
	texts := `SELECT seq FROM bodies WHERE text LIKE ? ESCAPE '\'`
	if !s.pg {
		// A text kept as a span of the raw message is read from there.
		texts = `SELECT seq FROM bodies
			WHERE (CASE WHEN text_off < 0 THEN text ELSE CAST(substr(raw, text_off + 1, text_len) AS TEXT) END) LIKE ? ESCAPE '\'`
	}
	return `(m.search_subject LIKE ? ESCAPE '\' OR m.seq IN (` + texts + `))`, []any{pat, pat}
}

// condSQL compiles one Cond into a condition on messages m.
func (s *Store) condSQL(c Cond) (string, []any) {
	pat := "%" + escapeLike(strings.ToLower(c.Text)) + "%"
	// lowered compares a column holding mixed case (JSON of addresses).
	lowered := func(cols ...string) (string, []any) {
		var parts []string
		var args []any
		for _, col := range cols {
			parts = append(parts, `LOWER(m.`+col+`) LIKE ? ESCAPE '\'`)
			args = append(args, pat)
		}
		return `(` + strings.Join(parts, ` OR `) + `)`, args
	}
	var sqlText string
	var args []any
	switch c.Field {
	case CondText:
		// Mailpit's words match its search text: the sender, recipients,
		// subject and body.
		t, ta := s.textCond(c.Text)
		sqlText = `(m.search_from LIKE ? ESCAPE '\' OR m.search_to LIKE ? ESCAPE '\' OR ` + t + `)`
		args = append([]any{pat, pat}, ta...)
	case CondSubject:
		sqlText, args = `m.search_subject LIKE ? ESCAPE '\'`, []any{pat}
	case CondFrom:
		sqlText, args = lowered(`from_name`, `from_addr`)
	case CondTo:
		sqlText, args = lowered(`to_json`)
	case CondCc:
		sqlText, args = lowered(`cc_json`)
	case CondBcc:
		sqlText, args = lowered(`bcc_json`)
	case CondReplyTo:
		sqlText, args = lowered(`reply_to_json`)
	case CondAddressed:
		sqlText, args = lowered(`from_name`, `from_addr`, `to_json`, `cc_json`, `bcc_json`, `reply_to_json`)
	case CondMessageID:
		sqlText, args = lowered(`message_id`)
	case CondTag:
		sqlText, args = tagSQL, []any{strings.ToLower(strings.TrimSpace(c.Text))}
	case CondTagged:
		sqlText = taggedSQL
	case CondRead:
		sqlText = readSQL
		if c.Not {
			return unreadSQL, nil
		}
	case CondAttachment:
		sqlText = `(m.attachments > 0 OR (m.has_attachments <> 0 AND m.inlines = 0))` // the latter: stored before counts were kept
	case CondInline:
		sqlText = `m.inlines > 0`
	case CondLarger:
		sqlText, args = `m.size > ?`, []any{c.Bytes}
	case CondSmaller:
		sqlText, args = `m.size < ?`, []any{c.Bytes}
	case CondAfter:
		sqlText, args = `m.received_at >= ?`, []any{micros(c.Time)}
	case CondBefore:
		sqlText, args = `m.received_at <= ?`, []any{micros(c.Time)}
	default:
		sqlText = `1 = 0`
	}
	if c.Not {
		sqlText = `NOT ` + sqlText
	}
	return sqlText, args
}

// Count returns how many messages match q (its paging ignored).
func (s *Store) Count(ctx context.Context, q Query) (int, error) {
	q.Limit, q.Offset = 1, 1<<31-1
	_, n, err := s.Search(ctx, q)
	return n, err
}

// readSQL holds for a message whose every copy is seen. It starts from
// the seen copies (entries_seen): new mail is unseen, so in a sandbox
// the read are few and counting them is cheap.
const readSQL = `(m.seq IN (SELECT msg_seq FROM entries WHERE seen = 1)
	AND NOT EXISTS (SELECT 1 FROM entries u WHERE u.msg_seq = m.seq AND u.seen = 0))`

// unreadSQL holds for a message with an unseen copy: for a message in
// some mailbox, exactly NOT readSQL, in a form that both planners check
// row by row as a page walks newest first (PostgreSQL turned NOT readSQL
// into a hash of every unseen copy: 350 ms at 100,000 messages).
const unreadSQL = `EXISTS (SELECT 1 FROM entries u WHERE u.msg_seq = m.seq AND u.seen = 0)`

// Unread counts the messages with at least one unseen copy: all messages
// but the read.
func (s *Store) Unread(ctx context.Context) (int, error) {
	all, err := s.liveCount(ctx)
	if err != nil {
		return 0, fmt.Errorf("count unread: %w", err)
	}
	var read int
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages m WHERE m.copies > 0 AND `+readSQL).Scan(&read); err != nil {
		return 0, fmt.Errorf("count unread: %w", err)
	}
	return all - read, nil
}

// matchAll is the condition selecting the messages in any mailbox that
// match q's filters (ignoring mailbox, folder and paging).
func (s *Store) matchAll(ctx context.Context, q Query) (cond string, args []any, noMatch bool) {
	filters, args, noMatch, _ := s.filters(ctx, q)
	return strings.Join(append([]string{`m.copies > 0`}, filters...), ` AND `), args, noMatch
}

// DeleteMatching removes every copy of the messages matching q's filters
// (its paging ignored) and returns how many messages went.
func (s *Store) DeleteMatching(ctx context.Context, q Query) error {
	cond, args, noMatch := s.matchAll(ctx, q)
	if noMatch {
		return nil
	}
	return s.deleteWhere(ctx, `msg_seq IN (SELECT m.seq FROM messages m WHERE `+cond+`)`, args, false)
}

// SetSeenMatching sets the seen state of every copy of the messages
// matching q's filters (its paging ignored).
func (s *Store) SetSeenMatching(ctx context.Context, q Query, seen bool) error {
	cond, args, noMatch := s.matchAll(ctx, q)
	if noMatch {
		return nil
	}
	v := 0
	if seen {
		v = 1
	}
	rows, err := s.wdb.QueryContext(ctx, s.q(`UPDATE entries SET seen = ? WHERE seen <> ? AND msg_seq IN (SELECT m.seq FROM messages m WHERE `+cond+`)
		RETURNING mailbox, folder_id, uid, (SELECT id FROM messages WHERE seq = entries.msg_seq)`), append([]any{v, v}, args...)...)
	if err != nil {
		return fmt.Errorf("mark seen: %w", err)
	}
	var evs []Event
	for rows.Next() {
		var ev Event
		var uid int64
		if err := rows.Scan(&ev.Mailbox, &ev.FolderID, &uid, &ev.MessageID); err != nil {
			rows.Close()
			return fmt.Errorf("mark seen: %w", err)
		}
		ev.Kind, ev.UIDs = EventFlags, []uint32{uint32(uid)}
		evs = append(evs, ev)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("mark seen: %w", err)
	}
	s.publish(evs...)
	return nil
}

// narrowEnough is how few candidates make further index lookups
// pointless: checking each candidate's columns is cheaper.
const narrowEnough = 200

// maxCandidates is how many trigram matches are resolved into a list of
// ids; a needle matching more is left to SQLite as a subquery.
const maxCandidates = 2000

// ftsCandidates asks the trigram index for the messages whose col matches
// pattern (escaped on PostgreSQL). ok is false when there are more than
// maxCandidates, when PostgreSQL has no trigram index, or on an error
// (which the subquery form will then report).
func (s *Store) ftsCandidates(ctx context.Context, col, pattern string) (ids []any, ok bool) {
	// The index's matches and those among the messages not indexed yet,
	// in one statement so that both read one snapshot (searchtail.go).
	query := `SELECT rowid FROM msg_search WHERE ` + col + ` LIKE ?1
		UNION ALL SELECT seq FROM messages WHERE seq > (SELECT upto FROM search_indexed) AND ` + col + ` LIKE ?1
		LIMIT ?2`
	if s.pg {
		if !s.trgm {
			return nil, false
		}
		query = `SELECT seq FROM messages WHERE ` + col + ` LIKE $1 ESCAPE '\' LIMIT $2`
	}
	rows, err := s.rdb.QueryContext(ctx, query, pattern, maxCandidates+1)
	if err != nil {
		return nil, false
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, false
		}
		ids = append(ids, id)
	}
	if rows.Err() != nil || len(ids) > maxCandidates {
		return nil, false
	}
	return ids, true
}

// fillMailboxes sets Mailboxes on each message and, unless the state of one
// mailbox was already read, Seen as "every copy seen".
func (s *Store) fillMailboxes(ctx context.Context, ms []Message, mailbox string) error {
	if len(ms) == 0 {
		return nil
	}
	idx := make(map[int64]int, len(ms))
	ph := make([]string, len(ms))
	args := make([]any, len(ms))
	for i, m := range ms {
		idx[m.seq] = i
		ph[i] = "?"
		args[i] = m.seq
		if mailbox == "" {
			ms[i].Seen = true
		}
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT msg_seq, mailbox, seen FROM entries WHERE msg_seq IN (`+strings.Join(ph, ",")+`) ORDER BY id`), args...)
	if err != nil {
		return fmt.Errorf("read mailboxes of messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var mb string
		var seen int
		if err := rows.Scan(&seq, &mb, &seen); err != nil {
			return fmt.Errorf("read mailboxes of messages: %w", err)
		}
		i := idx[seq]
		if !contains(ms[i].Mailboxes, mb) {
			ms[i].Mailboxes = append(ms[i].Mailboxes, mb)
		}
		if mailbox == "" && seen == 0 {
			ms[i].Seen = false
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read mailboxes of messages: %w", err)
	}
	return s.fillTags(ctx, ms)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Mailboxes lists every mailbox that has folders, by address.
func (s *Store) Mailboxes(ctx context.Context) ([]MailboxInfo, error) {
	// The kept counts (counts.go): no entry is read.
	return queryList(ctx, s, "list mailboxes", `SELECT f.mailbox, CAST(COALESCE(SUM(c.entries), 0) AS BIGINT),
		CAST(COALESCE(SUM(c.unseen), 0) AS BIGINT), CAST(COALESCE(MAX(c.latest), 0) AS BIGINT)
		FROM folders f LEFT JOIN folder_counts c ON c.folder_id = f.id GROUP BY f.mailbox ORDER BY f.mailbox`,
		func(sc rowScanner) (MailboxInfo, error) {
			var mi MailboxInfo
			var latest int64
			err := sc.Scan(&mi.Address, &mi.Total, &mi.Unread, &latest)
			mi.LatestAt = fromMicros(latest)
			return mi, err
		})
}

// SetSeen sets the seen state of message id in one mailbox, or in every
// mailbox when mailbox is "".
func (s *Store) SetSeen(ctx context.Context, id, mailbox string, seen bool) error {
	v := 0
	if seen {
		v = 1
	}
	mailbox = NormalizeAddress(mailbox)
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("mark seen: %w", err)
	}
	defer tx.Rollback()
	var seq int64
	if err := tx.QueryRowContext(ctx, s.q(`SELECT seq FROM messages WHERE id = ? AND copies > 0`), id).Scan(&seq); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("message %s: %w", id, ErrNotFound)
		}
		return fmt.Errorf("mark seen: %w", err)
	}
	query := `UPDATE entries SET seen = ? WHERE msg_seq = ?`
	args := []any{v, seq}
	if mailbox != "" {
		query += ` AND mailbox = ?`
		args = append(args, mailbox)
	}
	query += ` RETURNING mailbox, folder_id, uid`
	rows, err := tx.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return fmt.Errorf("mark seen: %w", err)
	}
	var evs []Event
	for rows.Next() {
		var ev Event
		var uid int64
		if err := rows.Scan(&ev.Mailbox, &ev.FolderID, &uid); err != nil {
			rows.Close()
			return fmt.Errorf("mark seen: %w", err)
		}
		ev.Kind, ev.MessageID, ev.UIDs = EventFlags, id, []uint32{uint32(uid)}
		evs = append(evs, ev)
	}
	rows.Close()
	if len(evs) == 0 {
		return fmt.Errorf("message %s in mailbox %s: %w", id, mailbox, ErrNotFound)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("mark seen: %w", err)
	}
	s.publish(evs...)
	return nil
}

// DeleteMessage removes message id from every mailbox.
func (s *Store) DeleteMessage(ctx context.Context, id string) error {
	return s.deleteWhere(ctx, `msg_seq = (SELECT seq FROM messages WHERE id = ?)`, []any{id}, true)
}

// DeleteMailbox empties a mailbox and removes its folders; other
// recipients' copies stay.
func (s *Store) DeleteMailbox(ctx context.Context, mailbox string) error {
	mailbox = NormalizeAddress(mailbox)
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete mailbox: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, s.q(`DELETE FROM folders WHERE mailbox = ?`), mailbox)
	if err != nil {
		return fmt.Errorf("delete mailbox %s: %w", mailbox, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("mailbox %s: %w", mailbox, ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM subscriptions WHERE mailbox = ?`), mailbox); err != nil {
		return fmt.Errorf("delete mailbox %s: subscriptions: %w", mailbox, err)
	}
	evs, err := s.deleteEntriesTx(ctx, tx, `mailbox = ?`, []any{mailbox})
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete mailbox %s: %w", mailbox, err)
	}
	s.publish(append(evs, Event{Kind: EventFolders, Mailbox: mailbox})...)
	return nil
}

// DeleteAll removes every message and every mailbox with its folders: the
// store is as a fresh sandbox's, and GET /mailboxes lists nothing.
func (s *Store) DeleteAll(ctx context.Context) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete all: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `DELETE FROM folders RETURNING mailbox`)
	if err != nil {
		return fmt.Errorf("delete all: folders: %w", err)
	}
	seen := map[string]bool{}
	var mailboxes []string
	for rows.Next() {
		var mb string
		if err := rows.Scan(&mb); err != nil {
			rows.Close()
			return fmt.Errorf("delete all: folders: %w", err)
		}
		if !seen[mb] {
			seen[mb] = true
			mailboxes = append(mailboxes, mb)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("delete all: folders: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM subscriptions`); err != nil {
		return fmt.Errorf("delete all: subscriptions: %w", err)
	}
	evs, err := s.deleteEntriesTx(ctx, tx, `1 = 1`, nil)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete all: %w", err)
	}
	for _, mb := range mailboxes {
		evs = append(evs, Event{Kind: EventFolders, Mailbox: mb})
	}
	s.publish(evs...)
	return nil
}

// DeleteEntries removes the given entries (by Entry.ID) of one mailbox.
// IDs that no longer exist are ignored.
func (s *Store) DeleteEntries(ctx context.Context, mailbox string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	ph := make([]string, len(ids))
	args := []any{NormalizeAddress(mailbox)}
	for i, id := range ids {
		ph[i] = "?"
		args = append(args, id)
	}
	return s.deleteWhere(ctx, `mailbox = ? AND id IN (`+strings.Join(ph, ",")+`)`, args, false)
}

func (s *Store) deleteWhere(ctx context.Context, cond string, args []any, mustExist bool) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	defer tx.Rollback()
	evs, err := s.deleteEntriesTx(ctx, tx, cond, args)
	if err != nil {
		return err
	}
	if mustExist && len(evs) == 0 {
		return fmt.Errorf("delete: %w", ErrNotFound)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	s.publish(evs...)
	return nil
}

// deleteEntriesTx deletes the entries matching cond, drops messages left in
// no mailbox, and returns the events to publish after commit.
func (s *Store) deleteEntriesTx(ctx context.Context, tx *sql.Tx, cond string, args []any) ([]Event, error) {
	rows, err := tx.QueryContext(ctx, s.q(`DELETE FROM entries WHERE `+cond+` RETURNING msg_seq, mailbox, folder_id, uid`), args...)
	if err != nil {
		return nil, fmt.Errorf("delete entries: %w", err)
	}
	type key struct {
		mailbox string
		folder  int64
	}
	bySeq := map[int64][]string{}
	var seqOrder []int64
	expunged := map[key][]uint32{}
	var keyOrder []key
	for rows.Next() {
		var seq, fid, uid int64
		var mb string
		if err := rows.Scan(&seq, &mb, &fid, &uid); err != nil {
			rows.Close()
			return nil, fmt.Errorf("delete entries: %w", err)
		}
		if _, ok := bySeq[seq]; !ok {
			seqOrder = append(seqOrder, seq)
		}
		if !contains(bySeq[seq], mb) {
			bySeq[seq] = append(bySeq[seq], mb)
		}
		k := key{mb, fid}
		if _, ok := expunged[k]; !ok {
			keyOrder = append(keyOrder, k)
		}
		expunged[k] = append(expunged[k], uint32(uid))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("delete entries: %w", err)
	}
	ids, err := s.collect(ctx, tx, seqOrder)
	if err != nil {
		return nil, err
	}
	var evs []Event
	if len(seqOrder) > bulkDeleteEvents {
		// One event instead of an event storm that would cut off every
		// subscriber: "many messages went; read the state again".
		evs = append(evs, Event{Kind: EventDeleted})
	} else {
		for _, seq := range seqOrder {
			evs = append(evs, Event{Kind: EventDeleted, MessageID: ids[seq], Mailboxes: bySeq[seq]})
		}
	}
	for _, k := range keyOrder {
		evs = append(evs, Event{Kind: EventDeleted, Mailbox: k.mailbox, FolderID: k.folder, UIDs: expunged[k]})
	}
	return evs, nil
}

// bulkDeleteEvents is the most per-message deleted events one deletion
// publishes.
const bulkDeleteEvents = 1000

// collect recounts the copies of the given messages and deletes those left
// in no mailbox and not waiting in the relay queue. It returns seq → id.
func (s *Store) collect(ctx context.Context, tx *sql.Tx, seqs []int64) (map[int64]string, error) {
	ids := make(map[int64]string, len(seqs))
	for start := 0; start < len(seqs); start += 500 {
		chunk := seqs[start:min(start+500, len(seqs))]
		ph := make([]string, len(chunk))
		args := make([]any, len(chunk))
		for i, seq := range chunk {
			ph[i], args[i] = "?", seq
		}
		in := `(` + strings.Join(ph, ",") + `)`
		if s.pg {
			// Lock the rows first, in one order: the recount below then runs
			// after, and sees, any other instance's committed removal of
			// other copies (else both could count the other's copy).
			if _, err := tx.ExecContext(ctx, s.q(`SELECT seq FROM messages WHERE seq IN `+in+` ORDER BY seq FOR UPDATE`), args...); err != nil {
				return nil, fmt.Errorf("recount copies: %w", err)
			}
		}
		rows, err := tx.QueryContext(ctx, s.q(`UPDATE messages SET copies = (SELECT COUNT(*) FROM entries e WHERE e.msg_seq = messages.seq)
			WHERE seq IN `+in+` RETURNING seq, id, copies`), args...)
		if err != nil {
			return nil, fmt.Errorf("recount copies: %w", err)
		}
		var gone []any
		for rows.Next() {
			var seq int64
			var id string
			var copies int
			if err := rows.Scan(&seq, &id, &copies); err != nil {
				rows.Close()
				return nil, fmt.Errorf("recount copies: %w", err)
			}
			ids[seq] = id
			if copies == 0 {
				gone = append(gone, seq)
			}
		}
		rows.Close()
		if len(gone) == 0 {
			continue
		}
		gph := strings.TrimSuffix(strings.Repeat("?,", len(gone)), ",")
		keep := ` AND seq NOT IN (SELECT msg_seq FROM deliveries WHERE status IN ('queued','sending'))`
		for _, t := range s.messageTables() {
			col, indexed := "seq", ""
			switch t {
			case "msg_search":
				col, indexed = "rowid", qIndexed
			case "message_tags":
				col = "msg_seq"
			}
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM `+t+` WHERE `+col+` IN (`+gph+`)`+strings.ReplaceAll(keep, " seq ", " "+col+" ")+indexed), gone...); err != nil {
				return nil, fmt.Errorf("drop messages left in no mailbox: %w", err)
			}
		}
		if err := s.dropFinishedDeliveries(ctx, tx, gone); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// messageTables are the tables holding a message's rows, in the order to
// delete them: the SQLite search index reads its columns from messages, so
// it must drop a row while that row is still there.
func (s *Store) messageTables() []string {
	if s.pg {
		return []string{"bodies", "message_tags", "messages"}
	}
	return []string{"bodies", "message_tags", "msg_search", "messages"}
}

func (s *Store) noteIngested(n int) {
	select {
	case s.ingested <- struct{}{}:
	default:
	}
	select {
	case s.wrote <- struct{}{}:
	default:
	}
}

// retentionLoop prunes past MaxMessages and MaxAge: after ingests, and
// every pruneEvery for age.
func (s *Store) retentionLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(min(pruneEvery(s.opts.MaxAge), pruneEvery(s.opts.RelayKeep)))
	defer tick.Stop()
	for {
		prune := s.Prune
		select {
		case <-s.stop:
			return
		case <-tick.C:
		case <-s.ingested:
			// Only the count can be exceeded by new mail; the finished
			// deliveries wait for the tick (no write per ingest for them).
			prune = s.pruneMessages
		}
		if err := prune(context.Background()); err != nil {
			s.log.Warn("retention prune failed", "err", err)
		}
	}
}

// pruneEvery is how often age is checked: a minute, or a tenth of a short
// MaxAge (at least 250 ms), so mail outlives MaxAge by little.
func pruneEvery(maxAge time.Duration) time.Duration {
	if maxAge <= 0 || maxAge >= 10*time.Minute {
		return time.Minute
	}
	return max(maxAge/10, 250*time.Millisecond)
}

// Prune deletes the oldest messages past the retention limits, and relay
// deliveries finished more than RelayKeep ago.
func (s *Store) Prune(ctx context.Context) error {
	if err := s.pruneMessages(ctx); err != nil {
		return err
	}
	return s.pruneDeliveries(ctx)
}

// pruneMessages deletes the oldest messages past MaxAge and MaxMessages.
func (s *Store) pruneMessages(ctx context.Context) error {
	if s.opts.MaxAge > 0 {
		cut := micros(s.now().Add(-s.opts.MaxAge))
		if err := s.deleteWhere(ctx, `msg_seq IN (SELECT seq FROM messages WHERE received_at < ?)`, []any{cut}, false); err != nil {
			return fmt.Errorf("prune by age: %w", err)
		}
	}
	if s.opts.MaxMessages > 0 {
		offset := `LIMIT -1 OFFSET ?`
		if s.pg {
			offset = `OFFSET ?`
		}
		if err := s.deleteWhere(ctx, `msg_seq IN (SELECT seq FROM messages WHERE copies > 0 ORDER BY seq DESC `+offset+`)`,
			[]any{s.opts.MaxMessages}, false); err != nil {
			return fmt.Errorf("prune by count: %w", err)
		}
	}
	return nil
}
