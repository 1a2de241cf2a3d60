package imapd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

func (sess *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) (err error) {
	sess.touch()
	sel := sess.sel
	if rc, ok := sess.conn.NetConn().(*replyConn); ok {
		rc.hold()
		defer func() {
			if rerr := rc.release(); err == nil {
				err = rerr
			}
		}()
	}
	markSeen := false
	if !sel.readOnly {
		for _, bs := range options.BodySection {
			markSeen = markSeen || !bs.Peek
		}
		for _, bs := range options.BinarySection {
			markSeen = markSeen || !bs.Peek
		}
	}
	targets := sel.resolve(numSet)
	// Reading a body without PEEK sets \Seen; the FETCH then reports the
	// new FLAGS, and other sessions get them as unsolicited FETCH.
	seenNow := map[uint32]bool{}
	if markSeen {
		var unseen []uint32
		for _, t := range targets {
			if !t.entry.Seen() {
				unseen = append(unseen, t.entry.UID)
			}
		}
		if len(unseen) > 0 {
			if _, err := sess.srv.st.UpdateFlags(sess.ctx(), sel.folder.ID, unseen, store.FlagsAdd, []string{store.FlagSeen}); err != nil {
				return sess.imapError(err, "fetch")
			}
			for _, u := range unseen {
				seenNow[u] = true
			}
			// The client's view gets \Seen added to what it knew; anything
			// else that changed comes with the poll after this FETCH.
			for i, t := range targets {
				if seenNow[t.entry.UID] {
					fl := append(slices.Clone(t.entry.Flags), store.FlagSeen)
					slices.Sort(fl)
					targets[i].entry.Flags = fl
					sel.known[t.seq-1].flags = fl
				}
			}
		}
	}

	needRaw := len(options.BodySection) > 0 || len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0
	needSummary := options.Envelope || options.BodyStructure != nil
	for i, t := range targets {
		var raw []byte
		var sum *summary
		if needSummary && !needRaw && i%searchBatch == 0 {
			// A first sync: summaries not worked out yet are read in
			// batches (bodies alone would be read one by one).
			if err := sess.summarizeBatch(targets[i:min(i+searchBatch, len(targets))]); err != nil {
				return err
			}
		}
		if (needSummary || options.RFC822Size) && !needRaw {
			sum = sess.srv.summaries.get(t.entry.MessageID)
		}
		if needRaw || (needSummary && sum == nil) {
			var err error
			raw, err = sess.srv.st.Raw(sess.ctx(), t.entry.MessageID)
			if errors.Is(err, store.ErrNotFound) {
				continue // expunged meanwhile; its EXPUNGE follows
			}
			if err != nil {
				return sess.imapError(err, "fetch")
			}
			raw = toCRLF(raw)
			if needSummary {
				if sum = sess.srv.summaries.get(t.entry.MessageID); sum == nil {
					sum = summarize(raw, sess.srv.routes)
					sess.srv.summaries.put(t.entry.MessageID, sum)
				}
			}
		}
		if err := writeFetch(w.CreateMessage(t.seq), t.entry, sel.flagsOf(t.entry), raw, sum, options, seenNow[t.entry.UID]); err != nil {
			return err
		}
	}
	return nil
}

func writeFetch(m *imapserver.FetchResponseWriter, e store.Entry, flags []imap.Flag, raw []byte, sum *summary, options *imap.FetchOptions, flagsChanged bool) error {
	if options.UID {
		m.WriteUID(imap.UID(e.UID))
	}
	if options.Flags || flagsChanged {
		m.WriteFlags(flags)
	}
	if options.InternalDate {
		m.WriteInternalDate(e.ReceivedAt)
	}
	if options.RFC822Size {
		// The size of what BODY[] sends; without the message at hand, the
		// stored size (the same unless the sender used bare LFs).
		size := e.Size
		if raw != nil {
			size = int64(len(raw))
		} else if sum != nil {
			size = sum.size
		}
		m.WriteRFC822Size(size)
	}
	if options.Envelope {
		m.WriteEnvelope(sum.envelope)
	}
	if options.BodyStructure != nil {
		m.WriteBodyStructure(sum.structure)
	}
	for _, bs := range options.BodySection {
		b := imapserver.ExtractBodySection(bytes.NewReader(raw), bs)
		if err := writeLiteral(m.WriteBodySection(bs, int64(len(b))), b); err != nil {
			return err
		}
	}
	for _, bs := range options.BinarySection {
		b := imapserver.ExtractBinarySection(bytes.NewReader(raw), bs)
		if err := writeLiteral(m.WriteBinarySection(bs, int64(len(b))), b); err != nil {
			return err
		}
	}
	for _, bss := range options.BinarySectionSize {
		m.WriteBinarySectionSize(bss, imapserver.ExtractBinarySectionSize(bytes.NewReader(raw), bss))
	}
	return m.Close()
}

// toCRLF ends every line of raw with CRLF. Mail is stored as it arrived,
// and SMTP senders and REST uploads may use bare LFs, but IMAP message data
// is CRLF text: without this, BODY[] would mix the CRLF header the library
// rebuilds with the stored LF body, and its length would differ from
// RFC822.SIZE. Raw that needs no change is returned as is.
func toCRLF(raw []byte) []byte {
	bare := 0
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			bare++
		}
	}
	if bare == 0 {
		return raw
	}
	out := make([]byte, 0, len(raw)+bare)
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

func writeLiteral(wc io.WriteCloser, b []byte) error {
	_, werr := wc.Write(b)
	cerr := wc.Close()
	return errors.Join(werr, cerr)
}

// bodyStructure is imapserver.ExtractBodyStructure with the RFC 2045
// defaults the library leaves out: a part without a (valid) Content-Type
// is text/plain; charset=us-ascii, or message/rfc822 inside
// multipart/digest; a multipart without parts still has one (empty) body.
func bodyStructure(raw []byte, mark routeMark) imap.BodyStructure {
	br := bufio.NewReader(bytes.NewReader(raw))
	h, _ := textproto.ReadHeader(br)
	return partStructure(h, br, "", mark)
}

func partStructure(rawHeader textproto.Header, r io.Reader, parentType string, mark routeMark) imap.BodyStructure {
	header := gomessage.Header{Header: rawHeader}
	mediaType, params, err := header.ContentType()
	if err != nil || !header.Has("Content-Type") || !strings.Contains(mediaType, "/") {
		mediaType, params = "text/plain", map[string]string{"charset": "us-ascii"}
		if parentType == "multipart/digest" {
			mediaType, params = "message/rfc822", nil
		}
	}
	primary, sub, _ := strings.Cut(mediaType, "/")
	if primary == "multipart" {
		bs := &imap.BodyStructureMultiPart{Subtype: sub}
		mr := textproto.NewMultipartReader(r, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil || p == nil {
				break
			}
			bs.Children = append(bs.Children, partStructure(p.Header, p, mediaType, mark))
		}
		if len(bs.Children) == 0 {
			bs.Children = []imap.BodyStructure{&imap.BodyStructureSinglePart{
				Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"},
				Encoding: "7bit", Text: &imap.BodyStructureText{}, Extended: &imap.BodyStructureSinglePartExt{},
			}}
		}
		bs.Extended = &imap.BodyStructureMultiPartExt{
			Params:      params,
			Disposition: disposition(header),
			Language:    language(header),
			Location:    header.Get("Content-Location"),
		}
		return bs
	}
	body, _ := io.ReadAll(r)
	bs := &imap.BodyStructureSinglePart{
		Type:        primary,
		Subtype:     sub,
		Params:      params,
		ID:          header.Get("Content-Id"),
		Description: header.Get("Content-Description"),
		Encoding:    strings.TrimSpace(header.Get("Content-Transfer-Encoding")),
		Size:        uint32(len(body)),
	}
	lines := int64(bytes.Count(body, []byte("\n")))
	if mediaType == "message/rfc822" || mediaType == "message/global" {
		cbr := bufio.NewReader(bytes.NewReader(body))
		ch, _ := textproto.ReadHeader(cbr)
		bs.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      envelope(ch, mark),
			BodyStructure: partStructure(ch, cbr, "", mark),
			NumLines:      lines,
		}
	}
	if primary == "text" {
		bs.Text = &imap.BodyStructureText{NumLines: lines}
	}
	bs.Extended = &imap.BodyStructureSinglePartExt{
		Disposition: disposition(header),
		Language:    language(header),
		Location:    header.Get("Content-Location"),
	}
	return bs
}

func disposition(h gomessage.Header) *imap.BodyStructureDisposition {
	d, params, _ := h.ContentDisposition()
	if d == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: d, Params: params}
}

func language(h gomessage.Header) []string {
	v := h.Get("Content-Language")
	if v == "" {
		return nil
	}
	l := strings.Split(v, ",")
	for i := range l {
		l[i] = strings.TrimSpace(l[i])
	}
	return l
}

func imapFlags(flags []string) []imap.Flag {
	out := make([]imap.Flag, len(flags))
	for i, f := range flags {
		out[i] = imap.Flag(f)
	}
	return out
}

// summarizeBatch works out the summaries of the targets not cached yet,
// reading their messages in one store query.
func (sess *session) summarizeBatch(ts []target) error {
	var ids []string
	for _, t := range ts {
		if sess.srv.summaries.get(t.entry.MessageID) == nil {
			ids = append(ids, t.entry.MessageID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	raws, err := sess.srv.st.RawMany(sess.ctx(), ids)
	if err != nil {
		return sess.imapError(err, "fetch")
	}
	for id, raw := range raws {
		sess.srv.summaries.put(id, summarize(toCRLF(raw), sess.srv.routes))
	}
	return nil
}
