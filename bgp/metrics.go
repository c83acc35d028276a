package bgp

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/internal/promreg"
)

type metrics struct {
	group       *promreg.Group
	s           *Server
	established *prometheus.CounterVec
	maxPrefix   *prometheus.CounterVec
	applyErrors prometheus.Counter
	up          *prometheus.Desc
	prefixes    *prometheus.Desc

	// The neighbor table walks the RIB (accepted counts): scrapes reuse it
	// for a few seconds.
	cacheMu  sync.Mutex
	cached   []NeighborStatus
	cachedAt time.Time
}

func newMetrics(s *Server, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		s: s,
		established: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intercloud_bgp_sessions_established_total",
			Help: "Times a session with the neighbor reached Established.",
		}, []string{"neighbor"}),
		maxPrefix: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intercloud_bgp_max_prefix_exceeded_total",
			Help: "Times the neighbor sent more prefixes than its max-prefix and its session was shut down.",
		}, []string{"neighbor"}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intercloud_bgp_apply_errors_total",
			Help: "Config applications that returned an error.",
		}),
		up: prometheus.NewDesc("intercloud_bgp_neighbor_up",
			"1 if the session with the neighbor is established.", []string{"neighbor", "kind"}, nil),
		prefixes: prometheus.NewDesc("intercloud_bgp_neighbor_prefixes",
			"Prefixes per neighbor: received (before the import policy), accepted, advertised.",
			[]string{"neighbor", "kind", "direction"}, nil),
	}
	g, err := promreg.Register(reg, m.established, m.maxPrefix, m.applyErrors, m)
	if err != nil {
		return nil, fmt.Errorf("bgp metrics: %w", err)
	}
	m.group = g
	return m, nil
}

func (m *metrics) forget(neighbor string) {
	m.established.DeleteLabelValues(neighbor)
	m.maxPrefix.DeleteLabelValues(neighbor)
}

func (m *metrics) unregister() { m.group.Unregister() }

// Describe and Collect read session state at scrape time.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.up
	ch <- m.prefixes
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.cacheMu.Lock()
	ns := m.cached
	if time.Since(m.cachedAt) > 5*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fresh, err := m.s.Neighbors(ctx)
		cancel()
		if err == nil {
			ns, m.cached, m.cachedAt = fresh, fresh, time.Now()
		}
	}
	m.cacheMu.Unlock()
	for _, n := range ns {
		up := 0.0
		if n.Established() {
			up = 1
		}
		k := string(n.Kind)
		ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, up, n.Name, k)
		ch <- prometheus.MustNewConstMetric(m.prefixes, prometheus.GaugeValue, float64(n.Received), n.Name, k, "received")
		ch <- prometheus.MustNewConstMetric(m.prefixes, prometheus.GaugeValue, float64(n.Accepted), n.Name, k, "accepted")
		ch <- prometheus.MustNewConstMetric(m.prefixes, prometheus.GaugeValue, float64(n.Advertised), n.Name, k, "advertised")
	}
}
