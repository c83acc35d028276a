package origin

import (
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var site = map[string]string{
	"index.html":       "<!doctype html><h1>home</h1>",
	"docs/index.html":  "<h1>docs</h1>",
	"assets/app.js":    "console.log(1)",
	"assets/style.css": "body{}",
	"data/blob":        strings.Repeat("0123456789", 1000), // 10000 bytes, no extension
	"data/empty.txt":   "",
	"data/big.bin":     strings.Repeat("abcdefghijklmnopqrstuvwxyz", 4000),
	"data/readme.txt":  "hello",
}

func TestServeValidators(t *testing.T) {
	o := newOrigin(t, site, nil)
	tests := []struct {
		path, ctype string
		body        string
	}{
		{"/", "text/html; charset=utf-8", site["index.html"]},
		{"/index.html", "text/html; charset=utf-8", site["index.html"]},
		{"/docs/", "text/html; charset=utf-8", site["docs/index.html"]},
		{"/assets/app.js", "text/javascript; charset=utf-8", site["assets/app.js"]},
		{"/assets/style.css", "text/css; charset=utf-8", site["assets/style.css"]},
		{"/data/blob", "text/plain; charset=utf-8", site["data/blob"]}, // sniffed
		{"/data/empty.txt", "text/plain; charset=utf-8", ""},
		{"/data/big.bin", "application/octet-stream", site["data/big.bin"]},
	}
	etags := map[string]string{}
	for _, tt := range tests {
		for _, method := range []string{"GET", "HEAD"} {
			resp, body := o.do(method, tt.path, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("%s %s: %d", method, tt.path, resp.StatusCode)
			}
			h := resp.Header
			if got := h.Get("Content-Type"); got != tt.ctype {
				t.Errorf("%s %s: Content-Type %q, want %q", method, tt.path, got, tt.ctype)
			}
			if got := h.Get("Content-Length"); got != strconv.Itoa(len(tt.body)) {
				t.Errorf("%s %s: Content-Length %q, want %d", method, tt.path, got, len(tt.body))
			}
			if resp.ContentLength != int64(len(tt.body)) {
				t.Errorf("%s %s: parsed length %d", method, tt.path, resp.ContentLength)
			}
			et := h.Get("ETag")
			if !strings.HasPrefix(et, `"`) || len(et) < 10 {
				t.Errorf("%s %s: ETag %q is not a strong tag", method, tt.path, et)
			}
			if prev, ok := etags[tt.path]; ok && prev != et {
				t.Errorf("%s: ETag changed between requests: %s, %s", tt.path, prev, et)
			}
			etags[tt.path] = et
			lm, err := http.ParseTime(h.Get("Last-Modified"))
			if err != nil || lm.After(time.Now()) {
				t.Errorf("%s %s: Last-Modified %q", method, tt.path, h.Get("Last-Modified"))
			}
			if h.Get("Accept-Ranges") != "bytes" || h.Get(VersionHeader) != "v1" {
				t.Errorf("%s %s: headers %v", method, tt.path, h)
			}
			want := tt.body
			if method == "HEAD" {
				want = ""
			}
			if body != want {
				t.Errorf("%s %s: body %d bytes, want %d", method, tt.path, len(body), len(want))
			}
		}
	}
	// Equal content, equal tag: the ETag is a content hash.
	if etags["/"] != etags["/index.html"] {
		t.Errorf("/ and /index.html differ: %s %s", etags["/"], etags["/index.html"])
	}
	// Each file was hashed once although it was fetched twice or more.
	if n := o.counter("intercloud_origin_etag_computations_total"); n != 7 {
		t.Errorf("etag computations = %v, want 7 (one per distinct file)", n)
	}

	resp, _ := o.do("GET", "/docs", nil)
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "/docs/" {
		t.Errorf("GET /docs: %d %q, want 301 to /docs/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/missing", "/data/", "/data/readme.txt/x"} {
		if resp, _ := o.do("GET", p, nil); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	if resp, _ := o.do("POST", "/index.html", nil); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Errorf("POST: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestETagFollowsContent: a file changed in place gets a new tag; a new
// version with the same bytes keeps the tag, with other bytes gets another.
// It runs without the memory cache, and with one that revalidates on every
// request (the path an entry takes once its validity has passed).
func TestETagFollowsContent(t *testing.T) {
	for name, revalidate := range map[string]time.Duration{"no memory cache": -1, "revalidating": time.Nanosecond} {
		t.Run(name, func(t *testing.T) { testETagFollowsContent(t, revalidate) })
	}
}

func testETagFollowsContent(t *testing.T, revalidate time.Duration) {
	o := newOrigin(t, map[string]string{"a.txt": "one", "b.txt": "same"}, func(c *Config) { c.Revalidate = revalidate })
	resp, _ := o.do("GET", "/a.txt", nil)
	a1, b1 := resp.Header.Get("ETag"), ""
	resp, _ = o.do("GET", "/b.txt", nil)
	b1 = resp.Header.Get("ETag")

	// In place (same inode, same size): mtime/ctime change invalidates.
	p := filepath.Join(o.root, "v1", "a.txt")
	if err := os.WriteFile(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, body := o.do("GET", "/a.txt", nil)
	if a2 := resp.Header.Get("ETag"); a2 == a1 || body != "two" {
		t.Errorf("after in-place change: ETag %s (was %s), body %q", a2, a1, body)
	}

	deployTree(t, o.root, "v2", map[string]string{"a.txt": "three", "b.txt": "same"})
	o.activate("v2")
	resp, body = o.do("GET", "/a.txt", nil)
	if resp.Header.Get(VersionHeader) != "v2" || body != "three" {
		t.Fatalf("after activate: %s %q", resp.Header.Get(VersionHeader), body)
	}
	resp, _ = o.do("GET", "/b.txt", nil)
	if b2 := resp.Header.Get("ETag"); b2 != b1 {
		t.Errorf("same content in a new version: ETag %s, was %s", b2, b1)
	}
}

// TestConditionalOverHTTP runs the precondition matrix through the real
// server and checks what each status carries on the wire.
func TestConditionalOverHTTP(t *testing.T) {
	o := newOrigin(t, site, func(c *Config) {
		c.CacheRules = []CacheRule{{Path: "*.txt", CacheControl: "max-age=60"}}
	})
	resp, _ := o.do("GET", "/data/readme.txt", nil)
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	lmt, _ := http.ParseTime(lm)
	earlier := lmt.Add(-time.Hour).Format(http.TimeFormat)
	tests := []struct {
		name   string
		method string
		kv     []string
		status int
		body   string
	}{
		{"INM match", "GET", []string{"If-None-Match", etag}, 304, ""},
		{"INM match HEAD", "HEAD", []string{"If-None-Match", etag}, 304, ""},
		{"INM other", "GET", []string{"If-None-Match", `"nope"`}, 200, "hello"},
		{"IMS same", "GET", []string{"If-Modified-Since", lm}, 304, ""},
		{"IMS earlier", "GET", []string{"If-Modified-Since", earlier}, 200, "hello"},
		{"IM match", "GET", []string{"If-Match", etag}, 200, "hello"},
		{"IM other", "GET", []string{"If-Match", `"nope"`}, 412, "precondition failed\n"},
		{"IUS earlier", "GET", []string{"If-Unmodified-Since", earlier}, 412, "precondition failed\n"},
		{"Range", "GET", []string{"Range", "bytes=1-3"}, 206, "ell"},
		{"Range suffix", "GET", []string{"Range", "bytes=-2"}, 206, "lo"},
		{"Range HEAD", "HEAD", []string{"Range", "bytes=1-3"}, 200, ""},
		{"Range 416", "GET", []string{"Range", "bytes=5-"}, 416, "range not satisfiable\n"},
		{"If-Range etag", "GET", []string{"If-Range", etag, "Range", "bytes=0-0"}, 206, "h"},
		{"If-Range date", "GET", []string{"If-Range", lm, "Range", "bytes=0-0"}, 206, "h"},
		{"If-Range stale", "GET", []string{"If-Range", `"old"`, "Range", "bytes=0-0"}, 200, "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := o.do(tt.method, "/data/readme.txt", nil, tt.kv...)
			h := resp.Header
			if resp.StatusCode != tt.status || body != tt.body {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body, tt.status, tt.body)
			}
			switch tt.status {
			case 304:
				// RFC 9110 §15.4.5: validators and cache headers, no
				// representation metadata.
				if h.Get("ETag") != etag || h.Get("Cache-Control") != "max-age=60" {
					t.Errorf("304 headers: %v", h)
				}
				if h.Get("Content-Type") != "" || h.Get("Content-Length") != "" {
					t.Errorf("304 with representation metadata: %v", h)
				}
			case 206:
				if h.Get("Content-Range") != "bytes "+map[string]string{"ell": "1-3", "lo": "3-4", "h": "0-0"}[tt.body]+"/5" {
					t.Errorf("Content-Range %q", h.Get("Content-Range"))
				}
				if h.Get("Content-Length") != strconv.Itoa(len(tt.body)) || h.Get("ETag") != etag ||
					h.Get("Cache-Control") != "max-age=60" || h.Get("Content-Type") != "text/plain; charset=utf-8" {
					t.Errorf("206 headers: %v", h)
				}
			case 416:
				if h.Get("Content-Range") != "bytes */5" {
					t.Errorf("416 Content-Range %q, want bytes */5", h.Get("Content-Range"))
				}
			case 200:
				if h.Get("Content-Range") != "" || h.Get("Content-Length") != "5" {
					t.Errorf("200 headers: %v", h)
				}
			}
		})
	}
}

func TestMultipartByteranges(t *testing.T) {
	o := newOrigin(t, site, nil)
	blob := site["data/big.bin"]
	resp, body := o.do("GET", "/data/big.bin", nil, "Range", "bytes=0-9, 50000-50019, -5, 200000-")
	if resp.StatusCode != 206 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Fatalf("Content-Length %s, body %d bytes", resp.Header.Get("Content-Length"), len(body))
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" || params["boundary"] == "" {
		t.Fatalf("Content-Type %q: %v", resp.Header.Get("Content-Type"), err)
	}
	if !strings.HasPrefix(body, "--"+params["boundary"]+"\r\n") {
		t.Errorf("body does not start with the delimiter: %q", body[:40])
	}
	mr := multipart.NewReader(strings.NewReader(body), params["boundary"])
	size := len(blob)
	want := []struct {
		start, end int
	}{{0, 9}, {50000, 50019}, {size - 5, size - 1}} // 200000- is beyond the end: dropped
	for i, w := range want {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		cr := "bytes " + strconv.Itoa(w.start) + "-" + strconv.Itoa(w.end) + "/" + strconv.Itoa(size)
		if p.Header.Get("Content-Range") != cr || p.Header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("part %d headers %v, want Content-Range %s", i, p.Header, cr)
		}
		b, _ := io.ReadAll(p)
		if string(b) != blob[w.start:w.end+1] {
			t.Errorf("part %d: %d bytes, want %d", i, len(b), w.end+1-w.start)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("after the last part: %v", err)
	}

	// Overlapping ranges are coalesced into one part: a single-part 206.
	resp, body = o.do("GET", "/data/big.bin", nil, "Range", "bytes=10-19,15-29,0-9")
	if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != "bytes 0-29/"+strconv.Itoa(size) || body != blob[:30] {
		t.Errorf("coalesced: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Range"), body)
	}
}

func TestCacheRulesAndReload(t *testing.T) {
	var cfg Config
	o := newOrigin(t, site, func(c *Config) {
		c.CacheRules = []CacheRule{
			{Path: "/assets/*", CacheControl: "max-age=31536000, immutable"},
			{Path: "*.html", CacheControl: "no-cache"},
		}
		cfg = *c
	})
	check := func(path, want string) {
		t.Helper()
		resp, _ := o.do("GET", path, nil)
		if got := resp.Header.Get("Cache-Control"); got != want {
			t.Errorf("%s: Cache-Control %q, want %q", path, got, want)
		}
	}
	check("/assets/app.js", "max-age=31536000, immutable")
	check("/index.html", "no-cache")
	check("/docs/index.html", "no-cache")
	check("/data/blob", "")

	cfg.CacheRules = []CacheRule{{Path: "*", CacheControl: "max-age=5"}}
	if err := o.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	check("/index.html", "max-age=5")
	bad := cfg
	bad.CacheRules = []CacheRule{{Path: "*", CacheControl: ""}}
	if err := o.srv.Reload(bad); err == nil {
		t.Error("reload with an invalid rule succeeded")
	}
	check("/index.html", "max-age=5") // the old rules still serve
	moved := cfg
	moved.Root = t.TempDir()
	if err := o.srv.Reload(moved); err == nil {
		t.Error("reload moved the root")
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	o := newOrigin(t, nil, nil)
	resp, body := o.do("GET", "/healthz", nil)
	if resp.StatusCode != 503 || o.srv.Ready() == nil {
		t.Errorf("no version: healthz %d %s, ready %v", resp.StatusCode, body, o.srv.Ready())
	}
	if resp, _ := o.do("GET", "/index.html", nil); resp.StatusCode != 503 {
		t.Errorf("content without a version: %d", resp.StatusCode)
	}
	deployTree(t, o.root, "blue", site)
	deployTree(t, o.root, "green", site)
	for _, v := range []string{"blue", "green", "blue"} {
		o.activate(v)
		resp, body := o.do("GET", "/healthz", nil)
		var h health
		if err := json.Unmarshal([]byte(body), &h); err != nil || resp.StatusCode != 200 || h.Version != v {
			t.Errorf("healthz after activating %s: %d %s", v, resp.StatusCode, body)
		}
		if resp, _ := o.do("GET", "/readyz", nil); resp.StatusCode != 200 {
			t.Errorf("readyz: %d", resp.StatusCode)
		}
	}
	o.do("GET", "/index.html", nil)
	o.do("GET", "/nope", nil)
	resp, body = o.do("GET", "/metrics", nil)
	for _, want := range []string{
		`intercloud_origin_active_version_info{version="blue"} 1`,
		`intercloud_origin_requests_total{code="200",method="GET"}`,
		`intercloud_origin_requests_total{code="404",method="GET"} 1`,
		`intercloud_origin_etag_cache_entries 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	vs, err := Versions(o.root)
	if err != nil || len(vs) != 2 || !vs[0].Active || vs[0].Name != "blue" || vs[1].Active {
		t.Errorf("Versions = %+v, %v", vs, err)
	}
}

// TestGracefulShutdown: a download in flight when shutdown starts ends
// complete; new connections are refused.
func TestGracefulShutdown(t *testing.T) {
	big := strings.Repeat("x", 8<<20)
	o := newOrigin(t, map[string]string{"big": big}, nil)
	resp, err := http.Get(o.url + "/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 1024)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- o.srv.Shutdown(t.Context()) }()
	time.Sleep(50 * time.Millisecond) // let Shutdown close the listener
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(head)+len(rest) != len(big) {
		t.Fatalf("download cut: %d of %d bytes, %v", len(head)+len(rest), len(big), err)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := http.Get(o.url + "/big"); err == nil {
		t.Error("a new request succeeded after shutdown")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg Config
		ok  bool
	}{
		{Config{Root: "/r", Listen: "127.0.0.1:0"}, true},
		{Config{Root: "/r", Listen: "127.0.0.1:0", Admin: "127.0.0.1:0"}, true},
		{Config{Listen: "127.0.0.1:0"}, false},
		{Config{Root: "/r"}, false},
		{Config{Root: "/r", Listen: "nonsense"}, false},
		{Config{Root: "/r", Listen: "127.0.0.1:0", Admin: "x"}, false},
		{Config{Root: "/r", Listen: "127.0.0.1:0", MaxUpload: -1}, false},
		{Config{Root: "/r", Listen: "127.0.0.1:0", CacheRules: []CacheRule{{Path: "*"}}}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v", tt.cfg, err)
		}
	}
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc"), 0o600)
	if _, err := New(Config{Root: dir, Listen: "127.0.0.1:0", TokenFile: short}, Options{}); err == nil {
		t.Error("a 3-character token was accepted")
	}
	if _, err := New(Config{Root: dir, Listen: "127.0.0.1:0", TokenFile: filepath.Join(dir, "missing")}, Options{}); err == nil {
		t.Error("a missing token file was accepted")
	}
}

func TestLoadConfigFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("root: /srv/origin\nlisten: 127.0.0.1:9001\ncacheRules:\n  - {path: \"*.html\", cacheControl: no-cache}\n"), 0o644)
	c, err := LoadConfigFile(good)
	if err != nil || c.Root != "/srv/origin" || len(c.CacheRules) != 1 || c.CacheRules[0].CacheControl != "no-cache" {
		t.Errorf("LoadConfigFile = %+v, %v", c, err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("root: /srv\ncacheRulez: []\n"), 0o644)
	if _, err := LoadConfigFile(bad); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("unknown key: %v", err)
	}
}
