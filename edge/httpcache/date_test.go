package httpcache

import (
	"net/http"
	"testing"
	"time"
)

func TestParseHTTPDate(t *testing.T) {
	want := time.Date(2050, 8, 18, 2, 1, 18, 0, time.UTC)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"Thu, 18 Aug 2050 02:01:18 GMT", true},
		{"Thursday, 18-Aug-50 02:01:18 GMT", true},
		{"Thu Aug 18 02:01:18 2050", true},
		{"THU, 18 AUG 2050 02:01:18 GMT", true}, // names are matched without case, as most caches do
		{"Thu, 18  Aug  2050 02:01:18 GMT", false},
		{"Thu, 18 Aug 2050  02:01:18 GMT", false},
		{"Thu,  18 Aug 2050 02:01:18 GMT", false},
		{"Thu, 18 Aug 2050 2:01:18 GMT", false},
		{"Thu, 18 Aug 2050 02:1:18 GMT", false},
		// A value folded over two lines, as the fold leaves it when a
		// parser keeps the line break or its whitespace.
		{"Thu, 18 Aug 2050\r\n 02:01:18 GMT", false},
		{"Thu, 18 Aug 2050 \t02:01:18 GMT", false},
		{"Thu, 18 Aug 2050 02:01:18 GMT ", false},
		{" Thu, 18 Aug 2050 02:01:18 GMT", false},
		{"Thu, 18 Aug 50 02:01:18 GMT", false},
		{"Thu, 18 Aug 2050 02:01:18 UTC", false},
		{"Thu 18 Aug 2050 02:01:18 GMT", false},
		{"Thu, 18-Aug-2050 02:01:18 GMT", false},
		{"Thu, 18 Aug 2050 02.01.18 GMT", false},
		{"Thu, 32 Aug 2050 02:01:18 GMT", false},
		{"Thu, 18 Aug 2050 25:01:18 GMT", false},
		{"0", false},
		{"", false},
		{"-1", false},
	} {
		got, ok := ParseHTTPDate(tc.in)
		if ok != tc.ok || ok && !got.Equal(want) {
			t.Errorf("%q: %v %v, want ok=%v", tc.in, got, ok, tc.ok)
		}
	}
}

// An Expires that is not a valid HTTP-date makes the response stale
// (RFC 9111 §5.3), however close to a date it looks.
func TestInvalidExpiresIsStale(t *testing.T) {
	future := base.Add(30 * 24 * time.Hour)
	valid := future.Format(http.TimeFormat)
	for _, tc := range []struct {
		name    string
		expires []string
		fresh   bool
	}{
		{"valid", []string{valid}, true},
		{"two spaces", []string{future.Format("Mon, 02  Jan 2006 15:04:05 GMT")}, false},
		{"one-digit hour", []string{future.Format("Mon, 02 Jan 2006 3:04:05 GMT")}, false},
		{"folded", []string{future.Format("Mon, 02 Jan 2006\r\n 15:04:05 GMT")}, false},
		{"two lines", []string{valid, valid}, false},
		{"zero", []string{"0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hdr()
			h["Expires"] = tc.expires
			f := ComputeFreshness(200, h, CacheControl{MaxAge: -1, SMaxAge: -1, StaleIfError: -1, StaleWhileRevalidate: -1}, TTLPolicy{})
			if fresh := Evaluate(f, 0, CacheControl{MaxAge: -1, MinFresh: -1}) == Fresh; fresh != tc.fresh || f.Source != "expires" {
				t.Fatalf("fresh %v (%+v), want %v", fresh, f, tc.fresh)
			}
		})
	}
}

// FuzzParseHTTPDate: any origin-supplied date parses without a panic, and
// what it accepts reads back the same written as an IMF-fixdate.
func FuzzParseHTTPDate(f *testing.F) {
	for _, s := range []string{"Thu, 18 Aug 2050 02:01:18 GMT", "Thursday, 18-Aug-50 02:01:18 GMT", "Thu Aug  8 02:01:18 2050",
		"Thu, 18 Aug 2050 2:01:18 GMT", "0", ",", "Monday, 99-Xxx-99 99:99:99 GMT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseHTTPDate(s)
		if !ok {
			return
		}
		back, ok := ParseHTTPDate(d.Format(http.TimeFormat))
		if !ok || !back.Equal(d) {
			t.Fatalf("%q parsed as %v, which does not read back (%v %v)", s, d, back, ok)
		}
	})
}
