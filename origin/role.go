package origin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/listen"
	"github.com/intercloud/intercloud/role"
)

// Role is the origin role of a node: the node's origin section served on
// its listen address. The role owns the listener; the Server behind it is
// swapped, so a new root or new cache rules take over without a gap, and
// a new address is bound before the old one is let go.
type Role struct {
	o   role.Options
	cur atomic.Pointer[served]

	mu     sync.Mutex // Prepare, Commit, Close
	ln     *listen.Listener
	cfg    Config
	closed bool
}

// served is one Server and its handler.
type served struct {
	srv *Server
	h   http.Handler
}

// retireGrace is how long a replaced root stays open for the requests that
// loaded its server before the swap: they open their files at once, and a
// file stays readable once open. It is the drain a stopped listener gets.
const retireGrace = 30 * time.Second

// NewRole makes the origin role; it serves once a revision is committed.
func NewRole(o role.Options) (*Role, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Role{o: o}
	if o.Registry != nil {
		if err := o.Registry.Register(current{r}); err != nil {
			return nil, fmt.Errorf("origin metrics: %w", err)
		}
	}
	if o.Mux != nil {
		o.Mux.HandleFunc("GET /v1/origin/versions", r.serveVersions)
	}
	return r, nil
}

// configFor turns the node's origin section into a Config.
func configFor(snap *config.Snapshot, node string) (Config, error) {
	n := snap.Site.Node(node)
	if n == nil {
		return Config{}, fmt.Errorf("node %q is not in the site", node)
	}
	if n.Origin == nil {
		return Config{}, fmt.Errorf("node %q has the origin role but no origin section", node)
	}
	c := Config{Root: n.Origin.Root, Listen: n.Origin.Listen, TokenFile: n.Origin.TokenFile}
	for _, r := range n.Origin.CacheRules {
		c.CacheRules = append(c.CacheRules, CacheRule{Path: r.Path, CacheControl: r.CacheControl})
	}
	return c, c.Validate()
}

// Prepare reads the token and compiles the rules; a new root is opened
// and a new address bound beside what serves.
func (r *Role) Prepare(_ context.Context, snap *config.Snapshot) (role.Change, error) {
	cfg, err := configFor(snap, r.o.Node)
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("origin: closed")
	}
	c := &originChange{r: r, cfg: cfg}
	if cur := r.cur.Load(); cur != nil && cfg.Root == r.cfg.Root {
		if c.set, err = loadSettings(cfg); err != nil {
			return nil, fmt.Errorf("origin: %w", err)
		}
	} else {
		// Its own registry: the role shows whichever server is current.
		srv, err := New(cfg, Options{Logger: r.o.Logger, Registry: prometheus.NewRegistry()})
		if err != nil {
			return nil, err
		}
		c.srv = &served{srv: srv, h: srv.Handler()}
	}
	if r.ln == nil || r.ln.Configured() != cfg.Listen {
		c.ln, err = r.bind(cfg.Listen)
		if err != nil {
			c.Abort()
			return nil, fmt.Errorf("origin: %w", err)
		}
	}
	return c, nil
}

// bind binds the content listener on addr; nothing is served until Serve.
func (r *Role) bind(addr string) (*listen.Listener, error) {
	return listen.Bind(listen.Config{
		Addr: addr, Handler: http.HandlerFunc(r.serveHTTP), ConnContext: connContext,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(r.o.Logger.Handler(), slog.LevelDebug),
		OnError:  func(err error) { r.o.Logger.Error("origin serve", "err", err) },
	})
}

type originChange struct {
	r   *Role
	cfg Config
	set *settings        // same root: the new settings
	srv *served          // new root: the new server
	ln  *listen.Listener // new address
}

func (c *originChange) Commit() {
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.srv != nil {
		c.srv.srv.markServing()
		if old := r.cur.Swap(c.srv); old != nil {
			time.AfterFunc(retireGrace, old.srv.closeRoot)
		}
	} else {
		r.cur.Load().srv.set.Store(c.set)
	}
	if c.ln != nil {
		old := r.ln
		r.ln = c.ln
		c.ln.Serve()
		if old != nil {
			old.Stop(30 * time.Second)
		}
	}
	r.cfg = c.cfg
	active, _ := Active(c.cfg.Root)
	r.o.Logger.Info("origin serving", "root", c.cfg.Root, "listen", r.ln.Addr().String(), "version", active)
}

func (c *originChange) Abort() {
	if c.srv != nil {
		c.srv.srv.closeRoot()
	}
	if c.ln != nil {
		c.ln.Stop(0)
	}
}

func (r *Role) serveHTTP(w http.ResponseWriter, req *http.Request) {
	s := r.cur.Load()
	if s == nil {
		http.Error(w, "origin stopping", http.StatusServiceUnavailable)
		return
	}
	s.h.ServeHTTP(w, req)
}

// Addr is the bound content address, or nil before the first commit.
func (r *Role) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln == nil {
		return ""
	}
	return r.ln.Addr().String()
}

// Ready is nil while the role listens and its root has an active version.
func (r *Role) Ready() error {
	s := r.cur.Load()
	if s == nil {
		return errors.New("origin: no revision committed yet")
	}
	return s.srv.Ready()
}

// Close frees the port, waits for the requests in flight (or ctx), then
// closes the root.
func (r *Role) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	ln := r.ln
	r.ln = nil
	r.mu.Unlock()
	var err error
	if ln != nil {
		err = ln.Shutdown(ctx)
	}
	if s := r.cur.Swap(nil); s != nil {
		s.srv.closeRoot()
	}
	return err
}

// serveVersions is GET /v1/origin/versions: the versions under the root
// and which one is active.
func (r *Role) serveVersions(w http.ResponseWriter, _ *http.Request) {
	s := r.cur.Load()
	if s == nil {
		http.Error(w, "origin not configured", http.StatusServiceUnavailable)
		return
	}
	vs, err := Versions(s.srv.cfg.Root)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(vs)
}

// current collects the metrics of whichever server is current; it is
// registered once, with the role, and describes nothing up front because
// the servers come and go.
type current struct{ r *Role }

func (current) Describe(chan<- *prometheus.Desc) {}

func (c current) Collect(ch chan<- prometheus.Metric) {
	if s := c.r.cur.Load(); s != nil {
		s.srv.metrics.group.Collect(ch)
	}
}
