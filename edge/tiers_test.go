package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/status"
)

// fleet is several edges of one site, each a real Edge with its own
// listener on loopback, in clouds seoul, tokyo and osaka.
type fleet struct {
	t      *testing.T
	snap   *config.Snapshot
	edges  map[string]*Edge
	muxes  map[string]*http.ServeMux
	c      *http.Client
	origin *countingOrigin
}

// countingOrigin counts requests per path; delay, when set, decides how
// long a request waits before its answer.
type countingOrigin struct {
	*httptest.Server
	mu    sync.Mutex
	n     map[string]int
	delay atomic.Pointer[func(*http.Request) time.Duration]
}

func newCountingOrigin(t *testing.T) *countingOrigin {
	o := &countingOrigin{n: map[string]int{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := o.delay.Load(); f != nil {
			time.Sleep((*f)(r))
		}
		if r.Method == http.MethodGet {
			o.mu.Lock()
			o.n[r.URL.Path]++
			o.mu.Unlock()
		}
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "object "+r.URL.Path)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *countingOrigin) count(path string) int { o.mu.Lock(); defer o.mu.Unlock(); return o.n[path] }

func (o *countingOrigin) total() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, v := range o.n {
		n += v
	}
	return n
}

var fleetNodes = []struct{ name, cloud string }{
	{"seoul-edge-1", "seoul"}, {"seoul-edge-2", "seoul"},
	{"tokyo-edge-1", "tokyo"}, {"tokyo-edge-2", "tokyo"},
	{"osaka-edge-1", "osaka"}, {"osaka-edge-2", "osaka"},
}

func newFleet(t *testing.T, tiers *config.Tiers, pol *config.PathPolicy) *fleet {
	t.Helper()
	o := newCountingOrigin(t)
	site := config.Site{Name: "t", DNS: config.DNS{Zone: "cdn.test."},
		Clouds: []config.Cloud{{Name: "seoul", ASN: 65001}, {Name: "tokyo", ASN: 65002}, {Name: "osaka", ASN: 65003}}}
	for _, n := range fleetNodes {
		site.Nodes = append(site.Nodes, config.Node{Name: n.name, Cloud: n.cloud, Roles: []config.Role{config.RoleEdge},
			Listen: config.Listen{HTTP: storetest.FreeAddr(t)}, Cache: config.Cache{Memory: 64 << 20, MaxObject: 16 << 20}})
	}
	d := simple(o.URL)
	d.Spec.Tiers, d.Spec.Paths = tiers, pol
	snap := &config.Snapshot{Revision: 1, Site: site, Distributions: []config.Distribution{d}}
	snap.SetDefaults()
	if err := snap.Validate(); err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, snap: snap, edges: map[string]*Edge{}, muxes: map[string]*http.ServeMux{}, origin: o,
		c: &http.Client{Timeout: 20 * time.Second}}
	for _, n := range fleetNodes {
		f.start(n.name)
	}
	return f
}

func (f *fleet) start(node string) {
	f.t.Helper()
	mux := http.NewServeMux()
	e, err := New(Options{Node: node, Registry: prometheus.NewRegistry(), Mux: mux})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := role.Apply(context.Background(), e, f.snap); err != nil {
		f.t.Fatal(err)
	}
	f.edges[node], f.muxes[node] = e, mux
	f.t.Cleanup(func() { f.stop(node) })
}

func (f *fleet) stop(node string) {
	if e := f.edges[node]; e != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Close(ctx)
		delete(f.edges, node)
	}
}

// get fetches path from node as a client would; kv are header pairs.
func (f *fleet) get(node, path string, kv ...string) (result, error) {
	req, _ := http.NewRequest("GET", "http://"+f.snap.Site.Node(node).Listen.HTTP+path, nil)
	req.Host = "shop.cdn.test"
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := f.c.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header, string(b)}, err
}

func (f *fleet) mustGet(node, path string, kv ...string) result {
	f.t.Helper()
	r, err := f.get(node, path, kv...)
	if err != nil {
		f.t.Fatalf("GET %s from %s: %v", path, node, err)
	}
	if r.status != 200 || r.body != "object "+path {
		f.t.Fatalf("GET %s from %s: %d %q (Cache-Status %q)", path, node, r.status, r.body, r.cs())
	}
	return r
}

// Cold objects fetched through all six edges reach the origin once each
// with tiers (every edge of a cloud asks the object's owner, which asks
// the parent that owns it), and six times without.
func TestTiersOneOriginFetchPerObject(t *testing.T) {
	const objects = 12
	for _, tc := range []struct {
		name  string
		tiers *config.Tiers
		want  int
	}{
		{"shield", &config.Tiers{Parents: config.TierParents{Cloud: "seoul"}}, 1},
		{"no tiers", nil, len(fleetNodes)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, tc.tiers, nil)
			sawParent := false
			for i := range objects {
				p := fmt.Sprintf("/obj/%d", i)
				for _, n := range fleetNodes {
					r := f.mustGet(n.name, p)
					sawParent = sawParent || strings.Contains(r.cs(), "fwd=parent")
				}
				if got := f.origin.count(p); got != tc.want {
					t.Fatalf("%s fetched from the origin %d times, want %d", p, got, tc.want)
				}
			}
			if tc.tiers != nil && !sawParent {
				t.Fatal("no response says fwd=parent")
			}
			requests := objects * len(fleetNodes)
			t.Logf("origin offload: %d requests of %d cold objects through %d edges, %d origin fetches: offload ratio %.1f%%",
				requests, objects, len(fleetNodes), f.origin.total(), 100*(1-float64(f.origin.total())/float64(requests)))
		})
	}
}

func TestTiersHopLimit(t *testing.T) {
	f := newFleet(t, &config.Tiers{Parents: config.TierParents{Cloud: "seoul"}, MaxHops: 2}, nil)
	r, err := f.get("tokyo-edge-1", "/x", hdrHops, "2", hdrTier, tierParent)
	if err != nil || r.status != http.StatusLoopDetected || !strings.Contains(r.body, "loop detected") || !strings.Contains(r.cs(), "detail=loop-detected") {
		t.Fatalf("hop limit: %v %d %q %q", err, r.status, r.body, r.cs())
	}
	if r, _ := f.get("tokyo-edge-1", "/x", hdrHops, "two"); r.status != http.StatusBadRequest {
		t.Fatalf("malformed hops: %d %q", r.status, r.body)
	}
	if f.origin.total() != 0 {
		t.Fatal("a refused request reached the origin")
	}
	// One hop below the limit is served: a parent goes to the origin.
	f.mustGet("seoul-edge-1", "/y", hdrHops, "1", hdrTier, tierParent)
	if f.origin.count("/y") != 1 {
		t.Fatal("the parent did not fetch /y itself")
	}
}

// A parent killed under load fails no request: its objects go to the
// next ranked parent, and still reach the origin once each.
func TestTiersParentDown(t *testing.T) {
	f := newFleet(t, &config.Tiers{Parents: config.TierParents{Cloud: "seoul"}}, nil)
	var failed atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var served atomic.Int64
	for _, n := range []string{"tokyo-edge-1", "tokyo-edge-2", "osaka-edge-1", "osaka-edge-2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("/load/%s/%d", n, i) // cold: every one a miss
				r, err := f.get(n, p)
				if err != nil || r.status != 200 || r.body != "object "+p {
					failed.Add(1)
					t.Errorf("GET %s from %s: %v %d %q", p, n, err, r.status, r.body)
				}
				served.Add(1)
			}
		}()
	}
	for served.Load() < 40 {
		time.Sleep(10 * time.Millisecond)
	}
	f.stop("seoul-edge-1")
	before := served.Load()
	for served.Load() < before+200 {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed", failed.Load())
	}
	// Cold objects after the kill: each still fetched once, by seoul-edge-2.
	for i := range 10 {
		p := fmt.Sprintf("/after/%d", i)
		for _, n := range []string{"tokyo-edge-1", "tokyo-edge-2", "osaka-edge-1"} {
			f.mustGet(n, p)
		}
		if got := f.origin.count(p); got != 1 {
			t.Fatalf("%s fetched %d times after the parent died", p, got)
		}
	}
}

// In fastest mode, tokyo's misses take the path measured best: direct
// while it is, through seoul's parents once the direct path slows down,
// and back when it recovers. The delay is added at the origin by the
// route a request took (one Via: straight from tokyo; two: through seoul).
func TestTiersFastestPath(t *testing.T) {
	f := newFleet(t, &config.Tiers{Parents: config.TierParents{Cloud: "seoul"}, Mode: config.TierFastest, Shard: new(bool)},
		&config.PathPolicy{Probe: config.Duration(100 * time.Millisecond), Hold: config.Duration(200 * time.Millisecond)})
	var slowDirect atomic.Bool
	delay := func(r *http.Request) time.Duration {
		if slowDirect.Load() && len(r.Header.Values("Via")) == 1 {
			return 60 * time.Millisecond
		}
		return 0
	}
	f.origin.delay.Store(&delay)
	chosen := func() string {
		var ps []OriginPaths
		w := httptest.NewRecorder()
		f.muxes["tokyo-edge-1"].ServeHTTP(w, httptest.NewRequest("GET", "/v1/edge/paths?distribution=shop", nil))
		if err := json.Unmarshal(w.Body.Bytes(), &ps); err != nil || len(ps) > 1 {
			t.Fatalf("paths: %v %s", err, w.Body.String())
		}
		if len(ps) == 0 {
			return "" // not published yet
		}
		return ps[0].Chosen.ID
	}
	i := 0
	// waitFor fetches cold objects until the chosen path starts with
	// want; the bound is generous (a loaded machine), not a target.
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.HasPrefix(chosen(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("path %q, want %s...", chosen(), want)
			}
			i++
			f.mustGet("tokyo-edge-1", fmt.Sprintf("/f/%d", i))
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(pathDirect)
	slowDirect.Store(true)
	waitFor("parent:")
	r := f.mustGet("tokyo-edge-1", "/f/through-parent")
	if !strings.Contains(r.cs(), "fwd=parent") {
		t.Fatalf("a miss on the parent path: Cache-Status %q", r.cs())
	}
	pm := f.edges["tokyo-edge-1"].paths
	// publish sets the gauges before it swaps the view chosen() reads.
	if c := chosen(); testutil.ToFloat64(pm.chosen.WithLabelValues("shop", "o", c)) != 1 ||
		testutil.ToFloat64(pm.chosen.WithLabelValues("shop", "o", pathDirect)) != 0 ||
		testutil.ToFloat64(pm.switches.WithLabelValues("shop", "o")) < 1 ||
		testutil.ToFloat64(pm.ttfb.WithLabelValues("shop", "o", pathDirect)) < 0.01 {
		t.Fatalf("path metrics do not show the move to %s", c)
	}
	slowDirect.Store(false)
	waitFor(pathDirect)
}

// A parent the agent reports dead (no lease) is not tried: its objects
// go to the next ranked parent at once.
func TestTiersSkipDeadParent(t *testing.T) {
	f := newFleet(t, &config.Tiers{Parents: config.TierParents{Cloud: "seoul"}}, nil)
	live := map[string]status.NodeStatus{}
	for _, n := range fleetNodes {
		if n.name != "seoul-edge-1" {
			live[n.name] = status.NodeStatus{Name: n.name, Healthy: true}
		}
	}
	for _, e := range f.edges {
		e.SetNodes(live)
	}
	before := f.edges["seoul-edge-1"].requests.Load()
	for i := range 20 {
		p := fmt.Sprintf("/skip/%d", i)
		for _, n := range []string{"tokyo-edge-1", "osaka-edge-2"} {
			f.mustGet(n, p)
		}
		if got := f.origin.count(p); got != 1 {
			t.Fatalf("%s fetched %d times", p, got)
		}
	}
	if got := f.edges["seoul-edge-1"].requests.Load(); got != before {
		t.Fatalf("the dead parent got %d requests", got-before)
	}
}
