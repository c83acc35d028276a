package controller

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	revision     prometheus.Gauge
	applies      prometheus.Counter
	autoHeals    prometheus.Counter
	originHealth *prometheus.GaugeVec
	probes       *prometheus.CounterVec
	// statusRegistrations counts node registrations read from the store
	// to answer status requests: a page must read about its own size.
	statusRegistrations prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		revision: prometheus.NewGauge(prometheus.GaugeOpts{Name: "intercloud_controller_revision",
			Help: "Current desired-state revision."}),
		applies: prometheus.NewCounter(prometheus.CounterOpts{Name: "intercloud_controller_revisions_committed_total",
			Help: "Revisions committed by this controller."}),
		autoHeals: prometheus.NewCounter(prometheus.CounterOpts{Name: "intercloud_controller_auto_heals_total",
			Help: "Origin-group switches made without an operator."}),
		originHealth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "intercloud_controller_target_healthy",
			Help: "1 when a health-checked target (origin or edge) is healthy."}, []string{"distribution", "target"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "intercloud_controller_probes_total",
			Help: "Health probes by result."}, []string{"result"}),
		statusRegistrations: prometheus.NewCounter(prometheus.CounterOpts{Name: "intercloud_controller_status_registrations_read_total",
			Help: "Node registrations read from the store to answer status requests."}),
	}
	if reg != nil {
		reg.MustRegister(m.revision, m.applies, m.autoHeals, m.originHealth, m.probes, m.statusRegistrations)
	}
	return m
}
