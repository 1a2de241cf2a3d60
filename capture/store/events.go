package store

import (
	"context"
	"sync"
)

// EventKind names what changed.
type EventKind string

const (
	// EventMessage: a message was stored (Mailboxes lists where it was filed).
	EventMessage EventKind = "message"
	// EventDeleted: copies of a message were removed from Mailboxes; or,
	// with Mailbox, FolderID and UIDs, those entries left that folder; or,
	// with every field empty, many messages went at once (re-read the
	// state).
	EventDeleted EventKind = "deleted"
	// EventFlags: flags of entries changed (Mailbox, FolderID, UIDs).
	EventFlags EventKind = "flags"
	// EventEntry: new entries arrived in a folder (Mailbox, FolderID, UIDs;
	// MessageID when it is one message): delivered, appended, copied or
	// moved in. IMAP announces them as EXISTS; a new message also has its
	// EventMessage, so REST and the UI can ignore these.
	EventEntry EventKind = "entry"
	// EventFolders: folders of Mailbox were created, renamed or deleted.
	EventFolders EventKind = "folders"
	// EventTags: the tags of message MessageID changed; without MessageID,
	// the tags of many messages did (re-read them).
	EventTags EventKind = "tags"
	// EventRelay: the relay queue changed (DeliveryID).
	EventRelay EventKind = "relay"
	// EventWebhook: a webhook delivery was retried or dropped by hand
	// (DeliveryID). New ones come with their EventMessage.
	EventWebhook EventKind = "webhook"
)

// Event describes one committed change. Fields that do not apply are zero.
type Event struct {
	Kind       EventKind `json:"kind"`
	MessageID  string    `json:"message_id,omitempty"`
	Mailboxes  []string  `json:"mailboxes,omitempty"`
	Mailbox    string    `json:"mailbox,omitempty"`
	FolderID   int64     `json:"folder_id,omitempty"`
	UIDs       []uint32  `json:"uids,omitempty"`
	DeliveryID int64     `json:"delivery_id,omitempty"`
}

// subscriberBuffer is how far a subscriber may fall behind before it is cut
// off (its channel closed). A cut-off subscriber must re-read the state it
// cares about and subscribe again; it never silently misses an event.
const subscriberBuffer = 4096

type eventHub struct {
	mu     sync.Mutex
	subs   map[chan Event]struct{}
	closed bool
}

func (h *eventHub) init() { h.subs = map[chan Event]struct{}{} }

// Subscribe returns a channel of every event committed from now on. The
// channel is closed when ctx ends, when the store closes, or when the
// subscriber falls too far behind.
func (s *Store) Subscribe(ctx context.Context) <-chan Event {
	ch := make(chan Event, subscriberBuffer)
	h := &s.events
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(ch)
		return ch
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-s.closed:
		}
		h.remove(ch)
	}()
	return ch
}

func (h *eventHub) remove(ch chan Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

// publish hands committed changes to local subscribers and, on
// PostgreSQL, to the other instances sharing the database.
func (s *Store) publish(evs ...Event) {
	s.publishLocal(evs...)
	if s.pgs != nil {
		s.notify(evs)
	}
}

// publishLocal hands events to this process's subscribers.
func (s *Store) publishLocal(evs ...Event) {
	h := &s.events
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		// A subscriber without room for the whole commit is cut off before
		// any of it: it re-reads what it follows anyway, so sending it part
		// of the burst first would be wasted on both sides. Only this
		// function sends, under h.mu, so the room cannot shrink meanwhile.
		if cap(ch)-len(ch) < len(evs) {
			delete(h.subs, ch)
			close(ch)
			continue
		}
		for _, ev := range evs {
			ch <- ev
		}
	}
}

// cutOff closes every subscriber's channel without closing the hub: each
// re-reads what it follows and subscribes again (used when events may have
// been missed).
func (h *eventHub) cutOff() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}

func (h *eventHub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}
