package edge

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
)

// TestStorage checks which origin responses are stored: each case makes
// two requests and counts origin requests.
func TestStorage(t *testing.T) {
	tests := []struct {
		name    string
		headers []string // origin response header pairs
		req     []string // client request header pairs
		ttl     config.TTL
		fwd     []string
		cookies bool
		stored  bool
	}{
		{"max-age", []string{"Cache-Control", "max-age=60"}, nil, config.TTL{}, nil, false, true},
		{"s-maxage", []string{"Cache-Control", "s-maxage=60"}, nil, config.TTL{}, nil, false, true},
		{"expires", []string{"Expires", "@+60"}, nil, config.TTL{}, nil, false, true},
		{"cache-control wins over expires", []string{"Cache-Control", "max-age=0", "Expires", "@+60"}, nil, config.TTL{}, nil, false, false},
		{"no-store", []string{"Cache-Control", "no-store, max-age=60"}, nil, config.TTL{}, nil, false, false},
		{"private", []string{"Cache-Control", "private, max-age=60"}, nil, config.TTL{}, nil, false, false},
		{"set-cookie", []string{"Cache-Control", "max-age=60", "Set-Cookie", "a=b"}, nil, config.TTL{}, nil, false, false},
		{"set-cookie allowed by behavior", []string{"Cache-Control", "max-age=60", "Set-Cookie", "a=b"}, nil, config.TTL{}, nil, true, true},
		{"authorization forwarded", []string{"Cache-Control", "max-age=60"}, []string{"Authorization", "Basic eA=="}, config.TTL{}, []string{"Authorization"}, false, false},
		{"authorization forwarded public", []string{"Cache-Control", "public, max-age=60"}, []string{"Authorization", "Basic eA=="}, config.TTL{}, []string{"Authorization"}, false, true},
		{"authorization not forwarded cannot vary", []string{"Cache-Control", "max-age=60"}, []string{"Authorization", "Basic eA=="}, config.TTL{}, nil, false, true},
		{"vary star", []string{"Cache-Control", "max-age=60", "Vary", "*"}, nil, config.TTL{}, nil, false, false},
		{"heuristic", []string{"Last-Modified", "@-100000"}, nil, config.TTL{}, nil, false, true},
		{"default ttl without freshness", nil, nil, config.TTL{Default: dptr(time.Minute)}, nil, false, true},
		{"default 0 with validator is revalidated", []string{"ETag", `"x"`}, nil, config.TTL{Default: dptr(0)}, nil, false, false},
		{"min clamps max-age=0", []string{"Cache-Control", "max-age=0"}, nil, config.TTL{Min: dptr(time.Minute)}, nil, false, true},
		{"max clamps to zero", []string{"Cache-Control", "max-age=600"}, nil, config.TTL{Max: dptr(0)}, nil, false, false},
		{"request no-store", []string{"Cache-Control", "max-age=60"}, []string{"Cache-Control", "no-store"}, config.TTL{}, nil, false, false},
		{"no freshness no validator", nil, nil, config.TTL{}, nil, false, false},
		{"cdn-cache-control wins for the cdn", []string{"Cache-Control", "no-store", "CDN-Cache-Control", "max-age=60"}, nil, config.TTL{}, nil, false, true},
		{"cdn-cache-control no-store", []string{"Cache-Control", "max-age=60", "CDN-Cache-Control", "no-store"}, nil, config.TTL{}, nil, false, false},
		// RFC 9111 §5.3: an invalid Expires is already expired.
		{"expires far ahead", []string{"Expires", "Thu, 18 Aug 2050 02:01:18 GMT"}, nil, config.TTL{}, nil, false, true},
		{"expires with two spaces", []string{"Expires", "Thu, 18  Aug 2050 02:01:18 GMT"}, nil, config.TTL{}, nil, false, false},
		{"expires with a one-digit hour", []string{"Expires", "Thu, 18 Aug 2050 2:01:18 GMT"}, nil, config.TTL{}, nil, false, false},
		// RFC 9213 §2.1: a CDN-Cache-Control that is not a valid
		// Dictionary is ignored as a whole.
		{"invalid cdn-cache-control leaves cache-control", []string{"Cache-Control", "max-age=60", "CDN-Cache-Control", `max-age="0"`}, nil, config.TTL{}, nil, false, true},
		{"invalid cdn-cache-control leaves no-store", []string{"Cache-Control", "no-store", "CDN-Cache-Control", "max-age=60s"}, nil, config.TTL{}, nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{}
			o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
				for i := 0; i+1 < len(tt.headers); i += 2 {
					v := tt.headers[i+1]
					if strings.HasPrefix(v, "@") {
						d, _ := time.ParseDuration(v[1:] + "s")
						v = clk.now().Add(d).UTC().Format(http.TimeFormat)
					}
					w.Header().Add(tt.headers[i], v)
				}
				w.Write([]byte("payload"))
			})
			d := simple(o.URL, func(s *config.Spec) {
				s.TTL = tt.ttl
				s.Behaviors[0].Forward.Headers = tt.fwd
				s.Behaviors[0].CacheSetCookie = tt.cookies
			})
			h := newHarness(t, clk, site(1, d))
			r1 := h.get("/obj", tt.req...)
			expect(t, r1, 200, "payload", "fwd=uri-miss")
			r2 := h.get("/obj", tt.req...)
			expect(t, r2, 200, "payload", "")
			if got := o.count() == 1; got != tt.stored {
				t.Fatalf("stored = %v, want %v (origin requests %d, cache-status %q / %q)", got, tt.stored, o.count(), r1.cs(), r2.cs())
			}
			if tt.stored && (!r2.hit() || r2.header.Get("Age") == "") {
				t.Fatalf("second response not a hit with Age: %q age=%q", r2.cs(), r2.header.Get("Age"))
			}
		})
	}
}

func TestHitHeaders(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, body("hello", "Cache-Control", "max-age=100", "Age", "10", "Connection", "X-Hop", "X-Hop", "1"))
	h := newHarness(t, clk, site(1, simple(o.URL)))
	r := h.get("/a")
	expect(t, r, 200, "hello", "intercloud-edge; fwd=uri-miss; fwd-status=200; stored; ttl=")
	// The origin's Date has whole seconds: the apparent age is 0 or 1 s.
	expectTTL(t, r, 89, 90)
	if r.header.Get("X-Hop") != "" {
		t.Fatal("hop-by-hop header named in Connection was forwarded")
	}
	clk.advance(5 * time.Second)
	r = h.get("/a")
	expect(t, r, 200, "hello", "intercloud-edge; hit; ttl=")
	expectTTL(t, r, 84, 85)
	if a := r.header.Get("Age"); a != "15" && a != "16" {
		t.Fatalf("Age = %q, want 15", r.header.Get("Age"))
	}
	if !strings.Contains(r.header.Get("Via"), "intercloud-edge") {
		t.Fatalf("Via = %q", r.header.Get("Via"))
	}
	// HEAD from the cached GET.
	r = h.do("HEAD", "shop.cdn.test", "/a")
	expect(t, r, 200, "", "hit")
	if r.body != "" || r.header.Get("Content-Length") != "5" {
		t.Fatalf("HEAD body %q length %q", r.body, r.header.Get("Content-Length"))
	}
	if o.count() != 1 {
		t.Fatalf("origin requests %d, want 1", o.count())
	}
}

func TestRevalidation(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, nil)
	o.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Cache-Control", "max-age=10")
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Set("X-Refreshed", "yes")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write([]byte("v1 body"))
	})
	h := newHarness(t, clk, site(1, simple(o.URL)))
	expect(t, h.get("/r"), 200, "v1 body", "stored")
	clk.advance(11 * time.Second)
	r := h.get("/r")
	expect(t, r, 200, "v1 body", "fwd=stale; fwd-status=304; stored; ttl=")
	expectTTL(t, r, 9, 10)
	if r.header.Get("X-Refreshed") != "yes" {
		t.Fatal("304 did not refresh the stored headers")
	}
	if got := o.last().Header.Get("If-None-Match"); got != `"v1"` {
		t.Fatalf("revalidation sent If-None-Match %q", got)
	}
	r = h.get("/r")
	expect(t, r, 200, "v1 body", "hit")
	if v := r.header.Values("Via"); len(v) != 1 || v[0] != "1.1 intercloud-edge" {
		t.Fatalf("Via after revalidation %q", v)
	}
	// The client's own conditional request is answered from cache.
	r = h.get("/r", "If-None-Match", `"v1"`)
	expect(t, r, 304, "", "hit")
	if r.header.Get("ETag") != `"v1"` || r.body != "" {
		t.Fatalf("304 from cache: etag %q body %q", r.header.Get("ETag"), r.body)
	}
	// Request no-cache forces a revalidation.
	n := o.count()
	expect(t, h.get("/r", "Cache-Control", "no-cache"), 200, "v1 body", "fwd=request; fwd-status=304")
	if o.count() != n+1 {
		t.Fatal("request no-cache did not reach the origin")
	}
	if o.count() != 3 {
		t.Fatalf("origin requests %d, want 3", o.count())
	}
}

func TestNoCacheAndDefaultZero(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []string
		ttl     config.TTL
	}{
		{"no-cache", []string{"Cache-Control", "no-cache", "ETag", `"e"`}, config.TTL{}},
		{"ttl default 0s", []string{"Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT"}, config.TTL{Default: dptr(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{}
			var conditional int
			o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
				for i := 0; i < len(tc.headers); i += 2 {
					w.Header().Set(tc.headers[i], tc.headers[i+1])
				}
				if r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != "" {
					conditional++
					w.WriteHeader(304)
					return
				}
				w.Write([]byte("body"))
			})
			d := simple(o.URL)
			d.Spec.TTL = tc.ttl
			h := newHarness(t, clk, site(1, d))
			for i := 0; i < 3; i++ {
				expect(t, h.get("/x"), 200, "body", "")
			}
			if o.count() != 3 || conditional != 2 {
				t.Fatalf("origin requests %d conditional %d, want 3 and 2", o.count(), conditional)
			}
		})
	}
}

func TestStaleWhileRevalidate(t *testing.T) {
	clk := &clock{}
	ver := "v1"
	o := newOrigin(t, clk, nil)
	o.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		w.Write([]byte(ver))
	})
	h := newHarness(t, clk, site(1, simple(o.URL)))
	expect(t, h.get("/s"), 200, "v1", "stored")
	o.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		w.Write([]byte("v2"))
	})
	clk.advance(20 * time.Second)
	r := h.get("/s")
	expect(t, r, 200, "v1", "hit; ttl=")
	expectTTL(t, r, -11, -10)
	expect(t, r, 200, "v1", "detail=stale-while-revalidate")
	h.e.bg.Wait()
	if o.count() != 2 {
		t.Fatalf("origin requests %d, want 2 (one background refresh)", o.count())
	}
	expect(t, h.get("/s"), 200, "v2", "hit")
	_ = ver
}

func TestStaleIfError(t *testing.T) {
	tests := []struct {
		name     string
		cc       string
		ttl      config.TTL
		down     bool // origin stops listening rather than erroring
		wantBody string
		wantCode int
	}{
		{"origin 503 with stale-if-error", "max-age=1, stale-if-error=60", config.TTL{}, false, "good", 200},
		{"origin down with stale-if-error", "max-age=1, stale-if-error=60", config.TTL{}, true, "good", 200},
		{"distribution default", "max-age=1", config.TTL{StaleIfError: dptr(time.Minute)}, false, "good", 200},
		{"no stale-if-error", "max-age=1", config.TTL{}, false, "", 503},
		{"must-revalidate forbids", "max-age=1, must-revalidate, stale-if-error=60", config.TTL{}, false, "", 503},
		{"must-revalidate origin down is 504", "max-age=1, must-revalidate", config.TTL{}, true, "", 504},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{}
			o := newOrigin(t, clk, body("good", "Cache-Control", tt.cc, "ETag", `"g"`))
			d := simple(o.URL)
			d.Spec.TTL = tt.ttl
			h := newHarness(t, clk, site(1, d))
			expect(t, h.get("/e"), 200, "good", "stored")
			o.set(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "broken", 503) })
			if tt.down {
				o.Close()
			}
			clk.advance(5 * time.Second)
			r := h.get("/e")
			if r.status != tt.wantCode || !strings.Contains(r.body, tt.wantBody) {
				t.Fatalf("got %d %q (%s)", r.status, r.body, r.cs())
			}
			if tt.wantCode == 200 && !strings.Contains(r.cs(), "fwd=stale") {
				t.Fatalf("Cache-Status %q", r.cs())
			}
		})
	}
}

func TestCacheKeyForwarding(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write([]byte(r.URL.RawQuery + "|" + r.Header.Get("X-Lang") + "|" + r.Header.Get("Cookie") + "|" + r.Header.Get("X-Other")))
	})
	d := simple(o.URL)
	d.Spec.Behaviors[0].Forward = config.Forward{
		Query:   config.Selection{Names: []string{"v"}},
		Headers: []string{"x-lang"},
		Cookies: config.Selection{Names: []string{"session"}},
	}
	h := newHarness(t, clk, site(1, d))
	r := h.get("/k?v=1&utm=abc", "X-Lang", "en", "Cookie", "session=s1; tracking=t", "X-Other", "poison")
	expect(t, r, 200, "v=1|en|session=s1|", "stored")
	tests := []struct {
		name string
		path string
		kv   []string
		hit  bool
	}{
		{"unforwarded query and header ignored", "/k?utm=zzz&v=1", []string{"X-Lang", "en", "Cookie", "session=s1; tracking=other", "X-Other", "x"}, true},
		{"forwarded query differs", "/k?v=2", []string{"X-Lang", "en", "Cookie", "session=s1"}, false},
		{"forwarded header differs", "/k?v=1", []string{"X-Lang", "de", "Cookie", "session=s1"}, false},
		{"forwarded cookie differs", "/k?v=1", []string{"X-Lang", "en", "Cookie", "session=s2"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.get(tt.path, tt.kv...)
			if r.hit() != tt.hit {
				t.Fatalf("hit = %v want %v (%s, body %q)", r.hit(), tt.hit, r.cs(), r.body)
			}
		})
	}
	if last := o.last(); last.URL.RawQuery != "v=1" || last.Header.Get("X-Other") != "" || strings.Contains(last.Header.Get("Cookie"), "tracking") {
		t.Fatalf("origin saw query %q X-Other %q Cookie %q", last.URL.RawQuery, last.Header.Get("X-Other"), last.Header.Get("Cookie"))
	}
}

func TestVary(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		w.Write([]byte("lang=" + r.Header.Get("Accept-Language")))
	})
	d := simple(o.URL)
	d.Spec.Behaviors[0].Forward.Headers = []string{"*"}
	h := newHarness(t, clk, site(1, d))
	steps := []struct {
		lang, body, cs string
	}{
		{"en", "lang=en", "fwd=uri-miss"},
		{"fr", "lang=fr", "fwd=vary-miss"},
		{"en", "lang=en", "hit"},
		{"fr", "lang=fr", "hit"},
		{"", "lang=", "fwd=vary-miss"},
	}
	for _, s := range steps {
		var kv []string
		if s.lang != "" {
			kv = []string{"Accept-Language", s.lang}
		}
		expect(t, h.get("/v", kv...), 200, s.body, s.cs)
	}
	if o.count() != 3 {
		t.Fatalf("origin requests %d, want 3", o.count())
	}
	// A purge drops every variant.
	if err := h.e.Invalidate(t.Context(), status.Invalidation{ID: "1", Distribution: "shop", Paths: []string{"/v"}}); err != nil {
		t.Fatal(err)
	}
	expect(t, h.get("/v", "Accept-Language", "fr"), 200, "lang=fr", "fwd=uri-miss")
}

func TestRanges(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"r1"`)
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader("0123456789"))
	})
	h := newHarness(t, clk, site(1, simple(o.URL)))
	// A range on a miss passes through and is not stored as the object.
	r := h.get("/r", "Range", "bytes=0-3")
	expect(t, r, 206, "0123", "detail=range")
	r = h.get("/r")
	expect(t, r, 200, "0123456789", "fwd=uri-miss")
	tests := []struct {
		rng, ifRange string
		status       int
		body, cr     string
	}{
		{"bytes=2-4", "", 206, "234", "bytes 2-4/10"},
		{"bytes=7-", "", 206, "789", "bytes 7-9/10"},
		{"bytes=-2", "", 206, "89", "bytes 8-9/10"},
		{"bytes=20-", "", 416, "", "bytes */10"},
		{"bytes=2-4", `"r1"`, 206, "234", "bytes 2-4/10"},
		{"bytes=2-4", `"old"`, 200, "0123456789", ""},
	}
	for _, tt := range tests {
		t.Run(tt.rng+tt.ifRange, func(t *testing.T) {
			kv := []string{"Range", tt.rng}
			if tt.ifRange != "" {
				kv = append(kv, "If-Range", tt.ifRange)
			}
			r := h.get("/r", kv...)
			expect(t, r, tt.status, "", "hit")
			if r.body != tt.body || r.header.Get("Content-Range") != tt.cr {
				t.Fatalf("body %q content-range %q", r.body, r.header.Get("Content-Range"))
			}
		})
	}
	if o.count() != 2 {
		t.Fatalf("origin requests %d, want 2", o.count())
	}
}

// TestClientConditionals: a client's preconditions and Range on a hit are
// answered from the stored response as the origin would answer them
// (RFC 9110 §13.2.2, §14), here for a stored ETag with a comma in it.
func TestClientConditionals(t *testing.T) {
	const lm = "Mon, 02 Jan 2006 15:04:05 GMT"
	const failed = "intercloud-edge: precondition failed\n"
	clk := &clock{}
	o := newOrigin(t, clk, body("0123456789", "Cache-Control", "max-age=600", "ETag", `"a,b"`, "Last-Modified", lm))
	h := newHarness(t, clk, site(1, simple(o.URL)))
	expect(t, h.get("/c"), 200, "0123456789", "stored")
	tests := []struct {
		name   string
		method string
		kv     []string
		status int
		body   string
	}{
		{"INM quoted comma", "GET", []string{"If-None-Match", `"a,b", "c"`}, 304, ""},
		{"INM quoted comma last", "GET", []string{"If-None-Match", `"c", W/"a,b"`}, 304, ""},
		{"INM half of the tag", "GET", []string{"If-None-Match", `"a", "b"`}, 200, "0123456789"},
		{"INM star", "HEAD", []string{"If-None-Match", "*"}, 304, ""},
		{"IMS equal", "GET", []string{"If-Modified-Since", lm}, 304, ""},
		{"IMS ignored after INM", "GET", []string{"If-None-Match", `"c"`, "If-Modified-Since", lm}, 200, "0123456789"},
		{"If-Match holds", "GET", []string{"If-Match", `"x", "a,b"`}, 200, "0123456789"},
		{"If-Match fails", "GET", []string{"If-Match", `"a"`}, 412, failed},
		{"IUS fails", "GET", []string{"If-Unmodified-Since", "Sun, 01 Jan 2006 15:04:05 GMT"}, 412, failed},
		{"If-Match fails before INM", "GET", []string{"If-Match", `"x"`, "If-None-Match", `"a,b"`}, 412, failed},
		{"If-Range quoted comma", "GET", []string{"Range", "bytes=1-2", "If-Range", `"a,b"`}, 206, "12"},
		{"adjacent ranges coalesced", "GET", []string{"Range", "bytes=1-2,3-4"}, 206, "1234"},
		{"several ranges answered whole", "GET", []string{"Range", "bytes=1-2,5-6"}, 200, "0123456789"},
		{"Range on HEAD ignored", "HEAD", []string{"Range", "bytes=1-2"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(tt.method, "shop.cdn.test", "/c", tt.kv...)
			expect(t, r, tt.status, "", "hit")
			if r.body != tt.body {
				t.Fatalf("body %q, want %q", r.body, tt.body)
			}
			if tt.status == 304 && r.header.Get("ETag") != `"a,b"` {
				t.Fatalf("304 ETag %q", r.header.Get("ETag"))
			}
		})
	}
	if o.count() != 1 {
		t.Fatalf("origin requests %d, want 1", o.count())
	}
}

func TestUnsafeMethodInvalidates(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			w.Header().Set("Location", "/other")
			w.WriteHeader(201)
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write([]byte(r.URL.Path))
	})
	d := simple(o.URL)
	d.Spec.Behaviors[0].Methods = []string{"GET", "HEAD", "POST"}
	h := newHarness(t, clk, site(1, d))
	expect(t, h.get("/item"), 200, "/item", "stored")
	expect(t, h.get("/other"), 200, "/other", "stored")
	expect(t, h.get("/item"), 200, "/item", "hit")
	expect(t, h.do("POST", "shop.cdn.test", "/item"), 201, "", "fwd=method")
	expect(t, h.get("/item"), 200, "/item", "fwd=uri-miss")
	expect(t, h.get("/other"), 200, "/other", "fwd=uri-miss")
	// A method the behavior does not allow.
	r := h.do("DELETE", "shop.cdn.test", "/item")
	if r.status != 405 || r.header.Get("Allow") != "GET, HEAD, POST" {
		t.Fatalf("DELETE: %d Allow %q", r.status, r.header.Get("Allow"))
	}
}

func TestPurge(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, body("x", "Cache-Control", "max-age=600"))
	d := simple(o.URL)
	d.Spec.Behaviors[0].Forward.Query = config.Selection{All: true}
	h := newHarness(t, clk, site(1, d))
	paths := []string{"/a", "/a?q=1", "/img/1.png", "/img/2.png", "/imgx", "/b"}
	for _, p := range paths {
		expect(t, h.get(p), 200, "x", "stored")
	}
	if err := h.e.Invalidate(t.Context(), status.Invalidation{ID: "i1", Distribution: "shop", Paths: []string{"/a", "/img/*"}}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"/a": false, "/a?q=1": false, "/img/1.png": false, "/img/2.png": false, "/imgx": true, "/b": true}
	for _, p := range paths {
		if got := h.get(p).hit(); got != want[p] {
			t.Errorf("%s: hit=%v want %v", p, got, want[p])
		}
	}
	if err := h.e.Invalidate(t.Context(), status.Invalidation{ID: "i2", Distribution: "shop", Paths: []string{"nope"}}); err == nil {
		t.Fatal("relative path accepted")
	}
}

func TestLargeObjectStreamsUncached(t *testing.T) {
	clk := &clock{}
	big := strings.Repeat("z", 300<<10)
	o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.(http.Flusher).Flush() // no Content-Length: the edge must find out by reading
		w.Write([]byte(big))
	})
	s := site(1, simple(o.URL))
	s.Site.Nodes[0].Cache.MaxObject = 100 << 10
	h := newHarness(t, clk, s)
	for i := 0; i < 2; i++ {
		r := h.get("/big")
		expect(t, r, 200, "", "detail=too-large")
		if r.body != big {
			t.Fatalf("body length %d, want %d", len(r.body), len(big))
		}
	}
	if o.count() != 2 {
		t.Fatalf("origin requests %d, want 2", o.count())
	}
}

func TestUncacheableReplacementDropsStored(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, body("old", "Cache-Control", "max-age=10", "ETag", `"1"`))
	h := newHarness(t, clk, site(1, simple(o.URL)))
	expect(t, h.get("/n"), 200, "old", "stored")
	o.set(body("new", "Cache-Control", "no-store"))
	clk.advance(20 * time.Second)
	expect(t, h.get("/n"), 200, "new", "detail=no-store")
	expect(t, h.get("/n", "Cache-Control", "max-stale=3600"), 200, "new", "fwd=uri-miss")
}

func TestQualifiedPrivate(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, body("shared part", "Cache-Control", `max-age=60, private="X-User"`, "X-User", "alice", "X-Other", "kept"))
	h := newHarness(t, clk, site(1, simple(o.URL)))
	r := h.get("/q")
	expect(t, r, 200, "shared part", "stored")
	if r.header.Get("X-User") != "alice" {
		t.Fatal("the requesting client lost the private field")
	}
	r = h.get("/q")
	expect(t, r, 200, "shared part", "hit")
	if r.header.Get("X-User") != "" || r.header.Get("X-Other") != "kept" {
		t.Fatalf("from cache: X-User %q X-Other %q", r.header.Get("X-User"), r.header.Get("X-Other"))
	}
}
