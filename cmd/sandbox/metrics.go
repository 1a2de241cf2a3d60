package sandbox

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsandbox/mailsandbox/capture/store"
)

// storeCollector reports the store's size at each scrape.
type storeCollector struct {
	st                                 *store.Store
	messages, bytes, mailboxes, queued *prometheus.Desc
}

func newStoreCollector(st *store.Store) *storeCollector {
	return &storeCollector{
		st:        st,
		messages:  prometheus.NewDesc("mailsandbox_store_messages", "Messages in at least one mailbox.", nil, nil),
		bytes:     prometheus.NewDesc("mailsandbox_store_bytes", "Raw size of the stored messages.", nil, nil),
		mailboxes: prometheus.NewDesc("mailsandbox_store_mailboxes", "Mailboxes in the store.", nil, nil),
		queued:    prometheus.NewDesc("mailsandbox_relay_queue_pending", "Relay deliveries queued or in flight.", nil, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.messages
	ch <- c.bytes
	ch <- c.mailboxes
	ch <- c.queued
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.st.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.messages, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.messages, prometheus.GaugeValue, float64(s.Messages))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(c.mailboxes, prometheus.GaugeValue, float64(s.Mailboxes))
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(s.Deliveries))
}
