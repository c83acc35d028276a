package agent

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// nodeMetrics are the agent's own series: what the node runs against what
// the store wants it to run, and whether it reaches the store (drift has
// its own, drift.go). The loop sets them in publish; gauges need no lock.
type nodeMetrics struct {
	revision, desired, storeUp prometheus.Gauge
	info                       *prometheus.GaugeVec
	infoKey                    string
}

func newNodeMetrics(reg prometheus.Registerer) *nodeMetrics {
	m := &nodeMetrics{
		revision: prometheus.NewGauge(prometheus.GaugeOpts{Name: "intercloud_node_revision",
			Help: "Revision the node's roles run (0: none yet)."}),
		desired: prometheus.NewGauge(prometheus.GaugeOpts{Name: "intercloud_node_desired_revision",
			Help: "Revision the store wants this node to run, its rollout stage considered (0: not known yet)."}),
		storeUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "intercloud_node_store_reachable",
			Help: "1 when the node reaches the store, 0 while it serves its last known good snapshot."}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "intercloud_node_info",
			Help: "Always 1: the node's name and cloud, to join other series on instance."}, []string{"node", "cloud"}),
	}
	reg.MustRegister(m.revision, m.desired, m.storeUp, m.info)
	return m
}

// observe sets the series from the loop's state.
func (a *Agent) observe() {
	m := a.metrics
	if a.applied != nil {
		m.revision.Set(float64(a.applied.Revision))
		cloud := ""
		if n := a.applied.Site.Node(a.opt.Node); n != nil {
			cloud = n.Cloud
		}
		if cloud != m.infoKey || m.infoKey == "" {
			m.info.Reset()
			m.info.WithLabelValues(a.opt.Node, cloud).Set(1)
			m.infoKey = cloud
		}
	}
	m.desired.Set(float64(a.desired))
	up := 1.0
	if a.storeErr != nil {
		up = 0
	}
	m.storeUp.Set(up)
}

// Serving is closed once the node serves: a revision applied (from the
// store or the last known good snapshot) and its admin address bound.
func (a *Agent) Serving() <-chan struct{} { return a.serving }

// markServing closes Serving the first time the loop's state says so.
func (a *Agent) markServing() {
	if a.applied == nil || a.servingDone {
		return
	}
	if !a.admin.Started() && a.adminAddr(a.applied) != "" {
		return
	}
	a.servingDone = true
	close(a.serving)
}

// Alive answers once the loop has taken an event sent now: the proof a
// watchdog wants that the node's work goes on, not only its process.
func (a *Agent) Alive(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case a.events <- pingEvent{done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
