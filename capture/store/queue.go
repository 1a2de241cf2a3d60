package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Delivery statuses.
const (
	DeliveryQueued    = "queued"
	DeliverySending   = "sending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

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
}
