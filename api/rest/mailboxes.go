package rest

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// GET /mailboxes
func (s *Server) listMailboxes(c echo.Context) error {
	mbs, err := s.st.Mailboxes(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]mailboxJSON, 0, len(mbs))
	for _, mb := range mbs {
		out = append(out, mailboxJSON{Address: mb.Address, Total: mb.Total, Unread: mb.Unread, LatestAt: optTime(mb.LatestAt)})
	}
	return c.JSON(http.StatusOK, map[string]any{"mailboxes": out})
}

// mailboxParam reads and checks the {address} path parameter.
func mailboxParam(c echo.Context) (string, error) {
	addr := store.NormalizeAddress(param(c, "address"))
	if addr == "" {
		return "", errBadRequest("mailbox address is empty")
	}
	return addr, nil
}

// GET /mailboxes/{address}/messages?folder=INBOX&limit&offset (and the
// search filters). A mailbox that has no mail yet lists empty.
func (s *Server) mailboxMessages(c echo.Context) error {
	addr, err := mailboxParam(c)
	if err != nil {
		return err
	}
	q, err := parseFilter(c)
	if err != nil {
		return err
	}
	q.Mailbox = addr
	q.Folder = c.QueryParam("folder")
	// IMAP names the inbox in any case (RFC 3501 5.1); other folder names
	// are case-sensitive.
	if q.Folder == "" || strings.EqualFold(q.Folder, store.InboxName) {
		q.Folder = store.InboxName
	}
	return s.listPage(c, q)
}

// DELETE /mailboxes/{address}: other recipients' copies stay. Emptying a
// mailbox that holds nothing (or never existed) succeeds too, so a test can
// clear a mailbox before it starts.
func (s *Server) deleteMailbox(c echo.Context) error {
	addr, err := mailboxParam(c)
	if err != nil {
		return err
	}
	if err := s.st.DeleteMailbox(c.Request().Context(), addr); err != nil && !isNotFound(err) {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
