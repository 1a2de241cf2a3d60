package imapd

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// listEntry is a name LIST can show: a folder, or a level above folders
// that has none of its own (\Noselect).
type listEntry struct {
	name     string
	folder   *store.Folder
	children bool
	subChild bool // some folder below is subscribed
}

func (sess *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	sess.touch()
	if len(patterns) == 0 {
		// LIST "" "": the hierarchy delimiter and root.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	folders, err := sess.srv.st.Folders(sess.ctx(), sess.user)
	if err != nil {
		return sess.imapError(err, "list")
	}
	entries := map[string]*listEntry{}
	for i := range folders {
		f := &folders[i]
		entries[f.Name] = &listEntry{name: f.Name, folder: f}
	}
	for i := range folders {
		f := &folders[i]
		parts := strings.Split(f.Name, string(delim))
		for j := 1; j < len(parts); j++ {
			p := strings.Join(parts[:j], string(delim))
			le := entries[p]
			if le == nil {
				le = &listEntry{name: p}
				entries[p] = le
			}
			le.children = true
			le.subChild = le.subChild || f.Subscribed
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		if a == store.InboxName {
			return -1
		}
		if b == store.InboxName {
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, n := range names {
		le := entries[n]
		if !matchAny(n, ref, patterns) {
			continue
		}
		subscribed := le.folder != nil && le.folder.Subscribed
		data := &imap.ListData{Mailbox: n, Delim: delim}
		if options.SelectSubscribed && !subscribed {
			if !(options.SelectRecursiveMatch && le.subChild) {
				continue
			}
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		} else if options.SelectRecursiveMatch && le.subChild {
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		use := ""
		if le.folder != nil {
			use = le.folder.SpecialUse
		}
		if options.SelectSpecialUse && use == "" {
			continue
		}
		if le.folder == nil {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
		if le.children {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if subscribed && (options.SelectSubscribed || options.ReturnSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if use != "" {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(use))
		}
		if options.ReturnStatus != nil && le.folder != nil {
			st, err := sess.statusData(*le.folder, options.ReturnStatus)
			if err != nil {
				return err
			}
			data.Status = st
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

// matchAny matches a name against LIST patterns; INBOX matches in any case.
func matchAny(name, ref string, patterns []string) bool {
	for _, p := range patterns {
		if imapserver.MatchList(name, delim, ref, p) {
			return true
		}
		if (name == store.InboxName || strings.HasPrefix(name, store.InboxName+string(delim))) &&
			imapserver.MatchList(name, delim, canonName(ref), canonName(p)) {
			return true
		}
	}
	return false
}
