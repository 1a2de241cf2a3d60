package imapd

import (
	"context"
	"log/slog"
	"slices"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// folderView is the shared state of one selected folder: the entries as
// last read from the store (the "server view" of the MailboxTracker) and
// the tracker that replays every change to each session in order.
type folderView struct {
	st  Store
	log *slog.Logger
	id  int64

	refs int // guarded by Server.mu

	// mu orders reads of the store with the updates queued from them, so
	// the tracker's sequence numbers always match entries.
	mu      sync.Mutex
	tracker *imapserver.MailboxTracker
	entries []store.Entry // by ascending UID
	// waiters are poked after updates are queued: sessions in IDLE.
	waiters map[chan struct{}]struct{}
}

// wait registers a channel poked whenever updates are queued; the returned
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

// sync re-reads the folder and queues the difference to every session:
// EXPUNGE for entries gone, FETCH FLAGS for changed flags (not to source,
// which reports its own STORE), EXISTS for new entries.
func (v *folderView) sync(ctx context.Context, source *imapserver.SessionTracker) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.syncLocked(ctx, source)
}

func (v *folderView) syncLocked(ctx context.Context, source *imapserver.SessionTracker) {
	// UIDs and flags only: this runs after every command.
	now, err := v.st.EntryFlags(ctx, v.id)
	if err != nil {
		if ctx.Err() == nil {
			v.log.Warn("imap: re-read folder", "folder", v.id, "err", err)
		}
		return
	}
	queued := false
	defer func() {
		if queued {
			v.pokeLocked()
		}
	}()
	byUID := make(map[uint32][]string, len(now))
	for _, e := range now {
		byUID[e.UID] = e.Flags
	}
	// Expunges, from the highest sequence number down so the lower ones
	// stay valid.
	for i := len(v.entries) - 1; i >= 0; i-- {
		if _, ok := byUID[v.entries[i].UID]; !ok {
			v.tracker.QueueExpunge(uint32(i + 1))
			v.entries = slices.Delete(v.entries, i, i+1)
			queued = true
		}
	}
	var last uint32
	for i, e := range v.entries {
		if flags := byUID[e.UID]; !slices.Equal(flags, e.Flags) {
			v.tracker.QueueMessageFlags(uint32(i+1), imap.UID(e.UID), imapFlags(flags), source)
			v.entries[i].Flags = flags
			queued = true
		}
		last = e.UID
	}
	if len(now) == 0 || now[len(now)-1].UID <= last {
		return
	}
	// New mail (UIDs only grow): read those entries in full.
	added, err := v.st.EntriesFrom(ctx, v.id, last+1)
	if err != nil {
		if ctx.Err() == nil {
			v.log.Warn("imap: read new entries", "folder", v.id, "err", err)
		}
		return
	}
	for _, e := range added {
		v.entries = append(v.entries, e)
		v.tracker.QueueNumMessages(uint32(len(v.entries)))
		queued = true
	}
}

func imapFlags(flags []string) []imap.Flag {
	out := make([]imap.Flag, len(flags))
	for i, f := range flags {
		out[i] = imap.Flag(f)
	}
	return out
}
