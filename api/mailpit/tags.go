package mailpit

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// tagStore is what the tag routes need beyond Store.
type tagStore interface {
	Tags(ctx context.Context) ([]string, error)
	EditTags(ctx context.Context, ids []string, op store.TagOp, tags []string) error
	RenameTag(ctx context.Context, old, name string) error
	DeleteTag(ctx context.Context, tag string) error
}

var _ tagStore = (*store.Store)(nil)

// tagRoutes are Mailpit's tag routes. As in Mailpit, tags given here are
// cleaned rather than refused (characters outside the alphabet become
// spaces); the native routes refuse them with 400.
func (s *Server) tagRoutes(g *echo.Group) {
	g.GET("/tags", s.listTags)
	g.PUT("/tags", s.setTags)
	g.PUT("/tags/:tag", s.renameTag)
	g.DELETE("/tags/:tag", s.deleteTag)
}

func (s *Server) tags() (tagStore, bool) {
	ts, ok := s.st.(tagStore)
	return ts, ok
}

// listTags is GET /api/v1/tags: every tag in use, sorted.
func (s *Server) listTags(c echo.Context) error {
	ts, ok := s.tags()
	if !ok {
		return c.JSON(http.StatusOK, []string{})
	}
	tags, err := ts.Tags(c.Request().Context())
	if err != nil {
		return s.fail(c, err)
	}
	return c.JSON(http.StatusOK, tags)
}

// setTags is PUT /api/v1/tags {"IDs":[…],"Tags":[…]}: the messages get
// exactly these tags ([] clears them); unknown IDs are ignored.
func (s *Server) setTags(c echo.Context) error {
	var req struct {
		IDs  []string
		Tags []string
	}
	if err := readJSON(c, &req); err != nil {
		return text(c, http.StatusBadRequest, err.Error())
	}
	ts, ok := s.tags()
	if !ok {
		return text(c, http.StatusBadRequest, "tags are not supported")
	}
	tags := make([]string, 0, len(req.Tags))
	for _, t := range req.Tags {
		if t = store.CleanTag(t); t != "" {
			tags = append(tags, t)
		}
	}
	if len(req.IDs) == 0 {
		return okText(c)
	}
	if err := ts.EditTags(c.Request().Context(), req.IDs, store.TagsSet, tags); err != nil && !errors.Is(err, store.ErrNotFound) {
		return s.fail(c, err)
	}
	return okText(c)
}

// tagParam is the {Tag} path segment, unescaped.
func tagParam(c echo.Context) string {
	v := c.Param("tag")
	if c.Request().URL.RawPath != "" {
		if u, err := url.PathUnescape(v); err == nil {
			return u
		}
	}
	return v
}

// findTag returns the spelling of tag (any case) among the tags in use.
func findTag(ctx context.Context, ts tagStore, tag string) (string, bool, error) {
	all, err := ts.Tags(ctx)
	if err != nil {
		return "", false, err
	}
	for _, t := range all {
		if strings.EqualFold(t, tag) {
			return t, true, nil
		}
	}
	return "", false, nil
}

// renameTag is PUT /api/v1/tags/{Tag} {"Name":"new"}. As Mailpit: 400
// "tag not found", "invalid tag name", "tag already exists".
func (s *Server) renameTag(c echo.Context) error {
	var req struct{ Name string }
	if err := readJSON(c, &req); err != nil {
		return text(c, http.StatusBadRequest, err.Error())
	}
	ts, ok := s.tags()
	if !ok {
		return text(c, http.StatusBadRequest, "tags are not supported")
	}
	ctx := c.Request().Context()
	old := tagParam(c)
	name := store.CleanTag(req.Name)
	if name == "" {
		return text(c, http.StatusBadRequest, "invalid tag name: "+req.Name)
	}
	if _, found, err := findTag(ctx, ts, old); err != nil {
		return s.fail(c, err)
	} else if !found {
		return text(c, http.StatusBadRequest, "tag not found: "+old)
	}
	if !strings.EqualFold(old, name) {
		if _, exists, err := findTag(ctx, ts, name); err != nil {
			return s.fail(c, err)
		} else if exists {
			return text(c, http.StatusBadRequest, "tag already exists: "+name)
		}
	}
	if err := ts.RenameTag(ctx, old, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return text(c, http.StatusBadRequest, "tag not found: "+old)
		}
		return s.fail(c, err)
	}
	return okText(c)
}

// deleteTag is DELETE /api/v1/tags/{Tag}: off every message.
func (s *Server) deleteTag(c echo.Context) error {
	ts, ok := s.tags()
	if !ok {
		return text(c, http.StatusBadRequest, "tags are not supported")
	}
	ctx := c.Request().Context()
	tag := tagParam(c)
	if _, found, err := findTag(ctx, ts, tag); err != nil {
		return s.fail(c, err)
	} else if !found {
		return text(c, http.StatusBadRequest, "tag not found: "+tag)
	}
	if err := ts.DeleteTag(ctx, tag); err != nil {
		return s.fail(c, err)
	}
	return okText(c)
}

// allTags is the list envelope's tags: every tag in use.
func (s *Server) allTags(ctx context.Context) ([]string, error) {
	ts, ok := s.tags()
	if !ok {
		return []string{}, nil
	}
	return ts.Tags(ctx)
}

// tagsUpdateJSON is the update frame of a tag change, as Mailpit's.
type tagsUpdateJSON struct {
	ID   string
	Tags []string
}
