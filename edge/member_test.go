package edge

import (
	"context"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
)

// staticOrigin is a plain static server, net/http's FileServer over one
// file: it sends Last-Modified and no ETag, and answers an
// If-Modified-Since that is not older than the file with 304, whatever
// copy the validator came from.
func staticOrigin(t *testing.T, content string, mtime time.Time) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "colour.txt")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(s.Close)
	return s
}

// colourDist is a distribution with a blue and a green origin in group
// "web", cached with the given default TTL.
func colourDist(blue, green string, g config.OriginGroup, ttl time.Duration) config.Distribution {
	g.Members = []string{"blue", "green"}
	return config.Distribution{Name: "shop", Spec: config.Spec{
		TTL: config.TTL{Default: dptr(ttl)},
		Origins: map[string]config.Origin{
			"blue":  {URL: blue, ConnectTimeout: config.Duration(time.Second), ReadTimeout: config.Duration(5 * time.Second)},
			"green": {URL: green, ConnectTimeout: config.Duration(time.Second), ReadTimeout: config.Duration(5 * time.Second)},
		},
		OriginGroups: map[string]config.OriginGroup{"web": g},
		Behaviors:    []config.Behavior{{Path: "*", Target: "web"}},
	}}
}

// sourceClient is an HTTP client whose connections come from one
// loopback address, so that the edge sees a client address of its own
// (canary buckets are per client address).
func sourceClient(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
}

// canaryClients picks loopback client addresses with at least n on each
// side of a 50% canary.
func canaryClients(n int) []string {
	var in, out []string
	for i := 2; i < 250 && (len(in) < n || len(out) < n); i++ {
		ip := "127.0.0." + strconv.Itoa(i)
		if clientBucket(ip) < 50 {
			if len(in) < n {
				in = append(in, ip)
			}
		} else if len(out) < n {
			out = append(out, ip)
		}
	}
	return append(in, out...)
}

// TestSwitchNeverStrandsClients is the stranded-client case of blue/green:
// two Last-Modified-only static servers whose files share one mtime, a
// 0s default TTL (every request revalidates), and concurrent clients
// across promote, rollback and a 50% canary. A request sent after a switch
// is committed gets the colour its member serves, at once; no request
// fails at any time.
func TestSwitchNeverStrandsClients(t *testing.T) {
	mtime := time.Now().Add(-time.Hour).Truncate(time.Second)
	blue := staticOrigin(t, "blue\n", mtime)
	green := staticOrigin(t, "green\n", mtime)
	dist := func(g config.OriginGroup) config.Distribution { return colourDist(blue.URL, green.URL, g, 0) }
	h := newHarness(t, nil, site(1, dist(config.OriginGroup{Active: "blue"})))

	canary := &config.Canary{Member: "green", Weight: 50}
	steps := []struct {
		name  string
		group config.OriginGroup
	}{
		{"promote green", config.OriginGroup{Active: "green"}},
		{"rollback to blue", config.OriginGroup{Active: "blue"}},
		{"canary 50% green", config.OriginGroup{Active: "blue", Canary: canary}},
		{"canary back to blue", config.OriginGroup{Active: "blue"}},
		{"canary 50% green again", config.OriginGroup{Active: "blue", Canary: canary}},
		{"promote canary", config.OriginGroup{Active: "green"}},
		{"rollback from green", config.OriginGroup{Active: "blue"}},
	}
	// want is the colour a client gets under a group.
	want := func(g config.OriginGroup, ip string) string {
		if g.Canary != nil && clientBucket(ip) < g.Canary.Weight {
			return g.Canary.Member + "\n"
		}
		return g.Active + "\n"
	}

	// gen is the step whose table is committed; groups[gen] its group.
	groups := []config.OriginGroup{{Active: "blue"}}
	for _, s := range steps {
		groups = append(groups, s.group)
	}
	var gen atomic.Int64
	done := make([]atomic.Int64, len(groups)) // requests sent under each gen
	var failed, stranded atomic.Int64
	var firstBad sync.Once
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, ip := range canaryClients(6) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := sourceClient(ip)
			defer c.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				default:
				}
				g := gen.Load()
				req, _ := http.NewRequest("GET", h.base+"/colour.txt", nil)
				req.Host = "shop.cdn.test"
				resp, err := c.Do(req)
				if err != nil {
					failed.Add(1)
					firstBad.Do(func() { t.Errorf("%s, step %d: %v", ip, g, err) })
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstBad.Do(func() { t.Errorf("%s, step %d: status %d, body %q, error %v", ip, g, resp.StatusCode, b, err) })
					continue
				}
				// The request was sent after step g's commit: it must get
				// step g's colour. (A request that raced the switch may
				// read the older step and get either colour.)
				if w := want(groups[g], ip); string(b) != w && gen.Load() == g {
					stranded.Add(1)
					firstBad.Do(func() {
						t.Errorf("%s, after %q: got %q, want %q (Cache-Status %q)", ip, stepName(steps, g), b, w, resp.Header.Get("Cache-Status"))
					})
				}
				done[g].Add(1)
			}
		}()
	}
	// Each step lets every client send a good number of requests, so that
	// each client is checked many times on each side of every switch.
	settle := func(g int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for done[g].Load() < 300 {
			if time.Now().After(deadline) {
				t.Fatalf("step %d: only %d requests in 20s", g, done[g].Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	settle(0)
	for i, s := range steps {
		if err := role.Apply(context.Background(), h.e, site(int64(i+2), dist(s.group))); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		gen.Store(int64(i + 1))
		settle(i + 1)
	}
	close(stop)
	wg.Wait()
	var total int64
	for i := range done {
		total += done[i].Load()
	}
	if failed.Load() > 0 || stranded.Load() > 0 {
		t.Fatalf("of %d requests: %d failed, %d got the colour of another member", total, failed.Load(), stranded.Load())
	}
}

func stepName(steps []struct {
	name  string
	group config.OriginGroup
}, g int64) string {
	if g == 0 {
		return "start"
	}
	return steps[g-1].name
}

// fileOrigin is staticOrigin on the recording test origin: FileServer's
// Last-Modified and 304s, the test clock's Date.
func fileOrigin(t *testing.T, clk *clock, content string, mtime time.Time) *origin {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "colour.txt")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return newOrigin(t, clk, http.FileServer(http.Dir(dir)).ServeHTTP)
}

func conditional(r *http.Request) bool {
	return r.Header.Get("If-Modified-Since") != "" || r.Header.Get("If-None-Match") != ""
}

// TestSwitchKeepCache: after blue -> green, blue's copy answers green's
// clients only with keepCache, and only while it may be served without
// asking an origin; whatever then asks an origin asks green for the whole
// object, never with blue's validators.
func TestSwitchKeepCache(t *testing.T) {
	mtime := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	for _, tc := range []struct {
		name     string
		keep     bool
		ttl, swr time.Duration
		want     string // the first answer after the switch
		cs       string // and its Cache-Status
	}{
		{"ttl 1h", false, time.Hour, 0, "green", "fwd=miss"},
		{"ttl 1h, keep cache", true, time.Hour, 0, "blue", "hit"},
		{"ttl 0s", false, 0, 0, "green", "fwd=miss"},
		{"ttl 0s, keep cache", true, 0, 0, "green", "fwd=stale"},
		{"stale-while-revalidate", false, 0, time.Hour, "green", "fwd=miss"},
		{"stale-while-revalidate, keep cache", true, 0, time.Hour, "blue", "stale-while-revalidate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{}
			blue := fileOrigin(t, clk, "blue", mtime)
			green := fileOrigin(t, clk, "green", mtime)
			dist := func(g config.OriginGroup) config.Distribution {
				d := colourDist(blue.URL, green.URL, g, tc.ttl)
				if tc.swr > 0 {
					d.Spec.TTL.StaleWhileRevalidate = dptr(tc.swr)
				}
				return d
			}
			h := newHarness(t, clk, site(1, dist(config.OriginGroup{Active: "blue"})))
			expect(t, h.get("/colour.txt"), 200, "blue", "stored")
			expect(t, h.get("/colour.txt"), 200, "blue", "")

			if err := role.Apply(context.Background(), h.e, site(2, dist(config.OriginGroup{Active: "green", KeepCache: tc.keep}))); err != nil {
				t.Fatal(err)
			}
			expect(t, h.get("/colour.txt"), 200, tc.want, tc.cs)
			h.e.bg.Wait()
			clk.advance(2 * time.Hour)
			expect(t, h.get("/colour.txt"), 200, "green", "")
			expect(t, h.get("/colour.txt"), 200, "green", "")
			green.mu.Lock()
			defer green.mu.Unlock()
			if len(green.reqs) == 0 || conditional(green.reqs[0]) {
				t.Fatalf("green's first request was conditional (blue's validators): %v", green.reqs[0].Header)
			}
		})
	}
}

// TestFailoverRevalidation: a stored copy is revalidated with the member
// that produced it only, also when a fetch fails over, and a copy made
// by failover serves the primary's clients until the primary answers
// again, which then replaces it in full.
func TestFailoverRevalidation(t *testing.T) {
	clk := &clock{}
	mtime := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	blue := fileOrigin(t, clk, "blue", mtime)
	green := fileOrigin(t, clk, "green", mtime)
	d := colourDist(blue.URL, green.URL, config.OriginGroup{Active: "blue", FailoverOn: []int{503}}, time.Minute)
	h := newHarness(t, clk, site(1, d))
	expect(t, h.get("/colour.txt"), 200, "blue", "stored")

	// Blue fails: the stale copy is asked of blue (conditionally), then of
	// green in full.
	serveBlue := blue.handler
	blue.set(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	clk.advance(2 * time.Minute)
	expect(t, h.get("/colour.txt"), 200, "green", "stored")
	if r := blue.last(); !conditional(r) {
		t.Fatal("blue's copy was not revalidated with blue")
	}
	if r := green.last(); conditional(r) {
		t.Fatalf("green got blue's validators: %v", r.Header)
	}
	// The failover copy is blue's clients' until it is stale.
	n := green.count()
	expect(t, h.get("/colour.txt"), 200, "green", "hit")
	if green.count() != n {
		t.Fatal("a copy made by failover was not served from cache")
	}
	// Blue is back: green's copy is not revalidated with blue.
	blue.set(serveBlue)
	clk.advance(2 * time.Minute)
	expect(t, h.get("/colour.txt"), 200, "blue", "stored")
	if r := blue.last(); conditional(r) {
		t.Fatalf("blue got green's validators: %v", r.Header)
	}
}

// TestCanaryCopies: during a canary each member's clients keep copies of
// their own (no fetch per alternating client), the active member's
// clients keep the copies they had, and an unsafe method drops both.
func TestCanaryCopies(t *testing.T) {
	clk := &clock{}
	mtime := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	blue := fileOrigin(t, clk, "blue", mtime)
	green := fileOrigin(t, clk, "green", mtime)
	dist := func(g config.OriginGroup) config.Distribution {
		d := colourDist(blue.URL, green.URL, g, time.Hour)
		d.Spec.Behaviors[0].Methods = []string{"GET", "POST"}
		return d
	}
	h := newHarness(t, clk, site(1, dist(config.OriginGroup{Active: "blue"})))
	ips := canaryClients(1) // one canary client, one active client
	get := func(ip string, method ...string) *httptest.ResponseRecorder {
		m := "GET"
		if len(method) > 0 {
			m = method[0]
		}
		w := httptest.NewRecorder()
		r := httptest.NewRequest(m, "http://shop.cdn.test/colour.txt", nil)
		r.RemoteAddr = ip + ":1234"
		h.e.ServeHTTP(w, r)
		return w
	}
	check := func(w *httptest.ResponseRecorder, colour, cs string) {
		t.Helper()
		if w.Code != 200 || w.Body.String() != colour || !strings.Contains(w.Header().Get("Cache-Status"), cs) {
			t.Fatalf("got %d %q (Cache-Status %q), want %q with %q", w.Code, w.Body, w.Header().Get("Cache-Status"), colour, cs)
		}
	}
	check(get(ips[1]), "blue", "stored")
	if err := role.Apply(context.Background(), h.e, site(2, dist(config.OriginGroup{Active: "blue",
		Canary: &config.Canary{Member: "green", Weight: 50}}))); err != nil {
		t.Fatal(err)
	}
	check(get(ips[1]), "blue", "hit")
	check(get(ips[0]), "green", "stored")
	for range 3 {
		check(get(ips[1]), "blue", "hit")
		check(get(ips[0]), "green", "hit")
	}
	if b, g := blue.count(), green.count(); b != 1 || g != 1 {
		t.Fatalf("origin requests: blue %d, green %d; want one each", b, g)
	}
	// A POST from either client drops both copies.
	get(ips[0], "POST")
	check(get(ips[1]), "blue", "stored")
	check(get(ips[0]), "green", "stored")
}

// TestClientBucketIsFNV: the buckets are those of hash/fnv's FNV-1a, so
// a canary keeps its clients across this release.
func TestClientBucketIsFNV(t *testing.T) {
	for _, ip := range []string{"", "127.0.0.1", "10.0.3.7", "::1", "2001:db8::1", "203.0.113.255"} {
		f := fnv.New32a()
		f.Write([]byte(ip))
		if got, want := clientBucket(ip), int(f.Sum32()%100); got != want {
			t.Errorf("clientBucket(%q) = %d, want %d", ip, got, want)
		}
	}
}

// TestCanaryHitAllocatesNothing: a hit of either member during a canary
// costs what a plain hit does.
func TestCanaryHitAllocatesNothing(t *testing.T) {
	clk := &clock{}
	blue := newOrigin(t, clk, body("blue", "Cache-Control", "max-age=3600"))
	green := newOrigin(t, clk, body("green", "Cache-Control", "max-age=3600"))
	snap := site(1, colourDist(blue.URL, green.URL, config.OriginGroup{Active: "blue",
		Canary: &config.Canary{Member: "green", Weight: 50}}, time.Hour))
	snap.Site.Nodes = nil
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	if err := role.Apply(context.Background(), e, snap); err != nil {
		t.Fatal(err)
	}
	ips := canaryClients(1)
	for i, want := range []string{"green", "blue"} {
		req := httptest.NewRequest("GET", "http://shop.cdn.test/hit", nil)
		req.RemoteAddr = ips[i] + ":1234"
		e.ServeHTTP(httptest.NewRecorder(), req)
		w := &reuseWriter{h: http.Header{}}
		allocs := testing.AllocsPerRun(200, func() {
			w.reset()
			e.ServeHTTP(w, req)
		})
		if w.code != 200 || !strings.HasPrefix(w.h.Get("Cache-Status"), "intercloud-edge; hit") {
			t.Fatalf("%s: status %d, Cache-Status %q", want, w.code, w.h.Get("Cache-Status"))
		}
		if allocs > 0 {
			t.Errorf("%s: %.0f allocations per hit", want, allocs)
		}
	}
}
