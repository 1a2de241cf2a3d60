package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// FolderDelim separates the levels of folder names ("Archive/2026").
const FolderDelim = "/"

// FlagOp says how UpdateFlags combines the given flags with an entry's own.
type FlagOp int

// Flag operations (IMAP STORE +FLAGS, -FLAGS, FLAGS).
const (
	FlagsAdd FlagOp = iota
	FlagsRemove
	FlagsReplace
)

// validFolderName rejects names IMAP cannot address: empty, with empty
// levels, or with control characters.
func validFolderName(name string) error {
	if name == "" || strings.HasPrefix(name, FolderDelim) || strings.HasSuffix(name, FolderDelim) ||
		strings.Contains(name, FolderDelim+FolderDelim) || strings.ContainsAny(name, "\r\n\x00*%") {
		return fmt.Errorf("folder name %q: %w", name, ErrInvalid)
	}
	return nil
}

// CreateFolder creates one folder of a mailbox (parents are not created).
// It fails with ErrExists when the name is taken and ErrInvalid for a name
// that is empty or has empty levels. specialUse is an RFC 6154 attribute
// such as `\Trash`, or "".
func (s *Store) CreateFolder(ctx context.Context, mailbox, name, specialUse string) (Folder, error) {
	mailbox = NormalizeAddress(mailbox)
	if mailbox == "" {
		return Folder{}, fmt.Errorf("create folder: %w: no mailbox", ErrInvalid)
	}
	if err := validFolderName(name); err != nil {
		return Folder{}, fmt.Errorf("create folder: %w", err)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return Folder{}, fmt.Errorf("create folder: %w", err)
	}
	defer tx.Rollback()
	f, err := s.createFolder(ctx, tx, mailbox, name, specialUse)
	if err != nil {
		return Folder{}, err
	}
	if err := tx.Commit(); err != nil {
		return Folder{}, fmt.Errorf("create folder %s of %s: %w", name, mailbox, err)
	}
	s.publish(Event{Kind: EventFolders, Mailbox: mailbox})
	return f, nil
}

// folderByName reads a folder's id inside tx.
func (s *Store) folderByName(ctx context.Context, tx *sql.Tx, mailbox, name string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM folders WHERE mailbox = ? AND name = ?`), mailbox, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("folder %s of %s: %w", name, mailbox, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("read folder %s of %s: %w", name, mailbox, err)
	}
	return id, nil
}

// folderByID reads a folder inside tx and, on PostgreSQL, locks it until
// the end of tx: changes to its entries (flags, copy, move, expunge) read
// them first, and another instance must not change them in between.
func (s *Store) folderByID(ctx context.Context, tx *sql.Tx, id int64) (mailbox, name string, err error) {
	err = tx.QueryRowContext(ctx, s.q(`SELECT mailbox, name FROM folders WHERE id = ?`+s.forUpdate()), id).Scan(&mailbox, &name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", fmt.Errorf("folder %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", "", fmt.Errorf("read folder %d: %w", id, err)
	}
	return mailbox, name, nil
}

// DeleteFolder removes a folder and every entry in it (messages left in no
// mailbox are dropped). Folders below it stay. INBOX cannot be deleted
// (ErrInvalid).
func (s *Store) DeleteFolder(ctx context.Context, mailbox, name string) error {
	mailbox = NormalizeAddress(mailbox)
	if name == InboxName {
		return fmt.Errorf("delete folder: %w: INBOX cannot be deleted", ErrInvalid)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete folder: %w", err)
	}
	defer tx.Rollback()
	id, err := s.folderByName(ctx, tx, mailbox, name)
	if err != nil {
		return err
	}
	evs, err := s.deleteEntriesTx(ctx, tx, `folder_id = ?`, []any{id})
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM folders WHERE id = ?`), id); err != nil {
		return fmt.Errorf("delete folder %s of %s: %w", name, mailbox, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete folder %s of %s: %w", name, mailbox, err)
	}
	s.publish(append(evs, Event{Kind: EventFolders, Mailbox: mailbox})...)
	return nil
}

// RenameFolder renames a folder and every folder below it (oldName + "/…").
// Folders keep their UIDs and UIDValidity. Renaming INBOX follows RFC 3501:
// a new folder newName is created, every INBOX entry moves there (with new
// UIDs), and INBOX stays, empty, with its subfolders. ErrNotFound: no
// oldName; ErrExists: newName (or a folder the rename would create) exists;
// ErrInvalid: a bad name, newName INBOX, or newName below oldName.
func (s *Store) RenameFolder(ctx context.Context, mailbox, oldName, newName string) error {
	mailbox = NormalizeAddress(mailbox)
	if err := validFolderName(newName); err != nil {
		return fmt.Errorf("rename folder: %w", err)
	}
	if newName == InboxName || oldName == newName || strings.HasPrefix(newName, oldName+FolderDelim) {
		return fmt.Errorf("rename folder %s to %s: %w", oldName, newName, ErrInvalid)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("rename folder: %w", err)
	}
	defer tx.Rollback()
	oldID, err := s.folderByName(ctx, tx, mailbox, oldName)
	if err != nil {
		return err
	}
	var evs []Event
	if oldName == InboxName {
		if _, err := s.folderByName(ctx, tx, mailbox, newName); err == nil {
			return fmt.Errorf("rename folder to %s: %w", newName, ErrExists)
		}
		if _, err := s.createFolder(ctx, tx, mailbox, newName, ""); err != nil {
			return err
		}
		ids, err := s.entryIDs(ctx, tx, oldID, nil)
		if err != nil {
			return err
		}
		src, dst, newFolder, err := s.moveTx(ctx, tx, mailbox, newName, ids)
		if err != nil {
			return err
		}
		if len(src) > 0 {
			evs = append(evs,
				Event{Kind: EventDeleted, Mailbox: mailbox, FolderID: oldID, UIDs: src},
				Event{Kind: EventEntry, Mailbox: mailbox, FolderID: newFolder, UIDs: dst})
		}
	} else {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id, name FROM folders WHERE mailbox = ?`), mailbox)
		if err != nil {
			return fmt.Errorf("rename folder: %w", err)
		}
		names := map[string]int64{}
		for rows.Next() {
			var id int64
			var n string
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return fmt.Errorf("rename folder: %w", err)
			}
			names[n] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("rename folder: %w", err)
		}
		renames := map[int64]string{oldID: newName}
		for n, id := range names {
			if strings.HasPrefix(n, oldName+FolderDelim) {
				renames[id] = newName + strings.TrimPrefix(n, oldName)
			}
		}
		for _, n := range renames {
			if other, ok := names[n]; ok && renames[other] == "" {
				return fmt.Errorf("rename folder to %s: %w", n, ErrExists)
			}
		}
		// Two passes through a temporary name avoid clashing with the
		// UNIQUE constraint while a subtree shifts.
		for id := range renames {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE folders SET name = ? WHERE id = ?`), fmt.Sprintf("/rename-%d", id), id); err != nil {
				return fmt.Errorf("rename folder: %w", err)
			}
		}
		for id, n := range renames {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE folders SET name = ? WHERE id = ?`), n, id); err != nil {
				return fmt.Errorf("rename folder to %s: %w", n, err)
			}
		}
		if err := s.renameSubscriptions(ctx, tx, mailbox, oldName, newName); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("rename folder %s of %s: %w", oldName, mailbox, err)
	}
	s.publish(append(evs, Event{Kind: EventFolders, Mailbox: mailbox})...)
	return nil
}

type entryRef struct {
	id, seq int64
	uid     uint32
	seen    bool
	flags   string
}

// entryIDs lists the entries of a folder with the given UIDs (all when uids
// is nil), by ascending UID.
func (s *Store) entryIDs(ctx context.Context, tx *sql.Tx, folderID int64, uids []uint32) ([]entryRef, error) {
	var want map[uint32]bool
	if uids != nil {
		want = make(map[uint32]bool, len(uids))
		for _, u := range uids {
			want[u] = true
		}
	}
	rows, err := tx.QueryContext(ctx, s.q(`SELECT id, msg_seq, uid, seen, flags FROM entries WHERE folder_id = ? ORDER BY uid`), folderID)
	if err != nil {
		return nil, fmt.Errorf("read entries: %w", err)
	}
	defer rows.Close()
	var out []entryRef
	for rows.Next() {
		var r entryRef
		var uid int64
		var seen int
		if err := rows.Scan(&r.id, &r.seq, &uid, &seen, &r.flags); err != nil {
			return nil, fmt.Errorf("read entries: %w", err)
		}
		r.uid, r.seen = uint32(uid), seen != 0
		if want == nil || want[r.uid] {
			out = append(out, r)
		}
	}
	return out, rows.Err()
}

// UpdateFlags changes the flags of the entries of a folder with the given
// UIDs (UIDs not in the folder are ignored) and returns those entries with
// their flags after the change, by ascending UID. \Seen is the seen state
// REST shows for the mailbox; keywords keep their case but match without
// it; \Recent is ignored.
func (s *Store) UpdateFlags(ctx context.Context, folderID int64, uids []uint32, op FlagOp, flags []string) ([]Entry, error) {
	if uids == nil {
		uids = []uint32{}
	}
	given := normFlags(flags)
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("update flags: %w", err)
	}
	defer tx.Rollback()
	mailbox, _, err := s.folderByID(ctx, tx, folderID)
	if err != nil {
		return nil, err
	}
	refs, err := s.entryIDs(ctx, tx, folderID, uids)
	if err != nil {
		return nil, err
	}
	var changed []uint32
	ids := make([]int64, 0, len(refs))
	for _, r := range refs {
		ids = append(ids, r.id)
		before := colsFlags(r.seen, r.flags)
		after := applyFlags(before, op, given)
		seen, rest := flagCols(after)
		if (seen != 0) == r.seen && rest == r.flags {
			continue
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE entries SET seen = ?, flags = ? WHERE id = ?`), seen, rest, r.id); err != nil {
			return nil, fmt.Errorf("update flags: %w", err)
		}
		changed = append(changed, r.uid)
	}
	out, err := s.entriesByID(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("update flags: %w", err)
	}
	if len(changed) > 0 {
		s.publish(Event{Kind: EventFlags, Mailbox: mailbox, FolderID: folderID, UIDs: changed})
	}
	return out, nil
}

// applyFlags combines an entry's flags with the given ones.
func applyFlags(have []string, op FlagOp, given []string) []string {
	has := func(list []string, f string) bool {
		for _, x := range list {
			if strings.EqualFold(x, f) {
				return true
			}
		}
		return false
	}
	switch op {
	case FlagsReplace:
		return given
	case FlagsRemove:
		var out []string
		for _, f := range have {
			if !has(given, f) {
				out = append(out, f)
			}
		}
		return out
	default:
		out := append([]string{}, have...)
		for _, f := range given {
			if !has(out, f) {
				out = append(out, f)
			}
		}
		return out
	}
}

// entriesByID reads entries inside tx, by ascending UID.
func (s *Store) entriesByID(ctx context.Context, tx *sql.Tx, ids []int64) ([]Entry, error) {
	out := []Entry{}
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		ph := strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")
		rows, err := tx.QueryContext(ctx, s.q(`SELECT `+entryCols+` FROM entries e JOIN messages m ON m.seq = e.msg_seq
			WHERE e.id IN (`+ph+`)`), args...)
		if err != nil {
			return nil, fmt.Errorf("read entries: %w", err)
		}
		for rows.Next() {
			e, err := scanEntry(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("read entries: %w", err)
			}
			out = append(out, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read entries: %w", err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}

// CopyEntries copies the entries of srcFolderID with the given UIDs into
// dstFolderID (a folder of the same mailbox), keeping flags and internal
// date. It returns the source UIDs copied and the new UIDs, pairwise in
// ascending source order (IMAP COPYUID). The destination may be the source.
func (s *Store) CopyEntries(ctx context.Context, srcFolderID int64, uids []uint32, dstFolderID int64) (srcUIDs, dstUIDs []uint32, err error) {
	mailbox, srcUIDs, dstUIDs, err := s.transfer(ctx, "copy entries", srcFolderID, uids, dstFolderID,
		func(tx *sql.Tx, mailbox, dstName string, refs []entryRef) (src, dst []uint32, err error) {
			var seqs []int64
			for _, r := range refs {
				_, uid, _, err := s.allocUID(ctx, tx, mailbox, dstName, false)
				if err != nil {
					return nil, nil, err
				}
				if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO entries (msg_seq, mailbox, folder_id, uid, seen, flags, received_at)
					SELECT msg_seq, mailbox, ?, ?, seen, flags, received_at FROM entries WHERE id = ?`), dstFolderID, uid, r.id); err != nil {
					return nil, nil, fmt.Errorf("copy entries: %w", err)
				}
				src, dst, seqs = append(src, r.uid), append(dst, uid), append(seqs, r.seq)
			}
			_, err = s.collect(ctx, tx, seqs)
			return src, dst, err
		})
	if err != nil {
		return nil, nil, err
	}
	if len(dstUIDs) > 0 {
		s.publish(Event{Kind: EventEntry, Mailbox: mailbox, FolderID: dstFolderID, UIDs: dstUIDs})
	}
	return srcUIDs, dstUIDs, nil
}

// transfer runs the common part of COPY and MOVE in one transaction: both
// folders checked (and locked) as one mailbox's, the source UIDs resolved,
// then do, then commit. It returns the mailbox and what do returned.
func (s *Store) transfer(ctx context.Context, what string, srcFolderID int64, uids []uint32, dstFolderID int64,
	do func(tx *sql.Tx, mailbox, dstName string, refs []entryRef) (src, dst []uint32, err error)) (mailbox string, src, dst []uint32, err error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return "", nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback()
	mailbox, dstName, err := s.pairFolders(ctx, tx, srcFolderID, dstFolderID)
	if err != nil {
		return "", nil, nil, err
	}
	refs, err := s.entryIDs(ctx, tx, srcFolderID, uids)
	if err != nil {
		return "", nil, nil, err
	}
	if src, dst, err = do(tx, mailbox, dstName, refs); err != nil {
		return "", nil, nil, err
	}
	if err := tx.Commit(); err != nil {
		return "", nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	return mailbox, src, dst, nil
}

// pairFolders checks that both folders exist in one mailbox and returns it
// and the destination's name.
func (s *Store) pairFolders(ctx context.Context, tx *sql.Tx, srcID, dstID int64) (mailbox, dstName string, err error) {
	if dstID < srcID {
		// Lock in id order, so two opposite moves cannot deadlock.
		if _, _, err := s.folderByID(ctx, tx, dstID); err != nil {
			return "", "", err
		}
	}
	srcMailbox, _, err := s.folderByID(ctx, tx, srcID)
	if err != nil {
		return "", "", err
	}
	dstMailbox, dstName, err := s.folderByID(ctx, tx, dstID)
	if err != nil {
		return "", "", err
	}
	if srcMailbox != dstMailbox {
		return "", "", fmt.Errorf("folders %d and %d: %w: different mailboxes", srcID, dstID, ErrInvalid)
	}
	return dstMailbox, dstName, nil
}

// MoveEntries moves the entries of srcFolderID with the given UIDs into
// dstFolderID (a folder of the same mailbox, possibly the source itself:
// RFC 6851 allows that, the entries get new UIDs), with new UIDs there.
// It returns the source and new UIDs pairwise, like CopyEntries, and
// publishes EventDeleted for the source UIDs (Mailbox, FolderID, UIDs set;
// MessageID empty: the messages stay in the mailbox) and EventEntry for the
// new ones.
func (s *Store) MoveEntries(ctx context.Context, srcFolderID int64, uids []uint32, dstFolderID int64) (srcUIDs, dstUIDs []uint32, err error) {
	mailbox, srcUIDs, dstUIDs, err := s.transfer(ctx, "move entries", srcFolderID, uids, dstFolderID,
		func(tx *sql.Tx, mailbox, dstName string, refs []entryRef) (src, dst []uint32, err error) {
			src, dst, _, err = s.moveTx(ctx, tx, mailbox, dstName, refs)
			return src, dst, err
		})
	if err != nil {
		return nil, nil, err
	}
	if len(srcUIDs) > 0 {
		s.publish(
			Event{Kind: EventDeleted, Mailbox: mailbox, FolderID: srcFolderID, UIDs: srcUIDs},
			Event{Kind: EventEntry, Mailbox: mailbox, FolderID: dstFolderID, UIDs: dstUIDs})
	}
	return srcUIDs, dstUIDs, nil
}

// moveTx re-files entries into folder dstName with fresh UIDs.
func (s *Store) moveTx(ctx context.Context, tx *sql.Tx, mailbox, dstName string, refs []entryRef) (src, dst []uint32, dstID int64, err error) {
	for _, r := range refs {
		fid, uid, _, err := s.allocUID(ctx, tx, mailbox, dstName, false)
		if err != nil {
			return nil, nil, 0, err
		}
		dstID = fid
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE entries SET folder_id = ?, uid = ? WHERE id = ?`), fid, uid, r.id); err != nil {
			return nil, nil, 0, fmt.Errorf("move entries: %w", err)
		}
		src = append(src, r.uid)
		dst = append(dst, uid)
	}
	return src, dst, dstID, nil
}

// Expunge removes the entries of a folder flagged \Deleted, only those with
// the given UIDs when uids is not nil, and returns the UIDs removed in
// ascending order. Messages left in no mailbox are dropped.
func (s *Store) Expunge(ctx context.Context, folderID int64, uids []uint32) ([]uint32, error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("expunge: %w", err)
	}
	defer tx.Rollback()
	if _, _, err := s.folderByID(ctx, tx, folderID); err != nil {
		return nil, err
	}
	refs, err := s.entryIDs(ctx, tx, folderID, uids)
	if err != nil {
		return nil, err
	}
	var ids []any
	var gone []uint32
	for _, r := range refs {
		for _, f := range strings.Fields(r.flags) {
			if f == `\Deleted` {
				ids = append(ids, r.id)
				gone = append(gone, r.uid)
				break
			}
		}
	}
	var evs []Event
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		ph := strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")
		e, err := s.deleteEntriesTx(ctx, tx, `id IN (`+ph+`)`, chunk)
		if err != nil {
			return nil, err
		}
		evs = append(evs, e...)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("expunge: %w", err)
	}
	s.publish(evs...)
	if gone == nil {
		gone = []uint32{}
	}
	return gone, nil
}

// EntryFlags lists the UIDs and flags of a folder's entries by ascending
// UID, and nothing else (ID, MessageID, Size and ReceivedAt are zero): the
// cheap re-read an IMAP server does after every command.
func (s *Store) EntryFlags(ctx context.Context, folderID int64) ([]Entry, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT uid, seen, flags FROM entries WHERE folder_id = ? ORDER BY uid`), folderID)
	if err != nil {
		return nil, fmt.Errorf("list entry flags: %w", err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var uid int64
		var seen int
		var flags string
		if err := rows.Scan(&uid, &seen, &flags); err != nil {
			return nil, fmt.Errorf("list entry flags: %w", err)
		}
		out = append(out, Entry{FolderID: folderID, UID: uint32(uid), Flags: colsFlags(seen != 0, flags)})
	}
	return out, rows.Err()
}

// EntriesFrom lists the entries of a folder with a UID of at least minUID,
// by ascending UID (the mail that arrived since an IMAP client last looked).
func (s *Store) EntriesFrom(ctx context.Context, folderID int64, minUID uint32) ([]Entry, error) {
	return queryList(ctx, s, "list entries", `SELECT `+entryCols+` FROM entries e JOIN messages m ON m.seq = e.msg_seq
		WHERE e.folder_id = ? AND e.uid >= ? ORDER BY e.uid`, scanEntry, folderID, int64(minUID))
}
