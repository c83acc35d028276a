package edge

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
)

func groupDist(urls map[string]string, g config.OriginGroup) config.Distribution {
	d := config.Distribution{Name: "shop", Spec: config.Spec{Origins: map[string]config.Origin{}}}
	for n, u := range urls {
		d.Spec.Origins[n] = config.Origin{URL: u, ConnectTimeout: config.Duration(time.Second), ReadTimeout: config.Duration(300 * time.Millisecond)}
	}
	d.Spec.OriginGroups = map[string]config.OriginGroup{"web": g}
	d.Spec.Behaviors = []config.Behavior{{Path: "*", Target: "web", Cache: new(bool)}}
	return d
}

func TestFailover(t *testing.T) {
	clk := &clock{}
	tests := []struct {
		name     string
		primary  http.HandlerFunc
		down     bool
		failover []int
		want     string
		status   int
	}{
		{"failover status", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }, false, []int{502, 503, 504}, "backup", 200},
		{"status not listed", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, false, []int{503}, "", 500},
		{"connect refused", nil, true, nil, "backup", 200},
		{"read timeout", func(w http.ResponseWriter, r *http.Request) { time.Sleep(time.Second) }, false, nil, "backup", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newOrigin(t, clk, tt.primary)
			if tt.down {
				p.Close()
			}
			b := newOrigin(t, clk, body("backup"))
			d := groupDist(map[string]string{"p": p.URL, "b": b.URL}, config.OriginGroup{Members: []string{"p", "b"}, Active: "p", FailoverOn: tt.failover})
			h := newHarness(t, clk, site(1, d))
			expect(t, h.get("/f"), tt.status, tt.want, "")
		})
	}
}

func TestPassiveAndControllerHealth(t *testing.T) {
	clk := &clock{}
	p := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	b := newOrigin(t, clk, body("backup"))
	d := groupDist(map[string]string{"p": p.URL, "b": b.URL}, config.OriginGroup{Members: []string{"p", "b"}, Active: "p", FailoverOn: []int{503}})
	h := newHarness(t, clk, site(1, d))
	for i := 0; i < passiveFailures; i++ {
		expect(t, h.get("/p"), 200, "backup", "")
	}
	n := p.count()
	for i := 0; i < 5; i++ {
		expect(t, h.get("/p"), 200, "backup", "")
	}
	if p.count() != n {
		t.Fatalf("a member failing %d times in a row was still tried (%d → %d)", passiveFailures, n, p.count())
	}
	// The controller's verdict skips a member too.
	p.set(body("primary"))
	h.e.health.now = func() time.Time { return time.Now().Add(time.Hour) }
	expect(t, h.get("/p"), 200, "primary", "")
	h.e.SetOriginHealth(map[string]status.OriginHealth{"shop/p": {Distribution: "shop", Origin: "p", Healthy: false}})
	n = p.count()
	expect(t, h.get("/p"), 200, "backup", "")
	if p.count() != n {
		t.Fatal("unhealthy (controller) member was tried")
	}
	// All members unhealthy: the active one is still tried.
	h.e.SetOriginHealth(map[string]status.OriginHealth{"shop/p": {Healthy: false}, "shop/b": {Healthy: false}})
	expect(t, h.get("/p"), 200, "primary", "")
}

func TestCanary(t *testing.T) {
	clk := &clock{}
	a := newOrigin(t, clk, body("active"))
	c := newOrigin(t, clk, body("canary"))
	for _, tt := range []struct {
		weight int
		want   string
	}{{0, "active"}, {100, "canary"}} {
		d := groupDist(map[string]string{"a": a.URL, "c": c.URL}, config.OriginGroup{Members: []string{"a", "c"}, Active: "a",
			Canary: &config.Canary{Member: "c", Weight: tt.weight}})
		h := newHarness(t, clk, site(1, d))
		for i := 0; i < 3; i++ {
			expect(t, h.get("/c"), 200, tt.want, "")
		}
	}
	// The share is stable per client and close to the weight.
	n := 0
	for i := 0; i < 1000; i++ {
		ip := "10.0." + itoa(i/250) + "." + itoa(i%250)
		if clientBucket(ip) < 30 {
			n++
		}
		if clientBucket(ip) != clientBucket(ip) {
			t.Fatal("bucket not stable")
		}
	}
	if n < 200 || n > 400 {
		t.Fatalf("30%% canary picked %d of 1000 clients", n)
	}
}

func itoa(i int) string { return uitoa(uint64(i)) }

// TestCollapsing: concurrent misses of one object make one origin request;
// when the answer turns out uncacheable every client goes on its own.
func TestCollapsing(t *testing.T) {
	for _, tc := range []struct {
		cc   string
		want int
	}{{"max-age=60", 1}, {"private", 10}} {
		t.Run(tc.cc, func(t *testing.T) {
			clk := &clock{}
			gate := make(chan struct{})
			var once sync.Once
			o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
				<-gate
				w.Header().Set("Cache-Control", tc.cc)
				w.Write([]byte("collapsed"))
			})
			h := newHarness(t, clk, site(1, simple(o.URL)))
			var wg sync.WaitGroup
			results := make([]result, 10)
			for i := range results {
				wg.Add(1)
				go func() { defer wg.Done(); results[i] = h.get("/c") }()
			}
			// Let every request reach the edge before the origin answers.
			deadline := time.Now().Add(5 * time.Second)
			for o.count() < 1 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond)
			once.Do(func() { close(gate) })
			wg.Wait()
			collapsed := 0
			for _, r := range results {
				expect(t, r, 200, "collapsed", "")
				if strings.Contains(r.cs(), "collapsed") {
					collapsed++
				}
			}
			if o.count() != tc.want {
				t.Fatalf("origin requests %d, want %d", o.count(), tc.want)
			}
			if tc.want == 1 && collapsed != 9 {
				t.Fatalf("%d responses marked collapsed, want 9", collapsed)
			}
		})
	}
}

// TestClientGoneDoesNotPoison: a client leaving mid-fetch does not stop
// the fill, and the next client gets the whole object from cache.
func TestClientGoneDoesNotPoison(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Length", "20000")
		w.Write([]byte(strings.Repeat("a", 10000)))
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond)
		w.Write([]byte(strings.Repeat("b", 10000)))
	})
	h := newHarness(t, clk, site(1, simple(o.URL)))
	c := &http.Client{Timeout: 100 * time.Millisecond}
	req, _ := http.NewRequest("GET", h.base+"/slow", nil)
	req.Host = "shop.cdn.test"
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("client with a 100ms timeout got an answer")
	}
	time.Sleep(400 * time.Millisecond)
	r := h.get("/slow")
	expect(t, r, 200, "", "hit")
	if len(r.body) != 20000 || !strings.HasSuffix(r.body, "b") {
		t.Fatalf("body length %d", len(r.body))
	}
	if o.count() != 1 {
		t.Fatalf("origin requests %d, want 1", o.count())
	}
}

// TestClientGoneAbandonsPassThrough: an uncacheable request whose client
// leaves while the origin is still thinking is cancelled at the origin,
// as nginx does, instead of holding an origin connection until it answers.
func TestClientGoneAbandonsPassThrough(t *testing.T) {
	clk := &clock{}
	abandoned := make(chan bool, 1)
	o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // net/http watches for a gone client once the body is read
		select {
		case <-r.Context().Done():
			abandoned <- true
		case <-time.After(10 * time.Second):
			abandoned <- false
		}
	})
	noCache := false
	h := newHarness(t, clk, site(1, simple(o.URL, func(s *config.Spec) {
		s.Behaviors = append([]config.Behavior{{Path: "/api/*", Target: "o", Cache: &noCache}}, s.Behaviors...)
	})))
	c := &http.Client{Timeout: 200 * time.Millisecond}
	req, _ := http.NewRequest("POST", h.base+"/order", strings.NewReader("x"))
	req.Host = "shop.cdn.test"
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("client with a 200ms timeout got an answer")
	}
	if !<-abandoned {
		t.Fatal("the origin request outlived its client by 10 s")
	}
	// A bodiless request of a behavior that does not cache: the fast
	// HTTP/1.1 path, which watches the client only once asked to.
	req, _ = http.NewRequest("GET", h.base+"/api/cart", nil)
	req.Host = "shop.cdn.test"
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("client with a 200ms timeout got an answer")
	}
	if !<-abandoned {
		t.Fatal("the origin request of a bodiless pass-through outlived its client by 10 s")
	}
}
