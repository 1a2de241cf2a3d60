package checks

import (
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/checks/linkcheck"
)

// Mailpit's html-check shapes (HTMLCheckResponse).
type mpHTMLResponse struct {
	Platforms map[string][]string `json:"Platforms"`
	Total     mpHTMLTotal         `json:"Total"`
	Warnings  []mpHTMLWarning     `json:"Warnings"`
}

type mpHTMLTotal struct {
	Nodes       int     `json:"Nodes"`
	Partial     float32 `json:"Partial"`
	Supported   float32 `json:"Supported"`
	Tests       int     `json:"Tests"`
	Unsupported float32 `json:"Unsupported"`
}

type mpHTMLWarning struct {
	Slug          string            `json:"Slug"`
	Title         string            `json:"Title"`
	Description   string            `json:"Description"`
	URL           string            `json:"URL"`
	Category      string            `json:"Category"`
	Tags          []string          `json:"Tags"`
	Keywords      string            `json:"Keywords"`
	NotesByNumber map[string]string `json:"NotesByNumber"`
	Results       []mpHTMLResult    `json:"Results"`
	Score         mpHTMLScore       `json:"Score"`
}

type mpHTMLResult struct {
	Name       string `json:"Name"`
	Platform   string `json:"Platform"`
	Family     string `json:"Family"`
	Version    string `json:"Version"`
	Support    string `json:"Support"`
	NoteNumber string `json:"NoteNumber"`
}

type mpHTMLScore struct {
	Found       int     `json:"Found"`
	Supported   float32 `json:"Supported"`
	Partial     float32 `json:"Partial"`
	Unsupported float32 `json:"Unsupported"`
}

// mailpitHTML is GET /api/v1/message/{ID}/html-check.
func (h *Handler) mailpitHTML(c echo.Context) error {
	l, ok, err := h.mailpitLoad(c)
	if !ok {
		return err
	}
	if l.parsed.HTML == "" {
		return mailpitText(c, http.StatusBadRequest, "message does not contain HTML")
	}
	hc, err := h.html()
	if err != nil {
		return err
	}
	r := hc.Check(l.parsed.HTML, htmlOptions(c))
	out := mpHTMLResponse{
		Platforms: r.Platforms,
		Total: mpHTMLTotal{Nodes: r.Nodes, Tests: r.Tests, Supported: float32(r.Score.Supported),
			Partial: float32(r.Score.Partial), Unsupported: float32(r.Score.Unsupported)},
		Warnings: []mpHTMLWarning{},
	}
	for _, f := range r.Findings {
		w := mpHTMLWarning{Slug: f.Slug, Title: f.Title, Description: f.Description, URL: f.URL, Category: f.Category,
			Tags: []string{}, NotesByNumber: f.NotesByNum, Results: []mpHTMLResult{},
			// Mailpit counts "unknown" as partial.
			Score: mpHTMLScore{Found: f.Found, Supported: float32(f.Score.Supported),
				Partial: float32(f.Score.Partial + f.Score.Unknown), Unsupported: float32(f.Score.Unsupported)}}
		if w.NotesByNumber == nil {
			w.NotesByNumber = map[string]string{}
		}
		for _, s := range f.Stats {
			res := mpHTMLResult{Name: fmt.Sprintf("%s %s (%s)", hc.FamilyName(s.Family), hc.PlatformName(s.Platform), s.Version),
				Platform: s.Platform, Family: s.Family, Version: s.Version}
			switch s.Support {
			case "y":
				res.Support = "yes"
			case "n":
				res.Support = "no"
			default:
				res.Support = "partial"
			}
			if len(s.Notes) > 0 {
				res.NoteNumber = s.Notes[len(s.Notes)-1]
			}
			w.Results = append(w.Results, res)
		}
		out.Warnings = append(out.Warnings, w)
	}
	return c.JSON(http.StatusOK, out)
}

// Mailpit's link-check shapes (LinkCheckResponse).
type mpLinkResponse struct {
	Errors int      `json:"Errors"`
	Links  []mpLink `json:"Links"`
}

type mpLink struct {
	URL        string `json:"URL"`
	StatusCode int    `json:"StatusCode"`
	Status     string `json:"Status"`
}

// mailpitLinks is GET /api/v1/message/{ID}/link-check?follow=true.
func (h *Handler) mailpitLinks(c echo.Context) error {
	follow := false
	switch strings.ToLower(c.QueryParam("follow")) {
	case "", "false", "0":
	case "true", "1":
		follow = true
	default:
		return mailpitText(c, http.StatusBadRequest, "follow: want true or false")
	}
	l, ok, err := h.mailpitLoad(c)
	if !ok {
		return err
	}
	r := h.links.Check(c.Request().Context(), linkcheck.Extract(l.parsed.HTML, l.parsed.Text), follow)
	out := mpLinkResponse{Errors: r.Errors, Links: []mpLink{}}
	for _, k := range r.Links {
		out.Links = append(out.Links, mpLink{URL: k.URL, StatusCode: k.StatusCode, Status: k.Status})
	}
	return c.JSON(http.StatusOK, out)
}

// Mailpit's sa-check shapes (SpamAssassinResponse).
type mpSpamResponse struct {
	IsSpam bool     `json:"IsSpam"`
	Error  string   `json:"Error"`
	Score  float64  `json:"Score"`
	Rules  []mpRule `json:"Rules"`
}

type mpRule struct {
	Score       float64 `json:"Score"`
	Name        string  `json:"Name"`
	Description string  `json:"Description"`
}

// mailpitSpam is GET /api/v1/message/{ID}/sa-check.
func (h *Handler) mailpitSpam(c echo.Context) error {
	l, ok, err := h.mailpitLoad(c)
	if !ok {
		return err
	}
	r := h.spamCheck(c.Request().Context(), l.raw)
	out := mpSpamResponse{IsSpam: r.IsSpam, Error: r.Error, Score: round1(r.Score), Rules: []mpRule{}}
	for _, x := range r.Rules {
		out.Rules = append(out.Rules, mpRule{Score: round1(x.Score), Name: x.Name, Description: x.Description})
	}
	return c.JSON(http.StatusOK, out)
}

// round1 rounds down to one decimal, as Mailpit shows scores.
func round1(f float64) float64 { return math.Floor(f*10) / 10 }
