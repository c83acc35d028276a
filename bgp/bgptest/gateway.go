// Package bgptest runs the gateway (package gateway: bgp + route, as a
// node runs them) as its own process inside a test namespace, for the bgp
// tests, the benchmarks and end-to-end tests.
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
	"github.com/intercloud/intercloud/gateway"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/test/netns"
)

var registerOnce sync.Once

// Register declares the gateway helper; call it before netns.Main.
func Register() { registerOnce.Do(func() { netns.RegisterHelper("gateway", runGateway) }) }

// Config is what the gateway helper runs (a gateway.Config written
// directly: tests have no site).
type Config = gateway.Config

// runGateway is the real gateway as its own process inside a namespace.
// Its node API (/v1/bgp/...) and /metrics are served on a unix socket,
// which needs no network path from the test; POST /apply prepares and
// commits a new Config. args: config.json socket.
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
	mux := http.NewServeMux()
	gw, err := gateway.New(role.Options{Node: "gateway", Logger: log, Registry: reg, Mux: mux})
	if err != nil {
		return fail(err)
	}
	apply := func(ctx context.Context, c Config) error {
		ch, err := gw.PrepareConfig(ctx, c)
		if err != nil {
			return err
		}
		ch.Commit()
		return gw.Ready()
	}
	mux.HandleFunc("POST /apply", func(w http.ResponseWriter, r *http.Request) {
		var c Config
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if err := apply(r.Context(), c); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		json.NewEncoder(w).Encode("ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("unix", args[1])
	if err != nil {
		return fail(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	// The API answers (neighbors: not running) while a large table loads.
	if err := apply(ctx, cfg); err != nil {
		log.Error("apply", "error", err)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	if err := gw.Close(sctx); err != nil {
		log.Error("gateway close", "error", err)
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
	b, err := g.get("/v1/bgp/neighbors")
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
