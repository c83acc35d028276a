// Package bgptest runs a gateway (bgp + route, wired as the agent's
// gateway role wires them) as its own process inside a test namespace, for
// the bgp tests, the benchmarks and end-to-end tests.
//
//	func TestMain(m *testing.M) { bgptest.Register(); netns.Main(m) }
//	g := bgptest.Start(t, ns, bgptest.Config{BGP: cfg})
//	g.WaitEstablished("dx")
package bgptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/route"
	"github.com/intercloud/intercloud/test/netns"
)

var registerOnce sync.Once

// Register declares the gateway helper; call it before netns.Main.
func Register() { registerOnce.Do(func() { netns.RegisterHelper("gateway", runGateway) }) }

// Config is what the gateway helper runs: the same pair the agent's
// gateway role builds from a snapshot.
type Config struct {
	BGP   bgp.Config
	Route route.Config
}

// runGateway is the gateway as its own process inside a namespace: bgp
// hands learned paths to route, as the agent's role adapter does. Its API
// is served on a unix socket, which needs no network path from the test.
// args: config.json socket.
func runGateway(args []string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fail := func(err error) int { log.Error("gateway helper", "error", err); return 1 }
	if len(args) != 2 {
		return fail(fmt.Errorf("want config.json socket, got %q", args))
	}
	var cfg Config
	b, err := os.ReadFile(args[0])
	if err != nil {
		return fail(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if f := os.Getenv("INTERCLOUD_GW_CPUPROFILE"); f != "" {
		// Profiling the gateway inside a benchmark namespace.
		if out, err := os.Create(f); err == nil {
			pprof.StartCPUProfile(out)
			defer pprof.StopCPUProfile()
			// Stop at SIGTERM, before a long route removal can get the
			// process killed with the profile unwritten.
			go func() { <-ctx.Done(); pprof.StopCPUProfile() }()
		}
	}

	reg := prometheus.NewRegistry()
	dirty := make(chan struct{}, 1)
	srv, err := bgp.New(bgp.Options{Logger: log, Registry: reg, OnChange: func() {
		select {
		case dirty <- struct{}{}:
		default:
		}
	}})
	if err != nil {
		return fail(err)
	}
	tbl, err := route.New(cfg.Route, route.Options{Logger: log, Registry: reg})
	if err != nil {
		return fail(err)
	}
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		full := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-dirty:
				// Gather a burst as the agent's gateway role does: quiet
				// for 50 ms, or at most 1 s after its start.
				first := time.Now()
				quiet := time.NewTimer(50 * time.Millisecond)
			gather:
				for {
					select {
					case <-ctx.Done():
						return
					case <-dirty:
						if time.Since(first) < time.Second {
							quiet.Reset(50 * time.Millisecond)
						}
					case <-quiet.C:
						break gather
					}
				}
			case <-tick.C:
				full = true
			}
			read, install := srv.Best, tbl.Sync
			if full {
				read, install = srv.Resync, tbl.Reconcile
			}
			full = false
			best, err := read(ctx)
			if err != nil {
				continue
			}
			rs := make([]route.Route, 0, len(best))
			for _, p := range best {
				rs = append(rs, route.Route{Dst: p.Prefix, Gw: p.NextHop})
			}
			if err := install(ctx, rs); err != nil {
				log.Warn("route sync", "error", err)
			}
		}
	}()

	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, v any, err error) {
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /neighbors", func(w http.ResponseWriter, r *http.Request) {
		ns, err := srv.Neighbors(r.Context())
		writeJSON(w, ns, err)
	})
	mux.HandleFunc("GET /routes", func(w http.ResponseWriter, r *http.Request) {
		ps, err := srv.Paths(r.Context())
		writeJSON(w, ps, err)
	})
	mux.HandleFunc("POST /apply", func(w http.ResponseWriter, r *http.Request) {
		var c Config
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		writeJSON(w, "ok", srv.Apply(r.Context(), c.BGP))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("unix", args[1])
	if err != nil {
		return fail(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	// The API answers (neighbors: not running) while a large table loads.
	if err := srv.Apply(ctx, cfg.BGP); err != nil {
		log.Error("apply", "error", err)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	srv.Close(sctx)
	if err := tbl.Close(sctx); err != nil {
		log.Error("route close", "error", err)
	}
	return 0
}

// Gateway is a running gateway helper as seen from the test.
type Gateway struct {
	t    testing.TB
	NS   *netns.Namespace
	Proc *netns.Proc
	hc   *http.Client
}

// Start runs a gateway with cfg inside ns and waits for its API.
func Start(t testing.TB, ns *netns.Namespace, cfg Config) *Gateway {
	t.Helper()
	dir := t.TempDir()
	b, _ := json.Marshal(cfg)
	file := filepath.Join(dir, "gw.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "api.sock")
	g := &Gateway{t: t, NS: ns}
	g.Proc = ns.StartHelper("gateway", file, sock)
	g.hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	Eventually(t, 60*time.Second, "gateway API up", func() error {
		_, err := g.get("/metrics")
		return err
	})
	return g
}

func (g *Gateway) get(path string) ([]byte, error) {
	resp, err := g.hc.Get("http://gw" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: %s: %s", path, resp.Status, b)
	}
	return b, err
}

// Neighbors is the session table by neighbor name.
func (g *Gateway) Neighbors() map[string]bgp.NeighborStatus {
	g.t.Helper()
	ns, err := g.neighbors()
	if err != nil {
		g.t.Fatal(err)
	}
	return ns
}

func (g *Gateway) neighbors() (map[string]bgp.NeighborStatus, error) {
	b, err := g.get("/neighbors")
	if err != nil {
		return nil, err
	}
	var ns []bgp.NeighborStatus
	if err := json.Unmarshal(b, &ns); err != nil {
		return nil, err
	}
	out := map[string]bgp.NeighborStatus{}
	for _, n := range ns {
		out[n.Name] = n
	}
	return out, nil
}

// Apply sends a new config to the running gateway.
func (g *Gateway) Apply(cfg Config) error {
	b, _ := json.Marshal(cfg)
	resp, err := g.hc.Post("http://gw/apply", "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("apply: %s: %s", resp.Status, body)
	}
	return nil
}

// Metrics is the gateway's Prometheus exposition.
func (g *Gateway) Metrics() string {
	g.t.Helper()
	b, err := g.get("/metrics")
	if err != nil {
		g.t.Fatal(err)
	}
	return string(b)
}

// Kernel is the gateway namespace's routes of our protocol.
func (g *Gateway) Kernel() string {
	return g.NS.MustRun("ip", "route", "show", "proto", "200")
}

// WaitEstablished waits until the named sessions are established.
func (g *Gateway) WaitEstablished(names ...string) {
	g.t.Helper()
	Eventually(g.t, 20*time.Second, fmt.Sprintf("sessions %v established", names), func() error {
		ns, err := g.neighbors()
		if err != nil {
			return err
		}
		for _, n := range names {
			if !ns[n].Established() {
				return fmt.Errorf("%s: %s (%s)", n, ns[n].State, ns[n].LastError)
			}
		}
		return nil
	})
}

// Eventually retries f until it succeeds or the time is up. It only waits
// for convergence; it asserts nothing about how long that took.
func Eventually(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Contains is nil if s holds every sub.
func Contains(s string, subs ...string) error {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return fmt.Errorf("want %q in:\n%s", x, s)
		}
	}
	return nil
}

// Lacks is nil if s holds none of subs.
func Lacks(s string, subs ...string) error {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return fmt.Errorf("do not want %q in:\n%s", x, s)
		}
	}
	return nil
}
