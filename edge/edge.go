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
	"math"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/h1"
)

// Defaults when the node's cache section leaves them out.
const (
	DefaultMemory    = 256 << 20
	DefaultMaxObject = 16 << 20
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
	// AccessLog logs one line per request at Info level.
	AccessLog bool
	// LimitMemory sets the process's Go memory limit to the cache size
	// plus 48 MiB (unless GOMEMLIMIT is set), which keeps RSS within the
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
	store      cacheStore
	pool       *clientPool
	health     *health
	flight     singleflight.Group
	purgeGen   atomic.Uint64
	markerGen  atomic.Uint64
	bg         sync.WaitGroup
	refreshing sync.Map     // keys with a background refresh running
	serveErr   atomic.Value // error: a listener that stopped on its own
	now        func() time.Time

	maxObject     atomic.Int64
	limitMem      bool
	memLimit      int64 // the Go memory limit this edge set, if any
	keepValidated time.Duration

	requests, hits atomic.Int64

	mu      sync.Mutex // Apply and Close
	servers []*server
	closed  bool
}

type server struct {
	addr string
	tls  bool
	ln   net.Listener
	srv  httpServer
}

// httpServer is net/http's server on TLS listeners (HTTP/2 by ALPN) and
// h1's fast HTTP/1.1 path on plaintext ones.
type httpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// New makes an edge that serves nothing until the first Apply.
func New(o Options) (*Edge, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Edge{
		log: log.With("role", "edge"), node: o.Node, accessLog: o.AccessLog, limitMem: o.LimitMemory,
		pool: newClientPool(), health: newHealth(), now: time.Now,
		keepValidated: keepValidated,
	}
	st, err := newMemStore(DefaultMemory)
	if err != nil {
		return nil, err
	}
	e.store = st
	e.maxObject.Store(DefaultMaxObject)
	m, err := newMetrics(o.Registry, e)
	if err != nil {
		st.Close()
		return nil, err
	}
	e.metrics = m
	return e, nil
}

// Apply builds the routing table of snap and swaps it in. The first call
// binds the node's listeners; later calls rebind only listeners whose
// address changed. On error the previous table keeps serving.
func (e *Edge) Apply(ctx context.Context, snap *config.Snapshot) error {
	t, err := buildTable(snap, e.node, e.pool)
	if err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("edge: closed")
	}
	want := map[string]bool{}
	var binds []*server
	if e.node != "" {
		if t.listen.HTTP == "" {
			return fmt.Errorf("edge: node %s has no listen.http address", e.node)
		}
		want["http "+t.listen.HTTP] = true
		if t.listen.HTTPS != "" && t.anyTLS {
			want["https "+t.listen.HTTPS] = true
		}
		for k := range want {
			if e.serving(k) {
				continue
			}
			s, err := e.bind(k)
			if err != nil {
				for _, b := range binds {
					b.ln.Close()
				}
				return fmt.Errorf("edge: %w", err)
			}
			binds = append(binds, s)
		}
	}
	mem, maxObj := int64(t.cache.Memory), int64(t.cache.MaxObject)
	if mem <= 0 {
		mem = DefaultMemory
	}
	if maxObj <= 0 {
		maxObj = DefaultMaxObject
	}
	e.store.SetCapacity(mem)
	if e.limitMem {
		e.limitMemory(mem)
	}
	e.maxObject.Store(min(maxObj, mem/4))
	e.table.Store(t)
	for _, s := range binds {
		e.servers = append(e.servers, s)
		go e.run(s)
	}
	// Listeners no longer configured stop after their requests finish.
	var keep []*server
	for _, s := range e.servers {
		if want[s.key()] || e.node == "" {
			keep = append(keep, s)
			continue
		}
		go func(s *server) {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			s.srv.Shutdown(sctx)
		}(s)
	}
	e.servers = keep
	e.log.Info("applied", "revision", t.revision, "hosts", len(t.hosts), "tls", t.anyTLS)
	return nil
}

func (s *server) key() string {
	if s.tls {
		return "https " + s.addr
	}
	return "http " + s.addr
}

func (e *Edge) serving(k string) bool {
	for _, s := range e.servers {
		if s.key() == k {
			return true
		}
	}
	return false
}

func (e *Edge) bind(k string) (*server, error) {
	isTLS := k[:5] == "https"
	addr := k[len("http "):]
	if isTLS {
		addr = k[len("https "):]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	s := &server{addr: addr, tls: isTLS, ln: ln}
	errorLog := slog.NewLogLogger(e.log.Handler(), slog.LevelDebug)
	const readHeaderTimeout, idleTimeout, maxHeaderBytes = 10 * time.Second, 120 * time.Second, 64 << 10
	if !isTLS {
		s.srv = &h1.Server{Handler: e, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes, ErrorLog: errorLog}
		return s, nil
	}
	hs := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errorLog,
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{"h2", "http/1.1"},
			GetCertificate: e.certificate,
		},
	}
	s.srv = hs
	s.ln = tls.NewListener(ln, hs.TLSConfig)
	return s, nil
}

func (e *Edge) run(s *server) {
	err := s.srv.Serve(s.ln)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		e.log.Error("listener stopped", "addr", s.addr, "error", err)
		e.serveErr.Store(fmt.Errorf("edge: listener %s stopped: %w", s.addr, err))
	}
}

// certificate picks the distribution's certificate by SNI from the
// current table, so a new certificate applies without a restart.
func (e *Edge) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	t := e.table.Load()
	if t == nil {
		return nil, errors.New("no configuration")
	}
	if c, ok := t.certs[normalizeHost(hello.ServerName)]; ok {
		return c.get(), nil
	}
	return nil, fmt.Errorf("no certificate for %q", hello.ServerName)
}

// memorySlack is what the process may use beyond the cache: the target is
// RSS under the cache size + 64 MiB, and the binary's text and the
// runtime's own structures are not in the Go memory limit.
const memorySlack = 48 << 20

// limitMemory sets a soft Go memory limit of the cache size plus slack,
// unless the operator set one (GOMEMLIMIT): without it the garbage
// collector lets a heap full of cached objects grow to twice their size.
func (e *Edge) limitMemory(cache int64) {
	cur := debug.SetMemoryLimit(-1)
	if cur != math.MaxInt64 && cur != e.memLimit {
		return // set by someone else
	}
	e.memLimit = cache + memorySlack
	debug.SetMemoryLimit(e.memLimit)
	// Under a limit, collecting at every doubling of the heap only adds
	// pauses: while the cache is filling the live heap is a few MiB, and
	// the default GOGC would collect tens of times a second under load.
	// The limit alone decides when to collect, unless the operator set GOGC.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(-1)
	}
	e.log.Info("go memory limit set", "limit", e.memLimit, "gogc", os.Getenv("GOGC"))
}

// Addrs returns the bound listener addresses ("http"/"https" → host:port).
func (e *Edge) Addrs() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]string{}
	for _, s := range e.servers {
		if s.tls {
			out["https"] = s.ln.Addr().String()
		} else {
			out["http"] = s.ln.Addr().String()
		}
	}
	return out
}

// Ready is nil once a table is loaded and the listeners are up.
func (e *Edge) Ready() error {
	if e.table.Load() == nil {
		return errors.New("edge: no configuration applied yet")
	}
	if err, _ := e.serveErr.Load().(error); err != nil {
		return err
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
	servers := e.servers
	e.servers = nil
	e.mu.Unlock()
	var errs []error
	for _, s := range servers {
		if err := s.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown %s: %w", s.addr, err))
		}
	}
	done := make(chan struct{})
	go func() { e.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	e.pool.closeIdle()
	e.metrics.unregister()
	e.store.Close()
	return errors.Join(errs...)
}

// SetOriginHealth takes the controller's verdicts ("dist/origin" keys).
func (e *Edge) SetOriginHealth(m map[string]config.OriginHealth) { e.health.setControl(m) }

// Report publishes requests served and the share answered from cache
// in the node's status; it only loads two counters.
func (e *Edge) Report(into *config.RoleReport) {
	n := e.requests.Load()
	into.Requests = n
	if n > 0 {
		into.HitRatio = float64(e.hits.Load()) / float64(n)
	}
}

// Stats reports the store's accounting.
func (e *Edge) Stats() StoreStats { return e.store.Stats() }
