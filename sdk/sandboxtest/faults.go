package sandboxtest

import (
	"encoding/json"

	"github.com/mailsandbox/mailsandbox/capture/faults"
	"github.com/mailsandbox/mailsandbox/cmd/sandbox"
	"github.com/mailsandbox/mailsandbox/sdk"
)

// WithFault starts the sandbox with a fault rule in force, as --fault
// does; a bad rule fails start-up naming the field. Rules can also be
// added and removed while the sandbox runs: Client().AddFault.
func WithFault(f sdk.Fault) Option {
	return WithConfig(func(c *sandbox.Config) {
		// The SDK's rule and the engine's share their JSON shape.
		var r faults.Rule
		b, err := json.Marshal(f)
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err != nil {
			r = faults.Rule{Stage: "invalid: " + faults.Stage(err.Error())}
		}
		r.ID, r.Hits, r.Origin = "", 0, ""
		c.Faults.RuleValues = append(c.Faults.RuleValues, r)
	})
}
