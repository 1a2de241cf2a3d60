package mailpit

import (
	_ "embed"
	"net/http"
	"runtime"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

//go:embed swagger.json
var swaggerDoc []byte

type runtimeStatsJSON struct {
	Uptime           int
	Memory           uint64
	MessagesDeleted  int
	SMTPAccepted     int
	SMTPAcceptedSize int
	SMTPRejected     int
	SMTPIgnored      int
}

type infoJSON struct {
	Version       string
	LatestVersion string
	Database      string
	DatabaseSize  int64
	Messages      int
	Unread        int
	Tags          map[string]int
	RuntimeStats  runtimeStatsJSON
}

// info is GET /api/v1/info (Mailpit's AppInformation). SMTP counters are
// the metrics endpoint's business and stay 0 here.
func (s *Server) info(c echo.Context) error {
	ctx := c.Request().Context()
	st, err := s.st.Stats(ctx)
	if err != nil {
		return s.fail(c, err)
	}
	unread, err := s.st.Unread(ctx)
	if err != nil {
		return s.fail(c, err)
	}
	tags, err := s.allTags(ctx)
	if err != nil {
		return s.fail(c, err)
	}
	counts := make(map[string]int, len(tags))
	for _, t := range tags {
		if counts[t], err = s.st.Count(ctx, store.Query{Tag: t}); err != nil {
			return s.fail(c, err)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return c.JSON(http.StatusOK, infoJSON{
		Version: s.opts.Version, Database: s.opts.Database, DatabaseSize: st.Bytes,
		Messages: st.Messages, Unread: unread, Tags: counts,
		RuntimeStats: runtimeStatsJSON{Uptime: int(time.Since(s.started).Seconds()), Memory: ms.Sys},
	})
}

type relayConfigJSON struct {
	Enabled            bool
	SMTPServer         string
	ReturnPath         string
	AllowedRecipients  string
	BlockedRecipients  string
	OverrideFrom       string
	PreserveMessageIDs bool
	RecipientAllowlist string
}

type webUIJSON struct {
	Label               string
	MessageRelay        relayConfigJSON
	SpamAssassin        bool
	Rspamd              bool
	ChaosEnabled        bool
	DuplicatesIgnored   bool
	HideDeleteAllButton bool
}

// webUI is GET /api/v1/webui (Mailpit's WebUIConfiguration).
func (s *Server) webUI(c echo.Context) error {
	return c.JSON(http.StatusOK, webUIJSON{MessageRelay: relayConfigJSON{Enabled: s.opts.Relay != nil}})
}

// swagger is GET /api/v1/swagger.json: our description of the routes this
// package serves (OpenAPI 2, as Mailpit's, so generated clients work).
func (s *Server) swagger(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, swaggerDoc)
}

// statsJSON is the stats event's data.
type statsJSON struct {
	Total   int
	Unread  int
	Version string
}

func (s *Server) stats(c echo.Context) (statsJSON, error) {
	ctx := c.Request().Context()
	total, err := s.st.Count(ctx, store.Query{})
	if err != nil {
		return statsJSON{}, err
	}
	unread, err := s.st.Unread(ctx)
	return statsJSON{Total: total, Unread: unread, Version: s.opts.Version}, err
}
