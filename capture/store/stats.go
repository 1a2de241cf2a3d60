package store

import (
	"context"
	"fmt"
)

// Stats is the size of the store, for metrics.
type Stats struct {
	Messages   int   // messages in at least one mailbox
	Bytes      int64 // their raw size
	Mailboxes  int
	Deliveries int // relay deliveries queued or in flight
}

// Stats counts what the store holds.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages WHERE copies > 0`).Scan(&st.Messages, &st.Bytes)
	if err == nil {
		err = s.rdb.QueryRowContext(ctx, `SELECT COUNT(DISTINCT mailbox) FROM folders`).Scan(&st.Mailboxes)
	}
	if err == nil {
		err = s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries WHERE status IN ('queued', 'sending')`).Scan(&st.Deliveries)
	}
	if err != nil {
		return Stats{}, fmt.Errorf("store stats: %w", err)
	}
	return st, nil
}
