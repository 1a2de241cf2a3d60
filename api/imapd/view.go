package imapd

import (
	"context"
	"log/slog"
	"slices"
	"sync"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// folderView is the shared state of one selected folder: its entries as
// last read from the store. Sessions never share their own view of the
// folder (what their client was told): each keeps it in its selected and
// brings it up to date from a snapshot of entries (see selected.poll).
type folderView struct {
	st  Store
	log *slog.Logger
	id  int64

	refs int // guarded by Server.mu

	// mu guards entries, claimed and waiters, and orders store reads.
	mu sync.Mutex
	// entries is by ascending UID; it is replaced, never changed in place,
	// so a session may read a snapshot without holding mu.
	entries []store.Entry
	// claimed is the highest UID known to be claimed as recent (by some
	// session of any instance): a cache that spares the store a write.
	claimed uint32
	// modseq is the folder's change counter (store.FolderModSeq) as read
	// before entries were last read in full, when modseqOK: while the
	// store's counter still equals it, entries are what the store holds
	// and need no re-read. Reads of new mail alone (event-driven) leave
	// it, so the next command's sync reads the folder once in full.
	modseq   int64
	modseqOK bool
	// waiters are poked after entries change: sessions in IDLE.
	waiters map[chan struct{}]struct{}
}

// wait registers a channel poked whenever entries change; the returned
// func unregisters it.
func (v *folderView) wait() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	v.mu.Lock()
	if v.waiters == nil {
		v.waiters = map[chan struct{}]struct{}{}
	}
	v.waiters[ch] = struct{}{}
	v.mu.Unlock()
	return ch, func() {
		v.mu.Lock()
		delete(v.waiters, ch)
		v.mu.Unlock()
	}
}

func (v *folderView) pokeLocked() {
	for ch := range v.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// snapshot returns the entries as last read.
func (v *folderView) snapshot() []store.Entry {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.entries
}

// sync brings the folder up to date with the store and returns the new
// snapshot: one read of its change counter, and a re-read only when it
// moved (a change by any instance sharing the store moves it).
func (v *folderView) sync(ctx context.Context) []store.Entry {
	m, err := v.st.FolderModSeq(ctx, v.id)
	if err != nil {
		if ctx.Err() == nil {
			v.log.Warn("imap: read folder change counter", "folder", v.id, "err", err)
		}
		m = -1 // read in full, trust nothing
	}
	return v.syncAt(ctx, m)
}

// syncAt is sync with the change counter m already read (before now);
// m < 0 means unknown.
func (v *folderView) syncAt(ctx context.Context, m int64) []store.Entry {
	v.mu.Lock()
	defer v.mu.Unlock()
	if m >= 0 && v.modseqOK && m == v.modseq {
		return v.entries
	}
	if v.syncLocked(ctx, false) && m >= 0 {
		// The entries were read after m (and after v.modseq), so they are
		// at least as new as either.
		v.modseq, v.modseqOK = max(v.modseq, m), true
	}
	return v.entries
}

// syncLocked re-reads the folder: UIDs and flags of every entry, and the
// new entries in full. With onlyNew it reads the new entries only (an
// event said mail arrived and nothing else changed). It reports whether
// everything it meant to read was read.
func (v *folderView) syncLocked(ctx context.Context, onlyNew bool) bool {
	old := v.entries
	next := old
	if !onlyNew {
		now, err := v.st.EntryFlags(ctx, v.id)
		if err != nil {
			if ctx.Err() == nil {
				v.log.Warn("imap: re-read folder", "folder", v.id, "err", err)
			}
			return false
		}
		next = make([]store.Entry, 0, len(now))
		j := 0
		for _, e := range old {
			for j < len(now) && now[j].UID < e.UID {
				j++
			}
			if j < len(now) && now[j].UID == e.UID {
				if !slices.Equal(now[j].Flags, e.Flags) {
					e.Flags = now[j].Flags
				}
				next = append(next, e)
			}
		}
		// Nothing new: done without reading more.
		if len(now) == 0 || now[len(now)-1].UID <= lastUID(old) {
			v.replaceLocked(old, next)
			return true
		}
	}
	// New mail (UIDs only grow): read those entries in full.
	added, err := v.st.EntriesFrom(ctx, v.id, lastUID(old)+1)
	if err != nil {
		if ctx.Err() == nil {
			v.log.Warn("imap: read new entries", "folder", v.id, "err", err)
		}
		v.replaceLocked(old, next)
		return false
	}
	if len(added) > 0 {
		next = append(slices.Clip(next), added...)
	}
	v.replaceLocked(old, next)
	return true
}

// replaceLocked installs next and pokes the waiters when it differs.
func (v *folderView) replaceLocked(old, next []store.Entry) {
	if sameEntries(old, next) {
		return
	}
	v.entries = next
	v.pokeLocked()
}

func lastUID(es []store.Entry) uint32 {
	if len(es) == 0 {
		return 0
	}
	return es[len(es)-1].UID
}

func sameEntries(a, b []store.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].UID != b[i].UID || !slices.Equal(a[i].Flags, b[i].Flags) {
			return false
		}
	}
	return true
}

// claimRecent claims the recent entries up to upTo for one session and
// returns the first UID it got (0: none).
func (v *folderView) claimRecent(ctx context.Context, upTo uint32) (uint32, error) {
	v.mu.Lock()
	done := v.claimed >= upTo
	v.mu.Unlock()
	if done {
		return 0, nil
	}
	from, err := v.st.ClaimRecent(ctx, v.id, upTo)
	if err != nil {
		return 0, err
	}
	v.mu.Lock()
	if upTo > v.claimed {
		v.claimed = upTo
	}
	v.mu.Unlock()
	return from, nil
}
