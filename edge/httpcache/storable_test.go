package httpcache

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

const time1 = time.Second

func TestStorable(t *testing.T) {
	tests := []struct {
		name   string
		method string
		reqH   http.Header
		status int
		respH  http.Header
		o      StoreOptions
		want   string
	}{
		{"plain 200", "GET", hdr(), 200, hdr(), StoreOptions{}, ""},
		{"post", "POST", hdr(), 200, hdr("Cache-Control", "max-age=60"), StoreOptions{}, "method"},
		{"partial", "GET", hdr(), 206, hdr("Cache-Control", "max-age=60"), StoreOptions{}, "status"},
		{"no-store", "GET", hdr(), 200, hdr("Cache-Control", "no-store, max-age=60"), StoreOptions{}, "no-store"},
		{"request no-store", "GET", hdr("Cache-Control", "no-store"), 200, hdr("Cache-Control", "max-age=60"), StoreOptions{}, "request no-store"},
		{"private", "GET", hdr(), 200, hdr("Cache-Control", "private, max-age=60"), StoreOptions{}, "private"},
		{"qualified private stores the rest", "GET", hdr(), 200, hdr("Cache-Control", `private="x-user"`), StoreOptions{}, ""},
		{"authorization", "GET", hdr("Authorization", "Basic x"), 200, hdr("Cache-Control", "max-age=60"), StoreOptions{}, "authorization"},
		{"authorization public", "GET", hdr("Authorization", "Basic x"), 200, hdr("Cache-Control", "public, max-age=60"), StoreOptions{}, ""},
		{"authorization s-maxage", "GET", hdr("Authorization", "Basic x"), 200, hdr("Cache-Control", "s-maxage=60"), StoreOptions{}, ""},
		{"authorization must-revalidate", "GET", hdr("Authorization", "Basic x"), 200, hdr("Cache-Control", "must-revalidate, max-age=60"), StoreOptions{}, ""},
		{"set-cookie", "GET", hdr(), 200, hdr("Set-Cookie", "a=b", "Cache-Control", "max-age=60"), StoreOptions{}, "set-cookie"},
		{"set-cookie allowed", "GET", hdr(), 200, hdr("Set-Cookie", "a=b", "Cache-Control", "max-age=60"), StoreOptions{AllowSetCookie: true}, ""},
		{"vary star", "GET", hdr(), 200, hdr("Vary", "Accept, *", "Cache-Control", "max-age=60"), StoreOptions{}, "vary-star"},
		{"no-cache stored", "GET", hdr(), 200, hdr("Cache-Control", "no-cache"), StoreOptions{}, ""},
		{"302 without freshness", "GET", hdr(), 302, hdr(), StoreOptions{}, "no-freshness"},
		{"302 with max-age", "GET", hdr(), 302, hdr("Cache-Control", "max-age=60"), StoreOptions{}, ""},
		{"302 with default ttl", "GET", hdr(), 302, hdr(), StoreOptions{HasDefaultTTL: true}, ""},
		{"500 without freshness", "GET", hdr(), 500, hdr(), StoreOptions{}, "no-freshness"},
		{"must-understand unknown status", "GET", hdr(), 299, hdr("Cache-Control", "must-understand, no-store, max-age=60"), StoreOptions{}, "must-understand"},
		{"must-understand overrides no-store", "GET", hdr(), 200, hdr("Cache-Control", "must-understand, no-store, max-age=60"), StoreOptions{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqCC, _ := ParseCacheControl(tt.reqH.Values("Cache-Control"))
			respCC, _ := ParseCacheControl(tt.respH.Values("Cache-Control"))
			if got := Storable(tt.method, tt.reqH, reqCC, tt.status, tt.respH, respCC, tt.o); got != tt.want {
				t.Fatalf("got %q want %q", got, tt.want)
			}
		})
	}
}

func TestVary(t *testing.T) {
	names, star := VaryNames(http.Header{"Vary": {"accept-encoding, Accept", "ACCEPT"}})
	if star || len(names) != 2 || names[0] != "Accept" || names[1] != "Accept-Encoding" {
		t.Fatalf("VaryNames = %v %v", names, star)
	}
	tests := []struct {
		name string
		a, b http.Header
		same bool
	}{
		{"same value", http.Header{"Accept": {"text/html"}}, http.Header{"Accept": {"text/html"}}, true},
		{"whitespace normalised", http.Header{"Accept": {"a,  b"}}, http.Header{"Accept": {"a, b"}}, true},
		{"different", http.Header{"Accept": {"a"}}, http.Header{"Accept": {"b"}}, false},
		{"absent vs empty", http.Header{}, http.Header{"Accept": {""}}, false},
		{"other header ignored", http.Header{"Accept": {"a"}, "X": {"1"}}, http.Header{"Accept": {"a"}, "X": {"2"}}, true},
		{"space around commas", http.Header{"Accept": {"text/html ,application/json"}}, http.Header{"Accept": {"text/html,application/json"}}, true},
		{"leading and trailing space", http.Header{"Accept": {" text/html\t"}}, http.Header{"Accept": {"text/html"}}, true},
		{"lines combined", http.Header{"Accept": {"a", "b"}}, http.Header{"Accept": {"a, b"}}, true},
		{"accept order matters", http.Header{"Accept": {"a, b"}}, http.Header{"Accept": {"b, a"}}, false},
		{"comma in a quoted string", http.Header{"Accept": {`a;p="x, y"`}}, http.Header{"Accept": {`a;p="x,y"`}}, false},
		{"language order", http.Header{"Accept-Language": {"en, fr"}}, http.Header{"Accept-Language": {"fr, en"}}, true},
		{"language case and spacing", http.Header{"Accept-Language": {"en-US , FR;q=0.5"}}, http.Header{"Accept-Language": {"fr; q=0.5,en-us"}}, true},
		{"language weights", http.Header{"Accept-Language": {"en;q=1.0, fr;q=0.50"}}, http.Header{"Accept-Language": {"fr;q=0.5,en"}}, true},
		{"language weights differ", http.Header{"Accept-Language": {"en, fr;q=0.5"}}, http.Header{"Accept-Language": {"fr, en;q=0.5"}}, false},
		{"language lines", http.Header{"Accept-Language": {"en", "fr"}}, http.Header{"Accept-Language": {"fr,en"}}, true},
		{"encoding order", http.Header{"Accept-Encoding": {"gzip, deflate, br"}}, http.Header{"Accept-Encoding": {"br,gzip,deflate"}}, true},
		{"encoding differs", http.Header{"Accept-Encoding": {"gzip"}}, http.Header{"Accept-Encoding": {"gzip, br"}}, false},
		{"user agent spaces", http.Header{"User-Agent": {"Mozilla/5.0  (X11;  Linux)"}}, http.Header{"User-Agent": {"Mozilla/5.0 (X11; Linux)"}}, true},
	}
	names = []string{"Accept", "Accept-Encoding", "Accept-Language", "User-Agent"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, kb := VaryKey(names, tt.a), VaryKey(names, tt.b)
			if (ka == kb) != tt.same {
				t.Fatalf("%q vs %q", ka, kb)
			}
			// Again, with what the first call left in the memo.
			if a2, b2 := VaryKey(names, tt.a), VaryKey(names, tt.b); a2 != ka || b2 != kb {
				t.Fatalf("from the memo: %q, %q; computed: %q, %q", a2, b2, ka, kb)
			}
		})
	}
}

// TestVaryMemoBounded: a client sending ever new values fills the memo
// up to its bound and no further; values past it are still normalised.
func TestVaryMemoBounded(t *testing.T) {
	names := []string{"Accept-Language"}
	for i := range memoMax + 100 {
		v := fmt.Sprintf("x%d, EN;q=0.5", i)
		want := fmt.Sprintf("Accept-Language:x%d,en;q=0.5\n", i)
		if got := VaryKey(names, http.Header{"Accept-Language": {v}}); got != want {
			t.Fatalf("VaryKey(%q) = %q, want %q", v, got, want)
		}
	}
	m := normMemo.m.Load()
	if m == nil {
		t.Fatal("nothing memoised")
	}
	if len(*m) > memoMax {
		t.Fatalf("memo holds %d values, bound %d", len(*m), memoMax)
	}
}

func TestCacheStatusString(t *testing.T) {
	tests := []struct {
		s    CacheStatus
		want string
	}{
		{CacheStatus{Cache: "intercloud-edge", Hit: true, HasTTL: true, TTL: 30 * time1}, "intercloud-edge; hit; ttl=30"},
		{CacheStatus{Cache: "intercloud-edge", Fwd: FwdURIMiss, FwdStatus: 200, Stored: true, HasTTL: true, TTL: 60 * time1}, "intercloud-edge; fwd=uri-miss; fwd-status=200; stored; ttl=60"},
		{CacheStatus{Cache: "intercloud-edge", Hit: true, HasTTL: true, TTL: -time1 / 2}, "intercloud-edge; hit; ttl=-1"},
		{CacheStatus{Cache: "intercloud-edge", Fwd: FwdBypass, Detail: "set-cookie"}, "intercloud-edge; fwd=bypass; detail=set-cookie"},
		{CacheStatus{Cache: "intercloud-edge", Fwd: FwdBypass, Detail: "request no-store"}, `intercloud-edge; fwd=bypass; detail="request no-store"`},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("got %q want %q", got, tt.want)
		}
	}
}

func TestStripQualified(t *testing.T) {
	h := hdr("Cache-Control", `private="X-User", no-cache="Set-Cookie"`, "X-User", "alice", "Set-Cookie", "a=b", "X-Keep", "1")
	cc, _ := ParseCacheControl(h.Values("Cache-Control"))
	if f := ComputeFreshness(200, h, cc, TTLPolicy{}); f.AlwaysRevalidate {
		t.Fatal("qualified no-cache forces revalidation")
	}
	StripQualified(h, cc)
	if h.Get("X-User") != "" || h.Get("Set-Cookie") != "" || h.Get("X-Keep") != "1" {
		t.Fatalf("after strip: %v", h)
	}
}

func TestResponseRules(t *testing.T) {
	h := hdr("Cache-Control", "no-store", "Expires", "0", "CDN-Cache-Control", "max-age=600")
	cc, view, err := ResponseRules(h)
	if err != nil || cc.NoStore || cc.MaxAge != 600*time.Second || view.Get("Expires") != "" {
		t.Fatalf("cdn-cache-control: %+v %v %v", cc, view, err)
	}
	if got := Storable("GET", hdr(), cc, 200, view, cc, StoreOptions{}); got != "" {
		t.Fatalf("not storable: %s", got)
	}
	if h.Get("Expires") != "0" {
		t.Fatal("ResponseRules modified its input")
	}
	cc, view, _ = ResponseRules(hdr("Cache-Control", "max-age=5"))
	if cc.MaxAge != 5*time.Second || view.Get("Cache-Control") != "max-age=5" {
		t.Fatalf("plain: %+v", cc)
	}
}

// FuzzVaryKey: any request header value normalises without a panic, and
// the same request always gets the same variant.
func FuzzVaryKey(f *testing.F) {
	for _, s := range []string{"en-US, fr;q=0.5", `a;p="x, y", b`, "gzip;q=abc, br;q=2", ";;,,", `"`, "\\", " \t "} {
		f.Add(s)
	}
	names := []string{"Accept", "Accept-Encoding", "Accept-Language"}
	f.Fuzz(func(t *testing.T, s string) {
		h := http.Header{"Accept": {s}, "Accept-Encoding": {s}, "Accept-Language": {s, s}}
		if VaryKey(names, h) != VaryKey(names, h.Clone()) {
			t.Fatalf("not deterministic for %q", s)
		}
	})
}
