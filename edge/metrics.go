package edge

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/internal/promreg"
)

type metrics struct {
	group         *promreg.Group
	requests      *prometheus.CounterVec
	bytes         *prometheus.CounterVec
	responses     *prometheus.CounterVec
	originSeconds *prometheus.HistogramVec
	failovers     *prometheus.CounterVec
	purged        prometheus.Counter
	// Access log lines written and dropped (full buffers, failed writes).
	accessLines, accessDropped prometheus.Counter
	// byLabel caches resolved counters: label hashing per request is
	// measurable on the hit path.
	byDist sync.Map // distribution → *distCounters

	// One scrape reads four store figures; counting entries walks the
	// store, so the figures are shared for a second.
	statsMu   sync.Mutex
	statsAt   time.Time
	lastStats StoreStats
}

func (m *metrics) stats(s cacheStore) StoreStats {
	m.statsMu.Lock()
	defer m.statsMu.Unlock()
	if time.Since(m.statsAt) > time.Second {
		m.lastStats, m.statsAt = s.Stats(), time.Now()
	}
	return m.lastStats
}

// classes are the values of the cache label.
var classes = []string{"hit", "stale", "miss", "revalidated", "bypass", "error"}

type labelled struct{ requests, bytes prometheus.Counter }

// distCounters are one distribution's counters: requests and bytes by
// cache result, responses by status class (1xx to 5xx).
type distCounters struct {
	byClass  [6]labelled
	byStatus [5]prometheus.Counter
}

// statusClasses are the values of the code label.
var statusClasses = [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

func (d *distCounters) status(code int) prometheus.Counter {
	return d.byStatus[min(max(code/100, 1), 5)-1]
}

// classIndex is the index of class in classes; unknown ones count as error.
func classIndex(class string) int {
	i := 0
	for i < len(classes)-1 && classes[i] != class {
		i++
	}
	return i
}

// distCounters are a distribution's counters.
func (m *metrics) distCounters(dist string) *distCounters {
	v, ok := m.byDist.Load(dist)
	if !ok {
		var a distCounters
		for j, c := range classes {
			a.byClass[j] = labelled{m.requests.WithLabelValues(dist, c), m.bytes.WithLabelValues(dist, c)}
		}
		for j, c := range statusClasses {
			a.byStatus[j] = m.responses.WithLabelValues(dist, c)
		}
		v, _ = m.byDist.LoadOrStore(dist, &a)
	}
	return v.(*distCounters)
}

func newMetrics(reg prometheus.Registerer, e *Edge) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "intercloud_edge_requests_total",
			Help: "Requests by distribution and cache result."}, []string{"distribution", "cache"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "intercloud_edge_response_bytes_total",
			Help: "Response body bytes sent by distribution and cache result."}, []string{"distribution", "cache"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "intercloud_edge_responses_total",
			Help: "Responses by distribution and status class (1xx to 5xx)."}, []string{"distribution", "code"}),
		originSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "intercloud_edge_origin_duration_seconds",
			Help: "Time to origin response headers.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}, []string{"distribution", "origin"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "intercloud_edge_origin_failovers_total",
			Help: "Requests retried on another origin group member."}, []string{"distribution"}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{Name: "intercloud_edge_purged_objects_total",
			Help: "Objects dropped by invalidations."}),
		accessLines: prometheus.NewCounter(prometheus.CounterOpts{Name: "intercloud_edge_access_log_lines_total",
			Help: "Access log lines written."}),
		accessDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "intercloud_edge_access_log_dropped_total",
			Help: "Access log lines dropped: every buffer waiting for a slow disk, or a failed write."}),
	}
	stat := func(name, help string, f func(StoreStats) float64, counter bool) prometheus.Collector {
		fn := func() float64 { return f(m.stats(e.store)) }
		if counter {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn)
		}
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn)
	}
	g, err := promreg.Register(reg, m.requests, m.bytes, m.responses, m.originSeconds, m.failovers, m.purged, m.accessLines, m.accessDropped,
		stat("intercloud_edge_cache_bytes", "Bytes held by the cache.", func(s StoreStats) float64 { return float64(s.Bytes) }, false),
		stat("intercloud_edge_cache_capacity_bytes", "Configured cache size.", func(s StoreStats) float64 { return float64(s.Capacity) }, false),
		stat("intercloud_edge_cache_entries", "Objects held by the cache.", func(s StoreStats) float64 { return float64(s.Entries) }, false),
		stat("intercloud_edge_cache_evictions_total", "Objects evicted for room.", func(s StoreStats) float64 { return float64(s.Evictions) }, true),
	)
	if err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return nil, fmt.Errorf("edge metrics: %w (one edge per registry)", err)
		}
		return nil, fmt.Errorf("edge metrics: %w", err)
	}
	m.group = g
	return m, nil
}

func (m *metrics) unregister() { m.group.Unregister() }

// observe records one finished request.
func (e *Edge) observe(x *exchange) {
	dist := "-"
	if x.d != nil {
		dist = x.d.name
	}
	class := x.class
	if class == "" {
		class = "error"
	}
	e.requests.Add(1)
	if class == "hit" || class == "stale" {
		e.hits.Add(1)
	}
	if x.w.code >= 500 {
		e.errors5xx.Add(1)
	}
	var a *distCounters
	if x.d != nil {
		// The distribution keeps its counters: no lookup by name per request.
		if a = x.d.counters.Load(); a == nil {
			a = e.metrics.distCounters(dist)
			x.d.counters.Store(a)
		}
	} else {
		a = e.metrics.distCounters(dist)
	}
	c := &a.byClass[classIndex(class)]
	c.requests.Inc()
	c.bytes.Add(float64(x.w.bytes))
	if x.w.code >= 100 {
		a.status(x.w.code).Inc()
	}
	e.logRequest(x, dist, class)
}
