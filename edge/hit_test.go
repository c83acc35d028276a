package edge

import (
	"context"
	"github.com/intercloud/intercloud/role"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The hit path's shortcuts must answer what the general code answers.

func TestNormalizeHostShortcut(t *testing.T) {
	ref := func(h string) string {
		if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
			h = h[:i]
		}
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		return strings.Trim(h, "[]")
	}
	in := []string{"", "shop.cdn.test", "shop.cdn.test:8080", "Shop.CDN.test.", "shop.cdn.test.:80", "[::1]:80", "[::1]",
		"::1", "é.test", "É.TEST", "a..", ".", ":", "[", "]", "x]:1", "[x:1"}
	rnd := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aZ.:[]é0-"
	for range 20000 {
		b := make([]byte, rnd.IntN(8))
		for i := range b {
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		in = append(in, string(b))
	}
	for _, h := range in {
		if got, want := normalizeHost(h), ref(h); got != want {
			t.Fatalf("normalizeHost(%q) = %q, want %q", h, got, want)
		}
	}
}

func TestClientIPShortcut(t *testing.T) {
	ref := func(a string) string {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return a
		}
		return host
	}
	in := []string{"", "1.2.3.4:5", "1.2.3.4", "1.2.3.4:", ":80", "[::1]:80", "::1", "[::1]", "a:b:c", "x]:1", "[x:1", "host:port"}
	rnd := rand.New(rand.NewPCG(3, 4))
	const alphabet = "1.:[]a%"
	for range 20000 {
		b := make([]byte, rnd.IntN(8))
		for i := range b {
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		in = append(in, string(b))
	}
	for _, a := range in {
		if got, want := clientIP(&http.Request{RemoteAddr: a}), ref(a); got != want {
			t.Fatalf("clientIP(%q) = %q, want %q", a, got, want)
		}
	}
}

// hitEdge is an edge with one object stored from a real origin, and its
// clock, which the test moves.
func hitEdge(t *testing.T, kv ...string) (*Edge, *atomic.Int64) {
	t.Helper()
	o := httptest.NewServer(body(string(make([]byte, 1024)), kv...))
	t.Cleanup(o.Close)
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	// Before the origin's Date: the stored object starts with Age 0.
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	var off atomic.Int64
	e.now = func() time.Time { return t0.Add(time.Duration(off.Load())) }
	snap := site(1, simple(o.URL))
	snap.Site.Nodes = nil
	if err := role.Apply(context.Background(), e, snap); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest("GET", "http://shop.cdn.test/hit", nil))
	if cs := w.Header().Get("Cache-Status"); !strings.Contains(cs, "stored") {
		t.Fatalf("not stored: %q", cs)
	}
	return e, &off
}

// reuseWriter keeps its header map between requests, so that only the
// handler's own allocations count.
type reuseWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *reuseWriter) Header() http.Header         { return w.h }
func (w *reuseWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *reuseWriter) WriteHeader(c int)           { w.code = c }
func (w *reuseWriter) reset()                      { clear(w.h); w.code, w.n = 0, 0 }

// TestHitAllocatesNothing holds a cache hit to its cost: no allocation of
// the handler's own (the connection's header map is the server's).
func TestHitAllocatesNothing(t *testing.T) {
	e, _ := hitEdge(t, "Cache-Control", "max-age=3600", "ETag", `"b"`)
	for _, c := range []struct {
		name   string
		method string
		kv     []string
		code   int
	}{
		{"get", "GET", nil, 200},
		{"head", "HEAD", nil, 200},
		{"if-none-match", "GET", []string{"If-None-Match", `"b"`}, 304},
		{"if-none-match list", "GET", []string{"If-None-Match", `"x", "a,b", W/"b"`}, 304},
		{"if-match", "GET", []string{"If-Match", `"b"`}, 200},
	} {
		req := httptest.NewRequest(c.method, "http://shop.cdn.test/hit", nil)
		for i := 0; i < len(c.kv); i += 2 {
			req.Header.Set(c.kv[i], c.kv[i+1])
		}
		w := &reuseWriter{h: http.Header{}}
		allocs := testing.AllocsPerRun(200, func() {
			w.reset()
			e.ServeHTTP(w, req)
		})
		if w.code != c.code || !strings.HasPrefix(w.h.Get("Cache-Status"), "intercloud-edge; hit") {
			t.Fatalf("%s: status %d, Cache-Status %q", c.name, w.code, w.h.Get("Cache-Status"))
		}
		if allocs > 0 {
			t.Errorf("%s: %.0f allocations per hit", c.name, allocs)
		}
	}
}

// TestVaryHitAllocatesNothing: a hit on a variant builds its key in place
// and takes the normalised Accept-Encoding and Accept-Language from a
// memo: no allocation either, in whatever spelling the client sends.
func TestVaryHitAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are checked without -race (its instrumentation allocates here)")
	}
	e, _ := hitEdge(t, "Cache-Control", "max-age=3600", "Vary", "Accept-Encoding, Accept-Language")
	for _, c := range []struct {
		name string
		kv   []string
	}{
		{"absent", nil},
		{"one coding", []string{"Accept-Encoding", "gzip"}},
		{"browser codings", []string{"Accept-Encoding", "gzip, deflate, br, zstd"}},
		{"same codings, other spelling", []string{"Accept-Encoding", "br,GZIP ,  zstd,deflate"}},
		{"languages", []string{"Accept-Encoding", "gzip, br", "Accept-Language", "en-US,en;q=0.9,ko;q=0.8"}},
	} {
		req := httptest.NewRequest("GET", "http://shop.cdn.test/hit", nil)
		for i := 0; i < len(c.kv); i += 2 {
			req.Header.Set(c.kv[i], c.kv[i+1])
		}
		// The first request of a variant stores it.
		e.ServeHTTP(httptest.NewRecorder(), req)
		w := &reuseWriter{h: http.Header{}}
		allocs := testing.AllocsPerRun(200, func() {
			w.reset()
			e.ServeHTTP(w, req)
		})
		if w.code != 200 || !strings.HasPrefix(w.h.Get("Cache-Status"), "intercloud-edge; hit") {
			t.Fatalf("%s: status %d, Cache-Status %q", c.name, w.code, w.h.Get("Cache-Status"))
		}
		if allocs > 0 {
			t.Errorf("%s: %.0f allocations per hit", c.name, allocs)
		}
	}
}

// TestHitAgeLines: the Age and Cache-Status a hit takes from its entry
// follow the clock, within and across seconds, past the shared Age
// values of the first hour, and backwards.
func TestHitAgeLines(t *testing.T) {
	e, off := hitEdge(t, "Cache-Control", "max-age=86400")
	req := httptest.NewRequest("GET", "http://shop.cdn.test/hit", nil)
	for _, d := range []time.Duration{0, 0, 500 * time.Millisecond, time.Second, time.Second, 2900 * time.Millisecond,
		3599 * time.Second, 3600 * time.Second, 3600 * time.Second, 7000*time.Second + 1, 5 * time.Second} {
		off.Store(int64(d))
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		secs := int64(d / time.Second)
		wantAge := strconv.FormatInt(secs, 10)
		wantCS := "intercloud-edge; hit; ttl=" + strconv.FormatInt(86400-secs, 10)
		if got := w.Header().Values("Age"); len(got) != 1 || got[0] != wantAge {
			t.Fatalf("at %v: Age %q, want %s", d, got, wantAge)
		}
		if got := w.Header().Values("Cache-Status"); len(got) != 1 || got[0] != wantCS {
			t.Fatalf("at %v: Cache-Status %q, want %q", d, got, wantCS)
		}
	}
}
