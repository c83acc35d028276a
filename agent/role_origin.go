package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/origin"
)

// The origin role runs the origin HTTP server on nodes whose config has an
// origin section (root, listen, tokenFile, cacheRules). Cache rules and the
// token are swapped in place; a new root or listen address restarts the
// server.
func init() {
	roleFactories[config.RoleOrigin] = func(o RoleOptions) (Role, error) { return &originRole{opt: o}, nil }
}

var (
	_ Role        = (*originRole)(nil)
	_ AdminRoutes = (*originRole)(nil)
)

type originRole struct {
	opt RoleOptions
	mu  sync.Mutex
	srv *origin.Server
	cfg origin.Config
}

func originConfig(snap *config.Snapshot, node string) (origin.Config, error) {
	n := snap.Site.Node(node)
	if n == nil {
		return origin.Config{}, fmt.Errorf("node %q is not in the site", node)
	}
	if n.Origin == nil {
		return origin.Config{}, fmt.Errorf("node %q has the origin role but no origin section", node)
	}
	c := origin.Config{Root: n.Origin.Root, Listen: n.Origin.Listen, TokenFile: n.Origin.TokenFile}
	for _, r := range n.Origin.CacheRules {
		c.CacheRules = append(c.CacheRules, origin.CacheRule{Path: r.Path, CacheControl: r.CacheControl})
	}
	return c, c.Validate()
}

func (r *originRole) Apply(ctx context.Context, snap *config.Snapshot) error {
	cfg, err := originConfig(snap, r.opt.Node)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil && cfg.Root == r.cfg.Root && cfg.Listen == r.cfg.Listen {
		if err := r.srv.Reload(cfg); err != nil {
			return err
		}
		r.cfg = cfg
		return nil
	}
	if r.srv != nil {
		// The old server must let go of its address and metrics first;
		// if the new one cannot start, the old one comes back.
		if err := r.srv.Shutdown(ctx); err != nil {
			r.opt.Logger.Warn("origin shutdown before restart", "err", err)
		}
		r.srv = nil
		if err := r.start(cfg); err != nil {
			if rerr := r.start(r.cfg); rerr != nil {
				return errors.Join(err, fmt.Errorf("restoring the previous origin: %w", rerr))
			}
			return err
		}
		return nil
	}
	return r.start(cfg)
}

func (r *originRole) start(cfg origin.Config) error {
	srv, err := origin.New(cfg, origin.Options{Logger: r.opt.Logger, Registry: r.opt.Registry})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		srv.Shutdown(context.Background())
		return err
	}
	r.srv, r.cfg = srv, cfg
	return nil
}

func (r *originRole) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv == nil {
		return errors.New("origin: not started")
	}
	return r.srv.Ready()
}

func (r *originRole) Close(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv == nil {
		return nil
	}
	err := r.srv.Shutdown(ctx)
	r.srv = nil
	return err
}

// Routes serves GET /v1/origin/versions: the versions under the root and
// which one is active.
func (r *originRole) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/origin/versions", func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		root := r.cfg.Root
		r.mu.Unlock()
		if root == "" {
			http.Error(w, "origin not configured", http.StatusServiceUnavailable)
			return
		}
		vs, err := origin.Versions(root)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(vs)
	})
}
