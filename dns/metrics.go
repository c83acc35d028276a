package dns

import (
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/intercloud/intercloud/internal/promreg"
	"github.com/intercloud/intercloud/status"
)

// Query types and rcodes get fixed, small label sets; no qname label, so
// the series count cannot grow with what clients send.
var (
	qtypeNames = map[uint16]string{typeA: "A", typeAAAA: "AAAA", typeNS: "NS", typeSOA: "SOA",
		typeCNAME: "CNAME", typeANY: "ANY", 15: "MX", 16: "TXT", 33: "SRV", 43: "DS",
		48: "DNSKEY", 65: "HTTPS", 64: "SVCB", 257: "CAA", 12: "PTR"}
	rcodeNames = [...]string{rcodeSuccess: "NOERROR", rcodeFormErr: "FORMERR", rcodeServFail: "SERVFAIL",
		rcodeNXDomain: "NXDOMAIN", rcodeNotImp: "NOTIMP", rcodeRefused: "REFUSED"}
)

const (
	nTypes  = 16 // index 15 is "other"
	nRcodes = 7  // index 6 is BADVERS
)

type metrics struct {
	group    *promreg.Group
	queries  [2][nTypes][nRcodes]prometheus.Counter // [tcp][type][rcode]
	typeIdx  [300]uint8                             // qtype → index (0xFF: other)
	dropped  prometheus.Counter
	rrlSlip  prometheus.Counter
	rrlDrop  prometheus.Counter
	latency  prometheus.Histogram
	answers  *prometheus.CounterVec
	failOpen prometheus.Gauge
	revision prometheus.Gauge
	edges    *prometheus.GaugeVec

	mu   sync.Mutex
	locs map[string]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{locs: map[string]prometheus.Counter{}}
	q := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intercloud_dns_queries_total",
		Help: "DNS queries answered, by transport, query type and response code.",
	}, []string{"proto", "type", "rcode"})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "intercloud_dns_dropped_total",
		Help: "Packets dropped without an answer (too short to answer, or responses).",
	})
	rrl := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intercloud_dns_rrl_total",
		Help: "UDP responses held back by response rate limiting, by action (slip: sent truncated, drop).",
	}, []string{"action"})
	m.rrlSlip, m.rrlDrop = rrl.WithLabelValues("slip"), rrl.WithLabelValues("drop")
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "intercloud_dns_request_duration_seconds",
		Help:    "Time from reading a query to having its answer ready.",
		Buckets: []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 5e-4, 1e-3, 1e-2},
	})
	m.answers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intercloud_dns_answers_total",
		Help: "Address answers by the location they came from (a cloud, all, fail-open, ns).",
	}, []string{"location"})
	m.failOpen = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "intercloud_dns_fail_open_distributions",
		Help: "Distributions answered with every edge because none is live.",
	})
	m.revision = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "intercloud_dns_revision",
		Help: "Config revision being served (the SOA serial).",
	})
	m.edges = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "intercloud_dns_edges",
		Help: "Edge nodes by whether DNS hands them out.",
	}, []string{"state"})
	g, err := promreg.Register(reg, q, m.dropped, rrl, m.latency, m.answers, m.failOpen, m.revision, m.edges)
	if err != nil {
		return nil, err
	}
	m.group = g
	for i := range m.typeIdx {
		m.typeIdx[i] = nTypes - 1
	}
	ti := 0
	for _, t := range []uint16{typeA, typeAAAA, typeNS, typeSOA, typeCNAME, typeANY, 15, 16, 33, 43, 48, 65, 64, 257, 12} {
		m.typeIdx[t] = uint8(ti)
		for p, proto := range []string{"udp", "tcp"} {
			for r := range nRcodes {
				m.queries[p][ti][r] = q.WithLabelValues(proto, qtypeNames[t], rcodeName(r))
			}
		}
		ti++
	}
	for p, proto := range []string{"udp", "tcp"} {
		for r := range nRcodes {
			m.queries[p][nTypes-1][r] = q.WithLabelValues(proto, "other", rcodeName(r))
		}
	}
	return m, nil
}

func rcodeName(i int) string {
	if i < len(rcodeNames) && rcodeNames[i] != "" {
		return rcodeNames[i]
	}
	return "BADVERS"
}

// observe counts one answered query without allocating.
func (m *metrics) observe(tcp bool, o *outcome, locs []prometheus.Counter) {
	p := 0
	if tcp {
		p = 1
	}
	t := nTypes - 1
	if int(o.qtype) < len(m.typeIdx) {
		t = int(m.typeIdx[o.qtype])
	}
	r := o.rcode
	if r >= nRcodes-1 || r < 0 {
		r = nRcodes - 1
	}
	m.queries[p][t][r].Inc()
	if o.pool != nil && o.pool.loc < len(locs) {
		locs[o.pool.loc].Inc()
	}
}

// logQuery is the optional query log.
func (s *Server) logQuery(proto string, q *query, o *outcome, src netip.Addr) {
	pool := ""
	if o.pool != nil {
		pool = o.pool.label
	}
	s.log.Debug("dns query", "proto", proto, "client", src, "name", mdnsName(q.qname), "type", q.qtype,
		"rcode", rcodeName(o.rcode), "pool", pool, "ecs", o.ecsUsed)
}

// locCounters resolves a state's pool labels to counters once per state.
func (m *metrics) locCounters(labels []string) []prometheus.Counter {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]prometheus.Counter, len(labels))
	for i, l := range labels {
		c, ok := m.locs[l]
		if !ok {
			c = m.answers.WithLabelValues(l)
			m.locs[l] = c
		}
		out[i] = c
	}
	return out
}

// Report publishes the queries answered and those answered SERVFAIL in the
// node's status (rollout gates watch the rate). It reads the counters the
// query path already keeps, so that path stays as it is.
func (s *Server) Report(into *status.RoleReport) {
	var d dto.Metric
	value := func(c prometheus.Counter) int64 {
		if c == nil || c.Write(&d) != nil {
			return 0
		}
		return int64(d.GetCounter().GetValue())
	}
	for p := range s.m.queries {
		for t := range s.m.queries[p] {
			for r, c := range s.m.queries[p][t] {
				n := value(c)
				into.Queries += n
				if r == rcodeServFail {
					into.Servfail += n
				}
			}
		}
	}
}
