package mailhog

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// FuzzToMessage: any bytes a sender can submit become MailHog's shape
// without a panic (MailHog itself panics on some), and encode as JSON.
func FuzzToMessage(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.eml")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\nno boundary here"))
	f.Add([]byte("Content-Type: multipart/mixed\r\n\r\n--x"))
	f.Add([]byte(" folded first\r\nA: b\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := toMessage(store.Message{ID: "id", Envelope: store.Envelope{From: "a:b@c", To: []string{"x@y"}}}, raw)
		if _, err := json.Marshal(m); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStartLimit: MailHog's paging: junk and non-positive values are the
// defaults, and limit is capped at 250, not refused.
func TestStartLimit(t *testing.T) {
	e := echo.New()
	for q, want := range map[string][2]int{
		"":                   {0, 50},
		"?limit=1000":        {0, 250},
		"?limit=250&start=3": {3, 250},
		"?limit=0&start=-1":  {0, 50},
		"?limit=x&start=y":   {0, 50},
		"?limit=7":           {0, 7},
	} {
		c := e.NewContext(httptest.NewRequest("GET", "/api/v2/messages"+q, nil), httptest.NewRecorder())
		if s, l := startLimit(c); s != want[0] || l != want[1] {
			t.Errorf("%q: start %d limit %d, want %v", q, s, l, want)
		}
	}
}
