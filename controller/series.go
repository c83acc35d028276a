package controller

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/intercloud/intercloud/status"
)

// The console's charts cover the last hour, from the nodes' own /metrics
// scraped every DefaultScrapeInterval: no Prometheus server is needed.
const (
	DefaultScrapeInterval = 10 * time.Second
	seriesWindow          = time.Hour
	// maxScrape bounds one node's /metrics body.
	maxScrape = 8 << 20
)

// The charts, in display order, and what each series is named after.
var charts = []Chart{
	{ID: "requests", Title: "Requests per second, by distribution", Unit: "req/s"},
	{ID: "hitratio", Title: "Cache hit ratio, by distribution", Unit: "%"},
	{ID: "5xx", Title: "5xx responses per second, by distribution", Unit: "5xx/s"},
	{ID: "latency", Title: "Origin latency (mean time to headers), by distribution", Unit: "ms"},
	{ID: "dnsqps", Title: "DNS queries per second, by node", Unit: "q/s"},
	{ID: "bgp", Title: "BGP prefixes accepted, by session", Unit: "prefixes"},
}

// Chart is one chart of the console: its series over the window.
type Chart struct {
	ID     string   `json:"id"`
	Title  string   `json:"title"`
	Unit   string   `json:"unit"`
	Series []Series `json:"series"`
}

// Series is one line; a point is missing where nothing was measured.
type Series struct {
	Name   string  `json:"name"`
	Points []Point `json:"points"`
}

// Point is a value at a time.
type Point struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// Charts is what GET /v1/metrics/series answers.
type Charts struct {
	Interval time.Duration `json:"interval"`
	From     time.Time     `json:"from"`
	To       time.Time     `json:"to"`
	Charts   []Chart       `json:"charts"`
	// Failed names the nodes the last round could not scrape, and why
	// (under "" when it could not read the store).
	Failed map[string]string `json:"failed,omitempty"`
}

// seriesSample is one scrape round: values by chart ID and series name.
type seriesSample struct {
	t time.Time
	v map[[2]string]float64
}

// ring keeps the last len(buf) samples; only the collector's goroutine
// touches it.
type ring struct {
	buf  []seriesSample
	next int
	n    int
}

func newRing(size int) *ring { return &ring{buf: make([]seriesSample, size)} }

func (r *ring) add(s seriesSample) {
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

// each visits the samples oldest first.
func (r *ring) each(f func(seriesSample)) {
	start := (r.next - r.n + len(r.buf)) % len(r.buf)
	for i := range r.n {
		f(r.buf[(start+i)%len(r.buf)])
	}
}

// charts copies the ring out as charts, series sorted by name.
func (r *ring) charts(interval time.Duration) *Charts {
	out := &Charts{Interval: interval, Charts: make([]Chart, len(charts))}
	byChart := map[string]map[string][]Point{}
	r.each(func(s seriesSample) {
		if out.From.IsZero() {
			out.From = s.t
		}
		out.To = s.t
		for k, v := range s.v {
			if byChart[k[0]] == nil {
				byChart[k[0]] = map[string][]Point{}
			}
			byChart[k[0]][k[1]] = append(byChart[k[0]][k[1]], Point{T: s.t, V: v})
		}
	})
	for i, c := range charts {
		c.Series = []Series{}
		names := make([]string, 0, len(byChart[c.ID]))
		for n := range byChart[c.ID] {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			c.Series = append(c.Series, Series{Name: n, Points: byChart[c.ID][n]})
		}
		out.Charts[i] = c
	}
	return out
}

// scrape is what one node's /metrics and registration say, as counters.
type scrape struct {
	t        time.Time
	started  time.Time // the node process's start: counters restart with it
	requests map[string]float64
	hits     map[string]float64
	latSum   map[string]float64
	latCount map[string]float64
	queries  float64
	dns      bool
	edge     bool
	prefixes map[string]float64
	errs5xx  map[string]float64 // by distribution
}

// parseScrape reads the families the charts need from a text exposition.
func parseScrape(r io.Reader) (*scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	s := &scrape{requests: map[string]float64{}, hits: map[string]float64{}, latSum: map[string]float64{},
		latCount: map[string]float64{}, prefixes: map[string]float64{}, errs5xx: map[string]float64{}}
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	if f := fams["intercloud_edge_requests_total"]; f != nil {
		s.edge = true
		for _, m := range f.GetMetric() {
			d, v := label(m, "distribution"), m.GetCounter().GetValue()
			if d == "-" { // no distribution served the host
				continue
			}
			s.requests[d] += v
			if c := label(m, "cache"); c == "hit" || c == "stale" {
				s.hits[d] += v
			}
		}
	}
	if f := fams["intercloud_edge_responses_total"]; f != nil {
		for _, m := range f.GetMetric() {
			if d := label(m, "distribution"); d != "-" && label(m, "code") == "5xx" {
				s.errs5xx[d] += m.GetCounter().GetValue()
			}
		}
	}
	if f := fams["intercloud_edge_origin_duration_seconds"]; f != nil {
		for _, m := range f.GetMetric() {
			d := label(m, "distribution")
			s.latSum[d] += m.GetHistogram().GetSampleSum()
			s.latCount[d] += float64(m.GetHistogram().GetSampleCount())
		}
	}
	if f := fams["intercloud_dns_queries_total"]; f != nil {
		s.dns = true
		for _, m := range f.GetMetric() {
			s.queries += m.GetCounter().GetValue()
		}
	}
	if f := fams["intercloud_bgp_neighbor_prefixes"]; f != nil {
		for _, m := range f.GetMetric() {
			if label(m, "direction") == "accepted" {
				s.prefixes[label(m, "neighbor")] = m.GetGauge().GetValue()
			}
		}
	}
	return s, nil
}

// delta is how much a counter grew; a counter below its last value was
// restarted, and all of it is new.
func delta(cur, prev float64) float64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// seriesRates turns this round's scrapes and the last round's into one seriesSample.
func seriesRates(t time.Time, cur, prev map[string]*scrape) seriesSample {
	s := seriesSample{t: t, v: map[[2]string]float64{}}
	reqs, hits, total, latSum, latCount, errs := map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
	for node, c := range cur {
		for n, v := range c.prefixes {
			s.v[[2]string{"bgp", node + " / " + n}] = v
		}
		p := prev[node]
		if p == nil || !p.started.Equal(c.started) {
			// A node's first round, or its process restarted: no rate
			// until the next round.
			continue
		}
		secs := c.t.Sub(p.t).Seconds()
		if secs <= 0 {
			continue
		}
		for d, v := range c.requests {
			dv := delta(v, p.requests[d])
			reqs[d] += dv / secs
			total[d] += dv
			hits[d] += delta(c.hits[d], p.hits[d])
		}
		for d, v := range c.latCount {
			latCount[d] += delta(v, p.latCount[d])
			latSum[d] += delta(c.latSum[d], p.latSum[d])
		}
		if c.dns {
			s.v[[2]string{"dnsqps", node}] = delta(c.queries, p.queries) / secs
		}
		if c.edge {
			for d := range c.requests {
				errs[d] += delta(c.errs5xx[d], p.errs5xx[d]) / secs
			}
		}
	}
	for d, v := range reqs {
		s.v[[2]string{"requests", d}] = v
		s.v[[2]string{"5xx", d}] = errs[d]
		if total[d] > 0 {
			s.v[[2]string{"hitratio", d}] = 100 * hits[d] / total[d]
		}
	}
	for d, n := range latCount {
		if n > 0 {
			s.v[[2]string{"latency", d}] = 1000 * latSum[d] / n
		}
	}
	// A node may expose NaN or an infinity: such a point is not drawn,
	// and JSON could not carry it.
	for k, v := range s.v {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			delete(s.v, k)
		}
	}
	return s
}

// seriesState is the collector's side of the controller: requests to read
// the ring go to its goroutine, the only one that touches it.
type seriesState struct {
	reads chan chan *Charts
	mu    sync.Mutex
	done  chan struct{} // closed when the running collector stops; nil: none runs
}

func newSeriesState() *seriesState { return &seriesState{reads: make(chan chan *Charts)} }

// RunMetrics scrapes every live node's admin /metrics each interval (0:
// DefaultScrapeInterval) until ctx ends, and keeps the last hour of the
// console's charts in memory.
func (c *Controller) RunMetrics(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultScrapeInterval
	}
	c.series.mu.Lock()
	if c.series.done != nil {
		c.series.mu.Unlock()
		c.log.Error("metrics: RunMetrics is already running; this second call does nothing")
		return
	}
	done := make(chan struct{})
	c.series.done = done
	c.series.mu.Unlock()
	defer func() {
		c.series.mu.Lock()
		c.series.done = nil
		c.series.mu.Unlock()
		close(done)
	}()
	r := newRing(max(int(seriesWindow/interval), 2))
	client := &http.Client{Timeout: min(interval, 5*time.Second)}
	prev := map[string]*scrape{}
	rounds := make(chan round, 1)
	var failed map[string]string
	busy := false
	tick := time.NewTicker(interval)
	defer tick.Stop()
	startRound := func() {
		// A round runs beside the loop, so that reads are answered while
		// slow nodes are scraped; rounds never overlap.
		if busy {
			return
		}
		busy = true
		go func() { rounds <- c.scrapeRound(ctx, client) }()
	}
	startRound()
	for {
		select {
		case <-ctx.Done():
			if busy {
				<-rounds
			}
			return
		case <-tick.C:
			startRound()
		case rd := <-rounds:
			busy = false
			r.add(seriesRates(time.Now().UTC(), rd.scrapes, prev))
			prev, failed = rd.scrapes, rd.failed
		case reply := <-c.series.reads:
			ch := r.charts(interval)
			ch.Failed = maps.Clone(failed)
			reply <- ch
		}
	}
}

// Series returns the charts collected so far; ok is false when RunMetrics
// is not running.
func (c *Controller) Series(ctx context.Context) (*Charts, bool) {
	c.series.mu.Lock()
	done := c.series.done
	c.series.mu.Unlock()
	if done == nil {
		return nil, false
	}
	reply := make(chan *Charts, 1)
	select {
	case c.series.reads <- reply:
		return <-reply, true
	case <-done:
		return nil, false
	case <-ctx.Done():
		return nil, false
	}
}

// round is what one scrape round got, and what it could not get.
type round struct {
	scrapes map[string]*scrape
	failed  map[string]string
}

// scrapeConcurrency bounds the nodes a round scrapes at once: a site of
// thousands of nodes must not open thousands of connections (and
// goroutines) every interval.
const scrapeConcurrency = 16

// scrapeRound scrapes every live node of the current revision that has an
// admin address, scrapeConcurrency at a time.
func (c *Controller) scrapeRound(ctx context.Context, client *http.Client) round {
	rd := round{scrapes: map[string]*scrape{}, failed: map[string]string{}}
	// The revision's nodes come from the snapshot status pages keep: a
	// round reads the whole revision only when it changed.
	ptr, _, err := c.store.Pointer(ctx)
	if err != nil || ptr.Revision == 0 {
		if err != nil {
			rd.failed[""] = err.Error()
		}
		return rd
	}
	_, nodes, err := c.desired(ctx, ptr)
	if err != nil {
		rd.failed[""] = err.Error()
		return rd
	}
	regs, err := c.store.Nodes(ctx)
	if err != nil {
		rd.failed[""] = err.Error()
		return rd
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, scrapeConcurrency)
	for _, n := range nodes {
		reg, live := regs[n.Name]
		if !live || n.Listen.Admin == "" {
			continue
		}
		sem <- struct{}{} // taken before the goroutine starts: at most scrapeConcurrency exist
		wg.Go(func() {
			defer func() { <-sem }()
			s, err := scrapeNode(ctx, client, n.AdminURL()+"/metrics")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rd.failed[n.Name] = err.Error()
				return
			}
			fillFromReport(s, reg)
			rd.scrapes[n.Name] = s
		})
	}
	wg.Wait()
	return rd
}

// fillFromReport adds what the node reports with its registration rather
// than in /metrics.
func fillFromReport(s *scrape, reg status.NodeStatus) {
	s.started = reg.Started
}

func scrapeNode(ctx context.Context, client *http.Client, url string) (*scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// The text format: what expfmt's parser reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	t := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("GET %s: content type %q, want the text format", url, ct)
	}
	s, err := parseScrape(io.LimitReader(resp.Body, maxScrape))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	s.t = t
	return s, nil
}

func (c *Controller) getSeries(w http.ResponseWriter, r *http.Request) {
	ch, ok := c.Series(r.Context())
	if !ok {
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("metrics: not collected by this controller"))
		return
	}
	writeJSON(w, http.StatusOK, ch)
}
