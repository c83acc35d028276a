package vpn

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector reads the Manager's last poll at scrape time, so the metrics
// and `intercloud vpn show` never disagree.
type collector struct {
	m                                *Manager
	up, rx, tx, handshake, fallbacks *prometheus.Desc
}

func newCollector(m *Manager) *collector {
	labels := []string{"interface", "peer"}
	return &collector{
		m:         m,
		up:        prometheus.NewDesc("intercloud_vpn_peer_up", "1 when the peer's path carries traffic (fresh handshake, packets arriving).", labels, nil),
		rx:        prometheus.NewDesc("intercloud_vpn_peer_receive_bytes_total", "Bytes received from the peer.", labels, nil),
		tx:        prometheus.NewDesc("intercloud_vpn_peer_transmit_bytes_total", "Bytes sent to the peer.", labels, nil),
		handshake: prometheus.NewDesc("intercloud_vpn_peer_last_handshake_timestamp_seconds", "Unix time of the peer's latest handshake (0: never).", labels, nil),
		fallbacks: prometheus.NewDesc("intercloud_vpn_gso_fallbacks_total", "Batched UDP sends refused for their size and resent one datagram at a time.", []string{"interface"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.rx, c.tx, c.handshake, c.fallbacks} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	type row struct {
		st        PeerState
		fallbacks uint64
	}
	c.m.mu.Lock()
	rows := make([]row, 0, len(c.m.tunnels))
	for name, t := range c.m.tunnels {
		st, ok := c.m.states[name]
		if !ok {
			st = PeerState{Interface: name, Node: t.cfg.PeerNode}
		}
		rows = append(rows, row{st, t.bind.fallbacks.Load()})
	}
	c.m.mu.Unlock()
	for _, r := range rows {
		up := 0.0
		if r.st.Up {
			up = 1
		}
		hs := 0.0
		if !r.st.LastHandshake.IsZero() {
			hs = float64(r.st.LastHandshake.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, r.st.Interface, r.st.Node)
		ch <- prometheus.MustNewConstMetric(c.rx, prometheus.CounterValue, float64(r.st.RxBytes), r.st.Interface, r.st.Node)
		ch <- prometheus.MustNewConstMetric(c.tx, prometheus.CounterValue, float64(r.st.TxBytes), r.st.Interface, r.st.Node)
		ch <- prometheus.MustNewConstMetric(c.handshake, prometheus.GaugeValue, hs, r.st.Interface, r.st.Node)
		ch <- prometheus.MustNewConstMetric(c.fallbacks, prometheus.CounterValue, float64(r.fallbacks), r.st.Interface)
	}
}
