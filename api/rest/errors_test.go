package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// Error messages speak about the request, not about Go types or package
// names, and a JSON body with trailing data is refused.
func TestErrorMessagesReadable(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: x\r\n", "hi")
	tests := []struct {
		method, path, ct, body string
		status                 int
		want                   string
	}{
		{"GET", "/api/v1/messages/NOPE", "", "", 404, "message NOPE: not found"},
		{"DELETE", "/api/v1/messages/NOPE", "", "", 404, "message NOPE: not found"},
		{"PATCH", "/api/v1/messages/NOPE", "application/json", `{"seen":true}`, 404, "message NOPE: not found"},
		{"PATCH", "/api/v1/messages/" + id + "?mailbox=carol@example.com", "application/json", `{"seen":true}`, 404,
			"message " + id + " in mailbox carol@example.com: not found"},
		{"DELETE", "/api/v1/relay/queue/7", "", "", 404, "delivery 7: not found"},
		{"POST", "/api/v1/relay/queue/7/retry", "", "", 404, "delivery 7: not found"},
		{"PATCH", "/api/v1/messages/" + id, "application/json", `[]`, 400, "invalid JSON body: want an object"},
		{"PATCH", "/api/v1/messages/" + id, "application/json", `{"seen":"yes"}`, 400, `invalid JSON body: "seen" must be a boolean`},
		{"PATCH", "/api/v1/messages/" + id, "application/json", `{"seen":true} {"seen":false}`, 400, "invalid JSON body: unexpected data after the JSON value"},
		{"POST", "/api/v1/messages", "application/json", `{"to":["a@b.c"],"from":["a@b.c"]}`, 400, `invalid JSON body: "from" must be a string`},
		{"POST", "/api/v1/messages", "application/json", `{"to":["a@b.c"],"subject":5}`, 400, `invalid JSON body: "subject" must be a string`},
		{"POST", "/api/v1/messages", "application/json", `{"to":["a@b.c"],"attachments":"x"}`, 400, `invalid JSON body: "attachments" must be an array`},
		{"POST", "/api/v1/messages", "application/json", `{"to":["a@b.c"],"attachments":[{"filename":1}]}`, 400, `invalid JSON body: "attachments.filename" must be a string`},
		{"POST", "/api/v1/messages", "application/json", `"str"`, 400, "invalid JSON body: want an object"},
		{"POST", "/api/v1/messages", "application/json", `{"to":["a@b.c"]} {"to":["d@e.f"]}`, 400, "invalid JSON body: unexpected data after the JSON value"},
		{"POST", "/api/v1/messages/" + id + "/release", "application/json", `{"to":5}`, 400, `invalid JSON body: "to" must be a string or an array of strings`},
		{"POST", "/api/v1/messages", "application/json", `{"to":{"a":1}}`, 400, `invalid JSON body: "to" must be a string or an array of strings`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path+" "+tt.body, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			r := e.with(t).expect(tt.method, tt.path, body, tt.ct, tt.status)
			var eb errorBody
			if err := json.Unmarshal(r.body, &eb); err != nil {
				t.Fatal(err)
			}
			if eb.Error != tt.want {
				t.Errorf("error %q, want %q", eb.Error, tt.want)
			}
		})
	}
	// No stray submission from the refused bodies above.
	var l summaryList
	e.getJSON("/messages/search", "MessageList", &l)
	if l.Total != 1 {
		t.Errorf("%d messages stored, want 1", l.Total)
	}
}

// refusingRelay fails every release the way relay.Relay words it.
type refusingRelay struct{}

func (refusingRelay) Release(ctx context.Context, id string, to []string) error {
	return fmt.Errorf("release %s: %s: relay: no route to recipient: %w", id, to[0], store.ErrInvalid)
}

// The relay's refusal already names the message: the answer says it once.
func TestReleaseErrorSaidOnce(t *testing.T) {
	t.Parallel()
	e := newTestServer(t, func(o *Options) { o.Relay = refusingRelay{} })
	id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: x\r\n", "hi")
	r := e.expect(http.MethodPost, "/api/v1/messages/"+id+"/release", []byte(`{"to":"x@nowhere.example"}`), "application/json", 400)
	var eb errorBody
	json.Unmarshal(r.body, &eb)
	if want := "release " + id + ": x@nowhere.example: relay: no route to recipient: invalid argument"; eb.Error != want {
		t.Errorf("error %q, want %q", eb.Error, want)
	}
}

// Retrying a delivered item conflicts with its state (409), it is not a
// malformed request (400).
func TestRetryDeliveredConflicts(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	ctx := context.Background()
	id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: x\r\n", "hi")
	dids, err := e.st.Enqueue(ctx, id, []store.NewDelivery{{Recipients: []string{"x@real.example"}, Destination: "real.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.ClaimDue(ctx, time.Now().Add(time.Hour), "test", time.Minute, 10); err != nil {
		t.Fatal(err)
	}
	if err := e.st.RecordAttempt(ctx, dids[0], "test", store.Attempt{Status: store.DeliveryDelivered}); err != nil {
		t.Fatal(err)
	}
	r := e.expect(http.MethodPost, fmt.Sprintf("/api/v1/relay/queue/%d/retry", dids[0]), nil, "", 409)
	var eb errorBody
	json.Unmarshal(r.body, &eb)
	if want := fmt.Sprintf("delivery %d: already delivered", dids[0]); eb.Error != want {
		t.Errorf("error %q, want %q", eb.Error, want)
	}
}

// A JSON request body over its 1 MiB cap is a 413 that speaks of the
// request, not of a message.
func TestOversizedJSONBody(t *testing.T) {
	t.Parallel()
	e := newTestServer(t)
	id := e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: x\r\n", "hi")
	body := []byte(`{"seen":true,"pad":"` + strings.Repeat("a", 2<<20) + `"}`)
	r := e.expect(http.MethodPatch, "/api/v1/messages/"+id, body, "application/json", 413)
	var eb errorBody
	json.Unmarshal(r.body, &eb)
	if eb.Error != "request body larger than 1048576 bytes" {
		t.Errorf("error %q", eb.Error)
	}
}
