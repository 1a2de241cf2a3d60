package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// folderCols reads a folder's totals from the kept folder_counts (see
// counts.go) rather than counting its entries; only the recent ones, above
// recent_uid and usually few, are counted.
const folderCols = `f.id, f.mailbox, f.name, f.uidvalidity, f.uidnext,
	(SELECT COUNT(*) FROM subscriptions s WHERE s.mailbox = f.mailbox AND s.name = f.name), f.special_use,
	COALESCE(c.entries, 0), COALESCE(c.unseen, 0),
	f.recent_uid,
	(SELECT COUNT(*) FROM entries e WHERE e.folder_id = f.id AND e.uid > f.recent_uid),
	COALESCE(c.modseq, 0)`

// folderFrom is what folderCols reads from.
const folderFrom = ` FROM folders f LEFT JOIN folder_counts c ON c.folder_id = f.id`

func scanFolder(sc rowScanner) (Folder, error) {
	var f Folder
	var v, next, recent, total, unseen int64
	var sub int
	err := sc.Scan(&f.ID, &f.Mailbox, &f.Name, &v, &next, &sub, &f.SpecialUse, &total, &unseen, &recent, &f.Recent, &f.ModSeq)
	f.UIDValidity, f.UIDNext, f.Subscribed, f.RecentUID = uint32(v), uint32(next), sub != 0, uint32(recent)
	f.Total, f.Unseen = int(total), int(unseen)
	return f, err
}

// Folders lists the folders of a mailbox, INBOX first then by name. A
// mailbox that never received mail has none.
func (s *Store) Folders(ctx context.Context, mailbox string) ([]Folder, error) {
	return queryList(ctx, s, "list folders", `SELECT `+folderCols+folderFrom+` WHERE f.mailbox = ?
		ORDER BY CASE WHEN f.name = 'INBOX' THEN 0 ELSE 1 END, f.name`, scanFolder, NormalizeAddress(mailbox))
}

// Folder returns one folder by name. INBOX is created on first use, so a
// client may log in to a mailbox before any mail arrived.
func (s *Store) Folder(ctx context.Context, mailbox, name string) (Folder, error) {
	mailbox = NormalizeAddress(mailbox)
	f, err := scanFolder(s.rdb.QueryRowContext(ctx, s.q(`SELECT `+folderCols+folderFrom+` WHERE f.mailbox = ? AND f.name = ?`), mailbox, name))
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Folder{}, fmt.Errorf("read folder %s of %s: %w", name, mailbox, err)
	}
	if name != InboxName {
		return Folder{}, fmt.Errorf("folder %s of %s: %w", name, mailbox, ErrNotFound)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return Folder{}, fmt.Errorf("create inbox: %w", err)
	}
	defer tx.Rollback()
	if _, err := s.createFolder(ctx, tx, mailbox, InboxName, ""); err != nil && !errors.Is(err, ErrExists) {
		return Folder{}, err
	}
	if err := tx.Commit(); err != nil {
		return Folder{}, fmt.Errorf("create inbox: %w", err)
	}
	s.publish(Event{Kind: EventFolders, Mailbox: mailbox})
	return s.Folder(ctx, mailbox, name)
}

const entryCols = `e.id, m.id, e.mailbox, e.folder_id, e.uid, e.seen, e.flags, m.size, e.received_at, e.msg_seq`

func scanEntry(sc rowScanner) (Entry, error) {
	var e Entry
	var uid, received int64
	var seen int
	var flags string
	err := sc.Scan(&e.ID, &e.MessageID, &e.Mailbox, &e.FolderID, &uid, &seen, &flags, &e.Size, &received, &e.seq)
	e.UID, e.ReceivedAt, e.Flags = uint32(uid), fromMicros(received), colsFlags(seen != 0, flags)
	return e, err
}

// Entries lists the entries of one folder by ascending UID.
func (s *Store) Entries(ctx context.Context, folderID int64) ([]Entry, error) {
	return s.EntriesFrom(ctx, folderID, 0)
}

// queryList runs a read query and scans every row with scan.
func queryList[T any](ctx context.Context, s *Store, what, query string, scan func(rowScanner) (T, error), args ...any) ([]T, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// lockTable holds the exclusive maildrop locks of this process.
type lockTable struct {
	mu   sync.Mutex
	held map[string]bool
}

func (l *lockTable) init() { l.held = map[string]bool{} }

// LockMailbox takes the exclusive lock on a mailbox that a POP3 session
// holds during its transaction. It fails with ErrLocked when another session
// holds it, in this process or, on PostgreSQL, in any instance sharing the
// database. The returned func releases it; calling it twice is harmless.
func (s *Store) LockMailbox(ctx context.Context, mailbox string) (func(), error) {
	mailbox = NormalizeAddress(mailbox)
	l := &s.locks
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[mailbox] {
		return nil, fmt.Errorf("lock %s: %w", mailbox, ErrLocked)
	}
	l.held[mailbox] = true
	unlockLocal := func() {
		l.mu.Lock()
		delete(l.held, mailbox)
		l.mu.Unlock()
	}
	unlockShared := func() {}
	if s.pgs != nil {
		// Other instances: an advisory lock in the shared database. The
		// local mark is already set, so no session of ours races for it.
		l.mu.Unlock()
		unlock, err := s.lockShared(ctx, mailbox)
		l.mu.Lock()
		if err != nil {
			delete(l.held, mailbox)
			return nil, err
		}
		unlockShared = unlock
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			unlockShared()
			unlockLocal()
		})
	}, nil
}
