package store

// Tags belong to a message (all its copies). They are case-insensitive:
// tag_names holds one row per lower-cased key with the spelling first
// seen, and renaming a tag is one row's change. Names use Mailpit's
// alphabet (letters, digits, "-", ".", "_", " ", "@") and are 1–100
// characters long.

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
)

// Tag limits.
const (
	MaxTagLen         = 100 // characters (all ASCII) of one tag
	MaxTagsPerMessage = 50  // tags one message keeps; more are dropped
)

// tagChar reports whether c may appear in a tag.
func tagChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '-', c == '.', c == '_', c == ' ', c == '@':
		return true
	}
	return false
}

// ValidTag checks a tag given by a user (REST, the UI): after trimming
// spaces, 1–100 characters of the tag alphabet. It returns the trimmed tag.
func ValidTag(tag string) (string, error) {
	t := strings.TrimSpace(tag)
	if t == "" {
		return "", fmt.Errorf("%w: empty tag", ErrInvalid)
	}
	if len(t) > MaxTagLen {
		return "", fmt.Errorf("%w: tag longer than %d characters", ErrInvalid, MaxTagLen)
	}
	for i := 0; i < len(t); i++ {
		if !tagChar(t[i]) {
			return "", fmt.Errorf("%w: tag %q: only letters, digits, space and - . _ @ are allowed", ErrInvalid, t)
		}
	}
	return t, nil
}

// CleanTag makes a tag of untrusted text (an X-Tags header, an address,
// Mailpit's PUT /api/v1/tags): as Mailpit does, characters outside the
// alphabet become spaces; runs of spaces collapse, the ends are trimmed,
// and the result is cut to MaxTagLen. It returns "" when nothing is left.
func CleanTag(s string) string {
	var b strings.Builder
	space := false
	for i := 0; i < len(s) && b.Len() < MaxTagLen; i++ {
		c := s[i]
		if c == ' ' || !tagChar(c) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
			if b.Len() == MaxTagLen {
				break
			}
		}
		b.WriteByte(c)
	}
	return strings.TrimRight(b.String(), " ") // a cut may end on a space
}

// uniqueTags returns the distinct tags (by key, first spelling kept), at
// most MaxTagsPerMessage.
func uniqueTags(tags []string) []string {
	out := make([]string, 0, len(tags))
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		k := strings.ToLower(t)
		if t == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, t)
		if len(out) == MaxTagsPerMessage {
			break
		}
	}
	return out
}

// validTags checks every tag a user gave and de-duplicates them.
func validTags(tags []string) ([]string, error) {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		v, err := ValidTag(t)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	distinct := map[string]bool{}
	for _, t := range out {
		distinct[strings.ToLower(t)] = true
	}
	if len(distinct) > MaxTagsPerMessage {
		return nil, fmt.Errorf("%w: more than %d tags", ErrInvalid, MaxTagsPerMessage)
	}
	return uniqueTags(out), nil
}

// tagIDs returns the ids of the given tags, creating the missing ones
// (keeping an existing spelling). keys maps key → spelling.
func (s *Store) tagIDs(ctx context.Context, tx *sql.Tx, keys map[string]string) (map[string]int64, error) {
	ids := make(map[string]int64, len(keys))
	if len(keys) == 0 {
		return ids, nil
	}
	ks, names := make([]string, 0, len(keys)), make([]string, 0, len(keys))
	for k, n := range keys {
		ks, names = append(ks, k), append(names, n)
	}
	sort.Strings(ks) // one lock order across writers
	for i, k := range ks {
		names[i] = keys[k]
	}
	var rows *sql.Rows
	var err error
	if s.pg {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tag_names (key, name) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (key) DO NOTHING`, ks, names); err != nil {
			return nil, fmt.Errorf("create tags: %w", err)
		}
		rows, err = tx.QueryContext(ctx, `SELECT id, key FROM tag_names WHERE key = ANY($1)`, ks)
	} else {
		args := make([]any, len(ks))
		for i, k := range ks {
			if _, err := tx.ExecContext(ctx, `INSERT INTO tag_names (key, name) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, k, names[i]); err != nil {
				return nil, fmt.Errorf("create tag %q: %w", names[i], err)
			}
			args[i] = k
		}
		rows, err = tx.QueryContext(ctx, `SELECT id, key FROM tag_names WHERE key IN (`+placeholders(len(ks))+`)`, args...)
	}
	if err != nil {
		return nil, fmt.Errorf("read tags: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var k string
		if err := rows.Scan(&id, &k); err != nil {
			return nil, fmt.Errorf("read tags: %w", err)
		}
		ids[k] = id
	}
	return ids, rows.Err()
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

// insertTags tags messages (seq → tags) in tx; tags already there stay.
func (s *Store) insertTags(ctx context.Context, tx *sql.Tx, tags map[int64][]string) error {
	keys := map[string]string{}
	for _, ts := range tags {
		for _, t := range ts {
			if k := strings.ToLower(t); keys[k] == "" {
				keys[k] = t
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	ids, err := s.tagIDs(ctx, tx, keys)
	if err != nil {
		return err
	}
	var seqs, tids []int64
	for seq, ts := range tags {
		for _, t := range ts {
			seqs, tids = append(seqs, seq), append(tids, ids[strings.ToLower(t)])
		}
	}
	if s.pg {
		if _, err := tx.ExecContext(ctx, `INSERT INTO message_tags (msg_seq, tag_id) SELECT * FROM unnest($1::bigint[], $2::bigint[]) ON CONFLICT DO NOTHING`, seqs, tids); err != nil {
			return fmt.Errorf("tag messages: %w", err)
		}
		return nil
	}
	for i := range seqs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO message_tags (msg_seq, tag_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, seqs[i], tids[i]); err != nil {
			return fmt.Errorf("tag messages: %w", err)
		}
	}
	return nil
}

// fillTags sets Tags on each message, sorted case-insensitively.
func (s *Store) fillTags(ctx context.Context, ms []Message) error {
	if len(ms) == 0 {
		return nil
	}
	idx := make(map[int64]int, len(ms))
	args := make([]any, len(ms))
	for i, m := range ms {
		idx[m.seq] = i
		args[i] = m.seq
		ms[i].Tags = []string{}
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT mt.msg_seq, t.name FROM message_tags mt JOIN tag_names t ON t.id = mt.tag_id
		WHERE mt.msg_seq IN (`+placeholders(len(ms))+`) ORDER BY t.key`), args...)
	if err != nil {
		return fmt.Errorf("read tags of messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var name string
		if err := rows.Scan(&seq, &name); err != nil {
			return fmt.Errorf("read tags of messages: %w", err)
		}
		i := idx[seq]
		ms[i].Tags = append(ms[i].Tags, name)
	}
	return rows.Err()
}

// Tags returns every tag some stored message has, sorted
// case-insensitively.
func (s *Store) Tags(ctx context.Context) ([]string, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT t.name FROM tag_names t WHERE EXISTS (SELECT 1 FROM message_tags mt JOIN messages m ON m.seq = mt.msg_seq
		WHERE mt.tag_id = t.id AND m.copies > 0) ORDER BY t.key`)
	if err != nil {
		return nil, fmt.Errorf("list tags: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list tags: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// TagOp says how EditTags combines the given tags with a message's own.
type TagOp int

// Tag operations.
const (
	TagsSet    TagOp = iota // replace (an empty list clears)
	TagsAdd                 // add to those it has
	TagsRemove              // remove these
)

// EditTags changes the tags of the messages ids. Tags must be valid
// (ValidTag); ids that do not exist are ignored unless none does
// (ErrNotFound).
func (s *Store) EditTags(ctx context.Context, ids []string, op TagOp, tags []string) error {
	tags, err := validTags(tags)
	if err != nil {
		return fmt.Errorf("tag messages: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("tag messages: %w", err)
	}
	defer tx.Rollback()
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	seqs, idOf, err := s.seqsOf(ctx, tx, `id IN (`+placeholders(len(ids))+`) AND copies > 0`, args)
	if err != nil {
		return err
	}
	if len(seqs) == 0 {
		return fmt.Errorf("tag messages: %w", ErrNotFound)
	}
	seqArgs := make([]any, len(seqs))
	for i, q := range seqs {
		seqArgs[i] = q
	}
	in := `msg_seq IN (` + placeholders(len(seqs)) + `)`
	switch op {
	case TagsSet:
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM message_tags WHERE `+in), seqArgs...); err != nil {
			return fmt.Errorf("tag messages: %w", err)
		}
	case TagsRemove:
		if len(tags) > 0 {
			keys := make([]any, 0, len(tags))
			for _, t := range tags {
				keys = append(keys, strings.ToLower(t))
			}
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM message_tags WHERE `+in+` AND tag_id IN (SELECT id FROM tag_names WHERE key IN (`+placeholders(len(keys))+`))`),
				append(seqArgs, keys...)...); err != nil {
				return fmt.Errorf("untag messages: %w", err)
			}
		}
		tags = nil
	}
	if op != TagsRemove {
		if op == TagsAdd {
			// The cap holds for the union too.
			have, err := s.countTags(ctx, tx, seqs)
			if err != nil {
				return err
			}
			for _, n := range have {
				if n+len(tags) > MaxTagsPerMessage {
					return fmt.Errorf("tag messages: %w: more than %d tags", ErrInvalid, MaxTagsPerMessage)
				}
			}
		}
		m := make(map[int64][]string, len(seqs))
		for _, q := range seqs {
			m[q] = tags
		}
		if err := s.insertTags(ctx, tx, m); err != nil {
			return err
		}
	}
	if err := s.pruneTagNames(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("tag messages: %w", err)
	}
	s.publishTags(seqs, idOf)
	return nil
}

// countTags counts the tags each of seqs has.
func (s *Store) countTags(ctx context.Context, tx *sql.Tx, seqs []int64) (map[int64]int, error) {
	args := make([]any, len(seqs))
	for i, q := range seqs {
		args[i] = q
	}
	rows, err := tx.QueryContext(ctx, s.q(`SELECT msg_seq, COUNT(*) FROM message_tags WHERE msg_seq IN (`+placeholders(len(seqs))+`) GROUP BY msg_seq`), args...)
	if err != nil {
		return nil, fmt.Errorf("count tags: %w", err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var q int64
		var n int
		if err := rows.Scan(&q, &n); err != nil {
			return nil, fmt.Errorf("count tags: %w", err)
		}
		out[q] = n
	}
	return out, rows.Err()
}

// seqsOf returns the seqs and ids of the live messages matching cond.
func (s *Store) seqsOf(ctx context.Context, tx *sql.Tx, cond string, args []any) ([]int64, map[int64]string, error) {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT seq, id FROM messages WHERE `+cond+` ORDER BY seq`), args...)
	if err != nil {
		return nil, nil, fmt.Errorf("find messages: %w", err)
	}
	defer rows.Close()
	var seqs []int64
	ids := map[int64]string{}
	for rows.Next() {
		var q int64
		var id string
		if err := rows.Scan(&q, &id); err != nil {
			return nil, nil, fmt.Errorf("find messages: %w", err)
		}
		seqs = append(seqs, q)
		ids[q] = id
	}
	return seqs, ids, rows.Err()
}

// pruneTagNames drops names no message uses, so that a tag created again
// later takes its new spelling (as Mailpit's do).
func (s *Store) pruneTagNames(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM tag_names WHERE NOT EXISTS (SELECT 1 FROM message_tags mt WHERE mt.tag_id = tag_names.id)`); err != nil {
		return fmt.Errorf("drop unused tags: %w", err)
	}
	return nil
}

// bulkTagEvents is the most per-message tag events one change publishes;
// past it one EventTags without a message says "re-read".
const bulkTagEvents = 1000

func (s *Store) publishTags(seqs []int64, idOf map[int64]string) {
	if len(seqs) > bulkTagEvents {
		s.publish(Event{Kind: EventTags})
		return
	}
	evs := make([]Event, 0, len(seqs))
	for _, q := range seqs {
		evs = append(evs, Event{Kind: EventTags, MessageID: idOf[q]})
	}
	s.publish(evs...)
}

// RenameTag renames a tag on every message (any case of old); renaming to
// a tag that exists merges the two. ErrNotFound when no message has old.
func (s *Store) RenameTag(ctx context.Context, old, name string) error {
	name, err := ValidTag(name)
	if err != nil {
		return fmt.Errorf("rename tag: %w", err)
	}
	oldKey, newKey := strings.ToLower(strings.TrimSpace(old)), strings.ToLower(name)
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("rename tag: %w", err)
	}
	defer tx.Rollback()
	var oldID int64
	if err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM tag_names WHERE key = ?`), oldKey).Scan(&oldID); err != nil {
		if err == sql.ErrNoRows {
			return fmt.Errorf("rename tag %q: %w", old, ErrNotFound)
		}
		return fmt.Errorf("rename tag: %w", err)
	}
	seqs, idOf, err := s.seqsOf(ctx, tx, `seq IN (SELECT msg_seq FROM message_tags WHERE tag_id = ?)`, []any{oldID})
	if err != nil {
		return err
	}
	if oldKey == newKey {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE tag_names SET name = ? WHERE id = ?`), name, oldID); err != nil {
			return fmt.Errorf("rename tag: %w", err)
		}
	} else {
		ids, err := s.tagIDs(ctx, tx, map[string]string{newKey: name})
		if err != nil {
			return err
		}
		newID := ids[newKey]
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO message_tags (msg_seq, tag_id) SELECT msg_seq, ? FROM message_tags WHERE tag_id = ? ON CONFLICT DO NOTHING`), newID, oldID); err != nil {
			return fmt.Errorf("rename tag: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM message_tags WHERE tag_id = ?`), oldID); err != nil {
			return fmt.Errorf("rename tag: %w", err)
		}
		if err := s.pruneTagNames(ctx, tx); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("rename tag: %w", err)
	}
	s.publishTags(seqs, idOf)
	return nil
}

// DeleteTag removes a tag (any case) from every message. A tag no message
// has is not an error.
func (s *Store) DeleteTag(ctx context.Context, tag string) error {
	key := strings.ToLower(strings.TrimSpace(tag))
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete tag: %w", err)
	}
	defer tx.Rollback()
	seqs, idOf, err := s.seqsOf(ctx, tx, `seq IN (SELECT mt.msg_seq FROM message_tags mt JOIN tag_names t ON t.id = mt.tag_id WHERE t.key = ?)`, []any{key})
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM message_tags WHERE tag_id IN (SELECT id FROM tag_names WHERE key = ?)`), key); err != nil {
		return fmt.Errorf("delete tag: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM tag_names WHERE key = ?`), key); err != nil {
		return fmt.Errorf("delete tag: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete tag: %w", err)
	}
	s.publishTags(seqs, idOf)
	return nil
}

// tagSQL is the condition "message m has the tag with this key".
const tagSQL = `m.seq IN (SELECT mt.msg_seq FROM message_tags mt JOIN tag_names t ON t.id = mt.tag_id WHERE t.key = ?)`

// tagRowSQL is tagSQL checked on one row (by the message_tags key),
// for a walk over few rows.
const tagRowSQL = `EXISTS (SELECT 1 FROM message_tags mt JOIN tag_names t ON t.id = mt.tag_id WHERE mt.msg_seq = m.seq AND t.key = ?)`

// taggedSQL is the condition "message m has a tag".
const taggedSQL = `m.seq IN (SELECT msg_seq FROM message_tags)`

// autoTags cleans the tags a Tagger found: hostile input (thousands of
// tags, control characters) is cut to a bounded set, never refused.
func autoTags(raw []string) []string {
	out := make([]string, 0, min(len(raw), MaxTagsPerMessage))
	seen := make(map[string]bool, min(len(raw), MaxTagsPerMessage))
	for _, t := range raw {
		t = CleanTag(t)
		k := strings.ToLower(t)
		if t == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, t)
		if len(out) == MaxTagsPerMessage {
			break
		}
	}
	return out
}

// insertBatchTags stores the tags of a batch being ingested (PostgreSQL:
// one statement per table for the whole batch).
func (s *Store) insertBatchTags(ctx context.Context, tx *sql.Tx, batch []*ingestReq) error {
	var m map[int64][]string
	for _, req := range batch {
		if len(req.row.tags) > 0 {
			if m == nil {
				m = map[int64][]string{}
			}
			m[req.row.seq] = req.row.tags
		}
	}
	if m == nil {
		return nil
	}
	if err := s.insertTags(ctx, tx, m); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	return nil
}
