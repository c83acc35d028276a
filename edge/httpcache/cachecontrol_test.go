package httpcache

import (
	"testing"
	"time"
)

func TestParseCacheControl(t *testing.T) {
	s := time.Second
	tests := []struct {
		name    string
		in      []string
		want    CacheControl
		wantErr bool
	}{
		{"empty", nil, CacheControl{MaxAge: -1, SMaxAge: -1, StaleWhileRevalidate: -1, StaleIfError: -1, MaxStale: -1, MinFresh: -1}, false},
		{"max-age", []string{"max-age=60"}, cc(func(c *CacheControl) { c.MaxAge = 60 * s }), false},
		{"case and spaces", []string{" Max-Age = 60 ,PUBLIC"}, cc(func(c *CacheControl) { c.MaxAge = 60 * s; c.Public = true }), false},
		{"quoted", []string{`max-age="60"`}, cc(func(c *CacheControl) { c.MaxAge = 60 * s }), false},
		{"first duplicate wins", []string{"max-age=60, max-age=10"}, cc(func(c *CacheControl) { c.MaxAge = 60 * s }), false},
		{"duplicate across lines", []string{"max-age=60", "max-age=10"}, cc(func(c *CacheControl) { c.MaxAge = 60 * s }), false},
		{"invalid is stale", []string{"max-age=abc"}, cc(func(c *CacheControl) { c.MaxAge = 0 }), true},
		{"negative is stale", []string{"max-age=-1"}, cc(func(c *CacheControl) { c.MaxAge = 0 }), true},
		{"missing value", []string{"s-maxage"}, cc(func(c *CacheControl) { c.SMaxAge = 0 }), true},
		{"huge clamps", []string{"max-age=99999999999999999999"}, cc(func(c *CacheControl) { c.MaxAge = maxDelta * s }), false},
		{"all flags", []string{"no-store, no-cache, private, must-revalidate, proxy-revalidate, must-understand, no-transform, immutable, only-if-cached"},
			cc(func(c *CacheControl) {
				c.NoStore, c.NoCache, c.Private, c.MustRevalidate, c.ProxyRevalidate = true, true, true, true, true
				c.MustUnderstand, c.NoTransform, c.Immutable, c.OnlyIfCached = true, true, true, true
			}), false},
		{"qualified no-cache with comma in quotes", []string{`no-cache="Set-Cookie, X-Foo", max-age=5`},
			cc(func(c *CacheControl) {
				c.NoCache = true
				c.NoCacheFields = []string{"set-cookie", "x-foo"}
				c.MaxAge = 5 * s
			}), false},
		{"stale extensions", []string{"stale-while-revalidate=30, stale-if-error=600"},
			cc(func(c *CacheControl) { c.StaleWhileRevalidate = 30 * s; c.StaleIfError = 600 * s }), false},
		{"max-stale without value", []string{"max-stale"}, cc(func(c *CacheControl) { c.HasMaxStale = true; c.MaxStale = MaxStaleAny }), false},
		{"request directives", []string{"max-stale=10, min-fresh=5"}, cc(func(c *CacheControl) { c.HasMaxStale = true; c.MaxStale = 10 * s; c.MinFresh = 5 * s }), false},
		{"unknown ignored", []string{"foo=bar, baz"}, cc(nil), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCacheControl(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !equalCC(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func cc(f func(*CacheControl)) CacheControl {
	c := CacheControl{MaxAge: -1, SMaxAge: -1, StaleWhileRevalidate: -1, StaleIfError: -1, MaxStale: -1, MinFresh: -1}
	if f != nil {
		f(&c)
	}
	return c
}

func equalCC(a, b CacheControl) bool {
	if len(a.NoCacheFields) != len(b.NoCacheFields) || len(a.PrivateFields) != len(b.PrivateFields) {
		return false
	}
	for i := range a.NoCacheFields {
		if a.NoCacheFields[i] != b.NoCacheFields[i] {
			return false
		}
	}
	a.NoCacheFields, b.NoCacheFields, a.PrivateFields, b.PrivateFields = nil, nil, nil, nil
	return a.MaxAge == b.MaxAge && a.SMaxAge == b.SMaxAge && a.StaleWhileRevalidate == b.StaleWhileRevalidate &&
		a.StaleIfError == b.StaleIfError && a.MaxStale == b.MaxStale && a.MinFresh == b.MinFresh &&
		a.NoStore == b.NoStore && a.NoCache == b.NoCache && a.Private == b.Private && a.Public == b.Public &&
		a.MustRevalidate == b.MustRevalidate && a.ProxyRevalidate == b.ProxyRevalidate &&
		a.MustUnderstand == b.MustUnderstand && a.NoTransform == b.NoTransform && a.Immutable == b.Immutable &&
		a.OnlyIfCached == b.OnlyIfCached && a.HasMaxStale == b.HasMaxStale
}

// FuzzParseCacheControl checks the parser never panics, never yields a
// negative lifetime for a present directive, and is deterministic.
func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60", `no-cache="a,b", private`, "s-maxage=\"1\"", "max-age=-1", ",,,=", `"`, `a="\`, "max-stale",
		"stale-while-revalidate=99999999999999999999999", "MAX-AGE=1, max-age=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, _ := ParseCacheControl([]string{s})
		b, _ := ParseCacheControl([]string{s})
		if !equalCC(a, b) {
			t.Fatalf("not deterministic for %q", s)
		}
		for _, d := range []time.Duration{a.MaxAge, a.SMaxAge, a.StaleIfError, a.StaleWhileRevalidate, a.MinFresh, a.MaxStale} {
			if d < -1 || d > MaxStaleAny {
				t.Fatalf("out of range duration %v for %q", d, s)
			}
		}
	})
}
