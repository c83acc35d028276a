package httpsem

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

var (
	tLM     = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	lmStr   = tLM.Format(http.TimeFormat)
	before  = tLM.Add(-time.Hour).Format(http.TimeFormat)
	after   = tLM.Add(time.Hour).Format(http.TimeFormat)
	rfc850  = tLM.Format("Monday, 02-Jan-06 15:04:05 GMT")
	asctime = tLM.Format(time.ANSIC)
)

const (
	tag   = `"abc"`
	other = `"xyz"`
)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// TestDecide is the conditional and range matrix of RFC 9110 §13.2.2 and
// §14 for GET and HEAD of an existing 10000-byte representation with
// ETag "abc" and Last-Modified tLM.
func TestDecide(t *testing.T) {
	v := Validators{Exists: true, ETag: tag, LastModified: tLM}
	const size = 10000
	tests := []struct {
		name   string
		method string
		h      http.Header
		status int
		ranges []ByteRange
	}{
		{"plain GET", "GET", hdr(), 200, nil},
		{"plain HEAD", "HEAD", hdr(), 200, nil},

		// If-Match (strong comparison).
		{"If-Match same", "GET", hdr("If-Match", tag), 200, nil},
		{"If-Match other", "GET", hdr("If-Match", other), 412, nil},
		{"If-Match in list", "GET", hdr("If-Match", other+", "+tag), 200, nil},
		{"If-Match list over lines", "GET", hdr("If-Match", other, "If-Match", tag), 200, nil},
		{"If-Match star", "GET", hdr("If-Match", "*"), 200, nil},
		{"If-Match weak never matches", "GET", hdr("If-Match", "W/"+tag), 412, nil},
		{"If-Match garbage", "GET", hdr("If-Match", "abc"), 412, nil},
		{"If-Match empty", "GET", hdr("If-Match", ""), 412, nil},
		{"If-Match HEAD fails too", "HEAD", hdr("If-Match", other), 412, nil},

		// If-Unmodified-Since, ignored when If-Match is there.
		{"IUS equal", "GET", hdr("If-Unmodified-Since", lmStr), 200, nil},
		{"IUS later", "GET", hdr("If-Unmodified-Since", after), 200, nil},
		{"IUS earlier", "GET", hdr("If-Unmodified-Since", before), 412, nil},
		{"IUS rfc850 earlier", "GET", hdr("If-Unmodified-Since", tLM.Add(-time.Hour).Format("Monday, 02-Jan-06 15:04:05 GMT")), 412, nil},
		{"IUS invalid ignored", "GET", hdr("If-Unmodified-Since", "yesterday"), 200, nil},
		{"IUS list ignored", "GET", hdr("If-Unmodified-Since", before+", "+before), 200, nil},
		{"IUS two lines ignored", "GET", hdr("If-Unmodified-Since", before, "If-Unmodified-Since", before), 200, nil},
		{"IUS ignored with If-Match", "GET", hdr("If-Match", tag, "If-Unmodified-Since", before), 200, nil},

		// If-None-Match (weak comparison).
		{"INM same", "GET", hdr("If-None-Match", tag), 304, nil},
		{"INM same HEAD", "HEAD", hdr("If-None-Match", tag), 304, nil},
		{"INM weak form matches", "GET", hdr("If-None-Match", "W/"+tag), 304, nil},
		{"INM other", "GET", hdr("If-None-Match", other), 200, nil},
		{"INM in list", "GET", hdr("If-None-Match", other+","+tag), 304, nil},
		{"INM star", "GET", hdr("If-None-Match", "*"), 304, nil},
		{"INM garbage", "GET", hdr("If-None-Match", "abc"), 200, nil},
		{"INM quoted comma", "GET", hdr("If-None-Match", `"a,b", "c"`), 200, nil},
		{"INM after garbage not read", "GET", hdr("If-None-Match", `abc, `+tag), 200, nil},
		{"INM same, other method", "DELETE", hdr("If-None-Match", tag), 412, nil},

		// If-Modified-Since, ignored when If-None-Match is there.
		{"IMS equal", "GET", hdr("If-Modified-Since", lmStr), 304, nil},
		{"IMS later", "GET", hdr("If-Modified-Since", after), 304, nil},
		{"IMS earlier", "GET", hdr("If-Modified-Since", before), 200, nil},
		{"IMS rfc850 equal", "GET", hdr("If-Modified-Since", rfc850), 304, nil},
		{"IMS asctime equal", "GET", hdr("If-Modified-Since", asctime), 304, nil},
		{"IMS HEAD", "HEAD", hdr("If-Modified-Since", lmStr), 304, nil},
		{"IMS invalid ignored", "GET", hdr("If-Modified-Since", "not a date"), 200, nil},
		{"IMS two lines ignored", "GET", hdr("If-Modified-Since", lmStr, "If-Modified-Since", lmStr), 200, nil},
		{"IMS ignored for DELETE", "DELETE", hdr("If-Modified-Since", lmStr), 200, nil},
		{"IMS ignored with INM other", "GET", hdr("If-None-Match", other, "If-Modified-Since", lmStr), 200, nil},
		{"IMS ignored with INM same", "GET", hdr("If-None-Match", tag, "If-Modified-Since", before), 304, nil},

		// Order: If-Match failure wins over a matching If-None-Match.
		{"IM fails before INM", "GET", hdr("If-Match", other, "If-None-Match", tag), 412, nil},
		{"IUS fails before IMS", "GET", hdr("If-Unmodified-Since", before, "If-Modified-Since", lmStr), 412, nil},
		{"IM ok then INM 304", "GET", hdr("If-Match", tag, "If-None-Match", tag), 304, nil},

		// Range.
		{"range", "GET", hdr("Range", "bytes=0-499"), 206, []ByteRange{{0, 500}}},
		{"range suffix", "GET", hdr("Range", "bytes=-500"), 206, []ByteRange{{9500, 500}}},
		{"range multi", "GET", hdr("Range", "bytes=0-0,-1"), 206, []ByteRange{{0, 1}, {9999, 1}}},
		{"range whole", "GET", hdr("Range", "bytes=0-"), 206, []ByteRange{{0, size}}},
		{"range unsatisfiable", "GET", hdr("Range", "bytes=10000-"), 416, nil},
		{"range all unsatisfiable", "GET", hdr("Range", "bytes=10000-,20000-20001,-0"), 416, nil},
		{"range invalid ignored", "GET", hdr("Range", "bytes=5-1"), 200, nil},
		{"range other unit ignored", "GET", hdr("Range", "items=0-1"), 200, nil},
		{"range two lines ignored", "GET", hdr("Range", "bytes=0-1", "Range", "bytes=2-3"), 200, nil},
		{"range on HEAD ignored", "HEAD", hdr("Range", "bytes=0-499"), 200, nil},
		{"range after 304", "GET", hdr("If-None-Match", tag, "Range", "bytes=0-1"), 304, nil},
		{"range after 412", "GET", hdr("If-Match", other, "Range", "bytes=0-1"), 412, nil},
		{"unsatisfiable range after 412", "GET", hdr("If-Match", other, "Range", "bytes=20000-"), 412, nil},
		{"range with passing INM", "GET", hdr("If-None-Match", other, "Range", "bytes=0-1"), 206, []ByteRange{{0, 2}}},

		// If-Range.
		{"If-Range tag matches", "GET", hdr("If-Range", tag, "Range", "bytes=0-1"), 206, []ByteRange{{0, 2}}},
		{"If-Range tag differs", "GET", hdr("If-Range", other, "Range", "bytes=0-1"), 200, nil},
		{"If-Range weak tag", "GET", hdr("If-Range", "W/"+tag, "Range", "bytes=0-1"), 200, nil},
		{"If-Range date equal", "GET", hdr("If-Range", lmStr, "Range", "bytes=0-1"), 206, []ByteRange{{0, 2}}},
		{"If-Range date later", "GET", hdr("If-Range", after, "Range", "bytes=0-1"), 200, nil},
		{"If-Range date earlier", "GET", hdr("If-Range", before, "Range", "bytes=0-1"), 200, nil},
		{"If-Range garbage", "GET", hdr("If-Range", "whenever", "Range", "bytes=0-1"), 200, nil},
		{"If-Range two lines", "GET", hdr("If-Range", tag, "If-Range", tag, "Range", "bytes=0-1"), 200, nil},
		{"If-Range fails, unsatisfiable ignored", "GET", hdr("If-Range", other, "Range", "bytes=20000-"), 200, nil},
		{"If-Range holds, unsatisfiable", "GET", hdr("If-Range", tag, "Range", "bytes=20000-"), 416, nil},
		{"If-Range without Range", "GET", hdr("If-Range", other), 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.method, tt.h, v, size)
			if d.Status != tt.status || !reflect.DeepEqual(d.Ranges, tt.ranges) {
				t.Errorf("Decide = %d %v, want %d %v", d.Status, d.Ranges, tt.status, tt.ranges)
			}
			// Fields is all Decide reads: without them it is a plain 200.
			h := tt.h.Clone()
			for _, f := range Fields {
				delete(h, f)
			}
			if d := Decide(tt.method, h, v, size); d.Status != 200 {
				t.Errorf("without Fields: %d, want 200", d.Status)
			}
		})
	}
}

func TestDecideEmptyRepresentation(t *testing.T) {
	v := Validators{Exists: true, ETag: tag, LastModified: tLM}
	for _, tt := range []struct {
		rng    string
		status int
	}{
		{"bytes=0-", 416},
		{"bytes=0-0", 416},
		{"bytes=-1", 200}, // the whole (empty) representation
		{"bytes=-0", 416},
	} {
		if d := Decide("GET", hdr("Range", tt.rng), v, 0); d.Status != tt.status {
			t.Errorf("%s on 0 bytes: %d, want %d", tt.rng, d.Status, tt.status)
		}
	}
}

// TestDecideValidators varies the representation's own validators: an
// ETag with a comma, a weak one, a malformed one, none at all.
func TestDecideValidators(t *testing.T) {
	tests := []struct {
		name   string
		v      Validators
		h      http.Header
		status int
	}{
		{"INM comma tag", Validators{Exists: true, ETag: `"a,b"`}, hdr("If-None-Match", `"a,b", "c"`), 304},
		{"INM comma tag split is no match", Validators{Exists: true, ETag: `"a"`}, hdr("If-None-Match", `"a,b", "c"`), 200},
		{"IM comma tag", Validators{Exists: true, ETag: `"a,b"`}, hdr("If-Match", `"x", "a,b"`), 200},
		{"If-Range comma tag", Validators{Exists: true, ETag: `"a,b"`}, hdr("If-Range", `"a,b"`, "Range", "bytes=0-0"), 206},
		{"INM weak own tag", Validators{Exists: true, ETag: `W/"a"`}, hdr("If-None-Match", `"a"`), 304},
		{"IM weak own tag", Validators{Exists: true, ETag: `W/"a"`}, hdr("If-Match", `W/"a"`), 412},
		{"If-Range weak own tag", Validators{Exists: true, ETag: `W/"a"`}, hdr("If-Range", `W/"a"`, "Range", "bytes=0-0"), 200},
		{"INM malformed own tag", Validators{Exists: true, ETag: `abc`}, hdr("If-None-Match", `abc`), 200},
		{"INM malformed own tag, quoted", Validators{Exists: true, ETag: `W/abc`}, hdr("If-None-Match", `"abc"`), 200},
		{"INM star without a tag", Validators{Exists: true}, hdr("If-None-Match", "*"), 304},
		{"IM star without a tag", Validators{Exists: true}, hdr("If-Match", "*"), 200},
		{"IM tag without a tag", Validators{Exists: true}, hdr("If-Match", `""`), 412},
		{"IMS without Last-Modified", Validators{Exists: true, ETag: tag}, hdr("If-Modified-Since", lmStr), 200},
		{"IUS without Last-Modified", Validators{Exists: true, ETag: tag}, hdr("If-Unmodified-Since", before), 200},
		{"If-Range date without Last-Modified", Validators{Exists: true, ETag: tag}, hdr("If-Range", lmStr, "Range", "bytes=0-0"), 200},
	}
	for _, tt := range tests {
		if d := Decide("GET", tt.h, tt.v, 10); d.Status != tt.status {
			t.Errorf("%s: %d, want %d", tt.name, d.Status, tt.status)
		}
	}
}

// TestDecideAllocatesNothing: without a Range, deciding costs a cache hit
// no allocation (the edge holds its hits to that).
func TestDecideAllocatesNothing(t *testing.T) {
	v := Validators{Exists: true, ETag: tag, LastModified: tLM}
	for _, h := range []http.Header{
		hdr(),
		hdr("If-None-Match", `"x", W/"y", `+tag),
		hdr("If-Match", tag, "If-None-Match", other),
	} {
		if n := testing.AllocsPerRun(100, func() { Decide("GET", h, v, 10) }); n > 0 {
			t.Errorf("%v: %.0f allocations", h, n)
		}
	}
}

// TestPreconditionsForWrites covers PUT and DELETE against a file that
// exists or not: If-None-Match: * makes a create-only PUT.
func TestPreconditionsForWrites(t *testing.T) {
	exists := Validators{Exists: true, ETag: tag, LastModified: tLM}
	absent := Validators{}
	tests := []struct {
		name string
		h    http.Header
		v    Validators
		want Outcome
	}{
		{"no conditions", hdr(), absent, Proceed},
		{"create-only, absent", hdr("If-None-Match", "*"), absent, Proceed},
		{"create-only, exists", hdr("If-None-Match", "*"), exists, PreconditionFailed},
		{"replace if same, same", hdr("If-Match", tag), exists, Proceed},
		{"replace if same, other", hdr("If-Match", other), exists, PreconditionFailed},
		{"replace if exists, absent", hdr("If-Match", "*"), absent, PreconditionFailed},
		{"replace if exists, exists", hdr("If-Match", "*"), exists, Proceed},
		{"IUS, absent ignored", hdr("If-Unmodified-Since", before), absent, Proceed},
		{"IUS, modified since", hdr("If-Unmodified-Since", before), exists, PreconditionFailed},
		{"INM tag, absent", hdr("If-None-Match", tag), absent, Proceed},
	}
	for _, tt := range tests {
		if got := Preconditions("PUT", tt.h, tt.v); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// FuzzDecide feeds arbitrary conditional and range headers to the whole
// request-header logic: it must never panic, must answer one of the five
// statuses, and a 206 must address only bytes that exist.
func FuzzDecide(f *testing.F) {
	f.Add("GET", `"abc"`, "", "", "", "bytes=0-1", `"abc"`, `"abc"`, int64(100))
	f.Add("HEAD", "*", `W/"abc", "x"`, lmStr, before, "bytes=-5,7-", lmStr, `W/"abc"`, int64(10))
	f.Add("GET", `"a`, "*,", "x", "Sun, 06 Nov 1994 08:49:37 GMT", "bytes=5-1", "W/\"abc\"", "", int64(0))
	f.Add("GET", "", `"a,b", "c"`, "", "", "bytes=0-0,2-3,1-1", `"a,b"`, `"a,b"`, int64(4))
	f.Fuzz(func(t *testing.T, method, im, inm, ims, ius, rng, ifRange, etag string, size int64) {
		if size < 0 {
			size = 0
		}
		h := http.Header{}
		for k, v := range map[string]string{"If-Match": im, "If-None-Match": inm, "If-Modified-Since": ims,
			"If-Unmodified-Since": ius, "Range": rng, "If-Range": ifRange} {
			if v != "" {
				h.Set(k, v)
			}
		}
		d := Decide(method, h, Validators{Exists: true, ETag: etag, LastModified: tLM}, size)
		switch d.Status {
		case 200, 304, 412, 416:
			if d.Ranges != nil {
				t.Fatalf("status %d with ranges", d.Status)
			}
		case 206:
			if method != "GET" || len(d.Ranges) == 0 {
				t.Fatalf("206 for %s with %v", method, d.Ranges)
			}
			for _, r := range d.Ranges {
				if r.Start < 0 || r.Length <= 0 || r.Start+r.Length > size {
					t.Fatalf("range %+v of %d bytes", r, size)
				}
			}
		default:
			t.Fatalf("status %d", d.Status)
		}
	})
}
