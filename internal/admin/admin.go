// Package admin is the admin HTTP server every daemon runs: /metrics,
// /healthz, /readyz, and whatever API the daemon mounts on its mux.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Server is an admin endpoint.
type Server struct {
	Mux      *http.ServeMux
	Registry *prometheus.Registry
	srv      *http.Server
	ln       net.Listener
	more     atomic.Pointer[func() prometheus.Gatherers]
	detail   atomic.Pointer[func() []string]
}

// Detail adds to a ready /readyz the lines detail returns: what is
// impaired while the daemon still serves (a full disk cache).
func (s *Server) Detail(detail func() []string) { s.detail.Store(&detail) }

// Gather adds, to every later scrape of /metrics, the registries more
// returns at that moment (the agent's running roles).
func (s *Server) Gather(more func() prometheus.Gatherers) { s.more.Store(&more) }

// New builds an admin server with a fresh registry holding the Go, process
// and build (go_build_info: which version runs where) collectors. ready reports why the daemon is not ready (nil: ready).
func New(ready func() error) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewBuildInfoCollector())
	mux := http.NewServeMux()
	s := &Server{Mux: mux, Registry: reg}
	all := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		gs := prometheus.Gatherers{reg}
		if more := s.more.Load(); more != nil {
			gs = append(gs, (*more)()...)
		}
		return gs.Gather()
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(all, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
		if d := s.detail.Load(); d != nil {
			for _, l := range (*d)() {
				fmt.Fprintln(w, "degraded: "+l)
			}
		}
	})
	return s
}

// Listen binds addr; it fails at once when the address is taken, so a
// daemon reports the problem before it starts anything else.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w", addr, err)
	}
	s.ln = ln
	return nil
}

// Started says whether Listen succeeded.
func (s *Server) Started() bool { return s.ln != nil }

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, log *slog.Logger) error {
	s.srv = &http.Server{Handler: s.Mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("admin server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		log.Warn("admin server shutdown", "err", err)
	}
	return nil
}
