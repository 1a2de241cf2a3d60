package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// SetSubscribed adds a name to a mailbox's subscriptions or removes it
// (IMAP SUBSCRIBE/UNSUBSCRIBE). Subscriptions are names, not folders: a
// name may be subscribed before its folder exists and stays subscribed when
// the folder is deleted. Unsubscribing a name that is not subscribed is not
// an error. ErrInvalid: a name IMAP cannot address.
func (s *Store) SetSubscribed(ctx context.Context, mailbox, name string, subscribed bool) error {
	mailbox = NormalizeAddress(mailbox)
	if err := validFolderName(name); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	q := `INSERT INTO subscriptions (mailbox, name) VALUES (?, ?) ON CONFLICT DO NOTHING`
	if !subscribed {
		q = `DELETE FROM subscriptions WHERE mailbox = ? AND name = ?`
	}
	if _, err := s.wdb.ExecContext(ctx, s.q(q), mailbox, name); err != nil {
		return fmt.Errorf("subscribe %s of %s: %w", name, mailbox, err)
	}
	s.publish(Event{Kind: EventFolders, Mailbox: mailbox})
	return nil
}

// Subscriptions lists the subscribed names of a mailbox, sorted; some may
// name no folder.
func (s *Store) Subscriptions(ctx context.Context, mailbox string) ([]string, error) {
	out, err := queryList(ctx, s, "list subscriptions", `SELECT name FROM subscriptions WHERE mailbox = ? ORDER BY name`,
		func(sc rowScanner) (string, error) {
			var n string
			err := sc.Scan(&n)
			return n, err
		}, NormalizeAddress(mailbox))
	if out == nil && err == nil {
		out = []string{}
	}
	return out, err
}

// renameSubscriptions follows a folder rename: the subscribed names of the
// folder and of those below it move with it (as Dovecot does).
func (s *Store) renameSubscriptions(ctx context.Context, tx *sql.Tx, mailbox, oldName, newName string) error {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT name FROM subscriptions WHERE mailbox = ?`), mailbox)
	if err != nil {
		return fmt.Errorf("rename subscriptions: %w", err)
	}
	var move []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("rename subscriptions: %w", err)
		}
		if n == oldName || strings.HasPrefix(n, oldName+FolderDelim) {
			move = append(move, n)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("rename subscriptions: %w", err)
	}
	for _, n := range move {
		to := newName + strings.TrimPrefix(n, oldName)
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM subscriptions WHERE mailbox = ? AND name = ?`), mailbox, n); err != nil {
			return fmt.Errorf("rename subscriptions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO subscriptions (mailbox, name) VALUES (?, ?) ON CONFLICT DO NOTHING`), mailbox, to); err != nil {
			return fmt.Errorf("rename subscriptions: %w", err)
		}
	}
	return nil
}

// ClaimRecent makes the entries of a folder with UIDs up to upTo no longer
// recent, and returns the lowest UID this call claimed (0 when another
// claim got there first): the entries from there up to upTo are \Recent in
// the IMAP session that called it and in no other (RFC 3501 2.3.2). It is
// one atomic step, also across instances sharing a PostgreSQL store.
func (s *Store) ClaimRecent(ctx context.Context, folderID int64, upTo uint32) (uint32, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("claim recent: %w", err)
	}
	defer tx.Rollback()
	var have int64
	err = tx.QueryRowContext(ctx, s.q(`SELECT recent_uid FROM folders WHERE id = ?`+s.forUpdate()), folderID).Scan(&have)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("folder %d: %w", folderID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("claim recent: %w", err)
	}
	if have >= int64(upTo) {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE folders SET recent_uid = ? WHERE id = ?`), int64(upTo), folderID); err != nil {
		return 0, fmt.Errorf("claim recent: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("claim recent: %w", err)
	}
	return uint32(have) + 1, nil
}

// RawMany reads the raw bytes of several messages at once, by id (a
// client's search through a whole folder reads every message; one query
// per few hundred costs far less than one each). Ids not found are left
// out of the map.
func (s *Store) RawMany(ctx context.Context, ids []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(ids))
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		ph := strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")
		rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT m.id, b.raw FROM messages m JOIN bodies b ON b.seq = m.seq WHERE m.id IN (`+ph+`)`), args...)
		if err != nil {
			return nil, fmt.Errorf("read messages: %w", err)
		}
		for rows.Next() {
			var id string
			var raw []byte
			if err := rows.Scan(&id, &raw); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read messages: %w", err)
			}
			out[id] = raw
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read messages: %w", err)
		}
	}
	return out, nil
}
