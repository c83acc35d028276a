package edge

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
)

func TestMatchPath(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"*", "/anything/at/all", true},
		{"/api/*", "/api/v1/users", true},
		{"/api/*", "/api", false},
		{"/api/*", "/apix/1", false},
		{"/images/*.jpg", "/images/a/b.jpg", true},
		{"/images/*.jpg", "/images/a.png", false},
		{"/file?.txt", "/file1.txt", true},
		{"/file?.txt", "/file12.txt", false},
		{"/Case", "/case", false},
		{"/a*b*c", "/aXXbYYc", true},
		{"/a*b*c", "/aXXbYY", false},
		{"/exact", "/exact", true},
		{"/" + strings.Repeat("*a", 30), "/" + strings.Repeat("a", 200) + "b", false},
	}
	for _, tt := range tests {
		if got := matchPath(tt.pattern, tt.path); got != tt.want {
			t.Errorf("matchPath(%q, %q) = %v", tt.pattern, tt.path, got)
		}
	}
	if normalizePattern("images/*") != "/images/*" || normalizePattern("") != "*" {
		t.Fatal("normalizePattern")
	}
}

func TestRouting(t *testing.T) {
	clk := &clock{}
	api := newOrigin(t, clk, body("api", "Cache-Control", "max-age=60"))
	web := newOrigin(t, clk, body("web", "Cache-Control", "max-age=60"))
	d := config.Distribution{Name: "shop", Spec: config.Spec{
		Aliases: []string{"www.shop.test"},
		Origins: map[string]config.Origin{"api": {URL: api.URL}, "web": {URL: web.URL}},
		Behaviors: []config.Behavior{
			{Path: "/api/*", Target: "api", Cache: new(bool)},
			{Path: "/img/*.png", Target: "api"},
			{Path: "*", Target: "web"},
		},
	}}
	other := simple(web.URL)
	other.Name, other.Spec.Aliases = "blog", []string{"blog.example.test"}
	other.Spec.Behaviors = []config.Behavior{{Path: "/only/*", Target: "o"}}
	s := site(1, d)
	s.Distributions = append(s.Distributions, other)
	off := simple(web.URL)
	off.Name, off.Spec.Aliases, off.Spec.Disabled = "off", []string{"off.test"}, true
	s.Distributions = append(s.Distributions, off)
	h := newHarness(t, clk, s)
	tests := []struct {
		host, path string
		status     int
		body       string
	}{
		{"shop.cdn.test", "/api/users", 200, "api"},
		{"SHOP.cdn.test.:8080", "/api/users", 200, "api"},
		{"www.shop.test", "/index.html", 200, "web"},
		{"shop.cdn.test", "/img/a/b.png", 200, "api"},
		{"shop.cdn.test", "/img/a.gif", 200, "web"},
		{"unknown.test", "/", 404, `no distribution serves host "unknown.test"`},
		{"off.test", "/", 404, "no distribution"},
		{"blog.cdn.test", "/only/x", 200, "web"},
		{"blog.example.test", "/elsewhere", 404, "no behavior of distribution blog"},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			expect(t, h.do("GET", tt.host, tt.path), tt.status, tt.body, "")
		})
	}
	// cache: false passes everything through.
	expect(t, h.get("/api/users"), 200, "api", "fwd=bypass; fwd-status=200; detail=behavior")
	// A bad snapshot is refused and the old table keeps serving.
	bad := site(2, simple(web.URL))
	bad.Distributions[0].Spec.Behaviors[0].Target = "missing"
	if err := role.Apply(context.Background(), h.e, bad); err == nil || !strings.Contains(err.Error(), "unknown target") {
		t.Fatalf("bad snapshot: %v", err)
	}
	expect(t, h.get("/api/users"), 200, "api", "")
	dup := site(3, simple(web.URL))
	dup.Distributions = append(dup.Distributions, simple(web.URL))
	if err := role.Apply(context.Background(), h.e, dup); err == nil || !strings.Contains(err.Error(), "also served by") {
		t.Fatalf("duplicate host: %v", err)
	}
}

func TestHeaderPolicyAndProxyFields(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, body("ok", "Server", "origin/1", "Cache-Control", "max-age=60", "Link", "</a.css>; rel=preload"))
	d := simple(o.URL)
	d.Spec.Behaviors[0].Forward.Headers = []string{"X-Keep", "X-Strip"}
	d.Spec.Headers = config.Headers{
		Request: config.HeaderEdit{Set: map[string]string{"X-Edge": "1"}, Add: map[string]string{"X-Keep": "added"}, Remove: []string{"X-Strip"}},
		Response: config.HeaderEdit{Set: map[string]string{"Strict-Transport-Security": "max-age=63072000"}, Remove: []string{"Server"},
			Add: map[string]string{"Link": "</b.js>; rel=preload"}},
	}
	h := newHarness(t, clk, site(1, d))
	for _, want := range []string{"fwd=uri-miss", "hit"} {
		r := h.get("/h", "X-Keep", "k", "X-Strip", "s", "X-Forwarded-For", "10.9.9.9", "Connection", "close")
		expect(t, r, 200, "ok", want)
		if r.header.Get("Server") != "" || r.header.Get("Strict-Transport-Security") != "max-age=63072000" {
			t.Fatalf("response policy not applied: %v", r.header)
		}
		if got := r.header.Values("Link"); len(got) != 2 || got[1] != "</b.js>; rel=preload" {
			t.Fatalf("response add: Link %q", got)
		}
	}
	if got := o.last().Header.Values("X-Keep"); len(got) != 2 || got[0] != "k" || got[1] != "added" {
		t.Fatalf("request add: origin saw X-Keep %q", got)
	}
	req := o.last()
	checks := map[string]string{"X-Keep": "k", "X-Strip": "", "X-Edge": "1", "X-Forwarded-For": "10.9.9.9, 127.0.0.1",
		"X-Forwarded-Host": "shop.cdn.test", "X-Forwarded-Proto": "http", "Forwarded": "for=127.0.0.1;proto=http;host=shop.cdn.test"}
	for k, v := range checks {
		if got := req.Header.Get(k); got != v {
			t.Errorf("origin saw %s=%q, want %q", k, got, v)
		}
	}
	if !strings.Contains(req.Header.Get("Via"), "intercloud-edge") {
		t.Errorf("origin saw Via %q", req.Header.Get("Via"))
	}
	if u, _ := o.URL, 0; req.Host != strings.TrimPrefix(u, "http://") {
		t.Errorf("origin saw Host %q", req.Host)
	}
}

func TestErrorPages(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/errors/404.html":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<h1>custom not found</h1>"))
		default:
			http.NotFound(w, r)
		}
	})
	dead := newOrigin(t, clk, body(""))
	dead.Close()
	d := config.Distribution{Name: "shop", Spec: config.Spec{
		Origins: map[string]config.Origin{"o": {URL: o.URL}, "dead": {URL: dead.URL, ConnectTimeout: config.Duration(time.Second)}},
		Behaviors: []config.Behavior{
			{Path: "/down/*", Target: "dead"},
			{Path: "*", Target: "o"},
		},
		ErrorPages: []config.ErrorPage{
			{Status: 404, Path: "/errors/404.html", TTL: config.Duration(time.Minute), ResponseCode: 404},
			{Status: 502, Path: "/errors/404.html", ResponseCode: 503},
		},
	}}
	h := newHarness(t, clk, site(1, d))
	r := h.get("/missing")
	expect(t, r, 404, "custom not found", "")
	if r.header.Get("Content-Type") != "text/html" {
		t.Fatalf("content-type %q", r.header.Get("Content-Type"))
	}
	n := o.count()
	expect(t, h.get("/missing2"), 404, "custom not found", "")
	if o.count() != n+1 {
		t.Fatalf("error page was fetched again (origin requests %d → %d)", n, o.count())
	}
	expect(t, h.get("/down/x"), 503, "custom not found", "detail=origin-error")
}

// TestSwapUnderLoad swaps the routing table between two origins while
// clients hammer the edge: no request may fail, and both origins serve.
func TestSwapUnderLoad(t *testing.T) {
	clk := &clock{}
	a := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
		w.Write([]byte("A"))
	})
	b := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
		w.Write([]byte("B"))
	})
	snapFor := func(rev int64, url string) *config.Snapshot {
		d := simple(url)
		d.Spec.Behaviors[0].Cache = new(bool) // every request reaches an origin
		return site(rev, d)
	}
	h := newHarness(t, clk, snapFor(1, a.URL))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", h.base+"/x", nil)
				req.Host = "shop.cdn.test"
				resp, err := c.Do(req)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				var buf [8]byte
				n, _ := resp.Body.Read(buf[:])
				resp.Body.Close()
				if resp.StatusCode != 200 || (string(buf[:n]) != "A" && string(buf[:n]) != "B") {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status+" "+string(buf[:n]))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for rev := int64(2); rev < 42; rev++ {
		url := a.URL
		if rev%2 == 0 {
			url = b.URL
		}
		if err := role.Apply(context.Background(), h.e, snapFor(rev, url)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during swaps; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if a.count() == 0 || b.count() == 0 || ok.Load() < 100 {
		t.Fatalf("ok %d, origin A %d, origin B %d", ok.Load(), a.count(), b.count())
	}
}

func TestRedirectHTTPS(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, body("plain"))
	d := simple(o.URL)
	d.Spec.Behaviors = []config.Behavior{{Path: "/secure/*", Target: "o", RedirectHTTPS: true}, {Path: "*", Target: "o"}}
	h := newHarness(t, clk, site(1, d))
	r := h.get("/secure/login?next=%2F")
	if r.status != http.StatusMovedPermanently || r.header.Get("Location") != "https://shop.cdn.test/secure/login?next=%2F" {
		t.Fatalf("got %d Location %q", r.status, r.header.Get("Location"))
	}
	expect(t, h.get("/open"), 200, "plain", "")
	if o.count() != 1 {
		t.Fatalf("origin requests %d, want 1", o.count())
	}
}

func TestMethodSet(t *testing.T) {
	for _, tc := range []struct {
		methods []string
		allow   string
	}{
		{nil, "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"}, // config.DefaultMethods
		{[]string{"get"}, "GET, HEAD"},
		{[]string{"POST", "GET"}, "GET, HEAD, POST"},
		{[]string{"M-SEARCH"}, "M-SEARCH"},
	} {
		set, allow := methodSet(tc.methods)
		if allow != tc.allow || len(set) != len(strings.Split(tc.allow, ", ")) {
			t.Errorf("%q: allow %q (%d methods), want %q", tc.methods, allow, len(set), tc.allow)
		}
		if again, _ := methodSet(tc.methods); reflect.ValueOf(again).Pointer() != reflect.ValueOf(set).Pointer() {
			t.Errorf("%q: the set was built twice", tc.methods)
		}
	}
}
