package rest

import (
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// parseBefore reads before: an RFC 3339 time (received before it), or a
// message id, the cursor of the next page (the matches listed after that
// message). A cursor costs the same however deep the page; offset does
// not.
func parseBefore(c echo.Context) (t time.Time, id string, err error) {
	v := strings.TrimSpace(c.QueryParam("before"))
	if isMessageID(v) {
		return t, strings.ToUpper(v), nil
	}
	t, err = parseTime(c, "before")
	if err != nil {
		return t, "", errBadRequest("before: want an RFC 3339 time such as 2026-01-02T15:04:05Z or a message id, got %q", c.QueryParam("before"))
	}
	return t, "", nil
}

// isMessageID tells our ids (26 Crockford base32 digits) from times: an
// RFC 3339 time always has '-' and ':'.
func isMessageID(v string) bool {
	if len(v) != 26 {
		return false
	}
	for _, r := range strings.ToUpper(v) {
		if !strings.ContainsRune("0123456789ABCDEFGHJKMNPQRSTVWXYZ", r) {
			return false
		}
	}
	return true
}
