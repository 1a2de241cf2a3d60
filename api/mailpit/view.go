package mailpit

import (
	"errors"
	"html"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/mailparse"
	"github.com/mailsandbox/mailsandbox/capture/store"
)

// viewCSP lets a viewed message show its images and styles but run no
// script and submit no form.
const viewCSP = "default-src 'none'; img-src * data: blob:; style-src * 'unsafe-inline'; font-src * data:; frame-ancestors 'self'; form-action 'none'; base-uri 'self'"

// cidRef finds cid: references in HTML attributes.
func cidRef() *regexp.Regexp { return regexp.MustCompile(`(?i)(["'(=]\s*)cid:([^"')\s>]+)`) }

// view is GET /view/{ID}.html and /view/{ID}.txt (ID may be latest, with
// ?query=): the message's HTML or text body on its own; ?embed=1 makes its
// links open outside the frame it is shown in.
func (s *Server) view(c echo.Context) error {
	file := c.Param("file")
	var id, kind string
	switch {
	case strings.HasSuffix(file, ".html"):
		id, kind = strings.TrimSuffix(file, ".html"), "html"
	case strings.HasSuffix(file, ".txt"):
		id, kind = strings.TrimSuffix(file, ".txt"), "txt"
	default:
		return text(c, http.StatusNotFound, "404 page not found")
	}
	id, err := s.resolve(c, id)
	if err == nil {
		var raw []byte
		if raw, err = s.st.Raw(c.Request().Context(), id); err == nil {
			if _, err = s.st.Get(c.Request().Context(), id); err == nil {
				return s.viewBody(c, id, kind, raw)
			}
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return c.Blob(http.StatusNotFound, "text/plain; charset=utf-8", []byte("Message not found"))
	}
	return s.loadFail(c, err)
}

func (s *Server) viewBody(c echo.Context, id, kind string, raw []byte) error {
	p := mailparse.Parse(raw)
	if kind == "txt" {
		return c.Blob(http.StatusOK, "text/plain; charset=utf-8", []byte(textBody(p)))
	}
	if p.HTML == "" {
		return c.Blob(http.StatusNotFound, "text/plain; charset=utf-8", []byte("This message does not contain a HTML part"))
	}
	parts := map[string]string{}
	for _, a := range p.Attachments {
		if a.ContentID != "" {
			parts[strings.ToLower(a.ContentID)] = a.ID
		}
	}
	re := cidRef()
	body := re.ReplaceAllStringFunc(p.HTML, func(m string) string {
		sub := re.FindStringSubmatch(m)
		part, ok := parts[strings.ToLower(sub[2])]
		if !ok {
			return m
		}
		return sub[1] + html.EscapeString("/api/v1/message/"+id+"/part/"+part)
	})
	if c.QueryParam("embed") == "1" {
		body = `<base target="_blank">` + body
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", viewCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, "text/html; charset=utf-8", []byte(body))
}
