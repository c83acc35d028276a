package origin

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reg         prometheus.Registerer
	collectors  []prometheus.Collector
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	sentBytes   prometheus.Counter
	hashes      prometheus.Counter
	hashedBytes prometheus.Counter
	rejected    *prometheus.CounterVec
	uploads     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, s *Server) (*metrics, error) {
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intercloud_origin_requests_total",
			Help: "Content requests by method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "intercloud_origin_request_duration_seconds",
			Help:    "Time to answer a content request, body included.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
		}, []string{"method"}),
		sentBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intercloud_origin_sent_bytes_total",
			Help: "Body bytes sent.",
		}),
		hashes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intercloud_origin_etag_computations_total",
			Help: "Files hashed to compute a strong ETag (once per file content).",
		}),
		hashedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intercloud_origin_etag_hashed_bytes_total",
			Help: "Bytes read to compute ETags.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intercloud_origin_rejected_paths_total",
			Help: "Requests refused for their path: traversal, hidden, escape.",
		}, []string{"reason"}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intercloud_origin_uploads_total",
			Help: "PUT and DELETE requests by method and status code.",
		}, []string{"method", "code"}),
	}
	cached := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "intercloud_origin_etag_cache_entries",
		Help: "Files whose ETag is cached.",
	}, func() float64 { return float64(s.meta.len()) })
	active := &activeCollector{s: s, desc: prometheus.NewDesc(
		"intercloud_origin_active_version_info",
		"The active version (value 1), from the current pointer.",
		[]string{"version"}, nil)}
	m.collectors = []prometheus.Collector{m.requests, m.duration, m.sentBytes, m.hashes,
		m.hashedBytes, m.rejected, m.uploads, cached, active}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, r := range m.collectors[:i] {
				reg.Unregister(r)
			}
			return nil, fmt.Errorf("origin metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

// reqRecord carries a request's method to its end.
type reqRecord struct {
	m      *metrics
	method string
}

func (m *metrics) begin(method string) reqRecord {
	switch method {
	case "GET", "HEAD", "PUT", "DELETE", "OPTIONS":
	default:
		method = "other" // bounded label values
	}
	return reqRecord{m, method}
}

func (r reqRecord) done(code int, sent int64, d time.Duration) {
	r.m.requests.WithLabelValues(r.method, strconv.Itoa(code)).Inc()
	r.m.duration.WithLabelValues(r.method).Observe(d.Seconds())
	if sent > 0 {
		r.m.sentBytes.Add(float64(sent))
	}
	if r.method == "PUT" || r.method == "DELETE" {
		r.m.uploads.WithLabelValues(r.method, strconv.Itoa(code)).Inc()
	}
}

type activeCollector struct {
	s    *Server
	desc *prometheus.Desc
}

func (c *activeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c *activeCollector) Collect(ch chan<- prometheus.Metric) {
	if v, err := c.s.activeVersion(); err == nil {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1, v)
	}
}
