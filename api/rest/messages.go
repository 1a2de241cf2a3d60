package rest

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// contentSandbox is sent with raw messages and parts: whatever a browser
// renders from captured mail runs in an opaque origin without scripts.
const contentSandbox = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"

// GET /messages/search?to&from&subject&text&mailbox&since&before&limit&offset
func (s *Server) searchMessages(c echo.Context) error {
	q, err := parseFilter(c)
	if err != nil {
		return err
	}
	return s.listPage(c, q)
}

// listPage answers one page of q with its total: exact up to
// store.CountCap matches (beyond, total_exact is false), or always with
// ?total=exact, which counts every match.
func (s *Server) listPage(c echo.Context, q store.Query) error {
	limit := 0
	switch v := c.QueryParam("total"); v {
	case "":
	case "exact":
		limit = 1<<31 - 1
	default:
		return errBadRequest("total: want exact, got %q", v)
	}
	msgs, total, exact, err := s.st.SearchCapped(c.Request().Context(), q, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listJSON{Total: total, TotalExact: exact, Messages: toSummaries(msgs)})
}

// DELETE /messages: everything, or with Mailpit's {"IDs":[…]} just those
// (unknown ids are skipped, as Mailpit does). Native, Mailpit and MailHog
// clients all send this; it answers as Mailpit does (200 text/plain "ok"),
// which MailHog's clients (they check for 200) and the SDK (any 2xx) accept.
func (s *Server) deleteAll(c echo.Context) error {
	var body struct {
		IDs []string `json:"IDs"`
	}
	if err := readJSON(c, &body, true); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if len(body.IDs) == 0 {
		if err := s.st.DeleteAll(ctx); err != nil {
			return err
		}
		return c.String(http.StatusOK, "ok")
	}
	for _, id := range body.IDs {
		if err := s.st.DeleteMessage(ctx, id); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete message %s: %w", id, err)
		}
	}
	return c.String(http.StatusOK, "ok")
}

func idParam(c echo.Context) (string, error) {
	id := param(c, "id")
	if id == "" || len(id) > 200 {
		return "", echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("message %q: not found", id))
	}
	return id, nil
}

// GET /messages/{id}
func (s *Server) getMessage(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	m, err := s.st.Get(ctx, id)
	if err != nil {
		return err
	}
	raw, err := s.st.Raw(ctx, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toMessage(m, mailparse.Parse(raw)))
}

// GET /messages/{id}/raw: the exact bytes received.
func (s *Server) rawMessage(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	raw, err := s.st.Raw(ctx, id)
	if err != nil {
		return err
	}
	name := id
	if m, err := s.st.Get(ctx, id); err == nil {
		name = emlName(m.Subject, id)
	}
	h := c.Response().Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", contentSandbox)
	h.Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": name + ".eml"}))
	return c.Blob(http.StatusOK, "message/rfc822", raw)
}

// emlName is a file name for a saved message: its subject's letters,
// digits, spaces, dots, dashes and underscores, at most 60 of them (the
// UI's rule for its download link), or the id when nothing is left.
func emlName(subject, id string) string {
	var b strings.Builder
	n := 0
	for _, r := range subject {
		if n == 60 {
			break
		}
		if unicode.IsLetter(r) || unicode.IsNumber(r) || strings.ContainsRune(" ._-", r) {
			b.WriteRune(r)
			n++
		}
	}
	if name := strings.Trim(b.String(), " ."); name != "" {
		return name
	}
	return id
}

// GET /messages/{id}/parts/{part}: one decoded part, as a download (images
// inline). HTML and other active content can never run on our origin: it is
// served as an attachment under a sandboxing Content-Security-Policy.
func (s *Server) messagePart(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	part := param(c, "part")
	if part == "" || strings.Trim(part, "0123456789.") != "" || len(part) > 100 {
		return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("part %q: not found", part))
	}
	raw, err := s.st.Raw(c.Request().Context(), id)
	if err != nil {
		return err
	}
	body, ct, filename, err := mailparse.PartBody(raw, part)
	if err != nil {
		if errors.Is(err, mailparse.ErrNoPart) {
			return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("message %s has no part %q", id, part))
		}
		return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("message %s part %s: %v", id, part, err))
	}
	mt, params, perr := mime.ParseMediaType(ct)
	if perr != nil {
		mt, params = "application/octet-stream", nil
	}
	ct = mime.FormatMediaType(mt, params)
	if ct == "" {
		ct = mt
	}
	disp := "attachment"
	if inlineSafe(mt) {
		disp = "inline"
	}
	filename = baseName(filename)
	if filename == "" {
		filename = "part-" + part
	}
	cd := mime.FormatMediaType(disp, map[string]string{"filename": filename})
	if cd == "" {
		cd = disp
	}
	h := c.Response().Header()
	h.Set("Content-Disposition", cd)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", contentSandbox)
	return c.Blob(http.StatusOK, ct, body)
}

// baseName drops the directories a sender put in a file name (with either
// slash), so a download is never offered as "../../x"; "" when nothing
// usable is left.
func baseName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(name)
	if name == "." || name == ".." {
		return ""
	}
	return name
}

// inlineSafe lists types a browser may show in place without running code.
func inlineSafe(mt string) bool {
	switch mt {
	case "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/avif", "image/x-icon",
		"text/plain", "application/pdf":
		return true
	}
	return false
}

// PATCH /messages/{id}?mailbox= with {"seen": bool}
func (s *Server) patchMessage(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	var body struct {
		Seen *bool `json:"seen"`
	}
	if err := readJSON(c, &body, false); err != nil {
		return err
	}
	if body.Seen == nil {
		return errBadRequest(`body must set "seen": true or false`)
	}
	if err := s.st.SetSeen(c.Request().Context(), id, c.QueryParam("mailbox"), *body.Seen); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// DELETE /messages/{id}: from every mailbox. MailHog serves the same path
// and its clients check for 200 with an empty body; native clients accept
// any 2xx, so one answer, 200 and no body, serves both. An unknown id is
// still a 404 (MailHog would say 200): a typo should not look like success.
func (s *Server) deleteMessage(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	if err := s.st.DeleteMessage(c.Request().Context(), id); err != nil {
		if isNotFound(err) {
			return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("message %s: not found", id))
		}
		return err
	}
	return c.NoContent(http.StatusOK)
}

// POST /messages/{id}/release {"to":[…]}: empty "to" means the original
// envelope recipients.
func (s *Server) releaseMessage(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	var body struct {
		To stringList `json:"to"` // one address or a list, as in POST /messages
	}
	if err := readJSON(c, &body, true); err != nil {
		return err
	}
	ctx := c.Request().Context()
	m, err := s.st.Get(ctx, id)
	if err != nil {
		return err
	}
	if s.opts.Relay == nil {
		return echo.NewHTTPError(http.StatusConflict, "relay is not configured")
	}
	to := []string(body.To)
	if len(to) == 0 {
		to = m.Envelope.To
	}
	clean := make([]string, 0, len(to))
	for _, a := range to {
		addr, err := parseAddress(a)
		if err != nil {
			return errBadRequest("to: %v", err)
		}
		clean = append(clean, addr.Address)
	}
	if len(clean) == 0 {
		return errBadRequest("no recipients to release to")
	}
	if err := s.opts.Relay.Release(ctx, id, clean); err != nil {
		return err // the relay's error starts "release <id>:" already
	}
	return c.JSON(http.StatusAccepted, map[string]any{"id": id, "to": clean})
}

// parseAddress accepts "a@b" or "Name <a@b>".
func parseAddress(s string) (store.Address, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return store.Address{}, fmt.Errorf("empty address")
	}
	a, err := mailAddress(s)
	if err != nil {
		return store.Address{}, fmt.Errorf("invalid address %q", s)
	}
	return a, nil
}
