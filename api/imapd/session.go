package imapd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

const delim = '/'

// The session implements MOVE and NAMESPACE (advertising them without
// does not compile, instead of panicking in the library at connect time).
var (
	_ imapserver.SessionIMAP4rev2      = (*session)(nil)
	_ imapserver.SessionMove           = (*session)(nil)
	_ imapserver.SessionNamespace      = (*session)(nil)
	_ imapserver.SessionAppendLimit    = (*session)(nil)
	_ imapserver.SessionUnauthenticate = (*session)(nil)
)

// session is one connection: the logged-in mailbox and the selected
// folder, nothing else.
type session struct {
	srv  *Server
	conn *imapserver.Conn

	user string // the mailbox; "" until login
	sel  *selected
	// parked is the view of the folder last unselected (see Unselect).
	parked *folderView

	timerMu sync.Mutex
	timer   *time.Timer
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	sess := &session{srv: s, conn: c}
	if !s.addSession(sess) {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}
	}
	sess.timer = time.AfterFunc(s.opts.IdleTimeout, func() {
		_ = c.Bye("Autologout: idle for too long")
	})
	return sess, nil, nil
}

func (sess *session) ctx() context.Context { return sess.srv.ctx }

// touch restarts the idle timer; every command ends in a call that touches.
func (sess *session) touch() {
	sess.timerMu.Lock()
	sess.timer.Reset(sess.srv.opts.IdleTimeout)
	sess.timerMu.Unlock()
}

func (sess *session) Close() error {
	sess.timerMu.Lock()
	sess.timer.Stop()
	sess.timerMu.Unlock()
	sess.unselect()
	sess.releaseParked()
	sess.srv.removeSession(sess)
	return nil
}

// --- errors

func noErr(code imap.ResponseCode, format string, args ...any) *imap.Error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: fmt.Sprintf(format, args...)}
}

var errReadOnly = noErr("", "Mailbox is read-only (EXAMINE)")

// imapError maps a store error to the reply a client sees: the one place
// where store sentinels become IMAP response codes.
func (sess *session) imapError(err error, what string) error {
	var ie *imap.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return err
	case errors.Is(err, store.ErrNotFound):
		return noErr(imap.ResponseCodeNonExistent, "%s: no such mailbox", what)
	case errors.Is(err, store.ErrExists):
		return noErr(imap.ResponseCodeAlreadyExists, "%s: mailbox already exists", what)
	case errors.Is(err, store.ErrInvalid):
		return noErr(imap.ResponseCodeCannot, "%s: not possible", what)
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled):
		return noErr(imap.ResponseCodeUnavailable, "%s: server shutting down", what)
	}
	sess.srv.log.Error("imap command failed", "mailbox", sess.user, "what", what, "err", err)
	return noErr(imap.ResponseCodeServerBug, "%s: internal error", what)
}

// canonName spells INBOX (any case, also as a parent) the store's way and
// drops a trailing delimiter.
func canonName(name string) string {
	name = strings.TrimSuffix(name, string(delim))
	if strings.EqualFold(name, store.InboxName) {
		return store.InboxName
	}
	if len(name) > len(store.InboxName) && strings.EqualFold(name[:len(store.InboxName)+1], store.InboxName+string(delim)) {
		return store.InboxName + name[len(store.InboxName):]
	}
	return name
}

// --- not authenticated

func (sess *session) Login(username, password string) error {
	sess.touch()
	user := store.NormalizeAddress(username)
	if user == "" || strings.ContainsAny(user, " \t\r\n") {
		return imapserver.ErrAuthFailed
	}
	if a := sess.srv.opts.Auth; a != nil {
		if err := a.Check(sess.ctx(), strings.TrimSpace(username), password); err != nil {
			return imapserver.ErrAuthFailed
		}
	}
	if err := sess.ensureFolders(user); err != nil {
		return sess.imapError(err, "login")
	}
	sess.user = user
	return nil
}

// specialFolders exist at every login: each is created when no folder has
// its name or its special-use attribute (like Dovecot's auto = create).
var specialFolders = [][2]string{{"Drafts", `\Drafts`}, {"Sent", `\Sent`}, {"Trash", `\Trash`}}

func (sess *session) ensureFolders(user string) error {
	ctx := sess.ctx()
	if _, err := sess.srv.st.Folder(ctx, user, store.InboxName); err != nil {
		return err
	}
	fs, err := sess.srv.st.Folders(ctx, user)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, f := range fs {
		have[f.Name] = true
		have[f.SpecialUse] = true
	}
	for _, sf := range specialFolders {
		if have[sf[0]] || have[sf[1]] {
			continue
		}
		if _, err := sess.srv.st.CreateFolder(ctx, user, sf[0], sf[1]); err != nil && !errors.Is(err, store.ErrExists) {
			return err
		}
		// Subscribed when created, as Dovecot's auto = subscribe: clients
		// that show only subscribed folders still show them.
		if err := sess.srv.st.SetSubscribed(ctx, user, sf[0], true); err != nil {
			return err
		}
	}
	return nil
}

// --- authenticated

// Unauthenticate is RFC 8437: back to the not-authenticated state.
func (sess *session) Unauthenticate() error {
	sess.touch()
	sess.unselect()
	sess.releaseParked()
	sess.user = ""
	return nil
}

func (sess *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}, nil
}

func (sess *session) AppendLimit() uint32 { return uint32(sess.srv.opts.MaxLiteralBytes) }

func (sess *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	sess.touch()
	// The previous folder is released after the new one is held: selecting
	// the same folder again keeps its view instead of reading it anew.
	if old := sess.sel; old != nil {
		sess.sel = nil
		defer sess.srv.releaseView(old.view)
	}
	defer sess.releaseParked()
	name = canonName(name)
	f, err := sess.srv.st.Folder(sess.ctx(), sess.user, name)
	if err != nil {
		return nil, sess.imapError(err, "select "+name)
	}
	v, fresh, err := sess.srv.acquireView(f)
	if err != nil {
		return nil, sess.imapError(err, "select "+name)
	}
	ents := v.snapshot()
	if !fresh {
		ents = v.syncAt(sess.ctx(), f.ModSeq) // f was read just now
	}
	sel := &selected{folder: f, view: v, readOnly: options.ReadOnly, recentAbove: f.RecentUID}
	if err := sel.claim(sess.ctx(), lastUID(ents)); err != nil {
		sess.srv.releaseView(v)
		return nil, sess.imapError(err, "select "+name)
	}
	sel.load(ents)
	sess.sel = sel

	data := &imap.SelectData{
		NumMessages: uint32(len(ents)),
		NumRecent:   uint32(sel.sentRecent),
		UIDNext:     imap.UID(f.UIDNext),
		UIDValidity: f.UIDValidity,
	}
	for i, e := range ents {
		if uint32(e.UID) >= uint32(data.UIDNext) {
			data.UIDNext = imap.UID(e.UID + 1)
		}
		if data.FirstUnseenSeqNum == 0 && !e.Seen() {
			data.FirstUnseenSeqNum = uint32(i + 1)
		}
	}
	data.Flags = sel.mailboxFlags()
	if sess.conn.EnabledCaps().Has(imap.CapIMAP4rev2) {
		data.List = &imap.ListData{Mailbox: f.Name, Delim: delim} // RFC 9051 6.3.2
	}
	if options.ReadOnly {
		data.PermanentFlags = []imap.Flag{}
	} else {
		data.PermanentFlags = append(slices.Clone(data.Flags), imap.FlagWildcard)
	}
	return data, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (sess *session) unselect() {
	sel := sess.sel
	if sel == nil {
		return
	}
	sess.sel = nil
	sess.srv.releaseView(sel.view)
}

// Unselect parks the folder's view instead of releasing it: the library
// unselects before every SELECT, and a client selecting the same folder
// again should not have it read anew. The next Poll (any command but
// SELECT) or SELECT releases it.
func (sess *session) Unselect() error {
	sess.touch()
	if sel := sess.sel; sel != nil {
		sess.sel = nil
		sess.releaseParked()
		sess.parked = sel.view
	}
	return nil
}

func (sess *session) releaseParked() {
	if v := sess.parked; v != nil {
		sess.parked = nil
		sess.srv.releaseView(v)
	}
}

func validSpecialUse(a imap.MailboxAttr) bool {
	switch a {
	case imap.MailboxAttrAll, imap.MailboxAttrArchive, imap.MailboxAttrDrafts, imap.MailboxAttrFlagged,
		imap.MailboxAttrJunk, imap.MailboxAttrSent, imap.MailboxAttrTrash, imap.MailboxAttrImportant:
		return true
	}
	return false
}

// createParents creates the missing folders above name (RFC 3501 CREATE:
// superior names are created as needed).
func (sess *session) createParents(name string) error {
	parts := strings.Split(name, string(delim))
	for i := 1; i < len(parts); i++ {
		p := strings.Join(parts[:i], string(delim))
		if p == store.InboxName {
			continue
		}
		if _, err := sess.srv.st.CreateFolder(sess.ctx(), sess.user, p, ""); err != nil && !errors.Is(err, store.ErrExists) {
			return err
		}
	}
	return nil
}

func (sess *session) Create(name string, options *imap.CreateOptions) error {
	sess.touch()
	name = canonName(name)
	var use string
	if options != nil && len(options.SpecialUse) > 0 {
		if len(options.SpecialUse) > 1 || !validSpecialUse(options.SpecialUse[0]) {
			return noErr("USEATTR", "Unsupported special-use attribute")
		}
		use = string(options.SpecialUse[0])
	}
	if name == store.InboxName {
		return noErr(imap.ResponseCodeAlreadyExists, "INBOX always exists")
	}
	if _, err := sess.srv.st.CreateFolder(sess.ctx(), sess.user, name, use); err != nil {
		return sess.imapError(err, "create "+name)
	}
	return sess.imapError(sess.createParents(name), "create "+name)
}

func (sess *session) Delete(name string) error {
	sess.touch()
	name = canonName(name)
	if name == store.InboxName {
		return noErr(imap.ResponseCodeCannot, "INBOX cannot be deleted")
	}
	return sess.imapError(sess.srv.st.DeleteFolder(sess.ctx(), sess.user, name), "delete "+name)
}

func (sess *session) Rename(oldName, newName string, options *imap.RenameOptions) error {
	sess.touch()
	oldName, newName = canonName(oldName), canonName(newName)
	if newName == store.InboxName {
		return noErr(imap.ResponseCodeCannot, "Cannot rename to INBOX")
	}
	if err := sess.srv.st.RenameFolder(sess.ctx(), sess.user, oldName, newName); err != nil {
		return sess.imapError(err, "rename "+oldName)
	}
	return sess.imapError(sess.createParents(newName), "rename "+oldName)
}

func (sess *session) Subscribe(name string) error {
	sess.touch()
	name = canonName(name)
	return sess.imapError(sess.srv.st.SetSubscribed(sess.ctx(), sess.user, name, true), "subscribe "+name)
}

func (sess *session) Unsubscribe(name string) error {
	sess.touch()
	name = canonName(name)
	return sess.imapError(sess.srv.st.SetSubscribed(sess.ctx(), sess.user, name, false), "unsubscribe "+name)
}

func (sess *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	sess.touch()
	name = canonName(name)
	f, err := sess.srv.st.Folder(sess.ctx(), sess.user, name)
	if err != nil {
		return nil, sess.imapError(err, "status "+name)
	}
	return sess.statusData(f, options)
}

func (sess *session) statusData(f store.Folder, options *imap.StatusOptions) (*imap.StatusData, error) {
	data := &imap.StatusData{Mailbox: f.Name, UIDNext: imap.UID(f.UIDNext), UIDValidity: f.UIDValidity}
	num := func(n int) *uint32 { v := uint32(n); return &v }
	data.NumMessages = num(f.Total)
	data.NumUnseen = num(f.Unseen)
	data.NumRecent = num(f.Recent)
	if sel := sess.sel; sel != nil && sel.folder.ID == f.ID {
		data.NumRecent = num(sel.recentCount()) // the session's own
	}
	limit := uint32(sess.srv.opts.MaxLiteralBytes)
	data.AppendLimit = &limit
	if options.NumDeleted || options.Size || options.DeletedStorage {
		es, err := sess.srv.st.Entries(sess.ctx(), f.ID)
		if err != nil {
			return nil, sess.imapError(err, "status "+f.Name)
		}
		var deleted int
		var size, delSize int64
		for _, e := range es {
			size += e.Size
			if slices.Contains(e.Flags, string(imap.FlagDeleted)) {
				deleted++
				delSize += e.Size
			}
		}
		data.NumDeleted = num(deleted)
		data.Size = &size
		data.DeletedStorage = &delSize
	}
	return data, nil
}

// cleanFlags drops flags a client may not set.
func cleanFlags(flags []imap.Flag) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) || f == imap.FlagWildcard {
			continue
		}
		out = append(out, string(f))
	}
	return out
}

func (sess *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	sess.touch()
	name := canonName(mailbox)
	max := sess.srv.maxAppend
	if r.Size() > max {
		return nil, noErr(imap.ResponseCodeTooBig, "Message larger than %d bytes", max)
	}
	f, err := sess.srv.st.Folder(sess.ctx(), sess.user, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, noErr(imap.ResponseCodeTryCreate, "No such mailbox: %s", name)
	}
	if err != nil {
		return nil, sess.imapError(err, "append")
	}
	raw, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read append literal: %w", err)
	}
	e, err := sess.srv.st.Append(sess.ctx(), sess.user, name, cleanFlags(options.Flags), options.Time, raw)
	if err != nil {
		return nil, sess.imapError(err, "append")
	}
	return &imap.AppendData{UID: imap.UID(e.UID), UIDValidity: f.UIDValidity}, nil
}

func (sess *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	sess.touch()
	sel := sess.sel
	if sel == nil {
		sess.releaseParked()
		return nil
	}
	return sess.poll(w, sel.view.sync(sess.ctx()), allowExpunge)
}

// Idle writes updates as the folder changes. The wake-up channel is
// registered first, then everything pending is written, then each poke
// writes what came since (the store's event follower re-reads the folder
// before it pokes, so a poke needs no store read of its own).
func (sess *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	sess.timerMu.Lock()
	sess.timer.Stop()
	sess.timerMu.Unlock()
	defer sess.touch()
	sel := sess.sel
	if sel == nil {
		<-stop
		return nil
	}
	poke, done := sel.view.wait()
	defer done()
	ents := sel.view.sync(sess.ctx())
	for {
		if err := sess.poll(w, ents, true); err != nil {
			return err
		}
		select {
		case <-poke:
			ents = sel.view.snapshot()
		case <-stop:
			return nil
		}
	}
}

// --- selected

// target is one message a command addresses, with the sequence number the
// client knows it by.
type target struct {
	seq   uint32
	entry store.Entry
}

// resolve maps a sequence or UID set to the messages the client knows:
// "*" is the client's last message, "$" the saved search. Messages
// expunged whose EXPUNGE the client has not had yet are left out.
func (sel *selected) resolve(numSet imap.NumSet) []target {
	var maxSeq, maxUID uint32
	if n := len(sel.known); n > 0 {
		maxSeq, maxUID = uint32(n), sel.known[n-1].uid()
	}
	numSet = sel.static(numSet, maxSeq, maxUID)
	var out []target
	for i, k := range sel.known {
		if k.gone {
			continue
		}
		var in bool
		switch set := numSet.(type) {
		case imap.SeqSet:
			in = set.Contains(uint32(i + 1))
		case imap.UIDSet:
			in = set.Contains(imap.UID(k.uid()))
		}
		if in {
			out = append(out, target{seq: uint32(i + 1), entry: k.entry()})
		}
	}
	return out
}

// static resolves "*" (and "$") in a copy of numSet.
func (sel *selected) static(numSet imap.NumSet, maxSeq, maxUID uint32) imap.NumSet {
	if imap.IsSearchRes(numSet) {
		return slices.Clone(sel.searchRes)
	}
	fix := func(start, stop *uint32, max uint32) {
		dyn := false
		if *start == 0 {
			*start, dyn = max, true
		}
		if *stop == 0 {
			*stop, dyn = max, true
		}
		if dyn && *start > *stop {
			*start, *stop = *stop, *start
		}
	}
	switch set := numSet.(type) {
	case imap.SeqSet:
		set = slices.Clone(set)
		for i := range set {
			fix(&set[i].Start, &set[i].Stop, maxSeq)
		}
		return set
	case imap.UIDSet:
		set = slices.Clone(set)
		for i := range set {
			fix((*uint32)(&set[i].Start), (*uint32)(&set[i].Stop), maxUID)
		}
		return set
	}
	return numSet
}

func uidsOf(ts []target) []uint32 {
	out := make([]uint32, len(ts))
	for i, t := range ts {
		out[i] = t.entry.UID
	}
	return out
}

func toUIDSet(uids []uint32) imap.UIDSet {
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	return set
}

func (sess *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	sess.touch()
	sel := sess.sel
	if sel.readOnly {
		// CLOSE after EXAMINE expunges nothing, silently; the library
		// signals CLOSE with an ExpungeWriter that writes nothing.
		if closing := reflect.ValueOf(w).Elem().FieldByName("conn"); closing.IsValid() && closing.IsNil() {
			return nil
		}
		return errReadOnly
	}
	var list []uint32
	if uids != nil {
		list = uidsOf(sel.resolve(*uids))
		if len(list) == 0 {
			return nil
		}
	}
	if _, err := sess.srv.st.Expunge(sess.ctx(), sel.folder.ID, list); err != nil {
		return sess.imapError(err, "expunge")
	}
	// The poll before the tagged OK writes the EXPUNGE responses.
	return nil
}

// Store changes flags; the FETCH responses come from the poll that
// follows (before the tagged OK), after any FLAGS announcing a new
// keyword, with the flags the store holds then.
func (sess *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	sess.touch()
	sel := sess.sel
	if sel.readOnly {
		return errReadOnly
	}
	var op store.FlagOp
	switch flags.Op {
	case imap.StoreFlagsAdd:
		op = store.FlagsAdd
	case imap.StoreFlagsDel:
		op = store.FlagsRemove
	default:
		op = store.FlagsReplace
	}
	targets := sel.resolve(numSet)
	if len(targets) == 0 {
		return nil
	}
	given := cleanFlags(flags.Flags)
	updated, err := sess.srv.st.UpdateFlags(sess.ctx(), sel.folder.ID, uidsOf(targets), op, given)
	if err != nil {
		return sess.imapError(err, "store")
	}
	stored := map[uint32]bool{}
	for _, e := range updated {
		stored[e.UID] = true
	}
	for i := range sel.known {
		k := &sel.known[i]
		if !stored[k.uid()] || k.gone {
			continue
		}
		if flags.Silent {
			// The client applies its change to what it knew; the poll
			// sends whatever else the store holds (changes by others), and
			// a keyword new to it after the FLAGS that announces it.
			k.flags = applyFlagOp(k.flags, op, given)
			if sel.newKeywords(k.flags) {
				sel.announce = true // FLAGS at the poll, no FETCH (as Dovecot)
			}
			continue
		}
		_, isUID := numSet.(imap.UIDSet)
		k.force, k.noUID = true, !isUID
	}
	return nil
}

// destination finds the folder a COPY or MOVE goes to; a missing one
// answers TRYCREATE, as RFC 3501 asks.
func (sess *session) destination(name string) (store.Folder, error) {
	name = canonName(name)
	f, err := sess.srv.st.Folder(sess.ctx(), sess.user, name)
	if errors.Is(err, store.ErrNotFound) {
		return f, noErr(imap.ResponseCodeTryCreate, "No such mailbox: %s", name)
	}
	return f, sess.imapError(err, "copy to "+name)
}

func (sess *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	sess.touch()
	sel := sess.sel
	df, err := sess.destination(dest)
	if err != nil {
		return nil, err
	}
	targets := sel.resolve(numSet)
	if len(targets) == 0 {
		return nil, nil
	}
	src, dst, err := sess.srv.st.CopyEntries(sess.ctx(), sel.folder.ID, uidsOf(targets), df.ID)
	if err != nil {
		return nil, sess.imapError(err, "copy")
	}
	if len(src) == 0 {
		return nil, nil
	}
	return &imap.CopyData{UIDValidity: df.UIDValidity, SourceUIDs: toUIDSet(src), DestUIDs: toUIDSet(dst)}, nil
}

// Move moves messages, also into the selected folder itself (RFC 6851
// allows it where COPY works: the messages get new UIDs). The EXPUNGEs
// (and EXISTS) come from the poll after the COPYUID, as RFC 6851 orders.
func (sess *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	sess.touch()
	sel := sess.sel
	if sel.readOnly {
		return errReadOnly
	}
	df, err := sess.destination(dest)
	if err != nil {
		return err
	}
	targets := sel.resolve(numSet)
	if len(targets) == 0 {
		return nil
	}
	src, dst, err := sess.srv.st.MoveEntries(sess.ctx(), sel.folder.ID, uidsOf(targets), df.ID)
	if err != nil {
		return sess.imapError(err, "move")
	}
	if len(src) == 0 {
		return nil
	}
	return w.WriteCopyData(&imap.CopyData{UIDValidity: df.UIDValidity, SourceUIDs: toUIDSet(src), DestUIDs: toUIDSet(dst)})
}

// writePermanentFlags writes "* OK [PERMANENTFLAGS (…)]", for which the
// library's UpdateWriter has no method. The library flushes every response
// it writes, and the session's goroutine is the one writing, so a line
// written straight to the connection lands between two responses.
func (sess *session) writePermanentFlags(flags []imap.Flag) error {
	var b strings.Builder
	b.WriteString("* OK [PERMANENTFLAGS (")
	for i, f := range flags {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(f))
	}
	b.WriteString(")] Flags permitted\r\n")
	if d := sess.srv.opts.Debug; d != nil {
		_, _ = io.WriteString(d, b.String())
	}
	if _, err := io.WriteString(sess.conn.NetConn(), b.String()); err != nil {
		return fmt.Errorf("write PERMANENTFLAGS: %w", err)
	}
	return nil
}
