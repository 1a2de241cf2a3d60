package imapd

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// A session's view of its selected folder is its own: the messages its
// client was told of, in the client's order, with the flags it was last
// sent. poll compares it with the folder's latest snapshot and writes the
// difference (FLAGS for new keywords, EXPUNGE, FETCH FLAGS, EXISTS,
// RECENT), so whatever happened meanwhile, and in whatever order, the
// client ends up with what the store holds. Only the session's goroutine
// touches it.

// known is one message as the client knows it. It points into a folder
// snapshot (never changed in place) instead of copying the entry: a
// SELECT of a large folder then copies little.
type known struct {
	ent   *store.Entry // Flags there: as the store had them, maybe not as sent
	flags []string     // as last sent to the client
	gone  bool         // expunged, EXPUNGE not sent yet (not allowed then)
	force bool         // send its FLAGS at the next poll even if unchanged (STORE)
	noUID bool         // with force: the STORE was by sequence number, answer without UID
}

func (k *known) uid() uint32 { return k.ent.UID }

// entry is the message with the flags the client knows.
func (k *known) entry() store.Entry {
	e := *k.ent
	e.Flags = k.flags
	return e
}

// selected is a session's view of its selected folder.
type selected struct {
	folder    store.Folder
	view      *folderView
	readOnly  bool
	searchRes imap.UIDSet // SEARCH RETURN (SAVE), used by "$"

	known []known
	// keywords announced to the client in FLAGS: lower case to as spelt.
	keywords map[string]string
	// recent: the UID ranges this session claimed as recent. An EXAMINE
	// session claims nothing; for it every entry above recentAbove is.
	recent      []imap.UIDRange
	recentAbove uint32
	// sentRecent is the count last sent in * N RECENT.
	sentRecent int
	// announce: keywords were added to keywords that the client has not
	// been sent FLAGS for yet (its own STORE .SILENT).
	announce bool
}

func (sel *selected) isRecent(uid uint32) bool {
	if sel.readOnly {
		return uid > sel.recentAbove
	}
	for _, r := range sel.recent {
		if uint32(r.Start) <= uid && uid <= uint32(r.Stop) {
			return true
		}
	}
	return false
}

func (sel *selected) recentCount() int {
	n := 0
	for _, k := range sel.known {
		if !k.gone && sel.isRecent(k.uid()) {
			n++
		}
	}
	return n
}

// flagsOf is what the client sees as a message's flags: \Recent is the
// session's own.
func (sel *selected) flagsOf(e store.Entry) []imap.Flag {
	out := imapFlags(e.Flags)
	if sel.isRecent(e.UID) {
		out = append(out, `\Recent`)
	}
	return out
}

// claim makes the entries up to upTo recent in this session when no other
// session has claimed them.
func (sel *selected) claim(ctx context.Context, upTo uint32) error {
	if sel.readOnly || upTo == 0 {
		return nil
	}
	from, err := sel.view.claimRecent(ctx, upTo)
	if err != nil {
		return fmt.Errorf("claim recent: %w", err)
	}
	if from != 0 && from <= upTo {
		sel.recent = append(sel.recent, imap.UIDRange{Start: imap.UID(from), Stop: imap.UID(upTo)})
	}
	return nil
}

// systemFlags are the flags every folder offers.
var systemFlags = []imap.Flag{imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagSeen, imap.FlagDraft}

// mailboxFlags is the FLAGS list: system flags and the announced
// keywords (once announced, a keyword stays listed while selected).
func (sel *selected) mailboxFlags() []imap.Flag {
	kws := make([]string, 0, len(sel.keywords))
	for _, f := range sel.keywords {
		kws = append(kws, f)
	}
	sort.Strings(kws)
	out := slices.Clone(systemFlags)
	for _, k := range kws {
		out = append(out, imap.Flag(k))
	}
	return out
}

// newKeywords adds the keywords of flags the client was not told of and
// reports whether there were any.
func (sel *selected) newKeywords(flags []string) bool {
	added := false
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			continue
		}
		if l := strings.ToLower(f); sel.keywords[l] == "" {
			sel.keywords[l] = f
			added = true
		}
	}
	return added
}

// hasNewKeyword reports whether flags hold a keyword not announced yet.
func (sel *selected) hasNewKeyword(flags []string) bool {
	for _, f := range flags {
		if !strings.HasPrefix(f, `\`) && sel.keywords[strings.ToLower(f)] == "" {
			return true
		}
	}
	return false
}

// applyFlagOp is what a STORE does to flags, spelt as the store spells
// them (system flags canonical, a keyword as first given, sorted).
func applyFlagOp(have []string, op store.FlagOp, given []string) []string {
	canon := func(f string) string {
		for _, sf := range systemFlags {
			if strings.EqualFold(f, string(sf)) {
				return string(sf)
			}
		}
		return f
	}
	has := func(list []string, f string) bool {
		return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, f) })
	}
	var out []string
	switch op {
	case store.FlagsReplace:
		for _, f := range given {
			if f = canon(f); !has(out, f) {
				out = append(out, f)
			}
		}
	case store.FlagsRemove:
		for _, f := range have {
			if !has(given, f) {
				out = append(out, f)
			}
		}
	default:
		out = slices.Clone(have)
		for _, f := range given {
			if f = canon(f); !has(out, f) {
				out = append(out, f)
			}
		}
	}
	sort.Strings(out)
	if out == nil {
		out = []string{}
	}
	return out
}

// load sets the session's view to the snapshot (SELECT).
func (sel *selected) load(ents []store.Entry) {
	sel.known = make([]known, len(ents))
	sel.keywords = map[string]string{}
	for i, e := range ents {
		sel.known[i] = known{ent: &ents[i], flags: e.Flags}
		sel.newKeywords(e.Flags)
	}
	sel.sentRecent = sel.recentCount()
}

// flagWriter is what poll writes to: the library's UpdateWriter, and for
// PERMANENTFLAGS, which it has no method for, the session.
type flagWriter interface {
	WriteExpunge(seqNum uint32) error
	WriteNumMessages(n uint32) error
	WriteNumRecent(n uint32) error
	WriteMailboxFlags(flags []imap.Flag) error
	WriteMessageFlags(seqNum uint32, uid imap.UID, flags []imap.Flag) error
}

var _ flagWriter = (*imapserver.UpdateWriter)(nil)

// poll brings the client's view up to the snapshot ents and writes what
// changed. EXPUNGE only when allowExpunge (RFC 3501 7.4.1: not during
// FETCH, STORE, SEARCH); until then the message stays in the client's
// numbering, marked gone.
func (sess *session) poll(w flagWriter, ents []store.Entry, allowExpunge bool) error {
	sel := sess.sel
	if err := sel.claim(sess.ctx(), lastUID(ents)); err != nil && sess.ctx().Err() == nil {
		sess.srv.log.Warn("imap: claim recent", "folder", sel.folder.ID, "err", err)
	}
	var lastKnown uint32
	if n := len(sel.known); n > 0 {
		lastKnown = sel.known[n-1].uid()
	}
	// Compare: gone, changed, new.
	var changed []int // indexes into sel.known
	announce := sel.announce
	sel.announce = false
	expunged := false
	j := 0
	for i := range sel.known {
		k := &sel.known[i]
		if k.gone {
			expunged = true
			continue
		}
		for j < len(ents) && ents[j].UID < k.uid() {
			j++
		}
		if j < len(ents) && ents[j].UID == k.uid() {
			if k.force || !slices.Equal(ents[j].Flags, k.flags) {
				changed = append(changed, i)
				announce = sel.newKeywords(ents[j].Flags) || announce
			}
			continue
		}
		k.gone, expunged = true, true
	}
	start := sort.Search(len(ents), func(i int) bool { return ents[i].UID > lastKnown })
	added := ents[start:]
	for _, e := range added {
		announce = sel.newKeywords(e.Flags) || announce
	}
	if announce {
		flags := sel.mailboxFlags()
		if err := w.WriteMailboxFlags(flags); err != nil {
			return err
		}
		if !sel.readOnly {
			if err := sess.writePermanentFlags(append(flags, imap.FlagWildcard)); err != nil {
				return err
			}
		}
	}
	// The changed messages' new flags, recorded before any expunge shifts
	// the indexes.
	newFlags := map[uint32][]string{}
	j = 0
	for _, i := range changed {
		uid := sel.known[i].uid()
		for j < len(ents) && ents[j].UID < uid {
			j++
		}
		newFlags[uid] = ents[j].Flags
	}
	if expunged && allowExpunge {
		// From the highest number down, so each one is still valid.
		for i := len(sel.known) - 1; i >= 0; i-- {
			if !sel.known[i].gone {
				continue
			}
			if err := w.WriteExpunge(uint32(i + 1)); err != nil {
				return err
			}
			sel.known = slices.Delete(sel.known, i, i+1)
		}
	}
	if len(changed) > 0 {
		for i := range sel.known {
			k := &sel.known[i]
			fl, ok := newFlags[k.uid()]
			if !ok || k.gone {
				continue
			}
			uid := imap.UID(k.uid())
			if k.force && k.noUID {
				uid = 0
			}
			k.flags, k.force, k.noUID = fl, false, false
			if err := w.WriteMessageFlags(uint32(i+1), uid, sel.flagsOf(k.entry())); err != nil {
				return err
			}
		}
	}
	if len(added) > 0 {
		for i := range added {
			sel.known = append(sel.known, known{ent: &added[i], flags: added[i].Flags})
		}
		if err := w.WriteNumMessages(uint32(len(sel.known))); err != nil {
			return err
		}
	}
	// RECENT last, when the count changed since it was last sent: after
	// EXISTS, and after EXPUNGEs of recent messages. As Dovecot, not
	// during FETCH, STORE or SEARCH: those send EXISTS but leave RECENT to
	// the next poll that may expunge (by then no message gone is left in
	// the client's view to miscount). While idling it follows the EXPUNGE
	// at once; Dovecot's comes at its next sync, DONE's at the latest.
	if allowExpunge {
		if n := sel.recentCount(); n != sel.sentRecent {
			sel.sentRecent = n
			if err := w.WriteNumRecent(uint32(n)); err != nil {
				return err
			}
		}
	}
	return nil
}
