package rest

import (
	"encoding/json"
	"fmt"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// SummaryPayload is the native webhook body (package webhook's
// Options.Payload): the message's summary exactly as listings, search and
// SSE show it.
func SummaryPayload(m store.Message) ([]byte, error) {
	b, err := json.Marshal(toSummary(m))
	if err != nil {
		return nil, fmt.Errorf("webhook payload of %s: %w", m.ID, err)
	}
	return b, nil
}
