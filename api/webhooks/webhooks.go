// Package webhooks serves the webhook queue over HTTP, mounted on api/rest
// (rest.Options.Mounts): GET /api/v1/webhooks lists deliveries with their
// status, attempts and last error; GET /api/v1/webhooks/{id} shows one;
// POST /api/v1/webhooks/{id}/retry makes a queued or failed one due now;
// DELETE /api/v1/webhooks/{id} drops one. Errors go through the REST
// server's handler (store.ErrNotFound 404, store.ErrInvalid 400).
package webhooks

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// Store is what the routes need from the store.
type Store interface {
	Webhooks(ctx context.Context, f store.WebhookFilter) ([]store.Webhook, int, error)
	WebhookCounts(ctx context.Context) (store.WebhookStats, error)
	GetWebhook(ctx context.Context, id int64) (store.Webhook, error)
	RetryWebhook(ctx context.Context, id int64) error
	DropWebhook(ctx context.Context, id int64) error
}

var _ Store = (*store.Store)(nil)

// Handler serves the routes.
type Handler struct {
	st      Store
	enabled bool
}

// New returns the routes over st; enabled says whether webhooks are
// configured (the list says so, for the UI).
func New(st Store, enabled bool) *Handler { return &Handler{st: st, enabled: enabled} }

// Register adds the routes (a rest.Mount's Register).
func (h *Handler) Register(e *echo.Echo) {
	g := e.Group("/api/v1")
	g.GET("/webhooks", h.list)
	g.GET("/webhooks/:id", h.get)
	g.POST("/webhooks/:id/retry", h.retry)
	g.DELETE("/webhooks/:id", h.drop)
}

// deliveryJSON is one webhook delivery. The id is a string, as the relay
// queue's.
type deliveryJSON struct {
	ID            string     `json:"id"`
	DeliveryID    string     `json:"delivery_id"`
	MessageID     string     `json:"message_id"`
	URL           string     `json:"url"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"` // null once finished
	LastError     string     `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	QueuedAt      time.Time  `json:"queued_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

type listJSON struct {
	Enabled    bool               `json:"enabled"`
	Total      int                `json:"total"`
	Counts     store.WebhookStats `json:"counts"`
	Deliveries []deliveryJSON     `json:"deliveries"`
}

func toJSON(w store.Webhook) deliveryJSON {
	var next *time.Time
	if w.Status == store.DeliveryQueued || w.Status == store.DeliverySending {
		t := w.NextAttemptAt.UTC()
		next = &t
	}
	return deliveryJSON{
		ID: strconv.FormatInt(w.ID, 10), DeliveryID: w.DeliveryID, MessageID: w.MessageID, URL: w.URL, Status: w.Status,
		Attempts: w.Attempts, NextAttemptAt: next, LastError: w.LastError,
		CreatedAt: w.CreatedAt.UTC(), QueuedAt: w.QueuedAt.UTC(), UpdatedAt: w.UpdatedAt.UTC(),
	}
}

func badRequest(format string, args ...any) error {
	return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf(format, args...))
}

// GET /api/v1/webhooks?status=&message_id=&limit=&offset=
func (h *Handler) list(c echo.Context) error {
	f := store.WebhookFilter{Status: c.QueryParam("status"), MessageID: c.QueryParam("message_id")}
	switch f.Status {
	case "", store.DeliveryQueued, store.DeliverySending, store.DeliveryDelivered, store.DeliveryFailed:
	default:
		return badRequest("status: want queued, sending, delivered or failed, got %q", f.Status)
	}
	for _, p := range []struct {
		name string
		v    *int
		max  int
	}{{"limit", &f.Limit, store.MaxLimit}, {"offset", &f.Offset, 1 << 30}} {
		s := c.QueryParam(p.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > p.max {
			return badRequest("%s: want a whole number from 0 to %d, got %q", p.name, p.max, s)
		}
		*p.v = n
	}
	ctx := c.Request().Context()
	ws, total, err := h.st.Webhooks(ctx, f)
	if err != nil {
		return err
	}
	counts, err := h.st.WebhookCounts(ctx)
	if err != nil {
		return err
	}
	out := listJSON{Enabled: h.enabled, Total: total, Counts: counts, Deliveries: make([]deliveryJSON, 0, len(ws))}
	for _, w := range ws {
		out.Deliveries = append(out.Deliveries, toJSON(w))
	}
	return c.JSON(http.StatusOK, out)
}

func idParam(c echo.Context) (int64, error) {
	v := c.Param("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("webhook id: want a positive number, got %q", v)
	}
	return id, nil
}

// GET /api/v1/webhooks/{id}
func (h *Handler) get(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	w, err := h.st.GetWebhook(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toJSON(w))
}

// POST /api/v1/webhooks/{id}/retry
func (h *Handler) retry(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	if err := h.st.RetryWebhook(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// DELETE /api/v1/webhooks/{id}
func (h *Handler) drop(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	if err := h.st.DropWebhook(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
