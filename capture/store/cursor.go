package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// cursorSeq resolves a Query.BeforeID cursor to the key listings walk
// (messages.seq): the page then starts just below it, however deep it is.
// A cursor whose message has gone since (deleted, pruned) still works: its
// id carries the time it was received, and the page starts below the first
// message received after that millisecond.
func (s *Store) cursorSeq(ctx context.Context, id string) (int64, error) {
	var seq int64
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT seq FROM messages WHERE id = ?`), id).Scan(&seq)
	if err == nil {
		return seq, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("resolve cursor %s: %w", id, err)
	}
	ms, ok := idMillis(id)
	if !ok {
		return 0, fmt.Errorf("cursor %q: %w: not a message id", id, ErrInvalid)
	}
	var next sql.NullInt64
	// Below the first message of the next millisecond: others received in
	// the cursor's millisecond may be listed again, but none is skipped.
	if err := s.rdb.QueryRowContext(ctx, s.q(`SELECT MIN(seq) FROM messages WHERE received_at >= ?`), (ms+1)*1000).Scan(&next); err != nil {
		return 0, fmt.Errorf("resolve cursor %s: %w", id, err)
	}
	if !next.Valid {
		return 1<<62 - 1, nil // everything stored is older
	}
	return next.Int64, nil
}

// idMillis decodes the milliseconds of a message id (newID): its first ten
// base32 digits are two zero bits and the 48-bit time.
func idMillis(id string) (int64, bool) {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	if len(id) != 26 {
		return 0, false
	}
	var v int64
	for i, c := range strings.ToUpper(id) {
		d := strings.IndexRune(alphabet, c)
		if d < 0 {
			return 0, false
		}
		if i < 10 {
			v = v<<5 | int64(d)
		}
	}
	if v>>48 != 0 {
		return 0, false
	}
	return v, true
}

// denseProbe is how many of the newest messages dense reads, and
// denseShare how many of them must match for the newest-first walk to
// beat the trigram index (at 1 in 20, a page of 50 is found within
// about 1,000 rows; the probe reads 500). PostgreSQL's trigram index is
// faster at listing matches than SQLite's, and its rows slower to walk:
// there the walk wins from 1 in 10 (at 100,000 messages, a needle on 1 in
// 9 took 13 ms walking to count 1,000 matches and 29 ms through the
// index; one on 1 in 90, 3 ms through the index).
const (
	denseProbe   = 500
	denseShare   = 25
	denseSharePG = 50
)

// dense reports whether the LIKE pattern (escaped on PostgreSQL) matches
// col in many of the newest messages.
func (s *Store) dense(ctx context.Context, col, pattern string) bool {
	var n int
	like, share := `v LIKE ?`, denseShare
	if s.pg {
		like, share = `v LIKE ? ESCAPE '\'`, denseSharePG
	}
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM (SELECT `+col+` AS v FROM messages ORDER BY seq DESC LIMIT ?) probe WHERE `+like),
		denseProbe, pattern).Scan(&n)
	return err == nil && n >= share
}

// noCopies reports, from the kept counts, whether the folders matching
// cond (over folder_counts c) hold each message once: a listing then
// needs no "first copy stands for it" check per row, which also misleads
// PostgreSQL's planner into sorting every entry. Copies made meanwhile
// may show twice in that one listing.
func (s *Store) noCopies(ctx context.Context, cond string, args ...any) bool {
	var folders, extra int64
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT COUNT(*), COALESCE(SUM(c.entries - c.msgs), 0) FROM folder_counts c WHERE `+cond), args...).Scan(&folders, &extra)
	return err == nil && folders <= 1 && extra == 0
}
