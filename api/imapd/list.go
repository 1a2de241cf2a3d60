package imapd

import (
	"reflect"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// listEntry is a name LIST can show: a folder, a level above folders that
// has none of its own (\Noselect), or a subscribed name with neither
// (\NonExistent).
type listEntry struct {
	name       string
	folder     *store.Folder
	children   bool // some folder below exists
	subscribed bool
	subBelow   []string // subscribed names below it
}

// isLSUB tells LSUB from LIST (SUBSCRIBED): the library hands both over as
// List with SelectSubscribed, and marks LSUB only in its writer.
func isLSUB(w *imapserver.ListWriter) bool {
	f := reflect.ValueOf(w).Elem().FieldByName("lsub")
	return f.IsValid() && f.Kind() == reflect.Bool && f.Bool()
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
	subs, err := sess.srv.st.Subscriptions(sess.ctx(), sess.user)
	if err != nil {
		return sess.imapError(err, "list")
	}
	entries := map[string]*listEntry{}
	get := func(n string) *listEntry {
		le := entries[n]
		if le == nil {
			le = &listEntry{name: n}
			entries[n] = le
		}
		return le
	}
	for i := range folders {
		f := &folders[i]
		get(f.Name).folder = f
		parts := strings.Split(f.Name, string(delim))
		for j := 1; j < len(parts); j++ {
			get(strings.Join(parts[:j], string(delim))).children = true
		}
	}
	for _, n := range subs {
		get(n).subscribed = true
		parts := strings.Split(n, string(delim))
		for j := 1; j < len(parts); j++ {
			p := get(strings.Join(parts[:j], string(delim)))
			p.subBelow = append(p.subBelow, n)
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
	lsub := isLSUB(w)
	for _, n := range names {
		le := entries[n]
		if !matchAny(n, ref, patterns) {
			continue
		}
		exists := le.folder != nil || le.children
		// A subscribed name below this one that the patterns do not reach
		// (RFC 5258 CHILDINFO, RFC 3501 LSUB with "%").
		hiddenSub := slices.ContainsFunc(le.subBelow, func(s string) bool { return !matchAny(s, ref, patterns) })
		data := &imap.ListData{Mailbox: n, Delim: delim}
		if lsub {
			// RFC 3501 LSUB: subscribed names; a parent that is not, when
			// "%" hides a subscribed child, as \Noselect.
			switch {
			case le.subscribed:
				data.Attrs = []imap.MailboxAttr{}
			case hiddenSub:
				data.Attrs = []imap.MailboxAttr{imap.MailboxAttrNoSelect}
			default:
				continue
			}
			if err := w.WriteList(data); err != nil {
				return err
			}
			continue
		}
		if options.SelectSubscribed {
			if !le.subscribed && !(options.SelectRecursiveMatch && hiddenSub) {
				continue
			}
		} else if !exists {
			continue
		}
		if options.SelectRecursiveMatch && hiddenSub {
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		use := ""
		if le.folder != nil {
			use = le.folder.SpecialUse
		}
		if options.SelectSpecialUse && use == "" {
			continue
		}
		switch {
		case !exists:
			data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
		case le.folder == nil:
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
		if exists {
			if le.children {
				data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
			} else {
				data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
			}
		}
		if le.subscribed && (options.SelectSubscribed || options.ReturnSubscribed) {
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
