package imapd

import (
	"bufio"
	"bytes"
	"container/list"
	"sync"

	"github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// summary is what a client's first sync asks of every message (ENVELOPE,
// BODYSTRUCTURE, RFC822.SIZE), worked out once: stored messages never
// change, so it is kept by message id (Dovecot keeps the same in its
// cache file).
type summary struct {
	envelope  *imap.Envelope
	structure imap.BodyStructure
	size      int64 // of the CRLF text BODY[] sends
}

func summarize(raw []byte, mark routeMark) *summary {
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	return &summary{envelope: envelope(h, mark), structure: bodyStructure(raw, mark), size: int64(len(raw))}
}

// summaryCache is a bounded LRU of summaries.
type summaryCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // front: most recently used; values are *cacheItem
	items map[string]*list.Element
}

type cacheItem struct {
	id string
	s  *summary
}

func newSummaryCache(max int) *summaryCache {
	return &summaryCache{max: max, order: list.New(), items: map[string]*list.Element{}}
}

func (c *summaryCache) get(id string) *summary {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.items[id]
	if el == nil {
		return nil
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheItem).s
}

func (c *summaryCache) put(id string, s *summary) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.items[id]; el != nil {
		el.Value.(*cacheItem).s = s
		c.order.MoveToFront(el)
		return
	}
	c.items[id] = c.order.PushFront(&cacheItem{id: id, s: s})
	for c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*cacheItem).id)
	}
}

// envelope builds an ENVELOPE: addresses from our own parse (groups,
// routes), the rest as the library's ExtractEnvelope reads it.
func envelope(h textproto.Header, mark routeMark) *imap.Envelope {
	mh := mail.Header{Header: gomessage.Header{Header: h}}
	date, _ := mh.Date()
	subject, _ := mh.Subject()
	inReplyTo, _ := mh.MsgIDList("In-Reply-To")
	messageID, _ := mh.MessageID()
	get := func(k string) []imap.Address {
		var all []imap.Address
		for f := h.FieldsByKey(k); f.Next(); {
			all = append(all, imapAddresses(parseAddrList(f.Value()), mark)...)
		}
		return all
	}
	env := &imap.Envelope{
		Date: date, Subject: subject, InReplyTo: inReplyTo, MessageID: messageID,
		From: get("From"), Sender: get("Sender"), ReplyTo: get("Reply-To"),
		To: get("To"), Cc: get("Cc"), Bcc: get("Bcc"),
	}
	// RFC 3501 7.4.2: Sender and Reply-To default to From.
	if len(env.Sender) == 0 {
		env.Sender = env.From
	}
	if len(env.ReplyTo) == 0 {
		env.ReplyTo = env.From
	}
	return env
}
