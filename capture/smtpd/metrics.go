package smtpd

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sessions   prometheus.Counter
	messages   prometheus.Counter
	bytes      prometheus.Counter
	rejections *prometheus.CounterVec
	faults     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sessions: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailsandbox_smtp_sessions_total", Help: "SMTP sessions opened."}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailsandbox_messages_received_total", Help: "Messages accepted over SMTP."}),
		bytes:    prometheus.NewCounter(prometheus.CounterOpts{Name: "mailsandbox_bytes_received_total", Help: "Bytes of messages accepted over SMTP."}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailsandbox_smtp_rejections_total", Help: "SMTP commands refused, by reply code."},
			[]string{"code"}),
		faults: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailsandbox_smtp_faults_total", Help: "SMTP events a fault rule changed."}),
	}
	if reg != nil {
		reg.MustRegister(m.sessions, m.messages, m.bytes, m.rejections, m.faults)
	}
	return m
}
