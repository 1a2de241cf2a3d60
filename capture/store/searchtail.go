package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// The SQLite search index (msg_search, FTS5 trigrams over to/from/subject)
// is not written by each ingest's commit. An FTS5 insert flushes a new
// segment per transaction, which at one connection meant a segment, its
// merges and about four B-tree pages more per message: a fifth of the
// pages a 1 KB message's commit wrote, and most of the index's CPU. The
// writer now adds the newest messages to the index in batches (every
// indexEvery messages, or once ingest has paused for indexIdle), and
// search_indexed records, in the same transaction, the last seq indexed.
//
// Search stays exact at every moment: a candidate list is the index's
// matches plus a scan of the few messages after search_indexed.upto, read
// in one statement (one snapshot), so a message is searchable as soon as
// its commit is (before its 250). Deletes drop index rows only up to the
// mark: a message deleted before it was indexed has no tokens to remove.
// PostgreSQL has no such index (its trigram index is a plain GIN index,
// kept by PostgreSQL itself).
const (
	indexEvery = 256
	indexIdle  = 100 * time.Millisecond
)

// migrationSearchTail (13, SQLite): the mark of the search index. Every
// message stored so far is indexed.
const migrationSearchTail = `
CREATE TABLE search_indexed (upto INTEGER NOT NULL);
INSERT INTO search_indexed (upto) SELECT COALESCE(MAX(seq), 0) FROM messages
`

// searchTail is the writer's view of the index's mark.
type searchTail struct {
	mu     sync.Mutex
	upto   int64 // the last seq indexed (search_indexed.upto)
	newest int64 // the newest seq this Store committed, or found at Open
}

// noteCommitted records the newest seq a commit stored.
func (t *searchTail) noteCommitted(seq int64) {
	t.mu.Lock()
	if seq > t.newest {
		t.newest = seq
	}
	t.mu.Unlock()
}

// pending is how many seqs the index is behind (an upper bound: deleted
// messages count too).
func (t *searchTail) pending() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.newest - t.upto
}

// loadSearchTail reads the mark at Open and brings the index up to date
// (after a crash it may be a batch behind).
func (s *Store) loadSearchTail(ctx context.Context) error {
	if s.pg {
		return nil
	}
	t := &s.tail
	if err := s.wdb.QueryRowContext(ctx, `SELECT upto, (SELECT COALESCE(MAX(seq), 0) FROM messages) FROM search_indexed`).Scan(&t.upto, &t.newest); err != nil {
		return fmt.Errorf("open store: read search index mark: %w", err)
	}
	return s.indexTail(ctx)
}

// indexTail adds every message after the mark to the search index and
// moves the mark, in one transaction. Safe from any goroutine.
func (s *Store) indexTail(ctx context.Context) error {
	if s.pg {
		return nil
	}
	t := &s.tail
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.newest <= t.upto {
		return nil
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index messages for search: %w", err)
	}
	defer tx.Rollback()
	var hi int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM messages`).Scan(&hi); err != nil {
		return fmt.Errorf("index messages for search: %w", err)
	}
	if hi > t.upto {
		if err := s.txExec(ctx, tx, qInsertIndex, t.upto+1, hi); err != nil {
			return fmt.Errorf("index messages for search: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE search_indexed SET upto = ?`, hi); err != nil {
			return fmt.Errorf("index messages for search: move mark: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index messages for search: commit: %w", err)
	}
	t.upto = max(t.upto, hi)
	t.newest = max(t.newest, hi)
	return nil
}

// indexTailLogged is indexTail from the writer, which has no caller to
// report to: a failure is logged and retried at the next pause (searches
// stay exact meanwhile, scanning a longer tail).
func (s *Store) indexTailLogged() {
	if err := s.indexTail(context.Background()); err != nil {
		s.log.Warn("store: search index update failed; will retry", "err", err)
	}
}

// qIndexed bounds the index rows a delete may drop: those of messages
// already indexed (rowid is msg_search's seq).
const qIndexed = ` AND rowid <= (SELECT upto FROM search_indexed)`
