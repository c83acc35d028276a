package route

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/internal/promreg"
)

type metrics struct {
	group       *promreg.Group
	installed   prometheus.Gauge
	conflicts   prometheus.Gauge
	changes     *prometheus.CounterVec
	errors      *prometheus.CounterVec
	syncSeconds *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
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
	g, err := promreg.Register(reg, m.installed, m.conflicts, m.changes, m.errors, m.syncSeconds)
	if err != nil {
		return nil, fmt.Errorf("route metrics: %w", err)
	}
	m.group = g
	return m, nil
}

func (m *metrics) unregister() { m.group.Unregister() }

// Metrics are a table's collectors registered by an owner that outlives
// its tables (Options.Metrics).
type Metrics struct{ m *metrics }

// NewMetrics registers the table collectors on reg once.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Metrics{m: m}, nil
}

// Unregister removes the collectors from the registry they were
// registered on.
func (m *Metrics) Unregister() { m.m.unregister() }
