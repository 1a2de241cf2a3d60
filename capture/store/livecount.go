package store

import (
	"context"
	"fmt"
)

// The count of live messages (migration 12): the total of an unfiltered
// listing of all mail and Unread read it instead of counting every message
// with copies > 0 (2 ms on SQLite, 15 ms on PostgreSQL at 100,000).
//
// SQLite counts a whole table from its pages' headers, so there the live
// messages are all messages less the few in no mailbox (copies 0: those
// the relay queue still holds, until they go), which the partial index
// messages_gone lists; ingest writes no index and no row for it (every
// B-tree a message touches is a page written at each commit).
//
// PostgreSQL counts rows one by one either way, so there triggers keep the
// count: each statement that changes it adds a row with its delta. Ingest
// transactions of several instances never wait for one another on a
// shared row, and no lock is taken that could order itself against the
// folder counts' (ingest writes messages before entries, a deletion
// entries before messages). Readers sum the rows, and once there are
// many, a background pass folds them into one (compactLiveCounts).

// liveCountsPG: statement triggers with transition tables, one delta row
// per statement that changes the count (ingest inserts a batch in one).
// PostgreSQL allows no column list with transition tables, so the update
// trigger runs for every UPDATE of messages: only collect's recount of
// copies updates that table.
const liveCountsPG = `
CREATE TABLE message_counts (live BIGINT NOT NULL)
--;;
INSERT INTO message_counts (live) SELECT COUNT(*) FROM messages WHERE copies > 0
--;;
CREATE FUNCTION message_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO message_counts (live) SELECT COUNT(*) FROM new_rows WHERE copies > 0 HAVING COUNT(*) > 0;
	RETURN NULL;
END $$
--;;
CREATE FUNCTION message_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO message_counts (live) SELECT d FROM
		(SELECT (SELECT COUNT(*) FROM new_rows WHERE copies > 0) - (SELECT COUNT(*) FROM old_rows WHERE copies > 0) AS d) x
		WHERE d <> 0;
	RETURN NULL;
END $$
--;;
CREATE FUNCTION message_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO message_counts (live) SELECT -COUNT(*) FROM old_rows WHERE copies > 0 HAVING COUNT(*) > 0;
	RETURN NULL;
END $$
--;;
CREATE TRIGGER messages_live_insert AFTER INSERT ON messages REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION message_counts_insert()
--;;
CREATE TRIGGER messages_live_update AFTER UPDATE ON messages REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION message_counts_update()
--;;
CREATE TRIGGER messages_live_delete AFTER DELETE ON messages REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION message_counts_delete()
`

// compactAbove is how many delta rows (PostgreSQL) make a reader ask for
// them to be folded into one: summing them stays well under a millisecond.
const compactAbove = 64

// liveCount returns how many messages are in some mailbox (copies > 0).
func (s *Store) liveCount(ctx context.Context) (int, error) {
	var n, rows int
	if !s.pg {
		if err := s.rdb.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM messages) -
			(SELECT COUNT(*) FROM messages WHERE copies = 0)`).Scan(&n); err != nil {
			return 0, fmt.Errorf("count messages: %w", err)
		}
		return n, nil
	}
	if err := s.rdb.QueryRowContext(ctx, `SELECT COALESCE(SUM(live), 0), COUNT(*) FROM message_counts`).Scan(&n, &rows); err != nil {
		return 0, fmt.Errorf("count messages: %w", err)
	}
	if rows > compactAbove && s.compact != nil {
		select {
		case s.compact <- struct{}{}:
		default:
		}
	}
	return n, nil
}

// compactLoop folds the delta rows of the live count when a reader found
// many (PostgreSQL).
func (s *Store) compactLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.compact:
		}
		if err := s.compactLiveCounts(context.Background()); err != nil {
			s.log.Warn("compact message counts failed", "err", err)
		}
	}
}

// compactLiveCounts replaces the delta rows it sees with their sum. Rows
// added meanwhile by transactions not yet committed are not in its
// snapshot and stay; two passes at once each fold only the rows they
// deleted (READ COMMITTED skips rows another pass deleted first).
func (s *Store) compactLiveCounts(ctx context.Context) error {
	_, err := s.wdb.ExecContext(ctx, `WITH d AS (DELETE FROM message_counts RETURNING live)
		INSERT INTO message_counts (live) SELECT SUM(live) FROM d HAVING COUNT(*) > 0`)
	if err != nil {
		return fmt.Errorf("compact message counts: %w", err)
	}
	return nil
}
