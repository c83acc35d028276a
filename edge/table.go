package edge

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/edge/httpcache"
)

// table is the immutable routing state built from one snapshot. Requests
// load it once and finish on it even if a newer table is swapped in.
type table struct {
	revision int64
	// hosts, certs and byName (the distributions by name) are shared with
	// the revisions built from this one (layered.go).
	hosts  layered[*dist]
	certs  layered[*certFile]
	byName layered[*dist]
	anyTLS bool
	// tiered counts the distributions that have paths to choose among
	// (parents or gateway links).
	tiered int
	listen config.Listen
	cache  config.Cache
	// accessLog is the node's, as rendered; nil for an edge without node.
	accessLog *config.AccessLog
	// site and node place this edge among the others for tiers.
	site *config.Site
	node string
}

type dist struct {
	name       string
	behaviors  []*behavior
	errorPages map[int]config.ErrorPage
	headers    config.Headers
	// reqSet / reqRemove are the request policy with canonical names.
	reqSet    map[string]string
	reqRemove map[string]bool
	// counters are the distribution's request and byte counters by
	// class, resolved on its first request.
	counters atomic.Pointer[distCounters]
	// host is the name other edges are asked for it by (tiers.go).
	host string
	// hostNames are the table's keys for it; tiered says a behavior's
	// misses have paths to choose among (parents or gateway links).
	hostNames []string
	tiered    bool
}

type behavior struct {
	pattern        string
	target         *target
	cache          bool
	ttl            httpcache.TTLPolicy
	query          config.Selection
	cookies        config.Selection
	headers        []string // canonical names forwarded and keyed
	allHeaders     bool     // "*": forward every header, key none (Vary decides)
	methods        map[string]bool
	allow          string
	cacheSetCookie bool
	redirectHTTPS  bool
	compress       bool
	httpsPort      string // appended to redirects when not 443

	tier       *tierPlan // nil: misses go to the origin (tiers.go)
	pathPolicy pathPolicy
}

// target is an origin group (a lone origin is a group of one).
type target struct {
	name       string
	members    []*originRef
	active     int
	failoverOn map[int]bool
	canary     *originRef
	weight     int
	// keepCache: entries fetched for another member stay fresh for
	// clients of this one (config.OriginGroup.KeepCache).
	keepCache bool
}

type originRef struct {
	name   string
	key    string // "<distribution>/<origin>", the health map key
	id     memberID
	base   *url.URL
	host   string // Host header sent to the origin
	client *http.Client
	// probePath is what path probes ask for: the health check's path.
	probePath string
	// links are the gateway links this edge may reach the origin over
	// besides the direct path (linkpaths.go); nil: direct only.
	links []linkRef
}

// buildTable validates and compiles a snapshot for node; it never
// touches serving state, so a bad snapshot leaves the old table serving.
func buildTable(snap *config.Snapshot, node string, pool *clientPool, ids *memberIDs) (*table, error) {
	if snap == nil {
		return nil, errors.New("nil snapshot")
	}
	t := &table{revision: snap.Revision, hosts: newLayered[*dist](), certs: newLayered[*certFile](), byName: newLayered[*dist](),
		site: &snap.Site, node: node}
	if n := snap.Site.Node(node); n != nil {
		t.listen, t.cache, t.accessLog = n.Listen, n.Cache, n.AccessLog
		// Rendering fills both; a zero here would silently make every
		// object too large to cache.
		if n.Cache.Memory <= 0 || n.Cache.MaxObject <= 0 {
			return nil, fmt.Errorf("node %q: cache.memory %d and cache.maxObject %d must be positive (config rendering fills them)", node, n.Cache.Memory, n.Cache.MaxObject)
		}
	} else if node != "" {
		return nil, fmt.Errorf("node %q is not in the site", node)
	}
	var errs []error
	for i := range snap.Distributions {
		if err := t.add(&snap.Distributions[i], snap.Site.DNS.Zone, pool, ids); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// buildTableFrom builds snap's table from prev, the running one, when snap
// says what changed since prev's revision: only the changed distributions
// are compiled, the others are shared with prev. It returns nil when snap
// cannot be built that way (no delta, another base, a site change).
func buildTableFrom(prev *table, snap *config.Snapshot, pool *clientPool, ids *memberIDs) (*table, error) {
	dl := snap.Delta
	if prev == nil || dl == nil || dl.Base != prev.revision || dl.Site {
		return nil, nil
	}
	t := &table{revision: snap.Revision, listen: prev.listen, cache: prev.cache, accessLog: prev.accessLog, site: &snap.Site, node: prev.node,
		hosts: prev.hosts.next(), certs: prev.certs.next(), byName: prev.byName.next(), tiered: prev.tiered}
	for _, names := range [][]string{dl.Changed, dl.Removed} {
		for _, n := range names {
			t.remove(n)
		}
	}
	t.anyTLS = t.certs.len() > 0
	var errs []error
	for _, n := range dl.Changed {
		// Snapshots keep their distributions sorted by name.
		i, ok := slices.BinarySearchFunc(snap.Distributions, n, func(d config.Distribution, n string) int { return strings.Compare(d.Name, n) })
		if !ok {
			return nil, nil // not the snapshot its delta describes: build it whole
		}
		if err := t.add(&snap.Distributions[i], snap.Site.DNS.Zone, pool, ids); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// remove takes distribution name out of t.
func (t *table) remove(name string) {
	d, ok := t.byName.get(name)
	if !ok {
		return // disabled, or new
	}
	for _, h := range d.hostNames {
		t.hosts.del(h)
		t.certs.del(h)
	}
	t.byName.del(name)
	if d.tiered {
		t.tiered--
	}
}

// add compiles one distribution into t.
func (t *table) add(dd *config.Distribution, zone string, pool *clientPool, ids *memberIDs) error {
	if dd.Spec.Disabled {
		return nil
	}
	d, err := buildDist(dd, pool, ids, httpsPort(t.listen.HTTPS))
	if err != nil {
		return fmt.Errorf("distribution %s: %w", dd.Name, err)
	}
	names := dd.Spec.Aliases
	if zone != "" {
		names = append([]string{dd.Domain(zone)}, names...)
	}
	if len(names) > 0 {
		d.host = names[0]
	}
	if t.site != nil {
		for i, b := range d.behaviors {
			tr := dd.Spec.Behaviors[i].Tiers
			if tr == nil {
				tr = dd.Spec.Tiers
			}
			b.tier = compileTiers(tr, t.site, t.node, &dd.Spec, pool)
			b.pathPolicy = pathPolicyOf(dd.Spec.Paths)
			if p := b.tier; p != nil && len(p.parents) > 0 && !p.isParent {
				d.tiered = true
			}
		}
		attachLinks(d, dd, t.site, t.node, pool)
		for _, b := range d.behaviors {
			for _, o := range b.target.members {
				if len(o.links) > 0 {
					d.tiered = true // its misses choose among gateway links
				}
			}
		}
	}
	var cert *certFile
	if dd.Spec.TLS.CertFile != "" || dd.Spec.TLS.KeyFile != "" {
		c, err := loadCertFile(dd.Spec.TLS.CertFile, dd.Spec.TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("distribution %s: %w", dd.Name, err)
		}
		cert, t.anyTLS = c, true
	}
	var errs []error
	for _, h := range names {
		h = normalizeHost(h)
		if other, ok := t.hosts.get(h); ok {
			errs = append(errs, fmt.Errorf("distribution %s: host %q is also served by %s", dd.Name, h, other.name))
			continue
		}
		t.hosts.set(h, d)
		d.hostNames = append(d.hostNames, h)
		if cert != nil {
			t.certs.set(h, cert)
		}
	}
	t.byName.set(dd.Name, d)
	if d.tiered {
		t.tiered++
	}
	return errors.Join(errs...)
}

// httpsPort is the port redirects name, empty for 443 or unknown.
func httpsPort(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "443" || port == "0" {
		return ""
	}
	return port
}

func buildDist(dd *config.Distribution, pool *clientPool, ids *memberIDs, redirectPort string) (*dist, error) {
	// Maps left empty stay nil: an edge holds thousands of distributions
	// (and a benchmark process a hundred edges), and reads of nil maps work.
	d := &dist{name: dd.Name, headers: dd.Spec.Headers}
	for k, v := range dd.Spec.Headers.Request.Set {
		if d.reqSet == nil {
			d.reqSet = map[string]string{}
		}
		d.reqSet[http.CanonicalHeaderKey(k)] = v
	}
	for _, k := range dd.Spec.Headers.Request.Remove {
		if d.reqRemove == nil {
			d.reqRemove = map[string]bool{}
		}
		d.reqRemove[http.CanonicalHeaderKey(k)] = true
	}
	origins := map[string]*originRef{}
	names := slices.Sorted(maps.Keys(dd.Spec.Origins))
	for _, n := range names {
		o := dd.Spec.Origins[n]
		u, err := url.Parse(o.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("origin %s: url %q must be http(s)://host[:port][/path]", n, o.URL)
		}
		host := u.Host
		if o.HostHeader != "" {
			host = o.HostHeader
		}
		origins[n] = &originRef{name: n, key: dd.Name + "/" + n, id: ids.id(dd.Name, n, u.String(), host),
			base: u, host: host, client: pool.client(o), probePath: "/"}
		if o.Health != nil && strings.HasPrefix(o.Health.Path, "/") {
			origins[n].probePath = o.Health.Path
		}
	}
	targets := map[string]*target{}
	for n, o := range origins {
		targets[n] = &target{name: n, members: []*originRef{o}}
	}
	for gn, g := range dd.Spec.OriginGroups {
		if _, dup := targets[gn]; dup {
			return nil, fmt.Errorf("origin group %s has the name of an origin", gn)
		}
		if len(g.Members) == 0 {
			return nil, fmt.Errorf("origin group %s has no members", gn)
		}
		tg := &target{name: gn, keepCache: g.KeepCache}
		for i, m := range g.Members {
			o, ok := origins[m]
			if !ok {
				return nil, fmt.Errorf("origin group %s: unknown member %q", gn, m)
			}
			tg.members = append(tg.members, o)
			if m == g.Active {
				tg.active = i
			}
		}
		if g.Active != "" && tg.members[tg.active].name != g.Active {
			return nil, fmt.Errorf("origin group %s: active %q is not a member", gn, g.Active)
		}
		for _, s := range g.FailoverOn {
			if tg.failoverOn == nil {
				tg.failoverOn = map[int]bool{}
			}
			tg.failoverOn[s] = true
		}
		if g.Canary != nil && g.Canary.Weight > 0 {
			o, ok := origins[g.Canary.Member]
			if !ok {
				return nil, fmt.Errorf("origin group %s: unknown canary member %q", gn, g.Canary.Member)
			}
			if g.Canary.Weight > 100 {
				return nil, fmt.Errorf("origin group %s: canary weight %d above 100", gn, g.Canary.Weight)
			}
			tg.canary, tg.weight = o, g.Canary.Weight
		}
		targets[gn] = tg
	}
	if len(dd.Spec.Behaviors) == 0 {
		return nil, errors.New("no behaviors")
	}
	for i, b := range dd.Spec.Behaviors {
		tg, ok := targets[b.Target]
		if !ok {
			return nil, fmt.Errorf("behavior %d (%s): unknown target %q", i, b.Path, b.Target)
		}
		cb := &behavior{
			pattern: normalizePattern(b.Path), target: tg, cache: b.Cache == nil || *b.Cache,
			ttl:   ttlPolicy(dd.Spec.TTL, b.TTL),
			query: b.Forward.Query, cookies: b.Forward.Cookies, cacheSetCookie: b.CacheSetCookie,
			redirectHTTPS: b.RedirectHTTPS, compress: b.Compress, httpsPort: redirectPort,
		}
		for _, h := range b.Forward.Headers {
			if h == "*" {
				cb.allHeaders = true
				continue
			}
			cb.headers = append(cb.headers, http.CanonicalHeaderKey(h))
		}
		sort.Strings(cb.headers)
		cb.methods, cb.allow = methodSet(b.Methods)
		d.behaviors = append(d.behaviors, cb)
	}
	for _, ep := range dd.Spec.ErrorPages {
		if ep.Status < 400 || ep.Status > 599 || !strings.HasPrefix(ep.Path, "/") {
			return nil, fmt.Errorf("error page for %d: status must be 4xx/5xx and path absolute", ep.Status)
		}
		if ep.ResponseCode < 100 || ep.ResponseCode > 599 {
			return nil, fmt.Errorf("error page for %d: responseCode %d is not an HTTP status (config rendering fills it)", ep.Status, ep.ResponseCode)
		}
		if d.errorPages == nil {
			d.errorPages = map[int]config.ErrorPage{}
		}
		d.errorPages[ep.Status] = ep
	}
	return d, nil
}

// methodSets interns the allowed-method sets by the list a behavior
// gives: most behaviors of most distributions allow the same few, and
// each set is read-only once built.
var methodSets sync.Map // the list, joined by "," → methodSetOf

// methodSet is the methods a behavior allows (HEAD with GET) and its
// Allow header.
func methodSet(methods []string) (map[string]bool, string) {
	key := strings.Join(methods, ",") // "" for the default: no allocation
	if ms, ok := methodSets.Load(key); ok {
		return ms.(methodSetOf).set, ms.(methodSetOf).allow
	}
	if len(methods) == 0 {
		methods = config.DefaultMethods
	}
	set := make(map[string]bool, len(methods)+1)
	for _, m := range methods {
		set[strings.ToUpper(m)] = true
	}
	if set[http.MethodGet] {
		set[http.MethodHead] = true
	}
	allow := strings.Join(slices.Sorted(maps.Keys(set)), ", ")
	ms, _ := methodSets.LoadOrStore(key, methodSetOf{set, allow})
	return ms.(methodSetOf).set, ms.(methodSetOf).allow
}

type methodSetOf struct {
	set   map[string]bool
	allow string
}

// ttlPolicy merges a behavior's TTL over the distribution's.
func ttlPolicy(dt, bt config.TTL) httpcache.TTLPolicy {
	get := func(b, d *config.Duration) *time.Duration {
		if b == nil {
			b = d
		}
		if b == nil {
			return nil
		}
		v := b.D()
		return &v
	}
	return httpcache.TTLPolicy{
		Default: get(bt.Default, dt.Default), Min: get(bt.Min, dt.Min), Max: get(bt.Max, dt.Max),
		StaleWhileRevalidate: get(bt.StaleWhileRevalidate, dt.StaleWhileRevalidate),
		StaleIfError:         get(bt.StaleIfError, dt.StaleIfError),
	}
}

func (d *dist) match(path string) *behavior {
	for _, b := range d.behaviors {
		if matchPath(b.pattern, path) {
			return b
		}
	}
	return nil
}

// normalizeHost lowercases and drops the port and a trailing dot.
func normalizeHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	if plainHost(h) {
		return strings.TrimSuffix(h, ".") // what the rest does to it
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	return strings.Trim(h, "[]")
}

// plainHost: h is ASCII without upper case letters and brackets, which
// ToLower and Trim would change.
func plainHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 0x80 || c >= 'A' && c <= 'Z' || c == '[' || c == ']' {
			return false
		}
	}
	return true
}

// lookup is the distribution serving host, nil when none does.
func (t *table) lookup(host string) *dist {
	d, _ := t.hosts.get(host)
	return d
}
