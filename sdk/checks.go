package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// CheckOption narrows or tunes a message check.
type CheckOption func(url.Values)

// Platforms limits the HTML check to mail clients on these platforms
// ("ios", "android", "windows", "macos", "desktop-webmail", …).
func Platforms(p ...string) CheckOption {
	return func(q url.Values) { q["platform"] = append(q["platform"], p...) }
}

// Families limits the HTML check to these client families ("gmail",
// "outlook", "apple-mail", …).
func Families(f ...string) CheckOption {
	return func(q url.Values) { q["family"] = append(q["family"], f...) }
}

// FollowRedirects makes the link check follow redirects.
func FollowRedirects() CheckOption { return func(q url.Values) { q.Set("follow", "true") } }

// ClientIP is the sending IP that SPF is evaluated for (the sandbox does
// not keep the SMTP client's address); used by AuthCheck and BulkCheck.
func ClientIP(ip string) CheckOption { return func(q url.Values) { q.Set("ip", ip) } }

// CheckScore splits client versions into percentages.
type CheckScore struct {
	Supported   float64 `json:"supported"`
	Partial     float64 `json:"partial"`
	Unsupported float64 `json:"unsupported"`
	Unknown     float64 `json:"unknown"`
}

// ClientSupport is a mail client (family and platform, latest tested
// version) that does not fully support a feature.
type ClientSupport struct {
	Family       string   `json:"family"`
	FamilyName   string   `json:"family_name"`
	Platform     string   `json:"platform"`
	PlatformName string   `json:"platform_name"`
	Version      string   `json:"version"`
	Support      string   `json:"support"` // "no", "partial" or "unknown"
	Notes        []string `json:"notes"`
}

func (c ClientSupport) String() string {
	s := fmt.Sprintf("%s %s (%s): %s", c.FamilyName, c.PlatformName, c.Version, c.Support)
	if len(c.Notes) > 0 {
		s += " — " + strings.Join(c.Notes, " ")
	}
	return s
}

// HTMLFinding is an HTML or CSS feature the message uses that some clients
// do not or only partly support.
type HTMLFinding struct {
	Slug        string            `json:"slug"` // caniemail feature, e.g. "css-display-flex"
	Title       string            `json:"title"`
	Category    string            `json:"category"` // html, css, image, others
	Description string            `json:"description"`
	URL         string            `json:"url"`
	Found       int               `json:"found"`
	Score       CheckScore        `json:"score"`
	Clients     []ClientSupport   `json:"clients"`
	NotesByNum  map[string]string `json:"notes_by_num"`
}

// FamilyScore is one client family's support of the features found.
type FamilyScore struct {
	Family string `json:"family"`
	Name   string `json:"name"`
	CheckScore
}

// HTMLCheck is the HTML/CSS compatibility check's result.
type HTMLCheck struct {
	HasHTML    bool                `json:"has_html"`
	Nodes      int                 `json:"nodes"`
	Tests      int                 `json:"tests"`
	Score      CheckScore          `json:"score"`
	Families   []FamilyScore       `json:"families"`
	Findings   []HTMLFinding       `json:"findings"`
	Platforms  map[string][]string `json:"platforms"`
	Truncated  bool                `json:"truncated"`
	DataSource string              `json:"data_source"`
}

// Finding returns the finding for a caniemail slug, or nil.
func (h *HTMLCheck) Finding(slug string) *HTMLFinding {
	for i := range h.Findings {
		if h.Findings[i].Slug == slug {
			return &h.Findings[i]
		}
	}
	return nil
}

// RequireSupported fails when any feature the HTML uses is unsupported
// (not merely partly) by one of the given client families (all families
// when none are given); the error lists each feature with those clients.
func (h *HTMLCheck) RequireSupported(families ...string) error {
	var problems []string
	for _, f := range h.Findings {
		var bad []string
		for _, c := range f.Clients {
			if c.Support != "no" || len(families) > 0 && !containsFold(families, c.Family) {
				continue
			}
			bad = append(bad, c.String())
		}
		if len(bad) > 0 {
			problems = append(problems, fmt.Sprintf("%s (%s, used %d×): %s", f.Title, f.Slug, f.Found, strings.Join(bad, "; ")))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("sdk: HTML uses %d feature(s) some clients do not support:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	return nil
}

// RequireScore fails when the overall supported score is below min
// (0–100); the error names the features that weigh most.
func (h *HTMLCheck) RequireScore(min float64) error {
	if h.Score.Supported >= min {
		return nil
	}
	var worst []string
	for i, f := range h.Findings {
		if i == 5 {
			break
		}
		worst = append(worst, fmt.Sprintf("%s (%.0f%% supported, used %d×)", f.Slug, f.Score.Supported, f.Found))
	}
	return fmt.Errorf("sdk: HTML support score %.1f%% is below %.1f%%; worst: %s", h.Score.Supported, min, listOrNone(worst))
}

// LinkStatus is one URL's check.
type LinkStatus struct {
	URL        string `json:"url"`
	Kind       string `json:"kind"` // link, image, stylesheet
	StatusCode int    `json:"status_code"`
	Status     string `json:"status"`
	Location   string `json:"location"`
	Method     string `json:"method"`
	OK         bool   `json:"ok"`
	Refused    bool   `json:"refused"`
	Cached     bool   `json:"cached"`
}

// LinkCheck is the link check's result.
type LinkCheck struct {
	Errors int          `json:"errors"`
	Links  []LinkStatus `json:"links"`
}

// Broken lists the links that failed.
func (l *LinkCheck) Broken() []LinkStatus {
	var out []LinkStatus
	for _, x := range l.Links {
		if !x.OK {
			out = append(out, x)
		}
	}
	return out
}

// Err is nil when every link answered below 400; otherwise it lists the
// broken ones.
func (l *LinkCheck) Err() error {
	b := l.Broken()
	if len(b) == 0 {
		return nil
	}
	var lines []string
	for _, x := range b {
		code := "no answer"
		if x.StatusCode != 0 {
			code = fmt.Sprint(x.StatusCode)
		}
		lines = append(lines, fmt.Sprintf("%s %s: %s (%s)", x.Kind, x.URL, code, x.Status))
	}
	return fmt.Errorf("sdk: %d of %d link(s) broken:\n  %s", len(b), len(l.Links), strings.Join(lines, "\n  "))
}

// SpamRule is a SpamAssassin rule the message hit.
type SpamRule struct {
	Name        string  `json:"name"`
	Score       float64 `json:"score"`
	Description string  `json:"description"`
}

// SpamCheck is SpamAssassin's verdict; Error is set when spamd could not
// be asked.
type SpamCheck struct {
	Score     float64    `json:"score"`
	Threshold float64    `json:"threshold"`
	IsSpam    bool       `json:"is_spam"`
	Rules     []SpamRule `json:"rules"`
	Error     string     `json:"error"`
}

// RequireBelow fails when the check could not run or the score is max or
// more; the error lists the rules hit, highest first.
func (s *SpamCheck) RequireBelow(max float64) error {
	if s.Error != "" {
		return fmt.Errorf("sdk: spam check did not run: %s", s.Error)
	}
	if s.Score < max {
		return nil
	}
	rules := append([]SpamRule(nil), s.Rules...)
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].Score > rules[j].Score })
	var lines []string
	for _, r := range rules {
		lines = append(lines, fmt.Sprintf("%5.1f %s: %s", r.Score, r.Name, r.Description))
	}
	return fmt.Errorf("sdk: spam score %.1f is not below %.1f (spam threshold %.1f); rules:\n  %s", s.Score, max, s.Threshold, strings.Join(lines, "\n  "))
}

// DKIMResult is one DKIM signature's verification.
type DKIMResult struct {
	Domain     string   `json:"domain"`
	Selector   string   `json:"selector"`
	Identifier string   `json:"identifier"`
	Result     string   `json:"result"` // pass, fail, permerror, temperror, none
	Headers    []string `json:"headers"`
	Error      string   `json:"error"`
}

// SPFResult is the SPF check of the envelope sender.
type SPFResult struct {
	Domain string `json:"domain"`
	IP     string `json:"ip"`
	Result string `json:"result"`
	Record string `json:"record"`
	Reason string `json:"reason"`
}

// DMARCResult is the From domain's DMARC evaluation.
type DMARCResult struct {
	Domain      string `json:"domain"`
	Result      string `json:"result"`
	Policy      string `json:"policy"`
	Record      string `json:"record"`
	DKIMAligned bool   `json:"dkim_aligned"`
	SPFAligned  bool   `json:"spf_aligned"`
	Reason      string `json:"reason"`
}

// AuthCheck is the authentication check's result.
type AuthCheck struct {
	FromDomain string       `json:"from_domain"`
	DKIM       []DKIMResult `json:"dkim"`
	SPF        SPFResult    `json:"spf"`
	DMARC      DMARCResult  `json:"dmarc"`
}

// RequireDKIMPass fails unless a signature by domain (any domain when "")
// verifies; the error lists every signature's result.
func (a *AuthCheck) RequireDKIMPass(domain string) error {
	var seen []string
	for _, d := range a.DKIM {
		if d.Result == "pass" && (domain == "" || strings.EqualFold(d.Domain, domain)) {
			return nil
		}
		s := fmt.Sprintf("d=%s s=%s: %s", d.Domain, d.Selector, d.Result)
		if d.Error != "" {
			s += " (" + d.Error + ")"
		}
		seen = append(seen, s)
	}
	want := "a valid DKIM signature"
	if domain != "" {
		want += " by " + domain
	}
	return fmt.Errorf("sdk: no %s; signatures: %s", want, listOrNone(seen))
}

// RequireDMARCPass fails unless DMARC passes, saying why not.
func (a *AuthCheck) RequireDMARCPass() error {
	if a.DMARC.Result == "pass" {
		return nil
	}
	return fmt.Errorf("sdk: DMARC for %s is %s: %s (SPF %s: %s)", a.DMARC.Domain, a.DMARC.Result, a.DMARC.Reason, a.SPF.Result, a.SPF.Reason)
}

// BulkRule is one bulk-sender requirement's outcome.
type BulkRule struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Pass   bool   `json:"pass"`
	Reason string `json:"reason"`
}

// BulkCheck is the bulk-sender rules' result, with the authentication
// result they used.
type BulkCheck struct {
	Pass  bool       `json:"pass"`
	Rules []BulkRule `json:"rules"`
	Auth  *AuthCheck `json:"auth"`
}

// Err is nil when every rule passes; otherwise it lists the failures with
// their reasons.
func (b *BulkCheck) Err() error {
	var lines []string
	for _, r := range b.Rules {
		if !r.Pass {
			lines = append(lines, fmt.Sprintf("%s: %s", r.Title, r.Reason))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return fmt.Errorf("sdk: %d bulk-sender rule(s) fail:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// HTMLCheck runs the HTML/CSS compatibility check on message id.
func (c *Client) HTMLCheck(ctx context.Context, id string, opts ...CheckOption) (*HTMLCheck, error) {
	var out HTMLCheck
	return &out, c.check(ctx, id, "html", opts, &out)
}

// LinkCheck checks the message's links, images and stylesheets.
func (c *Client) LinkCheck(ctx context.Context, id string, opts ...CheckOption) (*LinkCheck, error) {
	var out LinkCheck
	return &out, c.check(ctx, id, "links", opts, &out)
}

// SpamCheck asks SpamAssassin (the sandbox needs --spamassassin).
func (c *Client) SpamCheck(ctx context.Context, id string) (*SpamCheck, error) {
	var out SpamCheck
	return &out, c.check(ctx, id, "spam", nil, &out)
}

// AuthCheck verifies DKIM, SPF (with [ClientIP]) and DMARC.
func (c *Client) AuthCheck(ctx context.Context, id string, opts ...CheckOption) (*AuthCheck, error) {
	var out AuthCheck
	return &out, c.check(ctx, id, "auth", opts, &out)
}

// BulkCheck checks Gmail's and Yahoo's bulk-sender rules.
func (c *Client) BulkCheck(ctx context.Context, id string, opts ...CheckOption) (*BulkCheck, error) {
	var out BulkCheck
	return &out, c.check(ctx, id, "bulk", opts, &out)
}

func (c *Client) check(ctx context.Context, id, name string, opts []CheckOption, out any) error {
	q := url.Values{}
	for _, o := range opts {
		o(q)
	}
	return c.doJSON(ctx, request{
		method: http.MethodGet, path: "/messages/" + esc(id) + "/checks/" + name, query: q,
		context: fmt.Sprintf("%s check of message %q", name, id),
	}, out)
}

// HTMLCheck runs the HTML/CSS compatibility check on this message.
func (m *Message) HTMLCheck(ctx context.Context, opts ...CheckOption) (*HTMLCheck, error) {
	if m.client == nil {
		return nil, errNoClient
	}
	return m.client.HTMLCheck(ctx, m.ID, opts...)
}

// LinkCheck checks this message's links, images and stylesheets.
func (m *Message) LinkCheck(ctx context.Context, opts ...CheckOption) (*LinkCheck, error) {
	if m.client == nil {
		return nil, errNoClient
	}
	return m.client.LinkCheck(ctx, m.ID, opts...)
}

// SpamCheck asks SpamAssassin about this message.
func (m *Message) SpamCheck(ctx context.Context) (*SpamCheck, error) {
	if m.client == nil {
		return nil, errNoClient
	}
	return m.client.SpamCheck(ctx, m.ID)
}

// AuthCheck verifies this message's DKIM signatures, SPF and DMARC.
func (m *Message) AuthCheck(ctx context.Context, opts ...CheckOption) (*AuthCheck, error) {
	if m.client == nil {
		return nil, errNoClient
	}
	return m.client.AuthCheck(ctx, m.ID, opts...)
}

// BulkCheck checks this message against the bulk-sender rules.
func (m *Message) BulkCheck(ctx context.Context, opts ...CheckOption) (*BulkCheck, error) {
	if m.client == nil {
		return nil, errNoClient
	}
	return m.client.BulkCheck(ctx, m.ID, opts...)
}

// errNoClient: a check needs the Client the message came from.
var errNoClient = errors.New("sdk: check: message was not fetched through a Client")

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
