package httpcache

import (
	"slices"
	"testing"
	"time"
)

func TestCDNCacheControl(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lines  []string
		valid  bool
		maxAge time.Duration // when valid
		check  func(CacheControl) bool
	}{
		{"max-age", []string{"max-age=600"}, true, 600 * time.Second, nil},
		{"flags and params", []string{"max-age=60;x=1, public, must-revalidate"}, true, time.Minute,
			func(c CacheControl) bool { return c.Public && c.MustRevalidate }},
		{"two lines are one dictionary", []string{"max-age=60", "no-store"}, true, time.Minute,
			func(c CacheControl) bool { return c.NoStore }},
		{"last duplicate wins", []string{"max-age=60, max-age=5"}, true, 5 * time.Second, nil},
		{"explicit false flag", []string{"max-age=1, no-store=?0"}, true, time.Second, func(c CacheControl) bool { return !c.NoStore }},
		{"unknown member of any type", []string{`none, x-vendor=(1 "a" tok), y=:aGk=:, z=1.5`}, true, -1, nil},
		{"private with fields", []string{`max-age=9, private=("Set-Cookie" x-user)`}, true, 9 * time.Second,
			func(c CacheControl) bool {
				return c.Private && slices.Equal(c.PrivateFields, []string{"set-cookie", "x-user"})
			}},
		{"no-cache as string", []string{`no-cache="Set-Cookie"`}, true, -1,
			func(c CacheControl) bool { return c.NoCache && slices.Equal(c.NoCacheFields, []string{"set-cookie"}) }},
		{"huge max-age caps", []string{"max-age=999999999999999"}, true, maxDelta * time.Second, nil},

		{"empty", []string{""}, false, 0, nil},
		{"quoted max-age", []string{`max-age="600"`}, false, 0, nil},
		{"decimal max-age", []string{"max-age=1.5"}, false, 0, nil},
		{"negative max-age", []string{"max-age=-1"}, false, 0, nil},
		{"token max-age", []string{"max-age=abc"}, false, 0, nil},
		{"flag with a value", []string{"no-store=1"}, false, 0, nil},
		{"unit suffix", []string{"max-age=60s"}, false, 0, nil},
		{"uppercase key", []string{"Max-Age=60"}, false, 0, nil},
		{"trailing comma", []string{"max-age=60,"}, false, 0, nil},
		{"semicolon list", []string{"max-age=60; public"}, true, time.Minute, nil}, // public is a parameter here
		{"missing comma", []string{"max-age=60 public"}, false, 0, nil},
		{"integer too long", []string{"max-age=1234567890123456"}, false, 0, nil},
		{"bad string escape", []string{`x="\a"`}, false, 0, nil},
		{"unterminated inner list", []string{"x=(1 2"}, false, 0, nil},
		{"private list of integers", []string{"private=(1 2)"}, false, 0, nil},
		{"non-ascii", []string{"max-age=60, é"}, false, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, err := ParseCDNCacheControl(tc.lines)
			if (err == nil) != tc.valid {
				t.Fatalf("err %v, want valid=%v", err, tc.valid)
			}
			if !tc.valid {
				return
			}
			if cc.MaxAge != tc.maxAge {
				t.Errorf("max-age %v, want %v", cc.MaxAge, tc.maxAge)
			}
			if tc.check != nil && !tc.check(cc) {
				t.Errorf("directives %+v", cc)
			}
		})
	}
}

// An invalid CDN-Cache-Control leaves Cache-Control and Expires in charge.
func TestInvalidCDNCacheControlIsIgnored(t *testing.T) {
	h := hdr("Cache-Control", "max-age=5", "Expires", "0", "CDN-Cache-Control", `max-age="600"`)
	cc, view, err := ResponseRules(h)
	if err == nil || cc.MaxAge != 5*time.Second || view.Get("Cache-Control") != "max-age=5" || view.Get("Expires") != "0" {
		t.Fatalf("%+v %v %v", cc, view, err)
	}
	f := ComputeFreshness(200, view, cc, TTLPolicy{})
	if f.Lifetime != 5*time.Second || f.Source != "max-age" {
		t.Fatalf("freshness %+v", f)
	}
}

// FuzzCDNCacheControl checks the Structured Field parser never panics,
// is deterministic, and yields no negative lifetime from a valid field.
func FuzzCDNCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=600", `private=("a" b);p=1, x=:aGk=:`, "max-age=1.5", "a=?1, b=?0", `s="\"\\"`, "x=(", "=", "a=-", "a=1.", "a=1.1234",
		"*k", "max-age=999999999999999", "a,,b", "a=(1;x=?1 2)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, errA := ParseCDNCacheControl([]string{s})
		b, errB := ParseCDNCacheControl([]string{s})
		if (errA == nil) != (errB == nil) || !equalCC(a, b) {
			t.Fatalf("not deterministic for %q", s)
		}
		if errA != nil {
			return
		}
		for _, d := range []time.Duration{a.MaxAge, a.SMaxAge, a.StaleIfError, a.StaleWhileRevalidate} {
			if d < -1 || d > MaxStaleAny {
				t.Fatalf("out of range duration %v for %q", d, s)
			}
		}
	})
}
