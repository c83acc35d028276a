package origin

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/internal/promreg"
)

type metrics struct {
	group       *promreg.Group
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	sentBytes   prometheus.Counter
	hashes      prometheus.Counter
	hashedBytes prometheus.Counter
	rejected    *prometheus.CounterVec
	uploads     *prometheus.CounterVec

	durByMethod [len(methods)]prometheus.Observer
	hot         [len(methods)][len(hotCodes)]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Server) (*metrics, error) {
	m := &metrics{
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
	g, err := promreg.Register(reg, m.requests, m.duration, m.sentBytes, m.hashes,
		m.hashedBytes, m.rejected, m.uploads, cached, active)
	if err != nil {
		return nil, fmt.Errorf("origin metrics: %w", err)
	}
	m.group = g
	m.resolve()
	return m, nil
}

func (m *metrics) unregister() { m.group.Unregister() }

// Label values are bounded: five methods and "other".
var methods = [...]string{"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "other"}

// hotCodes are the statuses of GET and HEAD whose counters are resolved
// once: looking a labelled child up costs more than the rest of a cached
// response's bookkeeping.
var hotCodes = [...]int{200, 206, 304, 404, 412, 416}

// resolve fills the per-method children after registration.
func (m *metrics) resolve() {
	for i, meth := range methods {
		m.durByMethod[i] = m.duration.WithLabelValues(meth)
		for j, c := range hotCodes {
			m.hot[i][j] = m.requests.WithLabelValues(meth, strconv.Itoa(c))
		}
	}
}

// reqRecord carries a request's method to its end.
type reqRecord struct {
	m      *metrics
	method int
}

func (m *metrics) begin(method string) reqRecord {
	for i, meth := range methods[:len(methods)-1] {
		if method == meth {
			return reqRecord{m, i}
		}
	}
	return reqRecord{m, len(methods) - 1}
}

func (r reqRecord) done(code int, sent int64, d time.Duration) {
	m := r.m
	counted := false
	for j, c := range hotCodes {
		if c == code {
			m.hot[r.method][j].Inc()
			counted = true
			break
		}
	}
	if !counted {
		m.requests.WithLabelValues(methods[r.method], strconv.Itoa(code)).Inc()
	}
	m.durByMethod[r.method].Observe(d.Seconds())
	if sent > 0 {
		m.sentBytes.Add(float64(sent))
	}
	if meth := methods[r.method]; meth == "PUT" || meth == "DELETE" {
		m.uploads.WithLabelValues(meth, strconv.Itoa(code)).Inc()
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
