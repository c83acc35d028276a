// Package edge is the CDN edge: it routes requests by host to a
// distribution and by path to a behavior, serves them from an RFC 9111
// cache on ristretto, and fetches misses from origin groups with
// failover. Caching rules live in the pure package edge/httpcache.
package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"

	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/accesslog"
	"github.com/intercloud/intercloud/internal/listen"
	"github.com/intercloud/intercloud/internal/promreg"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/status"
)

const (
	// keepValidated is how long a stale entry with a validator stays for
	// cheap conditional revalidation.
	keepValidated = time.Hour
)

// Options configure an Edge.
type Options struct {
	// Node is this node's name in the site; its listen and cache sections
	// are used. Empty means: no listeners (ServeHTTP only, for embedding).
	Node     string
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// Mux, when set, gets the edge's node API (/v1/edge/...).
	Mux *http.ServeMux
	// AccessLog writes the access log the node's accessLog section
	// describes (internal/accesslog); without it, or without a Node, the
	// edge logs no requests.
	AccessLog bool
	// LimitMemory sets the process's Go memory limit to the cache size
	// plus 24 MiB (unless GOMEMLIMIT is set), which keeps RSS within the
	// cache size + 64 MiB. Only for a process that is mostly this cache:
	// the limit is process-wide.
	// The garbage collector then runs by that limit alone (GOGC off)
	// unless GOGC is set. `intercloud node` sets it; `up` does not.
	LimitMemory bool
}

// Edge is the edge role: safe for concurrent use; Apply swaps its routing
// table atomically.
type Edge struct {
	log       *slog.Logger
	node      string
	accessLog bool
	metrics   *metrics

	table      atomic.Pointer[table]
	alog       atomic.Pointer[accesslog.Log] // nil: off
	alogCfg    *config.AccessLog             // what alog was opened with; under mu
	store      cacheStore
	tier       *tiered  // store, with its disk tier
	filling    sync.Map // flight key → *fillResult of a streaming fill
	pool       *clientPool
	members    *memberIDs
	health     *health
	flight     singleflight.Group
	purgeGen   atomic.Uint64
	markerGen  atomic.Uint64
	bg         sync.WaitGroup
	refreshing sync.Map              // keys with a background refresh running
	serveErr   atomic.Pointer[error] // a listener that stopped on its own (nil once healed)
	now        func() time.Time

	maxObject     atomic.Int64
	limitMem      bool
	memLimit      int64 // the Go memory limit this edge set, if any (memlimit.go)
	memCache      int64 // the cache size it was set for
	memStop       chan struct{}
	keepValidated time.Duration

	requests, hits, errors5xx   atomic.Int64
	originFetches, originErrors atomic.Int64

	paths *pathManager // path measurements and choice (tiers.go)
	rtt   *clientRTT   // RTT towards client networks (clientrtt.go)
	// live is the edges the agent last saw live and healthy (nil: not
	// known yet, all are); tiers skip the others (tiers.go).
	live atomic.Pointer[map[string]bool]

	mu          sync.Mutex // Apply and Close
	servers     []*listen.Listener
	closed      bool
	diskCfg     *config.DiskCache // the disk tier's, under mu
	diskMetrics *promreg.Group
	// diskErr says why the configured disk tier could not be opened (the
	// edge serves from memory; the next revision or SIGHUP tries again).
	diskErr atomic.Pointer[string]
}

// New makes an edge that serves nothing until the first Apply.
func New(o Options) (*Edge, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Edge{
		log: log.With("role", "edge"), node: o.Node, accessLog: o.AccessLog, limitMem: o.LimitMemory,
		pool: newClientPool(), members: newMemberIDs(), health: newHealth(), now: time.Now,
		keepValidated: keepValidated, memStop: make(chan struct{}),
	}
	// Sized as config renders a node that says nothing, until a revision
	// with this node's cache section (an edge with no node keeps it).
	st, err := newMemStore(int64(config.DefaultCacheMemory))
	if err != nil {
		return nil, err
	}
	e.tier = newTiered(st, e.memMax, e.members, func() time.Time { return e.now() }, e.log)
	e.store = e.tier
	// Vary markers made after a restart must not reuse the generations
	// of variants the disk tier kept.
	e.markerGen.Store(uint64(time.Now().UnixNano()))
	e.maxObject.Store(int64(config.DefaultCacheMaxObject))
	m, err := newMetrics(o.Registry, e)
	if err != nil {
		st.Close()
		return nil, err
	}
	e.metrics = m
	if e.diskMetrics, err = registerDiskMetrics(o.Registry, e); err != nil {
		m.unregister()
		st.Close()
		return nil, fmt.Errorf("edge metrics: %w", err)
	}
	if e.paths, err = newPathManager(o.Registry, e.log, func() time.Time { return e.now() }); err != nil {
		m.unregister()
		e.diskMetrics.Unregister()
		st.Close()
		return nil, fmt.Errorf("edge metrics: %w", err)
	}
	e.rtt = newClientRTT()
	if o.Mux != nil {
		e.mountRoutes(o.Mux)
	}
	return e, nil
}

// Prepare builds the routing table of snap and binds the listeners whose
// address is new; listeners whose address stays are reused. Nothing that
// serves changes until Commit.
func (e *Edge) Prepare(ctx context.Context, snap *config.Snapshot) (role.Change, error) {
	// A change to a few distributions of a large site compiles those.
	t, err := buildTableFrom(e.table.Load(), snap, e.pool, e.members)
	if err == nil && t == nil {
		t, err = buildTable(snap, e.node, e.pool, e.members)
	}
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errors.New("edge: closed")
	}
	c := &edgeChange{e: e, t: t, want: map[string]bool{}}
	if e.node != "" {
		c.prepareDisk()
		if t.listen.HTTP == "" {
			c.Abort()
			return nil, fmt.Errorf("edge: node %s has no listen.http address", e.node)
		}
		c.want["http "+t.listen.HTTP] = true
		if t.listen.HTTPS != "" && t.anyTLS {
			c.want["https "+t.listen.HTTPS] = true
		}
		for k := range c.want {
			if e.serving(k) {
				continue
			}
			s, err := e.bind(k)
			if err != nil {
				c.Abort()
				return nil, fmt.Errorf("edge: %w", err)
			}
			c.binds = append(c.binds, s)
		}
	}
	if e.accessLog && e.node != "" {
		// A log whose settings stay and whose path still names its file
		// is kept. New settings, or a file logrotate renamed (its
		// postrotate sends SIGHUP, which applies the revision again),
		// open it anew.
		if cur := e.alog.Load(); cur != nil && sameAccessLog(e.alogCfg, t.accessLog) && cur.Current() {
			c.keepLog = true
		} else if c.alog, err = e.openAccessLog(t.accessLog); err != nil {
			c.Abort()
			return nil, fmt.Errorf("edge: %w", err)
		}
	}
	return c, nil
}

func sameAccessLog(a, b *config.AccessLog) bool {
	return a != nil && b != nil && *a == *b
}

// edgeChange is a prepared revision: its table and the listeners it bound.
type edgeChange struct {
	e     *Edge
	t     *table
	want  map[string]bool
	binds []*listen.Listener
	alog  *accesslog.Log
	// keepLog: the running access log stays (alog is nil).
	keepLog bool
	// disk is a newly opened disk tier; setDisk says the tier changes
	// (to disk, nil for memory only).
	disk    *diskTier
	setDisk bool
	diskErr error // the configured tier could not be opened
}

// prepareDisk opens the node's disk tier when its path is new; e.mu is
// held. A tier that cannot be opened (a missing mount, a file where the
// directory should be) does not fail the revision: the edge serves from
// memory and the origin, and says it is degraded.
func (c *edgeChange) prepareDisk() {
	want, cur := c.t.cache.Disk, c.e.diskCfg
	switch {
	case want == nil:
		c.setDisk = cur != nil || c.e.diskErr.Load() != nil
	case cur == nil || want.Path != cur.Path:
		d, err := openDiskTier(*want, c.e.log)
		if err != nil {
			c.e.log.Error("disk tier unavailable; serving from memory and the origin", "path", want.Path, "error", err)
			c.diskErr, c.setDisk = err, true
			return
		}
		c.disk, c.setDisk = d, true
	}
}

// Commit swaps the table in, starts the new listeners and closes those no
// longer configured at once (their requests in flight finish on their own).
func (c *edgeChange) Commit() {
	e, t := c.e, c.t
	e.mu.Lock()
	defer e.mu.Unlock()
	if mem := int64(t.cache.Memory); mem > 0 { // an edge with no node keeps its sizes
		e.store.SetCapacity(mem)
		if e.limitMem {
			e.limitMemory(mem)
		}
		e.maxObject.Store(min(int64(t.cache.MaxObject), mem/4))
	}
	if c.setDisk {
		e.tier.setDisk(c.disk)
		e.diskCfg = t.cache.Disk
		e.diskErr.Store(nil)
		if c.diskErr != nil {
			e.diskCfg = nil // tried again by the next revision
			msg := "disk tier " + t.cache.Disk.Path + ": " + c.diskErr.Error()
			e.diskErr.Store(&msg)
		}
		c.disk = nil
	} else if d := e.tier.disk.Load(); d != nil && t.cache.Disk != nil {
		d.s.SetSize(int64(t.cache.Disk.Size))
		e.diskCfg = t.cache.Disk
	}
	e.table.Store(t)
	e.paths.configure(pathSpecs(t))
	if e.accessLog && e.node != "" && !c.keepLog {
		e.closeAccessLog(e.alog.Swap(c.alog))
		e.alogCfg = t.accessLog
	}
	for _, l := range c.binds {
		e.servers = append(e.servers, l)
		l.Serve()
	}
	var keep []*listen.Listener
	for _, l := range e.servers {
		if c.want[listenerKey(l)] || e.node == "" {
			keep = append(keep, l)
			continue
		}
		l.Stop(30 * time.Second)
	}
	e.servers = keep
	e.log.Info("applied", "revision", t.revision, "hosts", t.hosts.len(), "tls", t.anyTLS)
}

// Abort releases the listeners Prepare bound.
func (c *edgeChange) Abort() {
	for _, l := range c.binds {
		l.Stop(0)
	}
	c.binds = nil
	c.e.closeAccessLog(c.alog)
	c.alog = nil
	if c.disk != nil {
		c.disk.closeUnstarted()
		c.disk = nil
	}
}

func listenerKey(l *listen.Listener) string {
	if l.TLS() {
		return "https " + l.Configured()
	}
	return "http " + l.Configured()
}

func (e *Edge) serving(k string) bool {
	for _, l := range e.servers {
		if listenerKey(l) == k {
			return true
		}
	}
	return false
}

func (e *Edge) bind(k string) (*listen.Listener, error) {
	isTLS := strings.HasPrefix(k, "https ")
	cfg := listen.Config{
		Addr:              k[strings.IndexByte(k, ' ')+1:],
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
		ConnContext:       e.rtt.connContext,
		OnError: func(err error) {
			e.log.Error("listener stopped", "error", err)
			err = fmt.Errorf("edge: %w", err)
			e.serveErr.Store(&err)
		},
	}
	if isTLS {
		cfg.TLS = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{"h2", "http/1.1"},
			GetCertificate: e.certificate,
		}
	}
	return listen.Bind(cfg)
}

// certificate picks the distribution's certificate by SNI from the
// current table, so a new certificate applies without a restart.
func (e *Edge) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	t := e.table.Load()
	if t == nil {
		return nil, errors.New("no configuration")
	}
	if c, ok := t.certs.get(normalizeHost(hello.ServerName)); ok {
		return c.get(), nil
	}
	return nil, fmt.Errorf("no certificate for %q", hello.ServerName)
}

// Addrs returns the bound listener addresses ("http"/"https" → host:port).
func (e *Edge) Addrs() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]string{}
	for _, l := range e.servers {
		if l.TLS() {
			out["https"] = l.Addr().String()
		} else {
			out["http"] = l.Addr().String()
		}
	}
	return out
}

// Ready is nil once a table is loaded and the listeners are up.
func (e *Edge) Ready() error {
	if e.table.Load() == nil {
		return errors.New("edge: no configuration applied yet")
	}
	if err := e.serveErr.Load(); err != nil {
		return *err
	}
	return nil
}

// Close stops the listeners gracefully and waits for background refreshes.
func (e *Edge) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.memStop)
	servers := e.servers
	e.servers = nil
	e.mu.Unlock()
	var errs []error
	for _, l := range servers {
		if err := l.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	done := make(chan struct{})
	go func() { e.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	if err := e.alog.Swap(nil).Close(ctx); err != nil {
		errs = append(errs, err)
	}
	e.paths.close()
	e.rtt.close()
	e.pool.closeIdle()
	e.metrics.unregister()
	e.diskMetrics.Unregister()
	e.store.Close()
	return errors.Join(errs...)
}

// SetOriginHealth takes the controller's verdicts ("dist/origin" keys).
func (e *Edge) SetOriginHealth(m map[string]status.OriginHealth) { e.health.setControl(m) }

// Report publishes requests served, the share answered from cache and
// the error counts rollout gates watch; it only loads counters.
func (e *Edge) Report(into *status.RoleReport) {
	n := e.requests.Load()
	into.Requests = n
	if n > 0 {
		into.HitRatio = float64(e.hits.Load()) / float64(n)
	}
	into.Errors5xx = e.errors5xx.Load()
	into.OriginFetches, into.OriginErrors = e.originFetches.Load(), e.originErrors.Load()
	into.Degraded = e.Degraded()
	into.ClientRTT = e.rtt.report()
	into.Paths = e.paths.report()
}

// Degraded says why the disk tier takes no new objects (a full or
// failing disk): the edge still serves, from memory and the origin.
func (e *Edge) Degraded() string {
	if msg := e.diskErr.Load(); msg != nil {
		return *msg
	}
	if d := e.tier.disk.Load(); d != nil {
		if why := d.s.Degraded(); why != "" {
			return "disk tier " + d.cfg.Path + ": " + why
		}
	}
	return ""
}

// Stats reports the store's accounting.
func (e *Edge) Stats() StoreStats { return e.store.Stats() }
