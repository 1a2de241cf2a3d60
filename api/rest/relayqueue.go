package rest

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// deliveryJSON is one relay queue item. The id is a string, like message ids.
type deliveryJSON struct {
	ID            string     `json:"id"`
	MessageID     string     `json:"message_id"`
	Subject       string     `json:"subject"`
	MailFrom      string     `json:"mail_from"`
	Recipients    []string   `json:"recipients"`
	Destination   string     `json:"destination"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastError     string     `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	// RecipientStatus tells each recipient's own result: a delivery can be
	// delivered to some recipients and failed for others.
	RecipientStatus []recipientStatusJSON `json:"recipient_status"`
}

type recipientStatusJSON struct {
	Address  string `json:"address"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	Reply    string `json:"reply"`
}

// GET /relay/queue
func (s *Server) relayQueue(c echo.Context) error {
	ds, err := s.st.Deliveries(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]deliveryJSON, 0, len(ds))
	for _, d := range ds {
		rc := d.Recipients
		if rc == nil {
			rc = []string{}
		}
		next := optTime(d.NextAttemptAt)
		if d.Status == store.DeliveryDelivered || d.Status == store.DeliveryFailed {
			next = nil // finished: no attempt comes
		}
		rs := make([]recipientStatusJSON, 0, len(rc))
		for _, r := range rc {
			st := recipientStatusJSON{Address: r, Status: store.DeliveryQueued}
			if got, ok := d.Recipient(r); ok {
				st = recipientStatusJSON{Address: r, Status: got.Status, Attempts: got.Attempts, Reply: got.Reply}
			}
			rs = append(rs, st)
		}
		out = append(out, deliveryJSON{
			ID: strconv.FormatInt(d.ID, 10), MessageID: d.MessageID, Subject: d.Subject, MailFrom: d.MailFrom, Recipients: rc,
			Destination: d.Destination, Status: d.Status, Attempts: d.Attempts, NextAttemptAt: next,
			LastError: d.LastError, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
			LastAttemptAt: optTime(d.LastAttemptAt), RecipientStatus: rs,
		})
	}
	// enabled tells clients (the UI) whether releasing can work at all.
	return c.JSON(http.StatusOK, map[string]any{"deliveries": out, "enabled": s.opts.Relay != nil})
}

func deliveryParam(c echo.Context) (int64, error) {
	v := param(c, "id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("delivery %q: not found", v))
	}
	return id, nil
}

// deliveryError words a missing delivery as deliveryParam does.
func deliveryError(id int64, err error) error {
	if isNotFound(err) {
		return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("delivery %d: not found", id))
	}
	return err
}

// DELETE /relay/queue/{id}
func (s *Server) dropDelivery(c echo.Context) error {
	id, err := deliveryParam(c)
	if err != nil {
		return err
	}
	if err := s.st.DropDelivery(c.Request().Context(), id); err != nil {
		return deliveryError(id, err)
	}
	return c.NoContent(http.StatusNoContent)
}

// POST /relay/queue/{id}/retry
func (s *Server) retryDelivery(c echo.Context) error {
	id, err := deliveryParam(c)
	if err != nil {
		return err
	}
	if err := s.st.RetryDelivery(c.Request().Context(), id); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			// The delivery's state forbids a retry (delivered, or its
			// message is gone): a conflict, not a malformed request.
			reason := "cannot be retried"
			msg, sep := err.Error(), store.ErrInvalid.Error()+": "
			if i := strings.LastIndex(msg, sep); i >= 0 {
				reason = msg[i+len(sep):]
			}
			return echo.NewHTTPError(http.StatusConflict, fmt.Sprintf("delivery %d: %s", id, reason))
		}
		return deliveryError(id, err)
	}
	return c.NoContent(http.StatusAccepted)
}
