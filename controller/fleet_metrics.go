package controller

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/store"
)

// fleetTimeout bounds the store reads of one scrape, well inside
// Prometheus's default 10 s scrape timeout.
const fleetTimeout = 3 * time.Second

// fleetCollector reads, at scrape time, what only the controller sees
// whole: whether the store has a quorum and which of the site's nodes
// hold a lease. Reading at scrape time keeps no second copy of state to
// go stale, and a scrape costs one ping and one read of the node keys.
type fleetCollector struct {
	c            *Controller
	quorum, live *prometheus.Desc
}

func newFleetCollector(c *Controller) *fleetCollector {
	return &fleetCollector{c: c,
		quorum: prometheus.NewDesc("intercloud_controller_store_quorum",
			"1 when the store answers a linearizable read (its etcd cluster has a leader), 0 when it has lost its quorum or no member answers.", nil, nil),
		live: prometheus.NewDesc("intercloud_controller_node_live",
			"1 when the site's node holds its lease in the store (it runs and reaches the store), 0 when it does not.", []string{"node", "cloud"}, nil),
	}
}

func (f *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- f.quorum
	ch <- f.live
}

func (f *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(store.RequireLeader(context.Background()), fleetTimeout)
	defer cancel()
	s := f.c.store
	if err := s.Ping(ctx); err != nil {
		ch <- prometheus.MustNewConstMetric(f.quorum, prometheus.GaugeValue, 0)
		return // without a quorum, liveness cannot be read either
	}
	ch <- prometheus.MustNewConstMetric(f.quorum, prometheus.GaugeValue, 1)
	ptr, _, err := s.Pointer(ctx)
	if err != nil || ptr.Revision == 0 {
		return
	}
	_, nodes, err := f.c.desired(ctx, ptr)
	if err != nil {
		return
	}
	regs, err := s.Nodes(ctx)
	if err != nil {
		return
	}
	for _, n := range nodes {
		v := 0.0
		if _, ok := regs[n.Name]; ok {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(f.live, prometheus.GaugeValue, v, n.Name, n.Cloud)
	}
}
