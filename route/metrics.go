package route

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	reg         prometheus.Registerer
	installed   prometheus.Gauge
	conflicts   prometheus.Gauge
	changes     *prometheus.CounterVec
	errors      *prometheus.CounterVec
	syncSeconds *prometheus.HistogramVec
	all         []prometheus.Collector
}

func newMetrics(_ *Table, reg prometheus.Registerer) *metrics {
	m := &metrics{
		reg: reg,
		installed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "intercloud_route_installed",
			Help: "Learned routes installed in the kernel.",
		}),
		conflicts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "intercloud_route_conflicts",
			Help: "Learned prefixes not installed because a connected, local or foreign route holds them.",
		}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intercloud_route_changes_total",
			Help: "Kernel route changes made, by operation.",
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intercloud_route_errors_total",
			Help: "Kernel route changes that failed, by operation.",
		}, []string{"op"}),
		syncSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "intercloud_route_sync_duration_seconds",
			Help:    "Time to bring the kernel table in line with the learned routes, by kind (incremental, reconcile).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"kind"}),
	}
	m.all = []prometheus.Collector{m.installed, m.conflicts, m.changes, m.errors, m.syncSeconds}
	if reg != nil {
		for _, c := range m.all {
			_ = reg.Register(c)
		}
	}
	return m
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.all {
		m.reg.Unregister(c)
	}
}
