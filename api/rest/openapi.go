package rest

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDoc describes every route and schema; openapi_test.go checks real
// responses against it.
//
//go:embed openapi.json
var openAPIDoc []byte

// GET /openapi.json
func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/json", openAPIDoc)
}
