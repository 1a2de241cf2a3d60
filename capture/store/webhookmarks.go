package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Webhook marks: how new messages reach webhook senders without costing
// capture anything. Ingest writes nothing for webhooks. Each URL has one
// row in webhook_marks: done_seq, the last message whose delivery has been
// handed over (posted with a 2xx, or moved to the webhooks table to be
// retried), and a lease on the range a sender is posting (up to
// claimed_seq). A sender:
//
//  1. reads the messages after done_seq (a reader: no write lock),
//  2. claims them by moving claimed_seq under a lease with one conditional
//     UPDATE, which only one sender can win while the lease is live (so
//     instances sharing a PostgreSQL store post each message once),
//  3. posts them, and
//  4. in one transaction, moves done_seq to claimed_seq, counts the 2xx
//     answers and inserts a webhooks row for each failed first attempt.
//
// A sender that dies mid-range leaves its lease; once it ends, the range is
// claimed and posted again under the same delivery ids (at least once).
// A message deleted before its first attempt is not announced.
//
// On PostgreSQL a message can commit after one with a higher seq (another
// instance's ingest): every ingest transaction holds the seq lock shared,
// and a sender takes it exclusively for a moment to read the highest seq
// stored (settledSeqPG). Any seq at or below it is then settled: a hole
// there is a message deleted or a transaction rolled back, never one still
// to come, so the mark can pass it without waiting or guessing. On SQLite
// the single writer commits in seq order, so a hole is a deleted message.

// seqLockKey is the advisory lock that orders ingest before webhook
// claims, one per schema (instances sharing a schema share the lock).
const seqLockKey = `hashtextextended(current_schema() || '/messages/seq', 0)`

// EnsureWebhookMarks gives each URL without a mark one at the newest
// message stored: it is announced every message stored from now on.
// Open calls it with Options.WebhookURLs before any ingest.
func (s *Store) EnsureWebhookMarks(ctx context.Context, urls []string) error {
	now := micros(s.now().UTC())
	for _, u := range urls {
		if _, err := s.wdb.ExecContext(ctx, s.q(`INSERT INTO webhook_marks (url, done_seq, claimed_seq, updated_at)
			SELECT ?, COALESCE(MAX(seq), 0), COALESCE(MAX(seq), 0), ? FROM messages WHERE true
			ON CONFLICT (url) DO NOTHING`), u, now); err != nil {
			return fmt.Errorf("webhook mark of %s: %w", u, err)
		}
	}
	return nil
}

// NewWebhookClaim asks for the messages a URL has not been sent yet.
type NewWebhookClaim struct {
	URL   string
	Owner string
	Now   time.Time
	Lease time.Duration
	Limit int // 0: 100
}

// NewWebhookBatch is a claimed range of new messages for one URL.
type NewWebhookBatch struct {
	URL string
	To  int64 // the last seq claimed
	// Messages are the claimed messages, oldest first, as Get returns them.
	Messages []Message
	// DeliveryIDs[i] is Messages[i]'s delivery id: the same on every
	// attempt and after a crash, unique across stores.
	DeliveryIDs []string
	// Busy: nothing was claimed, but there may be soon (another sender
	// holds the URL).
	Busy bool
}

// WebhookDeliveryID is the delivery id of message id's webhook to url.
func WebhookDeliveryID(messageID, url string) string {
	h := sha256.Sum256([]byte(url))
	return messageID + "." + hex.EncodeToString(h[:4])
}

// ClaimNewWebhooks claims up to Limit messages stored after url's mark, for
// Owner until Now+Lease. An empty batch means nothing to send now.
func (s *Store) ClaimNewWebhooks(ctx context.Context, c NewWebhookClaim) (NewWebhookBatch, error) {
	b := NewWebhookBatch{URL: c.URL}
	if c.Limit <= 0 {
		c.Limit = 100
	}
	var done, until int64
	var owner string
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT done_seq, lease_owner, lease_until FROM webhook_marks WHERE url = ?`), c.URL).Scan(&done, &owner, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("claim new webhooks for %s: %w: no mark (not in Options.WebhookURLs)", c.URL, ErrNotFound)
	}
	if err != nil {
		return b, fmt.Errorf("claim new webhooks for %s: %w", c.URL, err)
	}
	now := micros(c.Now)
	if owner != "" && owner != c.Owner && until > now {
		b.Busy = true
		return b, nil
	}
	upto := int64(math.MaxInt64)
	if s.pg {
		if upto, err = s.settledSeqPG(ctx); err != nil {
			return b, fmt.Errorf("claim new webhooks for %s: %w", c.URL, err)
		}
	}
	ms, err := queryList(ctx, s, "claim new webhooks", `SELECT `+summaryCols+` FROM messages m WHERE m.seq > ? AND m.seq <= ? ORDER BY m.seq LIMIT ?`,
		func(sc rowScanner) (Message, error) { return scanSummary(sc) }, done, upto, c.Limit)
	if err != nil {
		return b, err
	}
	if len(ms) == 0 {
		return b, nil
	}
	last := ms[len(ms)-1].seq
	res, err := s.wdb.ExecContext(ctx, s.q(`UPDATE webhook_marks SET claimed_seq = ?, lease_owner = ?, lease_until = ?, updated_at = ?
		WHERE url = ? AND done_seq = ? AND (lease_owner = '' OR lease_owner = ? OR lease_until <= ?)`),
		last, c.Owner, micros(c.Now.Add(c.Lease)), now, c.URL, done, c.Owner, now)
	if err != nil {
		return b, fmt.Errorf("claim new webhooks for %s: %w", c.URL, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		b.Busy = true // another sender moved the mark or holds it
		return b, nil
	}
	if err := s.fillMailboxes(ctx, ms, ""); err != nil {
		return b, err
	}
	b.To, b.Messages = last, ms
	b.DeliveryIDs = make([]string, len(ms))
	for i, m := range ms {
		b.DeliveryIDs[i] = WebhookDeliveryID(m.ID, c.URL)
	}
	return b, nil
}

// settledSeqPG is the highest seq stored once no ingest transaction is in
// flight: it waits for those holding the seq lock (new ones queue behind
// it) and lets them go at once.
func (s *Store) settledSeqPG(ctx context.Context) (int64, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("settled seq: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(`+seqLockKey+`)`); err != nil {
		return 0, fmt.Errorf("settled seq: take the seq lock: %w", err)
	}
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM messages`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("settled seq: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("settled seq: %w", err)
	}
	return seq, nil
}

// FailedWebhook is a first attempt that did not get a 2xx: it goes to the
// webhooks table to be retried (Status DeliveryQueued, at NextAttemptAt)
// or, past its maximum age, as given up (DeliveryFailed).
type FailedWebhook struct {
	DeliveryID    string
	MessageID     string
	Payload       []byte
	Status        string
	NextAttemptAt time.Time
	LastError     string
	ReceivedAt    time.Time // the message's: the maximum age counts from it
}

// NewWebhookResult is the outcome of a claimed batch.
type NewWebhookResult struct {
	URL       string
	Owner     string
	To        int64 // the batch's To
	Delivered int   // 2xx answers
	Failed    []FailedWebhook
}

// ErrLeaseLost says a sender's claim ended before it recorded the outcome
// (another sender took the range over and sends it again).
var ErrLeaseLost = errors.New("store: webhook lease lost")

// FinishNewWebhooks records a batch's outcome in one transaction: the mark
// moves past it and failed first attempts join the retry queue. When
// Owner no longer holds the range, nothing is written (ErrLeaseLost).
func (s *Store) FinishNewWebhooks(ctx context.Context, r NewWebhookResult) error {
	for _, f := range r.Failed {
		if f.Status != DeliveryQueued && f.Status != DeliveryFailed {
			return fmt.Errorf("finish webhooks for %s: %w: status %q", r.URL, ErrInvalid, f.Status)
		}
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("finish webhooks for %s: %w", r.URL, err)
	}
	defer tx.Rollback()
	now := micros(s.now().UTC())
	res, err := tx.ExecContext(ctx, s.q(`UPDATE webhook_marks SET done_seq = claimed_seq, delivered = delivered + ?,
		lease_owner = '', lease_until = 0, updated_at = ? WHERE url = ? AND lease_owner = ? AND claimed_seq = ?`),
		r.Delivered, now, r.URL, r.Owner, r.To)
	if err != nil {
		return fmt.Errorf("finish webhooks for %s: %w", r.URL, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("finish webhooks for %s: %w", r.URL, ErrLeaseLost)
	}
	const perStmt = 100 // 10 parameters a row, far under every driver's limit
	for len(r.Failed) > 0 {
		chunk := r.Failed[:min(perStmt, len(r.Failed))]
		r.Failed = r.Failed[len(chunk):]
		var sb strings.Builder
		sb.WriteString(qInsertWebhook)
		args := make([]any, 0, 10*len(chunk))
		for i, f := range chunk {
			if i > 0 {
				sb.WriteString(",")
			}
			sb.WriteString("(?,?,?,?,?,1,?,?,?,?,?)")
			next := micros(f.NextAttemptAt)
			if f.Status == DeliveryFailed {
				next = 0
			}
			recv := micros(f.ReceivedAt)
			args = append(args, f.DeliveryID, f.MessageID, r.URL, f.Payload, f.Status, next, f.LastError, recv, recv, now)
		}
		if _, err := tx.ExecContext(ctx, s.q(sb.String()), args...); err != nil {
			return fmt.Errorf("finish webhooks for %s: queue retries: %w", r.URL, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("finish webhooks for %s: %w", r.URL, err)
	}
	return nil
}
