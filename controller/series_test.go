package controller

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/status"
)

// An exposition as an edge+dns node and a gateway serve it (abridged).
const edgeExposition = `# HELP intercloud_edge_requests_total Requests by distribution and cache result.
# TYPE intercloud_edge_requests_total counter
intercloud_edge_requests_total{cache="hit",distribution="shop"} %HIT%
intercloud_edge_requests_total{cache="stale",distribution="shop"} 0
intercloud_edge_requests_total{cache="miss",distribution="shop"} %MISS%
intercloud_edge_requests_total{cache="error",distribution="-"} 7
# HELP intercloud_edge_responses_total Responses by distribution and status class.
# TYPE intercloud_edge_responses_total counter
intercloud_edge_responses_total{code="2xx",distribution="shop"} 100
intercloud_edge_responses_total{code="5xx",distribution="shop"} %E5%
intercloud_edge_responses_total{code="5xx",distribution="-"} 7
# HELP intercloud_edge_origin_duration_seconds Time to origin response headers.
# TYPE intercloud_edge_origin_duration_seconds histogram
intercloud_edge_origin_duration_seconds_bucket{distribution="shop",origin="blue",le="+Inf"} %LATN%
intercloud_edge_origin_duration_seconds_sum{distribution="shop",origin="blue"} %LATS%
intercloud_edge_origin_duration_seconds_count{distribution="shop",origin="blue"} %LATN%
# HELP intercloud_dns_queries_total DNS queries answered.
# TYPE intercloud_dns_queries_total counter
intercloud_dns_queries_total{proto="udp",rcode="NOERROR",type="A"} %Q%
intercloud_dns_queries_total{proto="tcp",rcode="NOERROR",type="A"} 0
# HELP intercloud_bgp_neighbor_prefixes Prefixes per neighbor.
# TYPE intercloud_bgp_neighbor_prefixes gauge
intercloud_bgp_neighbor_prefixes{direction="accepted",kind="dedicated",neighbor="dx"} 3
intercloud_bgp_neighbor_prefixes{direction="received",kind="dedicated",neighbor="dx"} 9
`

func exposition(hit, miss, latN, latS, q string) string {
	return strings.NewReplacer("%HIT%", hit, "%MISS%", miss, "%LATN%", latN, "%LATS%", latS, "%Q%", q).Replace(edgeExposition)
}

// mustScrape parses text with errs 5xx responses of shop in it.
func mustScrape(t *testing.T, text string, at time.Time, errs float64) *scrape {
	t.Helper()
	s, err := parseScrape(strings.NewReader(strings.ReplaceAll(text, "%E5%", fmt.Sprint(errs))))
	if err != nil {
		t.Fatal(err)
	}
	s.t = at
	return s
}

func TestSeriesRates(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(10 * time.Second)
	prev := map[string]*scrape{"n1": mustScrape(t, exposition("100", "100", "10", "1", "50"), t0, 2)}
	cur := map[string]*scrape{
		"n1": mustScrape(t, exposition("190", "110", "20", "1.5", "150"), t1, 7),
		// First seen this round: counted from the next one.
		"n2": mustScrape(t, exposition("1000", "0", "0", "0", "1000"), t1, 0),
	}
	s := seriesRates(t1, cur, prev)
	cases := []struct {
		chart, series string
		want          float64
	}{
		{"requests", "shop", 10},      // (90+10)/10s
		{"hitratio", "shop", 90},      // 90 hits of 100
		{"latency", "shop", 50},       // 0.5s over 10 fetches = 50ms
		{"dnsqps", "n1", 10},          // 100 queries/10s
		{"5xx", "shop", 0.5},          // 5/10s
		{"5xx", "-", math.NaN()},      // no distribution: not charted
		{"bgp", "n1 / dx", 3},         // a gauge: no previous round needed
		{"bgp", "n2 / dx", 3},         // even on the first round
		{"requests", "-", math.NaN()}, // no distribution: not charted
		{"dnsqps", "n2", math.NaN()},  // first round: no rate
	}
	for _, c := range cases {
		got, ok := s.v[[2]string{c.chart, c.series}]
		if math.IsNaN(c.want) {
			if ok {
				t.Errorf("%s/%s: got %v, want no value", c.chart, c.series, got)
			}
			continue
		}
		if !ok || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s/%s: got %v (present %v), want %v", c.chart, c.series, got, ok, c.want)
		}
	}
	// A counter below its last value was restarted: all of it is new.
	restarted := map[string]*scrape{"n1": mustScrape(t, exposition("5", "5", "0", "0", "20"), t1.Add(10*time.Second), 0)}
	s = seriesRates(t1.Add(10*time.Second), restarted, cur)
	if got := s.v[[2]string{"requests", "shop"}]; got != 1 {
		t.Errorf("after a restart: requests %v/s, want 1", got)
	}
	// Values a node should not expose are left out, not charted as NaN.
	odd := map[string]*scrape{"n1": mustScrape(t, strings.Replace(exposition("190", "110", "20", "1.5", "150"), `neighbor="dx"} 3`, `neighbor="dx"} NaN`, 1), t1, 7)}
	s = seriesRates(t1, odd, prev)
	if v, ok := s.v[[2]string{"bgp", "n1 / dx"}]; ok {
		t.Errorf("a NaN gauge was kept: %v", v)
	}
	// A restart the registration reports (a new start time) skips a round.
	restarted["n1"].started = t1
	s = seriesRates(t1.Add(10*time.Second), restarted, cur)
	if _, ok := s.v[[2]string{"requests", "shop"}]; ok {
		t.Errorf("a node that restarted must not give a rate this round")
	}
}

func TestParseScrapeRejectsGarbage(t *testing.T) {
	for _, in := range []string{"not a metric line {", "# TYPE x counter\nx{a=\"b\" 1\n"} {
		if _, err := parseScrape(strings.NewReader(in)); err == nil {
			t.Errorf("%q: parsed without error", in)
		}
	}
}

func FuzzParseScrape(f *testing.F) {
	f.Add(strings.ReplaceAll(exposition("1", "2", "3", "0.5", "4"), "%E5%", "1"))
	f.Add("# TYPE intercloud_edge_requests_total counter\nintercloud_edge_requests_total{distribution=\"a\",cache=\"hit\"} NaN\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := parseScrape(strings.NewReader(in))
		if err == nil && s == nil {
			t.Fatal("no error and no scrape")
		}
	})
}

func TestRingKeepsTheLastSamples(t *testing.T) {
	r := newRing(3)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		r.add(seriesSample{t: t0.Add(time.Duration(i) * time.Second), v: map[[2]string]float64{{"requests", "shop"}: float64(i)}})
	}
	ch := r.charts(time.Second)
	if !ch.From.Equal(t0.Add(2*time.Second)) || !ch.To.Equal(t0.Add(4*time.Second)) {
		t.Errorf("window %v..%v, want the last three samples", ch.From, ch.To)
	}
	if len(ch.Charts) != len(charts) || ch.Charts[0].ID != "requests" {
		t.Fatalf("charts: %+v", ch.Charts)
	}
	pts := ch.Charts[0].Series[0].Points
	if len(pts) != 3 || pts[0].V != 2 || pts[2].V != 4 {
		t.Errorf("points %+v, want 2, 3, 4", pts)
	}
}

func TestNiceCeil(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{0, 1}, {0.3, 1}, {1.5, 2}, {3, 5}, {7, 10}, {12, 20}, {450, 500}, {1000, 1000}} {
		if got := niceCeil(c.in); got != c.want {
			t.Errorf("niceCeil(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// A node's /metrics is read in the text format and refused otherwise.
func TestScrapeNode(t *testing.T) {
	for _, c := range []struct {
		name, ctype, body string
		status            int
		err               string
	}{
		{"text", "text/plain; version=0.0.4; charset=utf-8", strings.ReplaceAll(exposition("1", "1", "1", "1", "1"), "%E5%", "1"), 200, ""},
		{"not found", "text/plain", "", 404, "404"},
		{"html", "text/html", "<html>", 200, "content type"},
		{"garbage", "text/plain", "intercloud_dns_queries_total{", 200, "GET"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.Header.Get("Accept"), "text/plain") {
				t.Errorf("%s: Accept %q, want the text format", c.name, r.Header.Get("Accept"))
			}
			w.Header().Set("Content-Type", c.ctype)
			w.WriteHeader(c.status)
			io.WriteString(w, c.body)
		}))
		s, err := scrapeNode(context.Background(), srv.Client(), srv.URL+"/metrics")
		srv.Close()
		switch {
		case c.err == "" && (err != nil || s.queries != 1 || s.requests["shop"] != 2):
			t.Errorf("%s: %+v %v", c.name, s, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.err)
		}
	}
}

// The collector answers while it runs, refuses a second start, and says
// so once stopped instead of leaving a reader waiting.
func TestCollectorLifecycle(t *testing.T) {
	c, _ := newController(t)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { c.RunMetrics(ctx, time.Second); close(stopped) }()
	storetest.Eventually(t, 10*time.Second, "collector running", func() bool {
		_, ok := c.Series(context.Background())
		return ok
	})
	second := make(chan struct{})
	go func() { c.RunMetrics(ctx, time.Second); close(second) }()
	select {
	case <-second:
	case <-time.After(10 * time.Second):
		t.Fatal("a second RunMetrics did not return at once")
	}
	cancel()
	<-stopped
	if _, ok := c.Series(context.Background()); ok {
		t.Error("Series answers after the collector stopped")
	}
}

// A round over 1,000 live nodes, each with its own admin listener, reads
// every one and never more than scrapeConcurrency at once.
func TestScrapeRoundIsBounded(t *testing.T) {
	const nodes = 1000
	c, _ := newController(t)
	ctx := t.Context()
	snap := bigSite(t, nodes)

	var inFlight, most, hits atomic.Int64
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
		}
		hits.Add(1)
		// Long enough for unbounded scrapes to pile up past the bound.
		time.Sleep(2 * time.Millisecond)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, "intercloud_dns_queries_total 1\n")
	})
	for i := range snap.Site.Nodes {
		srv := httptest.NewServer(metrics)
		t.Cleanup(srv.Close)
		snap.Site.Nodes[i].Listen.Admin = srv.Listener.Addr().String()
	}
	res, err := c.Apply(ctx, snap, "a thousand nodes")
	if err != nil {
		t.Fatal(err)
	}
	var regs []status.NodeStatus
	for _, n := range snap.Site.Nodes {
		regs = append(regs, status.NodeStatus{Name: n.Name, Roles: n.Roles, Revision: res.Revision, Hash: res.Hash, Healthy: true})
	}
	registerAll(t, c, regs)

	rd := c.scrapeRound(ctx, &http.Client{Timeout: 30 * time.Second})
	if len(rd.scrapes) != nodes || len(rd.failed) != 0 || hits.Load() != nodes {
		t.Fatalf("scraped %d nodes (%d requests), %d failed (%v), want %d", len(rd.scrapes), hits.Load(), len(rd.failed), firstOf(rd.failed), nodes)
	}
	if m := most.Load(); m > scrapeConcurrency {
		t.Fatalf("%d scrapes at once, want at most %d", m, scrapeConcurrency)
	}
}

func firstOf(m map[string]string) string {
	for k, v := range m {
		return k + ": " + v
	}
	return ""
}
