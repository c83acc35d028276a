// Package origin is the HTTP origin server that edges fetch from: a
// directory tree served with strong validators, conditional and range
// requests exactly as RFC 9110 says, Cache-Control per path, immutable
// versions switched by an atomic pointer (blue/green), and token-guarded
// uploads into a version.
package origin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/intercloud/intercloud/internal/listen"
)

// Config is one origin server's settings.
type Config struct {
	// Root holds the versions and the current pointer.
	Root string `yaml:"root" json:"root"`
	// Listen is the content address; it also answers /healthz and /readyz
	// (health checks go to the origin URL) and /metrics when Admin is empty.
	Listen string `yaml:"listen" json:"listen"`
	// Admin, optional, is a separate address for /metrics, /healthz, /readyz.
	Admin string `yaml:"admin" json:"admin,omitempty"`
	// TokenFile holds the bearer token for PUT and DELETE; empty disables
	// uploads.
	TokenFile  string      `yaml:"tokenFile" json:"tokenFile,omitempty"`
	CacheRules []CacheRule `yaml:"cacheRules" json:"cacheRules,omitempty"`
	// MaxUpload bounds a PUT body (default 1 GiB).
	MaxUpload int64 `yaml:"maxUpload" json:"maxUpload,omitempty"`
	// MemoryCache is how many bytes of small files (up to 64 KiB each) are
	// kept in memory (default 64 MiB; negative: none).
	MemoryCache int64 `yaml:"memoryCache" json:"memoryCache,omitempty"`
	// Revalidate is how long a file kept in memory is served before it is
	// checked against the disk again (default 1s; negative: every request,
	// which also turns the memory cache off). Writes through this server
	// and new versions are seen at once regardless.
	Revalidate time.Duration `yaml:"revalidate" json:"revalidate,omitempty"`
}

// Options are the server's collaborators.
type Options struct {
	Logger *slog.Logger
	// Registry receives the metrics; nil means a private registry.
	Registry prometheus.Registerer
	// Gatherer, when set, is served at /metrics.
	Gatherer prometheus.Gatherer
}

const defaultMaxUpload = 1 << 30

// Validate checks a config before anything starts.
func (c Config) Validate() error {
	var errs []error
	if c.Root == "" {
		errs = append(errs, errors.New("root: required"))
	}
	if c.Listen == "" {
		errs = append(errs, errors.New("listen: required"))
	} else if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %w", err))
	}
	if c.Admin != "" {
		if _, _, err := net.SplitHostPort(c.Admin); err != nil {
			errs = append(errs, fmt.Errorf("admin: %w", err))
		}
	}
	if c.MaxUpload < 0 {
		errs = append(errs, errors.New("maxUpload: negative"))
	}
	if _, err := compileRules(c.CacheRules); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// settings is the part of the config a reload swaps atomically.
type settings struct {
	rules     cacheRules
	token     []byte // nil: uploads disabled
	maxUpload int64
}

// Server serves one root.
type Server struct {
	cfg     Config
	log     *slog.Logger
	rootFd  int      // the root directory, for openat2
	rootFS  *os.Root // the same, for the upload path's writes
	set     atomic.Pointer[settings]
	meta    *metaCache
	objs    *objCache
	active  *activeWatcher
	metrics *metrics
	gather  prometheus.Gatherer

	mu       sync.Mutex
	servers  []*listen.Listener
	addrs    []net.Addr
	started  bool
	stopping atomic.Bool
}

// New validates cfg, opens the root (creating it if needed) and reads the
// token. It binds nothing yet.
func New(cfg Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("origin config: %w", err)
	}
	set, err := loadSettings(cfg)
	if err != nil {
		return nil, fmt.Errorf("origin config: %w", err)
	}
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return nil, fmt.Errorf("origin root: %w", err)
	}
	fd, err := unix.Open(cfg.Root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("origin root %s: %w", cfg.Root, err)
	}
	rfs, err := os.OpenRoot(cfg.Root)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("origin root %s: %w", cfg.Root, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, log: log, rootFd: fd, rootFS: rfs, gather: opts.Gatherer}
	s.set.Store(set)
	m, err := newMetrics(reg, s)
	if err != nil {
		s.closeRoot()
		return nil, err
	}
	s.metrics = m
	mem, valid := cfg.MemoryCache, cfg.Revalidate
	if mem == 0 {
		mem = 64 << 20
	}
	if valid == 0 {
		valid = time.Second
	}
	s.objs = newObjCache(mem, valid)
	s.meta = newMetaCache(1<<20, func(n int64) {
		m.hashes.Inc()
		m.hashedBytes.Add(float64(n))
	})
	s.startActiveWatch()
	return s, nil
}

func loadSettings(cfg Config) (*settings, error) {
	rules, err := compileRules(cfg.CacheRules)
	if err != nil {
		return nil, err
	}
	set := &settings{rules: rules, maxUpload: cfg.MaxUpload}
	if set.maxUpload == 0 {
		set.maxUpload = defaultMaxUpload
	}
	if cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("tokenFile: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return nil, fmt.Errorf("tokenFile %s: token shorter than 16 characters", cfg.TokenFile)
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			return nil, fmt.Errorf("tokenFile %s: token contains whitespace", cfg.TokenFile)
		}
		set.token = []byte(tok)
	}
	return set, nil
}

// Reload applies a new config's cache rules, token file and upload limit;
// on error the old ones stay. Root, addresses and the memory cache's
// settings need a new Server.
func (s *Server) Reload(cfg Config) error {
	if cfg.Root != s.cfg.Root || cfg.Listen != s.cfg.Listen || cfg.Admin != s.cfg.Admin {
		return errors.New("origin reload: root, listen and admin cannot change without a restart")
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("origin reload: %w", err)
	}
	set, err := loadSettings(cfg)
	if err != nil {
		return fmt.Errorf("origin reload: %w", err)
	}
	s.set.Store(set)
	s.log.Info("origin reloaded", "cacheRules", len(set.rules), "uploads", set.token != nil)
	return nil
}

// Start binds the listeners and serves in the background.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("origin: already started")
	}
	binds := []listen.Config{{Addr: s.cfg.Listen, Handler: s.Handler(), ConnContext: connContext}}
	if s.cfg.Admin != "" {
		binds = append(binds, listen.Config{Addr: s.cfg.Admin, Handler: s.AdminHandler(), NetHTTP: true})
	}
	var lns []*listen.Listener
	for _, c := range binds {
		c.ReadHeaderTimeout, c.IdleTimeout = 10*time.Second, 120*time.Second
		c.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
		c.OnError = func(err error) { s.log.Error("origin serve", "err", err) }
		l, err := listen.Bind(c)
		if err != nil {
			for _, l := range lns {
				l.Stop(0)
			}
			return fmt.Errorf("origin %w", err)
		}
		lns = append(lns, l)
	}
	for _, l := range lns {
		s.servers = append(s.servers, l)
		s.addrs = append(s.addrs, l.Addr())
		l.Serve()
	}
	s.started = true
	active, _ := Active(s.cfg.Root)
	s.log.Info("origin serving", "root", s.cfg.Root, "listen", s.addrs[0].String(), "version", active)
	return nil
}

// markServing says that something (the origin role) serves the handler.
func (s *Server) markServing() {
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
}

// Addr is the bound content address (useful with port 0).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.addrs) == 0 {
		return nil
	}
	return s.addrs[0]
}

// AdminAddr is the bound admin address, or nil.
func (s *Server) AdminAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.addrs) < 2 {
		return nil
	}
	return s.addrs[1]
}

// Ready is nil when the server listens and a version is active.
func (s *Server) Ready() error {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return errors.New("origin: not started")
	}
	if s.stopping.Load() {
		return errors.New("origin: shutting down")
	}
	_, err := s.readActive()
	return err
}

// Shutdown stops accepting, lets requests in flight finish until ctx ends,
// then closes the root.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	s.mu.Lock()
	srvs := s.servers
	s.servers = nil
	s.mu.Unlock()
	var errs []error
	for _, l := range srvs {
		if err := l.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	// A handler still running after a forced close could otherwise use a
	// descriptor number the process has reused for something else.
	if len(errs) == 0 {
		s.closeRoot()
	}
	s.metrics.unregister()
	return errors.Join(errs...)
}

func (s *Server) closeRoot() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rootFd >= 0 {
		if s.active != nil {
			s.active.close()
		}
		unix.Close(s.rootFd)
		s.rootFd = -1
		s.rootFS.Close()
	}
}

// Run starts the server, serves until ctx is cancelled, then shuts down
// gracefully within grace.
func (s *Server) Run(ctx context.Context, grace time.Duration) error {
	if err := s.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	s.log.Info("origin stopping")
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := s.Shutdown(sctx)
	s.log.Info("origin stopped", "err", err)
	return err
}
