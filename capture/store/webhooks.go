package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// The webhook retry queue: one row per delivery whose first attempt failed
// (new messages are handed to senders by the marks of webhookmarks.go,
// which write nothing per message). It follows the relay queue's
// pattern: a sender claims due rows with ClaimDueWebhooks (a lease: status
// "sending", an owner, a deadline, one more attempt counted), posts them and
// records the outcomes with RecordWebhookAttempts. A sender that dies
// mid-attempt leaves its rows "sending" until the lease runs out; then they
// are claimed again (delivery is at least once; receivers de-duplicate on
// DeliveryID). On PostgreSQL claims skip rows locked by another instance's
// claim, so instances sharing a store post each webhook once.
//
// A row keeps the payload of its first attempt: a message deleted (or
// pruned) after that is still announced by its retries.

// Webhook is one webhook delivery: a message's payload on its way to one URL.
// Its statuses are the relay's: DeliveryQueued, DeliverySending,
// DeliveryDelivered and DeliveryFailed (given up).
type Webhook struct {
	ID int64 `json:"id"`
	// DeliveryID is unique across stores and restarts: receivers use it to
	// drop repeats.
	DeliveryID    string    `json:"delivery_id"`
	MessageID     string    `json:"message_id"`
	URL           string    `json:"url"`
	Status        string    `json:"status"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastError     string    `json:"last_error"`
	CreatedAt     time.Time `json:"created_at"`
	// QueuedAt is when the delivery was created or last retried by hand
	// after it failed: the maximum age counts from here.
	QueuedAt  time.Time `json:"queued_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Payload is the body to post; filled by claims only (delivered rows
	// drop it).
	Payload    []byte    `json:"-"`
	LeaseOwner string    `json:"-"`
	LeaseUntil time.Time `json:"-"`
}

// WebhookOutcome is the result of one attempt at a claimed webhook.
type WebhookOutcome struct {
	ID int64
	// Status is DeliveryQueued (try again at NextAttemptAt),
	// DeliveryDelivered or DeliveryFailed.
	Status        string
	NextAttemptAt time.Time
	LastError     string
}

// WebhookStats counts webhook deliveries by status.
type WebhookStats struct {
	Queued    int `json:"queued"`
	Sending   int `json:"sending"`
	Delivered int `json:"delivered"`
	Failed    int `json:"failed"`
}

const webhookCols = `id, delivery_id, message_id, url, status, attempts, next_attempt_at, last_error,
	created_at, queued_at, updated_at, lease_owner, lease_until`

const qInsertWebhook = `INSERT INTO webhooks (delivery_id, message_id, url, payload, status, attempts, next_attempt_at,
	last_error, created_at, queued_at, updated_at) VALUES `

func scanWebhook(sc rowScanner, extra ...any) (Webhook, error) {
	var w Webhook
	var next, created, queued, updated, lease int64
	if err := sc.Scan(append([]any{&w.ID, &w.DeliveryID, &w.MessageID, &w.URL, &w.Status, &w.Attempts, &next, &w.LastError,
		&created, &queued, &updated, &w.LeaseOwner, &lease}, extra...)...); err != nil {
		return w, err
	}
	w.NextAttemptAt, w.CreatedAt, w.QueuedAt, w.UpdatedAt, w.LeaseUntil = fromMicros(next), fromMicros(created), fromMicros(queued), fromMicros(updated), fromMicros(lease)
	return w, nil
}

// ClaimDueWebhooks leases up to limit webhooks due at now: "sending" ones
// whose lease ran out, then queued ones whose next attempt time has come
// (earliest first). Each is set to "sending", owned by owner until
// now+lease, one more attempt counted, and returned with its payload.
func (s *Store) ClaimDueWebhooks(ctx context.Context, now time.Time, owner string, lease time.Duration, limit int) ([]Webhook, error) {
	if limit <= 0 {
		limit = 100
	}
	lock := ""
	if s.pg {
		lock = ` FOR UPDATE SKIP LOCKED`
	}
	// Two claims, each walking the (status, next_attempt_at) index in
	// order and stopping at its limit, so a large backlog costs no sort:
	// rows whose sender died (lease ended) first, then due queued rows.
	var out []Webhook
	for _, pick := range []struct{ cond, order string }{
		{`status = ? AND lease_until <= ?`, ``},
		{`status = ? AND next_attempt_at <= ?`, ` ORDER BY next_attempt_at`},
	} {
		if len(out) >= limit {
			break
		}
		status := DeliverySending
		if pick.order != "" {
			status = DeliveryQueued
		}
		ws, err := s.claimWebhooks(ctx, now, owner, lease, limit-len(out), pick.cond+pick.order, status, lock)
		if err != nil {
			return nil, err
		}
		out = append(out, ws...)
	}
	return out, nil
}

func (s *Store) claimWebhooks(ctx context.Context, now time.Time, owner string, lease time.Duration, limit int, where, status, lock string) ([]Webhook, error) {
	n := micros(now)
	rows, err := s.wdb.QueryContext(ctx, s.q(`UPDATE webhooks SET status = ?, lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?
		WHERE id IN (SELECT id FROM webhooks WHERE `+where+` LIMIT ?`+lock+`) RETURNING `+webhookCols+`, payload`),
		DeliverySending, owner, micros(now.Add(lease)), n, status, n, limit)
	if err != nil {
		return nil, fmt.Errorf("claim due webhooks: %w", err)
	}
	defer rows.Close()
	var out []Webhook
	for rows.Next() {
		var payload []byte
		w, err := scanWebhook(rows, &payload)
		if err != nil {
			return nil, fmt.Errorf("claim due webhooks: %w", err)
		}
		w.Payload = payload
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim due webhooks: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NextAttemptAt.Before(out[j].NextAttemptAt) })
	return out, nil
}

// RecordWebhookAttempts stores the outcomes of attempts at webhooks owner
// holds, in one transaction, and ends owner's leases. Outcomes for rows
// owner no longer holds (dropped, or reclaimed after the lease ran out) are
// discarded; the ids of those kept are returned. A delivered row drops its
// payload.
func (s *Store) RecordWebhookAttempts(ctx context.Context, owner string, outs []WebhookOutcome) ([]int64, error) {
	for _, o := range outs {
		switch o.Status {
		case DeliveryQueued, DeliveryDelivered, DeliveryFailed:
		default:
			return nil, fmt.Errorf("record webhook attempt %d: %w: status %q", o.ID, ErrInvalid, o.Status)
		}
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("record webhook attempts: %w", err)
	}
	defer tx.Rollback()
	now := micros(s.now().UTC())
	var kept []int64
	// Deliveries, the usual outcome, go in statements of many rows.
	var delivered []any
	flush := func() error {
		if len(delivered) == 0 {
			return nil
		}
		ph := strings.TrimSuffix(strings.Repeat("?,", len(delivered)), ",")
		rows, err := tx.QueryContext(ctx, s.q(`UPDATE webhooks SET status = ?, next_attempt_at = 0, last_error = '', updated_at = ?,
			lease_owner = '', lease_until = 0, payload = ? WHERE id IN (`+ph+`) AND status = ? AND lease_owner = ? RETURNING id`),
			append(append([]any{DeliveryDelivered, now, []byte{}}, delivered...), DeliverySending, owner)...)
		if err != nil {
			return fmt.Errorf("record webhook deliveries: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return fmt.Errorf("record webhook deliveries: %w", err)
			}
			kept = append(kept, id)
		}
		delivered = delivered[:0]
		return rows.Err()
	}
	for _, o := range outs {
		if o.Status == DeliveryDelivered {
			if delivered = append(delivered, o.ID); len(delivered) >= 500 {
				if err := flush(); err != nil {
					return nil, err
				}
			}
			continue
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE webhooks SET status = ?, next_attempt_at = ?, last_error = ?, updated_at = ?,
			lease_owner = '', lease_until = 0 WHERE id = ? AND status = ? AND lease_owner = ?`),
			o.Status, micros(o.NextAttemptAt), o.LastError, now, o.ID, DeliverySending, owner)
		if err != nil {
			return nil, fmt.Errorf("record webhook attempt %d: %w", o.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			kept = append(kept, o.ID)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("record webhook attempts: %w", err)
	}
	return kept, nil
}

// NextWebhookDue returns the earliest time a webhook becomes claimable; ok
// is false when none is pending.
func (s *Store) NextWebhookDue(ctx context.Context) (time.Time, bool, error) {
	return s.nextDue(ctx, "webhooks")
}

// WebhookFilter selects webhook deliveries for Webhooks.
type WebhookFilter struct {
	Status    string // "" for every status
	MessageID string // "" for every message
	Limit     int    // 0: DefaultLimit, at most MaxLimit
	Offset    int
}

// Webhooks lists webhook deliveries, newest first, with the number matching
// the filter.
func (s *Store) Webhooks(ctx context.Context, f WebhookFilter) ([]Webhook, int, error) {
	var conds []string
	var args []any
	if f.Status != "" {
		conds, args = append(conds, "status = ?"), append(args, f.Status)
	}
	if f.MessageID != "" {
		conds, args = append(conds, "message_id = ?"), append(args, f.MessageID)
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	// The total rides on each row of the page (COUNT(*) OVER ()), so both
	// come from one statement and one snapshot: counted apart, a delivery
	// added between the two reads was listed but not counted (seen in a
	// test: total 0 beside three deliveries).
	total := -1
	ws, err := queryList(ctx, s, "list webhooks", `SELECT `+webhookCols+`, COUNT(*) OVER () FROM webhooks`+where+` ORDER BY id DESC LIMIT ? OFFSET ?`,
		func(sc rowScanner) (Webhook, error) { return scanWebhook(sc, &total) }, append(args, limit, max(f.Offset, 0))...)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case total >= 0:
	case f.Offset <= 0:
		total = 0 // an empty first page: nothing matched
	default:
		// An empty page past the end carries no total: count apart.
		if err := s.rdb.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM webhooks`+where), args...).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("list webhooks: %w", err)
		}
	}
	return ws, total, nil
}

// WebhookCounts counts webhook deliveries by status.
func (s *Store) WebhookCounts(ctx context.Context) (WebhookStats, error) {
	var st WebhookStats
	rows, err := s.rdb.QueryContext(ctx, `SELECT status, COUNT(*) FROM webhooks GROUP BY status`)
	if err != nil {
		return st, fmt.Errorf("count webhooks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return st, fmt.Errorf("count webhooks: %w", err)
		}
		switch status {
		case DeliveryQueued:
			st.Queued = n
		case DeliverySending:
			st.Sending = n
		case DeliveryDelivered:
			st.Delivered = n
		case DeliveryFailed:
			st.Failed = n
		}
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("count webhooks: %w", err)
	}
	// Deliveries that succeeded at their first attempt have no row: their
	// marks count them.
	var first int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT COALESCE(SUM(delivered), 0) FROM webhook_marks`).Scan(&first); err != nil {
		return st, fmt.Errorf("count webhooks: %w", err)
	}
	st.Delivered += int(first)
	return st, nil
}

// GetWebhook returns one webhook delivery.
func (s *Store) GetWebhook(ctx context.Context, id int64) (Webhook, error) {
	w, err := scanWebhook(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+webhookCols+` FROM webhooks WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Webhook{}, fmt.Errorf("webhook %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Webhook{}, fmt.Errorf("get webhook %d: %w", id, err)
	}
	return w, nil
}

// RetryWebhook makes a queued or failed webhook due now; a failed one gets
// its maximum age counted afresh. Retrying a delivered one is ErrInvalid;
// one being sent is left alone.
func (s *Store) RetryWebhook(ctx context.Context, id int64) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("retry webhook %d: %w", id, err)
	}
	defer tx.Rollback()
	w, err := scanWebhook(tx.QueryRowContext(ctx, s.q(`SELECT `+webhookCols+` FROM webhooks WHERE id = ?`+s.forUpdate()), id))
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("retry webhook %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("retry webhook %d: %w", id, err)
	}
	now := micros(s.now().UTC())
	queued := micros(w.QueuedAt)
	switch w.Status {
	case DeliveryDelivered:
		return fmt.Errorf("retry webhook %d: %w: already delivered", id, ErrInvalid)
	case DeliverySending:
		return nil
	case DeliveryFailed:
		queued = now
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE webhooks SET status = ?, next_attempt_at = ?, queued_at = ?, updated_at = ? WHERE id = ?`),
		DeliveryQueued, now, queued, now, id); err != nil {
		return fmt.Errorf("retry webhook %d: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("retry webhook %d: %w", id, err)
	}
	s.publish(Event{Kind: EventWebhook, MessageID: w.MessageID, DeliveryID: id})
	return nil
}

// DropWebhook removes one webhook delivery, whatever its state; a sender
// holding it finds its lease gone when it records the outcome.
func (s *Store) DropWebhook(ctx context.Context, id int64) error {
	var msgID string
	err := s.wdb.QueryRowContext(ctx, s.q(`DELETE FROM webhooks WHERE id = ? RETURNING message_id`), id).Scan(&msgID)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("drop webhook %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("drop webhook %d: %w", id, err)
	}
	s.publish(Event{Kind: EventWebhook, MessageID: msgID, DeliveryID: id})
	return nil
}

// PruneWebhooks deletes delivered and failed webhooks last changed before
// cut, and returns how many went.
func (s *Store) PruneWebhooks(ctx context.Context, cut time.Time) (int64, error) {
	res, err := s.wdb.ExecContext(ctx, s.q(`DELETE FROM webhooks WHERE status IN (?, ?) AND updated_at < ?`),
		DeliveryDelivered, DeliveryFailed, micros(cut))
	if err != nil {
		return 0, fmt.Errorf("prune webhooks: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// sortedTags is tags sorted case-insensitively, as stored messages list
// them; never nil.
func sortedTags(tags []string) []string {
	out := append([]string{}, tags...)
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return out
}
