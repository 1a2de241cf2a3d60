package sdk

// NextFilter returns the filter for the page after l, which f fetched: the
// same filter with a cursor at l's last message (and no offset). ok is
// false when l is empty: there is no next page. Paging with the cursor
// costs the same however deep, and mail that arrives meanwhile neither
// repeats nor hides a message.
//
//	for f := (sdk.Filter{To: "bob@example.com"}); ; {
//		page, err := c.Search(ctx, f)
//		...
//		if f, ok = page.NextFilter(f); !ok { break }
//	}
func (l *MessageList) NextFilter(f Filter) (next Filter, ok bool) {
	if l == nil || len(l.Messages) == 0 {
		return f, false
	}
	f.BeforeID, f.Offset = l.Messages[len(l.Messages)-1].ID, 0
	return f, true
}

// NextOptions is [MessageList.NextFilter] for [Client.ListMailbox].
func (l *MessageList) NextOptions(o ListOptions) (next ListOptions, ok bool) {
	if l == nil || len(l.Messages) == 0 {
		return o, false
	}
	o.BeforeID, o.Offset = l.Messages[len(l.Messages)-1].ID, 0
	return o, true
}
