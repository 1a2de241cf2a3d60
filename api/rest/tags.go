package rest

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// tagStore is what the tag routes need beyond Store.
type tagStore interface {
	EditTags(ctx context.Context, ids []string, op store.TagOp, tags []string) error
}

var _ tagStore = (*store.Store)(nil)

// tagRoutes registers the native tag routes of one message:
//
//	PUT    /messages/{id}/tags {"tags":[…]}  replace ([] clears)
//	POST   /messages/{id}/tags {"tags":[…]}  add
//	DELETE /messages/{id}/tags/{tag}         remove one
//
// Each answers the message's tags: {"tags":[…]}. (Listing every tag in use
// is Mailpit's GET /api/v1/tags, served by api/mailpit.)
func (s *Server) tagRoutes(g *echo.Group) {
	g.PUT("/messages/:id/tags", func(c echo.Context) error { return s.editTags(c, store.TagsSet) })
	g.POST("/messages/:id/tags", func(c echo.Context) error { return s.editTags(c, store.TagsAdd) })
	g.DELETE("/messages/:id/tags/:tag", func(c echo.Context) error { return s.editTags(c, store.TagsRemove) })
}

type tagsJSON struct {
	Tags []string `json:"tags"`
}

func (s *Server) editTags(c echo.Context, op store.TagOp) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	ts, ok := s.st.(tagStore)
	if !ok {
		return echo.NewHTTPError(http.StatusNotImplemented, "tags are not supported by this store")
	}
	var body struct {
		Tags *[]string `json:"tags"`
	}
	if op == store.TagsRemove {
		body.Tags = &[]string{param(c, "tag")}
	} else {
		if err := readJSON(c, &body, false); err != nil {
			return err
		}
		if body.Tags == nil {
			return errBadRequest(`body must set "tags": a list of tags`)
		}
	}
	ctx := c.Request().Context()
	if err := ts.EditTags(ctx, []string{id}, op, *body.Tags); err != nil {
		return err
	}
	m, err := s.st.Get(ctx, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tagsJSON{Tags: m.Tags})
}
