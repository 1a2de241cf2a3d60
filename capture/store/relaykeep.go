package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// finishedStatuses are the delivery states no worker will touch again.
const finishedStatuses = `('delivered','failed')`

// pruneDeliveries deletes the deliveries that finished (delivered or
// failed) more than RelayKeep ago, so the queue does not grow forever.
// updated_at is when the last attempt was recorded: for a finished
// delivery, when it finished.
func (s *Store) pruneDeliveries(ctx context.Context) error {
	if s.opts.RelayKeep <= 0 {
		return nil
	}
	cut := micros(s.now().Add(-s.opts.RelayKeep))
	res, err := s.wdb.ExecContext(ctx, s.q(`DELETE FROM deliveries WHERE status IN `+finishedStatuses+` AND updated_at < ?`), cut)
	if err != nil {
		return fmt.Errorf("prune finished deliveries: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		s.publish(Event{Kind: EventRelay}) // several went: readers re-read the queue
	}
	return nil
}

// dropFinishedDeliveries deletes the finished deliveries of the given
// messages (seqs) that no longer exist: when a message is deleted or
// pruned, its finished deliveries go with it. Queued or sending ones keep
// their message; one that finishes after its message was deleted stays
// listed (its retry answers "the message is gone") until RelayKeep.
func (s *Store) dropFinishedDeliveries(ctx context.Context, tx *sql.Tx, seqs []any) error {
	if len(seqs) == 0 {
		return nil
	}
	ph := strings.TrimSuffix(strings.Repeat("?,", len(seqs)), ",")
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM deliveries WHERE msg_seq IN (`+ph+`) AND status IN `+finishedStatuses+`
		AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.seq = deliveries.msg_seq)`), seqs...); err != nil {
		return fmt.Errorf("drop finished deliveries of deleted messages: %w", err)
	}
	return nil
}
