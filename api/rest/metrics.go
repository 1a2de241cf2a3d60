package rest

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the REST server's collectors.
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	waits      *prometheus.CounterVec
	waiting    prometheus.Gauge
	sseClients prometheus.Gauge
	submitted  *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return &metrics{
		reg: reg,
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailsandbox_http_requests_total",
			Help: "HTTP requests answered, by method, route and status.",
		}, []string{"method", "route", "code"})),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mailsandbox_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests (long polls and event streams included), by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 300},
		}, []string{"method", "route"})),
		waits: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailsandbox_wait_requests_total",
			Help: "GET /messages/wait requests, by outcome (found, timeout, canceled, error).",
		}, []string{"outcome"})),
		waiting: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailsandbox_wait_requests_pending",
			Help: "GET /messages/wait requests currently waiting.",
		})),
		sseClients: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mailsandbox_sse_clients",
			Help: "Open GET /events streams.",
		})),
		submitted: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailsandbox_http_submitted_messages_total",
			Help: "Messages submitted with POST /messages, by format (raw, json).",
		}, []string{"format"})),
	}
}

// register adds c to reg, or returns the equal collector a previous server
// on the same registry already registered.
func register[T prometheus.Collector](reg *prometheus.Registry, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(T); ok {
				return ex
			}
		}
		panic("rest: register metrics: " + err.Error())
	}
	return c
}
