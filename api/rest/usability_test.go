package rest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// A wait's 408 says plainly what it did not find.
func TestWaitTimeoutMessage(t *testing.T) {
	e := newTestServer(t)
	e.ingest("a@example.com", []string{"bob@example.com"}, "Subject: x\r\n", "hi")
	for q, want := range map[string]string{
		"to=nobody@&timeout=20ms":                      "no matching message within 20ms",
		"mailbox=bob@example.com&count=3&timeout=20ms": "fewer than 3 matching messages within 20ms (1 found)",
	} {
		r := e.expect(http.MethodGet, "/api/v1/messages/wait?"+q, nil, "", 408)
		var eb errorBody
		json.Unmarshal(r.body, &eb)
		if eb.Error != want {
			t.Errorf("%s: %q, want %q", q, eb.Error, want)
		}
	}
}

// An attachment submitted as JSON without a content_type gets the type its
// file name implies, as mail clients do.
func TestSubmitJSONAttachmentTypeFromName(t *testing.T) {
	e := newTestServer(t)
	r := e.expect(http.MethodPost, "/api/v1/messages", []byte(`{"to":"a@example.com","text":"t","attachments":[`+
		`{"filename":"report.pdf","content_base64":"JVBERg=="},{"filename":"notes.txt","content_base64":"aGk="},`+
		`{"filename":"blob","content_base64":"AAE="}]}`), "application/json", 201)
	var c struct{ ID string }
	json.Unmarshal(r.body, &c)
	var m messageJSON
	e.getJSON("/messages/"+c.ID, "Message", &m)
	var got []string
	for _, a := range m.Attachments {
		got = append(got, a.ContentType)
	}
	if strings.Join(got, " ") != "application/pdf text/plain application/octet-stream" {
		t.Errorf("content types %v", got)
	}
}
