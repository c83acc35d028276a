package edge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
)

// clock is a test clock shared by the edge and the test origins, so that
// staleness is reached by moving time instead of sleeping.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time             { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration)    { c.off.Add(int64(d)) }
func (c *clock) date() string               { return c.now().UTC().Format(http.TimeFormat) }
func dptr(d time.Duration) *config.Duration { v := config.Duration(d); return &v }

// origin is a real HTTP server on loopback that records what it got.
type origin struct {
	*httptest.Server
	clk     *clock
	mu      sync.Mutex
	reqs    []*http.Request
	handler http.HandlerFunc
}

func newOrigin(t *testing.T, clk *clock, h http.HandlerFunc) *origin {
	t.Helper()
	o := &origin{clk: clk, handler: h}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		rc := r.Clone(context.Background())
		o.reqs = append(o.reqs, rc)
		h := o.handler
		o.mu.Unlock()
		w.Header().Set("Date", clk.date())
		h(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) set(h http.HandlerFunc) { o.mu.Lock(); o.handler = h; o.mu.Unlock() }

func (o *origin) count() int { o.mu.Lock(); defer o.mu.Unlock(); return len(o.reqs) }

func (o *origin) last() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.reqs) == 0 {
		return nil
	}
	return o.reqs[len(o.reqs)-1]
}

// body answers with a fixed body and headers (pairs).
func body(s string, kv ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Add(kv[i], kv[i+1])
		}
		io.WriteString(w, s)
	}
}

// site makes a snapshot with one node "edge-1" listening on a free port
// and one distribution "shop" (shop.cdn.test and www.shop.test).
func site(rev int64, d config.Distribution) *config.Snapshot {
	if d.Name == "" {
		d.Name = "shop"
	}
	if d.Spec.Aliases == nil {
		d.Spec.Aliases = []string{"www.shop.test"}
	}
	return &config.Snapshot{
		Revision: rev,
		Site: config.Site{
			Name: "t", DNS: config.DNS{Zone: "cdn.test."},
			Nodes: []config.Node{{Name: "edge-1", Roles: []config.Role{config.RoleEdge},
				Listen: config.Listen{HTTP: "127.0.0.1:0", HTTPS: "127.0.0.1:0"}, Cache: config.Cache{Memory: 64 << 20, MaxObject: 16 << 20}}},
		},
		Distributions: []config.Distribution{d},
	}
}

// simple is a distribution with one origin and a catch-all behavior.
func simple(url string, mut ...func(*config.Spec)) config.Distribution {
	d := config.Distribution{Name: "shop", Spec: config.Spec{
		Origins:   map[string]config.Origin{"o": {URL: url}},
		Behaviors: []config.Behavior{{Path: "*", Target: "o"}},
	}}
	for _, m := range mut {
		m(&d.Spec)
	}
	return d
}

type harness struct {
	t    *testing.T
	e    *Edge
	clk  *clock
	base string
	c    *http.Client
	reg  *prometheus.Registry
	mux  *http.ServeMux
}

func newHarness(t *testing.T, clk *clock, snap *config.Snapshot) *harness {
	t.Helper()
	return newHarnessWith(t, clk, snap, Options{})
}

// newHarnessWith runs an edge for node edge-1 with o's switches.
func newHarnessWith(t *testing.T, clk *clock, snap *config.Snapshot, o Options) *harness {
	t.Helper()
	reg, mux := prometheus.NewRegistry(), http.NewServeMux()
	o.Node, o.Registry, o.Mux = "edge-1", reg, mux
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if clk != nil {
		e.now = clk.now
	}
	if err := role.Apply(context.Background(), e, snap); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Close(ctx)
	})
	return &harness{t: t, e: e, clk: clk, reg: reg, mux: mux, base: "http://" + e.Addrs()["http"],
		c: &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type result struct {
	status int
	header http.Header
	body   string
}

// do sends a request for host/path with header pairs.
func (h *harness) do(method, host, path string, kv ...string) result {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := h.c.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read body: %v", err)
	}
	return result{resp.StatusCode, resp.Header, string(b)}
}

func (h *harness) get(path string, kv ...string) result {
	h.t.Helper()
	return h.do("GET", "shop.cdn.test", path, kv...)
}

func (r result) cs() string { return r.header.Get("Cache-Status") }

func (r result) hit() bool { return strings.Contains(r.cs(), "; hit") }

func expect(t *testing.T, r result, status int, bodySub, csSub string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (body %q, cache-status %q)", r.status, status, r.body, r.cs())
	}
	if bodySub != "" && !strings.Contains(r.body, bodySub) {
		t.Fatalf("body %q does not contain %q", r.body, bodySub)
	}
	if csSub != "" && !strings.Contains(r.cs(), csSub) {
		t.Fatalf("Cache-Status %q does not contain %q", r.cs(), csSub)
	}
}

// expectTTL checks the ttl parameter of Cache-Status is within [lo, hi].
func expectTTL(t *testing.T, r result, lo, hi int) {
	t.Helper()
	cs := r.cs()
	i := strings.Index(cs, "ttl=")
	if i < 0 {
		t.Fatalf("Cache-Status %q has no ttl", cs)
	}
	v := cs[i+4:]
	if j := strings.IndexByte(v, ';'); j >= 0 {
		v = v[:j]
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		t.Fatalf("Cache-Status %q: ttl not in [%d, %d]", cs, lo, hi)
	}
}
