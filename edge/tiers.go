package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/edge/httpcache"
	"github.com/intercloud/intercloud/edge/paths"
	"github.com/intercloud/intercloud/internal/httpsem"
	"github.com/intercloud/intercloud/status"
)

// Tiered caching: a miss may go to the edge of this cloud that owns the
// object (rendezvous hashing), then to parent edges, then to the origin.
// A request between edges carries how many edges it crossed and the tier
// it was sent to; an edge only sends upwards (client → cloud peer →
// parent → origin), so no request can come back down, and one that
// crossed maxHops edges is refused with 508.
const (
	hdrHops  = "X-Intercloud-Hops"
	hdrTier  = "X-Intercloud-Tier"
	hdrProbe = "X-Intercloud-Probe"

	tierPeer   = "peer"   // sent to the cloud's owner of the object
	tierParent = "parent" // sent to a parent edge

	// pathDirect is the direct path's id; the others are "parent:NODE".
	pathDirect = "direct"

	// Edges answer quickly or not at all: a dead parent must cost a
	// request little before the next candidate is tried.
	peerConnectTimeout = 2 * time.Second
	peerReadTimeout    = 60 * time.Second
)

// tierPlan is a behavior's tiers, compiled for this node.
type tierPlan struct {
	mode    string
	maxHops int
	// shard: the edges of this cloud serving the distribution, this one
	// included, when there are several and sharding is on.
	shard []string
	// parents: the parent edges, without this node; isParent says this
	// node is one (it then fetches from the origin itself).
	parents  []string
	isParent bool
	peers    map[string]*peerRef
	// choose: fastest mode orders paths by measurement.
	choose bool
}

// peerRef is another edge, reached on its HTTP listener.
type peerRef struct {
	name   string
	base   string // http://host:port
	key    string // health key
	client *http.Client
}

// compileTiers builds the plan of t for node self of site, nil without
// tiers or without a node.
func compileTiers(t *config.Tiers, site *config.Site, self string, sp *config.Spec, pool *clientPool) *tierPlan {
	me := site.Node(self)
	if t == nil || me == nil {
		return nil
	}
	p := &tierPlan{mode: t.Mode, maxHops: t.MaxHops, peers: map[string]*peerRef{}, choose: sp.Paths.ChooseOn()}
	if p.maxHops <= 0 {
		p.maxHops = config.DefaultTierMaxHops
	}
	serves := func(n *config.Node) bool {
		return n.HasRole(config.RoleEdge) && (len(sp.Edges) == 0 || slices.Contains(sp.Edges, n.Name)) && peerBase(n) != ""
	}
	add := func(n *config.Node) {
		if _, ok := p.peers[n.Name]; !ok && n.Name != self {
			base := peerBase(n)
			p.peers[n.Name] = &peerRef{name: n.Name, base: base, key: "edge/" + n.Name,
				client: pool.client(config.Origin{URL: base, ConnectTimeout: config.Duration(peerConnectTimeout), ReadTimeout: config.Duration(peerReadTimeout)})}
		}
	}
	for i := range site.Nodes {
		n := &site.Nodes[i]
		if !serves(n) {
			continue
		}
		if t.ShardOn() && n.Cloud == me.Cloud {
			p.shard = append(p.shard, n.Name)
			add(n)
		}
		if n.Cloud == t.Parents.Cloud && t.Parents.Cloud != "" || slices.Contains(t.Parents.Nodes, n.Name) {
			if n.Name == self {
				p.isParent = true
				continue
			}
			p.parents = append(p.parents, n.Name)
			add(n)
		}
	}
	if len(p.shard) < 2 {
		p.shard = nil
	}
	slices.Sort(p.parents)
	return p
}

// peerBase is where another edge takes HTTP: its listen.http, with the
// node's address when it listens on every address.
func peerBase(n *config.Node) string {
	host, port, err := net.SplitHostPort(n.Listen.HTTP)
	if err != nil || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = n.Address
	}
	if host == "" {
		return ""
	}
	return "http://" + net.JoinHostPort(host, port)
}

// hop is one way to the object: another edge, or the origin (peer nil).
type hop struct {
	peer *peerRef
	tier string // tierPeer or tierParent; "" for the origin
	path string // the path id measured: pathDirect or "parent:NODE"
}

// upstreams lists, in order, where this miss may be fetched: the cloud's
// owner of the object, then parents (ranked per object in shield mode,
// by measurement in fastest mode), the origin among them or last.
func (x *exchange) upstreams() []hop {
	p := x.b.tier
	direct := hop{path: pathDirect}
	if p == nil || x.b.target.isCanary(x.member) {
		// A canary's share is chosen by client address, which another
		// edge would not see: it is fetched here.
		return []hop{direct}
	}
	e := x.e
	var out []hop
	key := x.storeKey()
	if p.shard != nil && x.level < 1 {
		for _, n := range paths.Rank(key, p.shard) {
			if n == e.node {
				break // this edge owns it
			}
			if pr := p.peers[n]; e.peerUp(pr) {
				out = append(out, hop{peer: pr, tier: tierPeer, path: "peer:" + n})
				break
			}
		}
	}
	if p.isParent || x.level >= 2 || len(p.parents) == 0 {
		return append(out, direct)
	}
	if p.mode == config.TierShield {
		ranked := paths.Rank(key, p.parents)
		var down []hop
		for _, n := range ranked {
			pr := p.peers[n]
			h := hop{peer: pr, tier: tierParent, path: "parent:" + n}
			if e.peerUp(pr) {
				out = append(out, h)
			} else {
				down = append(down, h)
			}
		}
		return append(append(out, down...), direct)
	}
	// fastest: the measured order of direct and each parent.
	var order []string
	if p.choose {
		order = e.paths.order(x.member.key)
	}
	if len(order) == 0 {
		order = append([]string{pathDirect}, parentIDs(p.parents)...)
	}
	var down []hop
	seenDirect := false
	for _, id := range order {
		// The origin's own paths (direct, or its gateway links, which
		// roundTripDirect orders) are one hop, where the first of them
		// ranks.
		if id == pathDirect || strings.HasPrefix(id, linkPrefix) {
			if !seenDirect {
				out = append(out, direct)
				seenDirect = true
			}
			continue
		}
		if pr := p.peers[strings.TrimPrefix(id, "parent:")]; pr != nil {
			h := hop{peer: pr, tier: tierParent, path: id}
			if e.peerUp(pr) {
				out = append(out, h)
			} else {
				down = append(down, h)
			}
		}
	}
	return append(out, down...)
}

// peerUp: the other edge is live as far as this one knows (its lease,
// its own report, the controller's probes; tried last otherwise) and has
// not failed here lately.
func (e *Edge) peerUp(pr *peerRef) bool {
	if live := e.live.Load(); live != nil && !(*live)[pr.name] {
		return false
	}
	return e.health.healthy(pr.key)
}

// SetNodes takes the live nodes (role.NodeWatcher): tiers send nothing
// to an edge whose lease expired or that reports itself unhealthy,
// unless no other candidate is left.
func (e *Edge) SetNodes(live map[string]status.NodeStatus) {
	if cur := e.live.Load(); cur != nil && len(*cur) == len(live) {
		same := true
		for n, st := range live {
			if h, ok := (*cur)[n]; !ok || h != st.Healthy {
				same = false
				break
			}
		}
		if same {
			return // statuses change every few seconds; liveness seldom
		}
	}
	m := make(map[string]bool, len(live))
	for n, st := range live {
		m[n] = st.Healthy
	}
	e.live.Store(&m)
}

func parentIDs(ns []string) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = "parent:" + n
	}
	return out
}

// peerGone: the other edge gave no answer of its own (it could not reach
// its upstream, or refused the hop): the next candidate may.
func peerGone(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable ||
		code == http.StatusGatewayTimeout || code == http.StatusLoopDetected
}

// viaPeer sends the fetch to another edge. The peer gets the client's
// request (not the origin request: it applies the distribution's header
// policy itself) with the validators or range of this fetch.
func (e *Edge) viaPeer(ctx context.Context, x *exchange, hp hop, h http.Header) (*http.Response, error) {
	ph := x.r.Header.Clone()
	removeHopByHop(ph)
	for _, f := range httpsem.Fields {
		ph.Del(f)
		if v, ok := h[f]; ok {
			ph[f] = v
		}
	}
	delete(ph, hdrProbe)
	ph["X-Forwarded-For"] = h["X-Forwarded-For"]
	ph["Via"] = h["Via"]
	ph.Set(hdrHops, strconv.Itoa(x.hops+1))
	ph.Set(hdrTier, hp.tier)
	u := hp.peer.base + x.r.URL.EscapedPath()
	if x.r.URL.RawQuery != "" {
		u += "?" + x.r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header, req.Host = ph, x.r.Host
	rctx, ct := traceConn(ctx)
	req = req.WithContext(rctx)
	start := time.Now()
	resp, err := hp.peer.client.Do(req)
	ttfb := time.Since(start)
	if err != nil {
		e.health.result(hp.peer.key, false)
		e.paths.observe(x.member.key, hp.path, paths.Sample{Failed: true})
		return nil, fmt.Errorf("edge %s: %w", hp.peer.name, err)
	}
	if peerGone(resp.StatusCode) {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		e.health.result(hp.peer.key, resp.StatusCode != http.StatusLoopDetected)
		e.paths.observe(x.member.key, hp.path, paths.Sample{Failed: true})
		return nil, fmt.Errorf("edge %s: status %d", hp.peer.name, resp.StatusCode)
	}
	e.health.result(hp.peer.key, true)
	if hitAt(resp.Header) {
		// A parent's hit says nothing of the path to the origin.
		e.paths.observe(x.member.key, hp.path, paths.Sample{})
	} else {
		s := paths.Sample{TTFB: ttfb}
		ct.fill(&s)
		e.paths.observe(x.member.key, hp.path, s)
		resp.Body = e.paths.meter(resp.Body, x.member.key, hp.path)
	}
	return resp, nil
}

// hitAt: the answering edge served the object from its cache.
func hitAt(h http.Header) bool {
	cs := h.Values("Cache-Status")
	if len(cs) == 0 {
		return false
	}
	last := cs[len(cs)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.Contains(last, cacheName+"; hit")
}

// readHops reads the hop headers of a request from another edge; false
// with a message when they are malformed.
func (x *exchange) readHops() bool {
	v, ok := x.r.Header[hdrHops]
	if !ok {
		return true
	}
	n, err := strconv.Atoi(strings.TrimSpace(v[0]))
	if err != nil || n < 0 || len(v) > 1 {
		x.class = "error"
		x.plain(http.StatusBadRequest, "intercloud-edge: malformed "+hdrHops+" header\n")
		return false
	}
	x.hops = n
	switch x.r.Header.Get(hdrTier) {
	case tierPeer:
		x.level = 1
	case tierParent:
		x.level = 2
	}
	limit := config.DefaultTierMaxHops
	if x.b.tier != nil {
		limit = x.b.tier.maxHops
	}
	if n >= limit {
		x.class = "error"
		x.status(statusLoop)
		x.plain(http.StatusLoopDetected, "intercloud-edge: loop detected: this request already crossed "+strconv.Itoa(n)+" edges (limit "+strconv.Itoa(limit)+"); check the distribution's tiers\n")
		return false
	}
	return true
}

// roundTripTiers fetches a miss from the first of its upstreams that
// answers: another edge, or the origin group. Nothing fails while one
// candidate is left.
func (e *Edge) roundTripTiers(ctx context.Context, x *exchange, h http.Header, cond revalidation) (*http.Response, *originRef, error) {
	var errs []error
	for _, hp := range x.upstreams() {
		if hp.peer == nil {
			x.via = ""
			resp, o, err := e.roundTripDirect(ctx, x, http.MethodGet, h, cond, http.NoBody, 0)
			if err == nil {
				return resp, o, nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		ph := h
		if cond.h != nil && cond.producer == x.member.id {
			// The peer stores the member's copies: its 304 speaks for
			// the member.
			ph = cond.h
		}
		resp, err := e.viaPeer(ctx, x, hp, ph)
		if err == nil {
			x.via = hp.tier
			return resp, x.member, nil
		}
		e.metrics.failovers.WithLabelValues(x.d.name).Inc()
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, nil, fmt.Errorf("%w: %w", errOrigin, errors.Join(errs...))
}

// connTrace keeps the connection a request got and its kernel counters
// then, so that the fetch's RTT and retransmissions can be told after.
type connTrace struct {
	mu    sync.Mutex
	conn  net.Conn
	start tcpCounters
}

// traceConn adds a connTrace to ctx.
func traceConn(ctx context.Context) (context.Context, *connTrace) {
	t := &connTrace{}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if c, ok := connInfo(i.Conn); ok {
			t.mu.Lock()
			t.conn, t.start = i.Conn, c
			t.mu.Unlock()
		}
	}}), t
}

// fill adds to s the connection's RTT and the share of this request's
// data segments that had to be sent again (the edge sees its own
// direction only: what it sent and retransmitted).
func (t *connTrace) fill(s *paths.Sample) {
	t.mu.Lock()
	conn, start := t.conn, t.start
	t.mu.Unlock()
	if conn == nil {
		return
	}
	now, ok := connInfo(conn)
	if !ok {
		return
	}
	s.RTT = now.rtt
	re, out := now.retrans-start.retrans, now.dataOut-start.dataOut
	if out > re {
		s.Lost = float64(re) / float64(out-re)
	}
}

// observeDirect hands a fetch from the origin to the path measurements.
func (e *Edge) observeDirect(o *originRef, path string, resp *http.Response, err error, ttfb time.Duration, ct *connTrace) {
	if err != nil || resp.StatusCode >= 500 {
		e.paths.observe(o.key, path, paths.Sample{Failed: true})
		return
	}
	s := paths.Sample{TTFB: ttfb}
	ct.fill(&s)
	e.paths.observe(o.key, path, s)
	resp.Body = e.paths.meter(resp.Body, o.key, path)
}

// answerProbe answers another edge's probe of the path through this
// one: a HEAD to the named origin, timed by the prober.
func (x *exchange) answerProbe() {
	x.class = "bypass"
	name := x.r.Header.Get(hdrProbe)
	var o *originRef
	for _, b := range x.d.behaviors {
		for _, m := range b.target.members {
			if m.name == name {
				o = m
			}
		}
	}
	if o == nil {
		x.plain(http.StatusNotFound, "intercloud-edge: probe of unknown origin "+quote(name)+"\n")
		return
	}
	ctx, cancel := context.WithTimeout(x.r.Context(), 10*time.Second)
	defer cancel()
	via := append(x.r.Header.Values("Via"), viaValue(x.r))
	s := probeHTTP(ctx, o.client, probeURL(o), o.host, http.Header{"Via": via})
	if s.Failed {
		x.plain(http.StatusBadGateway, "intercloud-edge: probe of origin "+o.name+" failed\n")
		return
	}
	x.w.Header().Set("Cache-Status", cacheName+"; fwd=bypass; detail=probe")
	x.w.WriteHeader(http.StatusNoContent)
}

func probeURL(o *originRef) string {
	u := *o.base
	u.Path = strings.TrimSuffix(o.base.Path, "/") + o.probePath
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u.String()
}

// pathSpecs lists the origins of t whose paths are measured: the members
// of every behavior with parents, and every origin reached over one of
// several gateway links.
func pathSpecs(t *table) []originSpec {
	var out []originSpec
	if t.tiered == 0 {
		return out // most sites: no paths to choose, nothing to walk 10,000 hosts for
	}
	seen := map[string]bool{}
	for _, d := range t.hosts.all() {
		for _, b := range d.behaviors {
			p := b.tier
			parents := p != nil && len(p.parents) > 0 && !p.isParent
			for _, o := range b.target.members {
				if seen[o.key] || !parents && len(o.links) == 0 {
					continue
				}
				seen[o.key] = true
				var pp *tierPlan
				if parents {
					pp = p
				}
				out = append(out, originSpecOf(d, o, pp, b.pathPolicy))
			}
		}
	}
	return out
}

// originSpecOf is what the path manager measures of o: the direct path,
// then the parents of p (nil: none), then o's links.
func originSpecOf(d *dist, o *originRef, p *tierPlan, pol pathPolicy) originSpec {
	cands := o.directIDs()
	mode := "links"
	choose := pol.choose
	if p != nil {
		cands = append(cands, parentIDs(p.parents)...)
		mode = p.mode
		// In shield mode parents are ranked per object; only the links
		// (if any) are chosen by measurement.
		choose = choose && (p.mode == config.TierFastest || len(o.links) > 0)
	}
	if !choose && (p == nil || p.mode == config.TierFastest) {
		mode += " (choice off)"
	}
	host := d.host
	return originSpec{
		key: o.key, dist: d.name, origin: o.name, cands: cands, choose: choose, mode: mode,
		policy: pol.Policy, every: pol.every,
		probe: func(ctx context.Context, path string) paths.Sample {
			if c := o.linkClient(path); c != nil {
				return probeHTTP(ctx, c, probeURL(o), o.host, http.Header{"Via": {probeVia}})
			}
			if p == nil {
				return paths.Sample{Failed: true}
			}
			pr := p.peers[strings.TrimPrefix(path, "parent:")]
			if pr == nil {
				return paths.Sample{Failed: true}
			}
			return probeHTTP(ctx, pr.client, pr.base+o.probePath, host, http.Header{
				hdrProbe: {o.name}, hdrHops: {"1"}, hdrTier: {tierParent}, "Via": {probeVia}})
		},
	}
}

// pathMinGain: differences of a few milliseconds between paths are
// jitter on a busy host, not a reason to leave the direct path.
const pathMinGain = 10 * time.Millisecond

// probeVia is the Via of a probe, as of any request an edge forwards.
const probeVia = "1.1 intercloud-edge"

// pathPolicy is a distribution's rendered path policy.
type pathPolicy struct {
	paths.Policy
	every time.Duration
	// choose: misses take the measured best path (paths.choose).
	choose bool
}

func pathPolicyOf(p *config.PathPolicy) pathPolicy {
	out := pathPolicy{Policy: paths.Policy{Margin: config.DefaultPathMargin, Hold: config.DefaultPathHold.D(),
		StaleAfter: config.DefaultPathStaleAfter.D(), MinGain: pathMinGain}, every: config.DefaultPathProbe.D()}
	out.Confirm = max(time.Second, 2*out.every)
	out.choose = p.ChooseOn()
	if p == nil {
		return out
	}
	if p.Probe > 0 {
		out.every = p.Probe.D()
	}
	if p.Margin > 0 {
		out.Margin = p.Margin
	}
	if p.Hold > 0 {
		out.Hold = p.Hold.D()
	}
	if p.StaleAfter > 0 {
		out.StaleAfter = p.StaleAfter.D()
	}
	// Two probes of the other paths confirm that one stays better.
	out.Confirm = max(time.Second, 2*out.every)
	return out
}

// statusLoop is the Cache-Status of a request refused for its hops.
var statusLoop = httpcache.CacheStatus{Fwd: httpcache.FwdBypass, Detail: "loop-detected"}

// mountPathRoutes adds GET /v1/edge/paths?distribution=D&origin=O: each
// measured origin's candidate paths and the chosen one.
func (e *Edge) mountPathRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/edge/paths", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		out := e.paths.snapshot(q.Get("distribution"), q.Get("origin"))
		if out == nil {
			out = []OriginPaths{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
}
