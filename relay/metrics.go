package relay

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	attempts    *prometheus.CounterVec // per delivery attempt, by outcome
	recipients  *prometheus.CounterVec // per recipient result, by outcome
	connections *prometheus.CounterVec // by result
	bounces     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mailsandbox", Subsystem: "relay", Name: "attempts_total",
			Help: "Delivery attempts by outcome: delivered, deferred (retried later), failed (bounced or given up).",
		}, []string{"outcome"}),
		recipients: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mailsandbox", Subsystem: "relay", Name: "recipients_total",
			Help: "Recipient results by outcome: delivered, deferred, failed, expired.",
		}, []string{"outcome"}),
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "mailsandbox", Subsystem: "relay", Name: "connections_total",
			Help: "SMTP connections opened to destinations, by result: ok, error.",
		}, []string{"result"}),
		bounces: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "mailsandbox", Subsystem: "relay", Name: "bounces_total",
			Help: "Delivery status notifications filed into senders' mailboxes.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.attempts, err = register(reg, m.attempts)
	if err != nil {
		return nil, err
	}
	if m.recipients, err = register(reg, m.recipients); err != nil {
		return nil, err
	}
	if m.connections, err = register(reg, m.connections); err != nil {
		return nil, err
	}
	if m.bounces, err = register(reg, m.bounces); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name (two queues sharing one registry share counters).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(C); ok {
				return ex, nil
			}
		}
		return c, fmt.Errorf("relay: register metrics: %w", err)
	}
	return c, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
