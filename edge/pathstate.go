package edge

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/edge/paths"
	"github.com/intercloud/intercloud/internal/promreg"
	"github.com/intercloud/intercloud/status"
)

// pathManager measures the candidate paths of every origin reached
// through tiers and chooses among them. One goroutine owns the
// measurements: requests hand it samples without waiting (a full queue
// drops them) and read its published view, so the miss path takes no
// lock.
type pathManager struct {
	log  *slog.Logger
	in   chan pathMsg
	view atomic.Pointer[pathView]
	now  func() time.Time
	stop context.CancelFunc
	done chan struct{}

	group                          *promreg.Group
	ttfb, loss, throughput, chosen *prometheus.GaugeVec
	switches                       *prometheus.CounterVec
	series                         map[[3]string]bool // labels published (owner goroutine)
	probes                         *prometheus.CounterVec
	explores                       *prometheus.CounterVec

	// explored is, by origin, when a miss last went over a path not in
	// use (UnixNano; *atomic.Int64): at most one per exploreEvery.
	explored sync.Map
}

// pathMsg is a sample of one path of an origin, or (set != nil) the
// origins to measure from a new table.
type pathMsg struct {
	origin, path string
	s            paths.Sample
	probe        bool
	set          []originSpec
}

// originSpec is what a table says of one origin's paths.
type originSpec struct {
	key, dist, origin string
	cands             []string // preference order: direct first
	// choose: misses take the chosen path (fastest mode). Otherwise the
	// paths are only measured: shield mode ranks parents per object,
	// and fastest mode with choice off keeps the configured order.
	choose bool
	mode   string
	policy paths.Policy
	every  time.Duration
	// probe measures one path once; run off the owner goroutine.
	probe func(ctx context.Context, path string) paths.Sample
}

// pathView is what the owner goroutine publishes.
type pathView struct {
	origins map[string]*OriginPaths // by "dist/origin"
}

// OriginPaths is one origin's candidate paths as an edge sees them
// (GET /v1/edge/paths).
type OriginPaths struct {
	Distribution string `json:"distribution"`
	Origin       string `json:"origin"`
	// Mode is the tiers' mode: shield, fastest, or fastest (choice off).
	Mode   string       `json:"mode"`
	Chosen paths.Choice `json:"chosen"` // zero unless misses follow it
	Paths  []PathRow    `json:"paths"`
	// order is the paths to try: the chosen one, then by score.
	order []string
	every time.Duration // the probe interval
}

// PathRow is one candidate path.
type PathRow struct {
	ID string `json:"id"`
	paths.Stats
	Score  float64 `json:"score,omitempty"` // seconds; 0 when unmeasured
	Chosen bool    `json:"chosen"`
	// LastFetch is the last real fetch over the path (probes aside).
	LastFetch time.Time `json:"lastFetch,omitzero"`
}

const (
	pathTick = 100 * time.Millisecond
	// pathIdle: origins without a fetch for this long are not probed.
	pathIdle = time.Minute
)

func newPathManager(reg prometheus.Registerer, log *slog.Logger, now func() time.Time) (*pathManager, error) {
	lbl := []string{"distribution", "origin", "path"}
	m := &pathManager{log: log, in: make(chan pathMsg, 4096), now: now, done: make(chan struct{}),
		ttfb: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "intercloud_edge_path_ttfb_seconds",
			Help: "Smoothed time to first byte of each candidate path to an origin."}, lbl),
		loss: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "intercloud_edge_path_loss_ratio",
			Help: "Smoothed share of failed fetches and probes of each candidate path."}, lbl),
		throughput: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "intercloud_edge_path_throughput_bytes_per_second",
			Help: "Smoothed throughput of bodies of 64 KiB or more on each candidate path (0: unknown)."}, lbl),
		chosen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "intercloud_edge_path_chosen",
			Help: "1 for the path misses of an origin take."}, lbl),
		switches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "intercloud_edge_path_switches_total",
			Help: "Times the chosen path of an origin changed."}, []string{"distribution", "origin"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "intercloud_edge_path_probes_total",
			Help: "Active probes of candidate paths, by result."}, []string{"result"}),
		explores: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "intercloud_edge_path_explores_total",
			Help: "Misses sent over a gateway link not in use, so that its throughput is measured again."}, []string{"distribution", "origin", "path"}),
	}
	g, err := promreg.Register(reg, m.ttfb, m.loss, m.throughput, m.chosen, m.switches, m.probes, m.explores)
	if err != nil {
		return nil, err
	}
	m.group = g
	m.view.Store(&pathView{})
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go m.run(ctx)
	return m, nil
}

func (m *pathManager) close() {
	m.stop()
	<-m.done
	m.group.Unregister()
}

// observe hands a sample of a real fetch to the owner.
func (m *pathManager) observe(origin, path string, s paths.Sample) {
	select {
	case m.in <- pathMsg{origin: origin, path: path, s: s}:
	default:
	}
}

// configure replaces the measured origins (blocking: a table is rare).
func (m *pathManager) configure(set []originSpec) {
	if set == nil {
		set = []originSpec{}
	}
	select {
	case m.in <- pathMsg{set: set}:
	case <-m.done:
	}
}

// order is the paths to try for an origin, best first; nil when none is
// known yet.
func (m *pathManager) order(origin string) []string {
	if o := m.view.Load().origins[origin]; o != nil {
		return o.order
	}
	return nil
}

// exploreEvery is how often, in probe intervals, a miss goes over a
// path not in use whose last real fetch is older than that.
const exploreEvery = 4

// explore returns, at most once per exploreEvery probe intervals of an
// origin, the one of others (paths not in use) whose last real fetch is
// the oldest, if older than that: a miss then takes it. A probe is a
// HEAD and measures no throughput, so a path left because its
// throughput fell would otherwise never be measured again (nor taken
// back) once it recovered. Several requests may ask at once: one wins.
func (m *pathManager) explore(origin string, others []string, now time.Time) string {
	o := m.view.Load().origins[origin]
	if o == nil || o.every <= 0 || len(others) == 0 {
		return ""
	}
	every := exploreEvery * o.every
	id, oldest := "", now
	for _, r := range o.Paths {
		if slices.Contains(others, r.ID) && r.LastFetch.Before(oldest) {
			id, oldest = r.ID, r.LastFetch
		}
	}
	if id == "" || now.Sub(oldest) < every {
		return ""
	}
	v, _ := m.explored.LoadOrStore(origin, new(atomic.Int64))
	last := v.(*atomic.Int64)
	prev := last.Load()
	if now.UnixNano()-prev < int64(every) || !last.CompareAndSwap(prev, now.UnixNano()) {
		return ""
	}
	m.explores.WithLabelValues(o.Distribution, o.Origin, id).Inc()
	return id
}

// snapshot is the published view of one distribution (all when "").
func (m *pathManager) snapshot(dist, origin string) []OriginPaths {
	var out []OriginPaths
	for _, o := range m.view.Load().origins {
		if (dist == "" || o.Distribution == dist) && (origin == "" || o.Origin == origin) {
			out = append(out, *o)
		}
	}
	slices.SortFunc(out, func(a, b OriginPaths) int {
		if a.Distribution != b.Distribution {
			return cmp.Compare(a.Distribution, b.Distribution)
		}
		return cmp.Compare(a.Origin, b.Origin)
	})
	return out
}

// originState is the owner's state of one origin.
type originState struct {
	spec        originSpec
	stats       map[string]*paths.Stats
	choice      paths.Choice
	lastProbe   time.Time
	lastUse     time.Time
	lastPassive map[string]time.Time
	probing     map[string]bool
}

func (m *pathManager) run(ctx context.Context) {
	defer close(m.done)
	origins := map[string]*originState{}
	tick := time.NewTicker(pathTick)
	defer tick.Stop()
	dirty := false
	for {
		select {
		case <-ctx.Done():
			return
		case msg := <-m.in:
			now := m.now()
			if msg.set != nil {
				origins = m.reconfigure(origins, msg.set)
				dirty = true
				continue
			}
			o := origins[msg.origin]
			if o == nil {
				continue
			}
			st := o.stats[msg.path]
			if st == nil {
				continue
			}
			if msg.probe {
				delete(o.probing, msg.path)
				res := "ok"
				if msg.s.Failed {
					res = "failed"
				}
				m.probes.WithLabelValues(res).Inc()
			} else {
				o.lastUse = now
				o.lastPassive[msg.path] = now
			}
			st.Observe(msg.s, now)
			dirty = true
		case <-tick.C:
			now := m.now()
			for _, o := range origins {
				m.maybeProbe(ctx, o, now)
				if m.choose(o, now) {
					dirty = true
				}
			}
			if dirty {
				m.publish(origins)
				dirty = false
			}
		}
	}
}

// reconfigure keeps the measurements of paths that stay.
func (m *pathManager) reconfigure(old map[string]*originState, set []originSpec) map[string]*originState {
	out := make(map[string]*originState, len(set))
	for _, sp := range set {
		o := &originState{spec: sp, stats: map[string]*paths.Stats{}, lastPassive: map[string]time.Time{}, probing: map[string]bool{}}
		prev := old[sp.key]
		for _, c := range sp.cands {
			o.stats[c] = &paths.Stats{}
			if prev != nil && prev.stats[c] != nil {
				*o.stats[c] = *prev.stats[c]
				o.lastPassive[c] = prev.lastPassive[c]
			}
		}
		if prev != nil {
			o.choice, o.lastUse, o.lastProbe = prev.choice, prev.lastUse, prev.lastProbe
		}
		out[sp.key] = o
	}
	return out
}

// maybeProbe probes, once per interval, the paths not in use and the one
// in use when no fetch measured it lately, for origins fetched lately.
func (m *pathManager) maybeProbe(ctx context.Context, o *originState, now time.Time) {
	if o.spec.probe == nil || now.Sub(o.lastUse) > pathIdle || now.Sub(o.lastProbe) < o.spec.every {
		return
	}
	o.lastProbe = now
	for _, c := range o.spec.cands {
		if o.probing[c] || c == o.choice.ID && now.Sub(o.lastPassive[c]) < 2*o.spec.every {
			continue
		}
		o.probing[c] = true
		key, path, probe := o.spec.key, c, o.spec.probe
		timeout := max(2*o.spec.every, time.Second)
		go func() {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			s := probe(pctx, path)
			cancel()
			select {
			case m.in <- pathMsg{origin: key, path: path, s: s, probe: true}:
			case <-ctx.Done():
			}
		}()
	}
}

// choose applies paths.Choose; true when the choice changed.
func (m *pathManager) choose(o *originState, now time.Time) bool {
	if !o.spec.choose {
		return false
	}
	cands := make([]paths.Candidate, len(o.spec.cands))
	for i, c := range o.spec.cands {
		cands[i] = paths.Candidate{ID: c, Stats: *o.stats[c]}
	}
	next := paths.Choose(cands, o.choice, now, o.spec.policy)
	if next == o.choice {
		return false
	}
	if next.ID != o.choice.ID && o.choice.ID != "" {
		m.switches.WithLabelValues(o.spec.dist, o.spec.origin).Inc()
		m.log.Info("path changed", "distribution", o.spec.dist, "origin", o.spec.origin, "from", o.choice.ID, "to", next.ID)
	}
	o.choice = next
	return true
}

func (m *pathManager) publish(origins map[string]*originState) {
	v := &pathView{origins: make(map[string]*OriginPaths, len(origins))}
	seen := map[[3]string]bool{}
	for k, o := range origins {
		op := &OriginPaths{Distribution: o.spec.dist, Origin: o.spec.origin, Mode: o.spec.mode, Chosen: o.choice, every: o.spec.every}
		for _, c := range o.spec.cands {
			st := *o.stats[c]
			score, _ := st.Score()
			row := PathRow{ID: c, Stats: st, Score: score, Chosen: c == o.choice.ID, LastFetch: o.lastPassive[c]}
			op.Paths = append(op.Paths, row)
			l := []string{o.spec.dist, o.spec.origin, c}
			seen[[3]string(l)] = true
			m.ttfb.WithLabelValues(l...).Set(st.TTFB.Seconds())
			m.loss.WithLabelValues(l...).Set(st.Loss)
			m.throughput.WithLabelValues(l...).Set(st.Throughput)
			ch := 0.0
			if row.Chosen {
				ch = 1
			}
			m.chosen.WithLabelValues(l...).Set(ch)
		}
		// The chosen path, then the measured ones by score, then the
		// unmeasured ones in preference order.
		rows := slices.Clone(op.Paths)
		slices.SortStableFunc(rows, func(a, b PathRow) int {
			ka, kb := rank(a), rank(b)
			switch {
			case ka < kb:
				return -1
			case ka > kb:
				return 1
			}
			return 0
		})
		for _, r := range rows {
			op.order = append(op.order, r.ID)
		}
		v.origins[k] = op
	}
	// Series of paths no longer configured go; the others are replaced
	// in place, so that a scrape never sees them missing.
	for l := range m.series {
		if !seen[l] {
			for _, g := range []*prometheus.GaugeVec{m.ttfb, m.loss, m.throughput, m.chosen} {
				g.DeleteLabelValues(l[:]...)
			}
		}
	}
	m.series = seen
	m.view.Store(v)
}

// rank sorts rows: chosen (-1), measured by score, unmeasured last.
func rank(r PathRow) float64 {
	switch {
	case r.Chosen:
		return -1
	case r.Score > 0:
		return r.Score
	}
	return 1e9
}

// meter wraps a body so that its throughput is measured when it ends.
func (m *pathManager) meter(b io.ReadCloser, origin, path string) io.ReadCloser {
	return &meteredBody{ReadCloser: b, m: m, origin: origin, path: path, start: time.Now()}
}

type meteredBody struct {
	io.ReadCloser
	m            *pathManager
	origin, path string
	start        time.Time
	n            int64
	done         bool
}

func (b *meteredBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err == io.EOF && !b.done {
		b.done = true
		b.m.observe(b.origin, b.path, paths.Sample{Bytes: b.n, Duration: time.Since(b.start)})
	}
	return n, err
}

// probeHTTP sends one HEAD and times its answer; a 5xx or no answer is a
// failure.
func probeHTTP(ctx context.Context, c *http.Client, url, host string, h http.Header) paths.Sample {
	ctx, ct := traceConn(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return paths.Sample{Failed: true}
	}
	req.Host = host
	for k, v := range h {
		req.Header[k] = v
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return paths.Sample{Failed: true}
	}
	ttfb := time.Since(start)
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return paths.Sample{Failed: true}
	}
	s := paths.Sample{TTFB: ttfb}
	ct.fill(&s)
	return s
}

// maxReportedOrigins bounds what a node's status carries (one etcd value
// rewritten every few seconds); GET /v1/edge/paths has them all.
const maxReportedOrigins = 64

// report is the published view in the node's status (status.RoleReport).
func (m *pathManager) report() []status.OriginPaths {
	var out []status.OriginPaths
	all := m.snapshot("", "")
	for _, o := range all[:min(len(all), maxReportedOrigins)] {
		r := status.OriginPaths{Distribution: o.Distribution, Origin: o.Origin, Mode: o.Mode, Chosen: o.Chosen.ID}
		for _, p := range o.Paths {
			r.Paths = append(r.Paths, status.PathInfo{ID: p.ID, TTFB: p.TTFB.Round(10 * time.Microsecond), RTT: p.RTT.Round(10 * time.Microsecond),
				Loss: math.Round(p.Loss*1000) / 1000, Throughput: math.Round(p.Throughput)})
		}
		out = append(out, r)
	}
	return out
}
