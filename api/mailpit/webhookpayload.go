package mailpit

import (
	"encoding/json"
	"fmt"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// SummaryPayload is the webhook body of --webhook-format mailpit (package
// webhook's Options.Payload): the message's MessageSummary, as Mailpit's
// own webhook posts it.
func SummaryPayload(m store.Message) ([]byte, error) {
	b, err := json.Marshal(toSummary(m))
	if err != nil {
		return nil, fmt.Errorf("mailpit webhook payload of %s: %w", m.ID, err)
	}
	return b, nil
}
