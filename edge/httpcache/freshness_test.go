package httpcache

import (
	"net/http"
	"testing"
	"time"
)

var base = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func hdr(kv ...string) http.Header {
	h := http.Header{"Date": {base.Format(http.TimeFormat)}}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func dur(d time.Duration) *time.Duration { return &d }

func TestComputeFreshness(t *testing.T) {
	lm := base.Add(-100 * time.Hour).Format(http.TimeFormat)
	exp := base.Add(2 * time.Hour).Format(http.TimeFormat)
	tests := []struct {
		name     string
		status   int
		h        http.Header
		p        TTLPolicy
		lifetime time.Duration
		source   string
		noStale  bool
		swr, sie time.Duration
	}{
		{"s-maxage beats max-age", 200, hdr("Cache-Control", "max-age=10, s-maxage=20"), TTLPolicy{}, 20 * time.Second, "s-maxage", true, 0, 0},
		{"max-age beats expires", 200, hdr("Cache-Control", "max-age=10", "Expires", exp), TTLPolicy{}, 10 * time.Second, "max-age", false, 0, 0},
		{"expires minus date", 200, hdr("Expires", exp), TTLPolicy{}, 2 * time.Hour, "expires", false, 0, 0},
		{"invalid expires is stale", 200, hdr("Expires", "0"), TTLPolicy{}, 0, "expires", false, 0, 0},
		{"expires in past", 200, hdr("Expires", base.Add(-time.Hour).Format(http.TimeFormat)), TTLPolicy{}, 0, "expires", false, 0, 0},
		{"heuristic 10% of last-modified", 200, hdr("Last-Modified", lm), TTLPolicy{}, 10 * time.Hour, "heuristic", false, 0, 0},
		{"no heuristic for 302", 302, hdr("Last-Modified", lm), TTLPolicy{}, 0, "", false, 0, 0},
		{"default replaces heuristic", 200, hdr("Last-Modified", lm), TTLPolicy{Default: dur(time.Minute)}, time.Minute, "default", false, 0, 0},
		{"error gets at most ErrorTTL from the default", 503, hdr(), TTLPolicy{Default: dur(24 * time.Hour)}, ErrorTTL, "default", false, 0, 0},
		{"error keeps a shorter default", 404, hdr(), TTLPolicy{Default: dur(time.Second)}, time.Second, "default", false, 0, 0},
		{"error with explicit freshness keeps it", 503, hdr("Cache-Control", "max-age=60"), TTLPolicy{Default: dur(24 * time.Hour)}, time.Minute, "max-age", false, 0, 0},
		{"default zero", 200, hdr("Last-Modified", lm), TTLPolicy{Default: dur(0)}, 0, "default", false, 0, 0},
		{"default not used with explicit", 200, hdr("Cache-Control", "max-age=5"), TTLPolicy{Default: dur(time.Minute)}, 5 * time.Second, "max-age", false, 0, 0},
		{"min clamps explicit", 200, hdr("Cache-Control", "max-age=5"), TTLPolicy{Min: dur(time.Minute)}, time.Minute, "max-age", false, 0, 0},
		{"max clamps explicit", 200, hdr("Cache-Control", "max-age=86400"), TTLPolicy{Max: dur(time.Hour)}, time.Hour, "max-age", false, 0, 0},
		{"max clamps heuristic", 200, hdr("Last-Modified", lm), TTLPolicy{Max: dur(time.Hour)}, time.Hour, "heuristic", false, 0, 0},
		{"min does not touch default", 200, hdr(), TTLPolicy{Default: dur(0), Min: dur(time.Minute)}, 0, "default", false, 0, 0},
		{"origin stale windows", 200, hdr("Cache-Control", "max-age=1, stale-while-revalidate=30, stale-if-error=60"), TTLPolicy{StaleIfError: dur(time.Hour)}, time.Second, "max-age", false, 30 * time.Second, time.Minute},
		{"distribution stale defaults", 200, hdr("Cache-Control", "max-age=1"), TTLPolicy{StaleWhileRevalidate: dur(5 * time.Second), StaleIfError: dur(time.Hour)}, time.Second, "max-age", false, 5 * time.Second, time.Hour},
		{"must-revalidate forbids stale", 200, hdr("Cache-Control", "max-age=1, must-revalidate, stale-if-error=60"), TTLPolicy{}, time.Second, "max-age", true, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := ParseCacheControl(tt.h.Values("Cache-Control"))
			f := ComputeFreshness(tt.status, tt.h, c, tt.p)
			if f.Lifetime != tt.lifetime || f.Source != tt.source || f.NoStale != tt.noStale || f.StaleWhileRevalidate != tt.swr || f.StaleIfError != tt.sie {
				t.Fatalf("got %+v", f)
			}
		})
	}
}

func TestInitialAge(t *testing.T) {
	tests := []struct {
		name      string
		h         http.Header
		req, resp time.Time
		want      time.Duration
	}{
		{"no age, same time", hdr(), base, base, 0},
		{"age header", hdr("Age", "30"), base, base, 30 * time.Second},
		{"age plus response delay", hdr("Age", "30"), base, base.Add(2 * time.Second), 32 * time.Second},
		{"apparent age wins", hdr("Age", "1"), base.Add(9 * time.Second), base.Add(10 * time.Second), 10 * time.Second},
		{"invalid age ignored", hdr("Age", "abc"), base, base, 0},
		{"list age uses first", hdr("Age", "5, 100"), base, base, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := InitialAge(tt.h, tt.req, tt.resp); got != tt.want {
				t.Fatalf("got %v want %v", got, tt.want)
			}
		})
	}
	if got := CurrentAge(10*time.Second, base, base.Add(5*time.Second)); got != 15*time.Second {
		t.Fatalf("CurrentAge = %v", got)
	}
}

func TestEvaluate(t *testing.T) {
	s := time.Second
	req := func(v string) CacheControl { c, _ := ParseCacheControl([]string{v}); return c }
	tests := []struct {
		name string
		f    Freshness
		age  time.Duration
		req  CacheControl
		want State
	}{
		{"fresh", Freshness{Lifetime: 10 * s}, 5 * s, req(""), Fresh},
		{"exactly expired is stale", Freshness{Lifetime: 10 * s}, 10 * s, req(""), MustRevalidate},
		{"no-cache always revalidates", Freshness{Lifetime: 10 * s, AlwaysRevalidate: true}, 0, req(""), MustRevalidate},
		{"request no-cache", Freshness{Lifetime: 10 * s}, 0, req("no-cache"), MustRevalidate},
		{"request max-age", Freshness{Lifetime: 100 * s}, 20 * s, req("max-age=10"), MustRevalidate},
		{"request max-age ok", Freshness{Lifetime: 100 * s}, 5 * s, req("max-age=10"), Fresh},
		{"request min-fresh", Freshness{Lifetime: 100 * s}, 95 * s, req("min-fresh=10"), MustRevalidate},
		{"swr window", Freshness{Lifetime: 10 * s, StaleWhileRevalidate: 5 * s}, 12 * s, req(""), StaleRevalidateAsync},
		{"swr window over", Freshness{Lifetime: 10 * s, StaleWhileRevalidate: 5 * s}, 16 * s, req(""), MustRevalidate},
		{"swr forbidden by no-stale", Freshness{Lifetime: 10 * s, StaleWhileRevalidate: 5 * s, NoStale: true}, 12 * s, req(""), MustRevalidate},
		{"max-stale", Freshness{Lifetime: 10 * s}, 15 * s, req("max-stale=10"), StaleServable},
		{"max-stale not with must-revalidate", Freshness{Lifetime: 10 * s, NoStale: true}, 15 * s, req("max-stale"), MustRevalidate},
		{"zero lifetime", Freshness{Lifetime: 0}, 0, req(""), MustRevalidate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Evaluate(tt.f, tt.age, tt.req); got != tt.want {
				t.Fatalf("got %v want %v", got, tt.want)
			}
		})
	}
	none := req("")
	if !ServeStaleOnError(Freshness{Lifetime: s, StaleIfError: 10 * s}, 5*s, none) {
		t.Fatal("stale-if-error within window refused")
	}
	if ServeStaleOnError(Freshness{Lifetime: s, StaleIfError: 10 * s}, 20*s, none) {
		t.Fatal("stale-if-error beyond window allowed")
	}
	if ServeStaleOnError(Freshness{Lifetime: s, StaleIfError: 10 * s, NoStale: true}, 2*s, none) {
		t.Fatal("stale-if-error despite must-revalidate")
	}
	if !ServeStaleOnError(Freshness{Lifetime: s}, 5*s, req("stale-if-error=60")) {
		t.Fatal("request stale-if-error ignored")
	}
}

// What the origin said decides whether a copy may answer stale when the
// origin cannot be reached, within the stale-if-error window (the
// behavior's ttl.staleIfError when the origin names none).
func TestStaleOnErrorForbidden(t *testing.T) {
	window := time.Hour
	for _, tc := range []struct {
		cc string
		ok bool
	}{
		{"max-age=1", true},
		{"max-age=1, must-revalidate", false},
		{"max-age=1, proxy-revalidate", false},
		{"max-age=1, s-maxage=1", false},
		{"max-age=1, no-cache", false},
		{`max-age=1, no-cache="Set-Cookie"`, true}, // only that field needs revalidation
		{"max-age=1, stale-if-error=0", false},     // the origin's own window wins
	} {
		cc, _ := ParseCacheControl([]string{tc.cc})
		f := ComputeFreshness(200, hdr("Cache-Control", tc.cc), cc, TTLPolicy{StaleIfError: &window})
		none, _ := ParseCacheControl(nil)
		if got := ServeStaleOnError(f, time.Minute, none); got != tc.ok {
			t.Errorf("%q: stale on error %v, want %v", tc.cc, got, tc.ok)
		}
	}
}
