package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The relay queue. Each row is one message on its way to some recipients
// through one destination. A worker claims due rows with ClaimDue (which
// leases them: status "sending", an owner and a lease deadline, and one more
// attempt counted), tries them, and records the outcome with RecordAttempt.
// A worker that dies mid-attempt leaves its rows "sending" until the lease
// runs out; then ClaimDue hands them out again, so nothing queued is ever
// forgotten (delivery is at least once).
//
// Per-recipient state, the last attempt time and the time the row was last
// (re)queued live in the details column as JSON.

// Delivery statuses.
const (
	DeliveryQueued    = "queued"
	DeliverySending   = "sending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is one relay queue item: a message on its way to some
// recipients through one destination.
type Delivery struct {
	ID            int64     `json:"id"`
	MessageID     string    `json:"message_id"`
	MailFrom      string    `json:"mail_from"`
	Recipients    []string  `json:"recipients"`
	Destination   string    `json:"destination"`
	Status        string    `json:"status"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastError     string    `json:"last_error"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// LastAttemptAt is when the last attempt ended; zero before the first.
	LastAttemptAt time.Time `json:"last_attempt_at,omitzero"`
	// QueuedAt is when the delivery was created or last retried by hand
	// after it failed: the relay's maximum age counts from here.
	QueuedAt time.Time `json:"queued_at"`
	// RecipientStatus holds each recipient's state; a recipient without an
	// entry is still pending.
	RecipientStatus []RecipientStatus `json:"recipient_status,omitempty"`
	// LeaseOwner and LeaseUntil say who holds a "sending" delivery and until
	// when.
	LeaseOwner string    `json:"-"`
	LeaseUntil time.Time `json:"-"`
	// Subject is the message's, for people reading the queue: filled by
	// Deliveries and Delivery, empty in claims.
	Subject string `json:"subject"`
}

// RecipientStatus is the state of one recipient of a delivery.
type RecipientStatus struct {
	Address string `json:"address"`
	// Status is DeliveryQueued (still to be tried), DeliveryDelivered or
	// DeliveryFailed.
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	// Reply is the last SMTP reply or error for this recipient.
	Reply string `json:"reply,omitempty"`
}

// Pending returns the recipients that are neither delivered nor failed.
func (d Delivery) Pending() []string {
	var out []string
	for _, r := range d.Recipients {
		if rs, ok := d.Recipient(r); ok && (rs.Status == DeliveryDelivered || rs.Status == DeliveryFailed) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// Recipient returns the recorded state of one recipient.
func (d Delivery) Recipient(addr string) (RecipientStatus, bool) {
	for _, rs := range d.RecipientStatus {
		if strings.EqualFold(rs.Address, addr) {
			return rs, true
		}
	}
	return RecipientStatus{}, false
}

// deliveryDetails is the JSON kept in the details column.
type deliveryDetails struct {
	LastAttemptAt   time.Time         `json:"last_attempt_at,omitzero"`
	QueuedAt        time.Time         `json:"queued_at,omitzero"`
	RecipientStatus []RecipientStatus `json:"recipient_status,omitempty"`
}

func (d *Delivery) details() string {
	b, _ := json.Marshal(deliveryDetails{LastAttemptAt: d.LastAttemptAt, QueuedAt: d.QueuedAt, RecipientStatus: d.RecipientStatus})
	return string(b)
}

const deliveryCols = `id, message_id, mail_from, recipients, destination, status, attempts, next_attempt_at,
	last_error, created_at, updated_at, lease_owner, lease_until, details`

// deliveryListCols adds the message's subject (scanned by scanListed).
const deliveryListCols = deliveryCols + `, COALESCE((SELECT m.subject FROM messages m WHERE m.seq = deliveries.msg_seq), '')`

func scanListed(sc rowScanner) (Delivery, error) {
	var subject string
	d, err := scanDelivery(sc, &subject)
	d.Subject = subject
	return d, err
}

func scanDelivery(sc rowScanner, extra ...any) (Delivery, error) {
	var d Delivery
	var rcpts, details string
	var next, created, updated, lease int64
	if err := sc.Scan(append([]any{&d.ID, &d.MessageID, &d.MailFrom, &rcpts, &d.Destination, &d.Status, &d.Attempts, &next,
		&d.LastError, &created, &updated, &d.LeaseOwner, &lease, &details}, extra...)...); err != nil {
		return d, err
	}
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt, d.LeaseUntil = fromMicros(next), fromMicros(created), fromMicros(updated), fromMicros(lease)
	_ = json.Unmarshal([]byte(rcpts), &d.Recipients)
	d.Recipients = nonNilS(d.Recipients)
	if details != "" {
		var dd deliveryDetails
		if json.Unmarshal([]byte(details), &dd) == nil {
			d.LastAttemptAt, d.QueuedAt, d.RecipientStatus = dd.LastAttemptAt, dd.QueuedAt, dd.RecipientStatus
		}
	}
	if d.QueuedAt.IsZero() {
		d.QueuedAt = d.CreatedAt
	}
	return d, nil
}

func (s *Store) insertDelivery(ctx context.Context, tx *sql.Tx, seq int64, msgID, from string, d NewDelivery, now time.Time) (int64, error) {
	rcpts, _ := json.Marshal(d.Recipients)
	var id int64
	err := tx.QueryRowContext(ctx, s.q(`INSERT INTO deliveries (msg_seq, message_id, mail_from, recipients, destination, status,
		attempts, next_attempt_at, created_at, updated_at) VALUES (?,?,?,?,?,?,0,?,?,?) RETURNING id`),
		seq, msgID, from, string(rcpts), d.Destination, DeliveryQueued, micros(now), micros(now), micros(now)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("queue delivery of %s: %w", msgID, err)
	}
	return id, nil
}

// Deliveries lists the whole relay queue, newest first, finished deliveries
// included.
func (s *Store) Deliveries(ctx context.Context) ([]Delivery, error) {
	return queryList(ctx, s, "list deliveries", `SELECT `+deliveryListCols+` FROM deliveries ORDER BY id DESC`, scanListed)
}

// Delivery returns one queue item.
func (s *Store) Delivery(ctx context.Context, id int64) (Delivery, error) {
	d, err := scanListed(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+deliveryListCols+` FROM deliveries WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("get delivery %d: %w", id, err)
	}
	return d, nil
}

// Enqueue puts message id on the relay queue (a manual release): one
// delivery per entry of ds, from the message's envelope sender. It returns
// the new deliveries' ids, or ErrNotFound when the message does not exist.
func (s *Store) Enqueue(ctx context.Context, messageID string, ds []NewDelivery) ([]int64, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("enqueue %s: %w", messageID, err)
	}
	defer tx.Rollback()
	var seq int64
	var from string
	err = tx.QueryRowContext(ctx, s.q(`SELECT seq, mail_from FROM messages WHERE id = ?`), messageID).Scan(&seq, &from)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("enqueue: message %s: %w", messageID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("enqueue %s: %w", messageID, err)
	}
	now := s.now().UTC()
	var ids []int64
	for _, d := range ds {
		if len(d.Recipients) == 0 {
			continue
		}
		id, err := s.insertDelivery(ctx, tx, seq, messageID, from, d, now)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("enqueue %s: %w", messageID, err)
	}
	evs := make([]Event, len(ids))
	for i, id := range ids {
		evs[i] = Event{Kind: EventRelay, MessageID: messageID, DeliveryID: id}
	}
	s.publish(evs...)
	return ids, nil
}

// DropDelivery removes one queue item, whatever its state. A worker that
// holds it finds its lease gone when it records the outcome.
func (s *Store) DropDelivery(ctx context.Context, id int64) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("drop delivery %d: %w", id, err)
	}
	defer tx.Rollback()
	var seq int64
	var msgID string
	err = tx.QueryRowContext(ctx, s.q(`DELETE FROM deliveries WHERE id = ? RETURNING msg_seq, message_id`), id).Scan(&seq, &msgID)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("drop delivery %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("drop delivery %d: %w", id, err)
	}
	if err := s.collectQueued(ctx, tx, seq); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("drop delivery %d: %w", id, err)
	}
	s.publish(Event{Kind: EventRelay, MessageID: msgID, DeliveryID: id})
	return nil
}

// RetryDelivery makes a queued or failed delivery due now. A failed one is
// queued again with its failed recipients pending and its maximum age
// counted afresh. Retrying a delivered item is ErrInvalid; one being sent is
// left alone.
func (s *Store) RetryDelivery(ctx context.Context, id int64) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("retry delivery %d: %w", id, err)
	}
	defer tx.Rollback()
	d, err := scanDelivery(tx.QueryRowContext(ctx, s.q(`SELECT `+deliveryCols+` FROM deliveries WHERE id = ?`+s.forUpdate()), id))
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("retry delivery %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("retry delivery %d: %w", id, err)
	}
	now := s.now().UTC()
	switch d.Status {
	case DeliveryDelivered:
		return fmt.Errorf("retry delivery %d: %w: already delivered", id, ErrInvalid)
	case DeliverySending:
		return nil
	case DeliveryFailed:
		var exists int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM bodies b JOIN deliveries d ON d.msg_seq = b.seq WHERE d.id = ?`), id).Scan(&exists); err != nil {
			return fmt.Errorf("retry delivery %d: %w", id, err)
		}
		if exists == 0 {
			return fmt.Errorf("retry delivery %d: %w: the message is gone", id, ErrInvalid)
		}
		for i := range d.RecipientStatus {
			if d.RecipientStatus[i].Status == DeliveryFailed {
				d.RecipientStatus[i].Status = DeliveryQueued
			}
		}
		d.QueuedAt = now
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE deliveries SET status = ?, next_attempt_at = ?, updated_at = ?, details = ? WHERE id = ?`),
		DeliveryQueued, micros(now), micros(now), d.details(), id); err != nil {
		return fmt.Errorf("retry delivery %d: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("retry delivery %d: %w", id, err)
	}
	s.publish(Event{Kind: EventRelay, MessageID: d.MessageID, DeliveryID: id})
	return nil
}

// ClaimDue leases up to limit deliveries that are due at now: queued ones
// whose next attempt time has come, and "sending" ones whose lease ran out
// (their worker died). Each is set to "sending", owned by owner until
// now+lease, with its attempt count raised by one. On PostgreSQL rows held
// by another instance's claim are skipped, so several instances can share a
// queue. The result is ordered by due time.
func (s *Store) ClaimDue(ctx context.Context, now time.Time, owner string, lease time.Duration, limit int) ([]Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	lock := ""
	if s.pg {
		lock = ` FOR UPDATE SKIP LOCKED`
	}
	n := micros(now)
	rows, err := s.wdb.QueryContext(ctx, s.q(`UPDATE deliveries SET status = ?, lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?
		WHERE id IN (SELECT id FROM deliveries WHERE (status = ? AND next_attempt_at <= ?) OR (status = ? AND lease_until <= ?)
		ORDER BY next_attempt_at, id LIMIT ?`+lock+`) RETURNING `+deliveryCols),
		DeliverySending, owner, micros(now.Add(lease)), n, DeliveryQueued, n, DeliverySending, n, limit)
	if err != nil {
		return nil, fmt.Errorf("claim due deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("claim due deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim due deliveries: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].NextAttemptAt.Equal(out[j].NextAttemptAt) {
			return out[i].NextAttemptAt.Before(out[j].NextAttemptAt)
		}
		return out[i].ID < out[j].ID
	})
	evs := make([]Event, len(out))
	for i, d := range out {
		evs[i] = Event{Kind: EventRelay, MessageID: d.MessageID, DeliveryID: d.ID}
	}
	s.publish(evs...)
	return out, nil
}

// Attempt is the outcome of one attempt at a claimed delivery.
type Attempt struct {
	// Status is DeliveryQueued (try again at NextAttemptAt),
	// DeliveryDelivered or DeliveryFailed.
	Status        string
	NextAttemptAt time.Time
	// LastError is a one-line summary of what went wrong, "" when nothing.
	LastError string
	// RecipientStatus replaces the per-recipient state.
	RecipientStatus []RecipientStatus
}

// RecordAttempt stores the outcome of an attempt at delivery id and ends
// owner's lease. It returns ErrNotFound when the delivery is gone or owner no
// longer holds it (dropped, or reclaimed after the lease ran out): the
// outcome is then discarded.
func (s *Store) RecordAttempt(ctx context.Context, id int64, owner string, a Attempt) error {
	switch a.Status {
	case DeliveryQueued, DeliveryDelivered, DeliveryFailed:
	default:
		return fmt.Errorf("record attempt on delivery %d: %w: status %q", id, ErrInvalid, a.Status)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record attempt on delivery %d: %w", id, err)
	}
	defer tx.Rollback()
	d, err := scanDelivery(tx.QueryRowContext(ctx, s.q(`SELECT `+deliveryCols+` FROM deliveries WHERE id = ? AND status = ? AND lease_owner = ?`+s.forUpdate()),
		id, DeliverySending, owner))
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("record attempt on delivery %d: %w: not held by %s", id, ErrNotFound, owner)
	}
	if err != nil {
		return fmt.Errorf("record attempt on delivery %d: %w", id, err)
	}
	now := s.now().UTC()
	d.LastAttemptAt = now
	d.RecipientStatus = a.RecipientStatus
	next := d.NextAttemptAt
	if a.Status == DeliveryQueued {
		next = a.NextAttemptAt
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE deliveries SET status = ?, next_attempt_at = ?, last_error = ?, updated_at = ?,
		lease_owner = '', lease_until = 0, details = ? WHERE id = ?`),
		a.Status, micros(next), a.LastError, micros(now), d.details(), id); err != nil {
		return fmt.Errorf("record attempt on delivery %d: %w", id, err)
	}
	if a.Status != DeliveryQueued {
		var seq int64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT msg_seq FROM deliveries WHERE id = ?`), id).Scan(&seq); err != nil {
			return fmt.Errorf("record attempt on delivery %d: %w", id, err)
		}
		if err := s.collectQueued(ctx, tx, seq); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record attempt on delivery %d: %w", id, err)
	}
	s.publish(Event{Kind: EventRelay, MessageID: d.MessageID, DeliveryID: id})
	return nil
}

// NextDue returns the earliest time a delivery becomes claimable: the next
// attempt of a queued one or the lease end of one being sent. ok is false
// when nothing is pending.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	return s.nextDue(ctx, "deliveries")
}

// nextDue is NextDue for a leased queue table (deliveries, webhooks): both
// keep next_attempt_at for queued rows and lease_until for rows in flight.
func (s *Store) nextDue(ctx context.Context, table string) (time.Time, bool, error) {
	var q, l sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT
		(SELECT MIN(next_attempt_at) FROM `+table+` WHERE status = ?),
		(SELECT MIN(lease_until) FROM `+table+` WHERE status = ?)`), DeliveryQueued, DeliverySending).Scan(&q, &l)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next due in %s: %w", table, err)
	}
	switch {
	case q.Valid && l.Valid:
		return fromMicros(min(q.Int64, l.Int64)), true, nil
	case q.Valid:
		return fromMicros(q.Int64), true, nil
	case l.Valid:
		return fromMicros(l.Int64), true, nil
	}
	return time.Time{}, false, nil
}

// collectQueued removes message seq when it is in no mailbox and no
// pending delivery needs it any more (the queue kept it alive).
func (s *Store) collectQueued(ctx context.Context, tx *sql.Tx, seq int64) error {
	if s.pg {
		// As in collect: after the lock, the checks below see another
		// instance's committed removal of the last copy.
		if _, err := tx.ExecContext(ctx, s.q(`SELECT seq FROM messages WHERE seq = ? FOR UPDATE`), seq); err != nil {
			return fmt.Errorf("drop message left in no mailbox: %w", err)
		}
	}
	cond := ` WHERE seq = ? AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.seq = ? AND m.copies > 0)
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_seq = ? AND d.status IN ('queued','sending'))`
	for _, t := range s.messageTables() {
		c := cond
		switch t {
		case "msg_search":
			c = strings.Replace(cond, "WHERE seq", "WHERE rowid", 1) + qIndexed
		case "message_tags":
			c = strings.Replace(cond, "WHERE seq", "WHERE msg_seq", 1)
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM `+t+c), seq, seq, seq); err != nil {
			return fmt.Errorf("drop message left in no mailbox: %w", err)
		}
	}
	return nil
}
