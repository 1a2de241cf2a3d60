// Package faultsapi serves fault injection over HTTP: the native rules
// (/api/v1/faults), the SMTP session log (/api/v1/smtp/sessions), and the
// same engine through Mailpit's chaos API (/api/v1/chaos) and MailHog's
// Jim (/api/v2/jim). It owns no state: the engine and the log are passed
// in, and it is mounted on the REST server with rest.Mount.
package faultsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/api/rest"
	"github.com/mailsandbox/mailsandbox/capture/faults"
	"github.com/mailsandbox/mailsandbox/capture/smtplog"
)

// Options say what to serve. Engine is required.
type Options struct {
	Engine *faults.Engine
	// Log is the SMTP session log; nil answers its route 404.
	Log *smtplog.Log
	// ChaosEnabled serves Mailpit's chaos API (--enable-chaos); without it
	// the API answers as Mailpit's does when chaos is off.
	ChaosEnabled bool
}

// Mount returns the routes as a rest.Mount.
func Mount(o Options) rest.Mount {
	return rest.Mount{Register: func(e *echo.Echo) { register(e, o) }}
}

const maxBody = 64 << 10

func register(e *echo.Echo, o Options) {
	h := handlers{o}
	e.GET("/api/v1/faults", h.list)
	e.POST("/api/v1/faults", h.add)
	e.DELETE("/api/v1/faults", h.clear)
	e.GET("/api/v1/faults/enabled", h.enabled)
	e.PUT("/api/v1/faults/enabled", h.setEnabled)
	e.DELETE("/api/v1/faults/:id", h.remove)
	e.GET("/api/v1/smtp/sessions", h.sessions)
	e.GET("/api/v1/chaos", h.getChaos)
	e.PUT("/api/v1/chaos", h.putChaos)
	e.GET("/api/v2/jim", h.getJim)
	e.POST("/api/v2/jim", h.postJim)
	e.PUT("/api/v2/jim", h.putJim)
	e.DELETE("/api/v2/jim", h.deleteJim)
}

type handlers struct{ o Options }

func bad(format string, a ...any) error {
	return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf(format, a...))
}

type listJSON struct {
	Enabled bool          `json:"enabled"`
	Faults  []faults.Rule `json:"faults"`
}

func (h handlers) list(c echo.Context) error {
	return c.JSON(http.StatusOK, listJSON{Enabled: h.o.Engine.Enabled(), Faults: h.o.Engine.List()})
}

// readBody reads a bounded request body.
func readBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, maxBody+1))
	if err != nil {
		return nil, bad("read body: %v", err)
	}
	if len(b) > maxBody {
		return nil, echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxBody))
	}
	return b, nil
}

// decodeRule reads a rule field by field, so an error names its field.
func decodeRule(b []byte) (faults.Rule, error) {
	var r faults.Rule
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return r, bad("want a JSON object: %v", err)
	}
	known := map[string]bool{"stage": true, "from": true, "to": true, "probability": true, "times": true, "reply": true,
		"delay": true, "disconnect": true, "greylist": true, "rate": true, "bandwidth": true, "bandwidth_max": true}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "id" || k == "hits" || k == "origin" {
			continue // read-only; tolerated so a listed rule can be posted back
		}
		if !known[k] {
			return r, bad("fault rule: %s: unknown field", k)
		}
		one, _ := json.Marshal(map[string]json.RawMessage{k: fields[k]})
		dec := json.NewDecoder(bytes.NewReader(one))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return r, bad("fault rule: %s: %v", k, cleanJSONErr(err))
		}
	}
	return r, nil
}

func cleanJSONErr(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "want " + te.Type.String() + ", got " + te.Value
	}
	return err.Error()
}

func (h handlers) add(c echo.Context) error {
	b, err := readBody(c)
	if err != nil {
		return err
	}
	r, err := decodeRule(b)
	if err != nil {
		return err
	}
	r.Origin = ""
	added, err := h.o.Engine.Add(r)
	if err != nil {
		return bad("%v", err)
	}
	c.Response().Header().Set("Location", "/api/v1/faults/"+added.ID)
	return c.JSON(http.StatusCreated, added)
}

func (h handlers) remove(c echo.Context) error {
	if err := h.o.Engine.Remove(c.Param("id")); err != nil {
		return echo.NewHTTPError(http.StatusNotFound, "fault "+c.Param("id")+": not found")
	}
	return c.NoContent(http.StatusNoContent)
}

func (h handlers) clear(c echo.Context) error {
	h.o.Engine.Clear()
	return c.NoContent(http.StatusNoContent)
}

type enabledJSON struct {
	Enabled *bool `json:"enabled"`
}

func (h handlers) enabled(c echo.Context) error {
	on := h.o.Engine.Enabled()
	return c.JSON(http.StatusOK, enabledJSON{Enabled: &on})
}

func (h handlers) setEnabled(c echo.Context) error {
	b, err := readBody(c)
	if err != nil {
		return err
	}
	var v enabledJSON
	if err := json.Unmarshal(b, &v); err != nil || v.Enabled == nil {
		return bad(`enabled: want {"enabled": true} or {"enabled": false}`)
	}
	h.o.Engine.SetEnabled(*v.Enabled)
	return h.enabled(c)
}

type sessionsJSON struct {
	Sessions []smtplog.View `json:"sessions"`
}

func (h handlers) sessions(c echo.Context) error {
	if h.o.Log == nil {
		return echo.NewHTTPError(http.StatusNotFound, "the SMTP session log is off (--smtp-log-sessions 0)")
	}
	q := c.QueryParams()
	f := smtplog.Filter{From: q.Get("from"), To: q.Get("to")}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return bad("since: want an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
		}
		f.Since = t
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return bad("limit: want a whole number")
		}
		f.Limit = n
	}
	return c.JSON(http.StatusOK, sessionsJSON{Sessions: h.o.Log.List(f)})
}

// Mailpit answers errors as 400 text/plain.
func mailpitError(c echo.Context, msg string) error {
	return c.String(http.StatusBadRequest, msg)
}

func (h handlers) getChaos(c echo.Context) error {
	if !h.o.ChaosEnabled {
		return mailpitError(c, "Chaos is not enabled")
	}
	return c.JSON(http.StatusOK, h.o.Engine.Chaos())
}

func (h handlers) putChaos(c echo.Context) error {
	if !h.o.ChaosEnabled {
		return mailpitError(c, "Chaos is not enabled")
	}
	b, err := readBody(c)
	if err != nil {
		return err
	}
	var ch faults.Chaos
	if err := json.Unmarshal(b, &ch); err != nil {
		return mailpitError(c, err.Error())
	}
	if err := h.o.Engine.SetChaos(ch); err != nil {
		return mailpitError(c, err.Error())
	}
	return c.JSON(http.StatusOK, h.o.Engine.Chaos())
}

// MailHog's Jim: a missing Jim is a bare 404. As in MailHog, a body
// replaces Jim whole (omitted fields are 0); POST without a readable body
// invites the default Jim, PUT without one is a 400.
func (h handlers) getJim(c echo.Context) error {
	j := h.o.Engine.Jim()
	if j == nil {
		return c.NoContent(http.StatusNotFound)
	}
	return c.JSON(http.StatusOK, j)
}

func (h handlers) postJim(c echo.Context) error {
	if h.o.Engine.Jim() != nil {
		return c.NoContent(http.StatusBadRequest)
	}
	b, err := readBody(c)
	if err != nil {
		return err
	}
	j := faults.DefaultJim()
	var fromBody faults.Jim
	if json.Unmarshal(b, &fromBody) == nil {
		j = fromBody
	}
	if err := h.o.Engine.SetJim(&j); err != nil {
		return bad("%v", err)
	}
	return c.NoContent(http.StatusCreated)
}

func (h handlers) putJim(c echo.Context) error {
	if h.o.Engine.Jim() == nil {
		return c.NoContent(http.StatusNotFound)
	}
	b, err := readBody(c)
	if err != nil {
		return err
	}
	var j faults.Jim
	if err := json.Unmarshal(b, &j); err != nil {
		return bad("%v", cleanJSONErr(err))
	}
	if err := h.o.Engine.SetJim(&j); err != nil {
		return bad("%v", err)
	}
	return c.NoContent(http.StatusOK)
}

func (h handlers) deleteJim(c echo.Context) error {
	if h.o.Engine.Jim() == nil {
		return c.NoContent(http.StatusNotFound)
	}
	if err := h.o.Engine.SetJim(nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}
