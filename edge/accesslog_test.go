package edge

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
)

// The node's access log: its own file, in the configured format, reopened
// by a revision once logrotate renamed it (SIGHUP re-applies the current
// one, which is logrotate's postrotate), and off when the path says so.
func TestAccessLogFileReopenAndOff(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, body("x", "Cache-Control", "max-age=60"))
	path := filepath.Join(t.TempDir(), "access.log")
	snap := func(rev int64, p string) *config.Snapshot {
		s := site(rev, simple(o.URL))
		s.Site.Nodes[0].AccessLog = &config.AccessLog{Path: p, Format: "combined", Buffer: 64 << 10,
			Flush: config.Duration(time.Hour), Sample: 1}
		return s
	}
	h := newHarnessWith(t, clk, snap(1, path), Options{AccessLog: true})
	flush := func() {
		t.Helper()
		if err := h.e.alog.Load().Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	h.get("/a?q=1", "User-Agent", `evil"agent`, "Referer", "http://r.test/")
	h.get("/a?q=1")
	flush()
	lines := strings.Split(strings.TrimSuffix(read(path), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %q", len(lines), lines)
	}
	if !strings.Contains(lines[0], `"GET /a?q=1 HTTP/1.1" 200 1 "http://r.test/" "evil\x22agent"`) || !strings.HasPrefix(lines[0], "127.0.0.1 - - [") {
		t.Errorf("line %q", lines[0])
	}
	if n := testutil.ToFloat64(h.e.metrics.accessLines); n != 2 {
		t.Errorf("lines written %v, want 2", n)
	}

	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := role.Apply(context.Background(), h.e, snap(2, path)); err != nil {
		t.Fatal(err)
	}
	h.get("/b")
	flush()
	if got := read(path); !strings.Contains(got, "GET /b ") || strings.Contains(got, "/a") {
		t.Errorf("reopened file holds %q", got)
	}
	if got := read(path + ".1"); strings.Contains(got, "/b") {
		t.Errorf("rotated file got a line after the reopen: %q", got)
	}

	// A log that cannot be opened is the revision's error; the old log
	// keeps logging.
	bad := filepath.Join(t.TempDir(), "missing", "access.log")
	if err := role.Apply(context.Background(), h.e, snap(3, bad)); err == nil || !strings.Contains(err.Error(), "access log") {
		t.Fatalf("apply with an unopenable log: %v", err)
	}
	h.get("/c")
	flush()
	if !strings.Contains(read(path), "GET /c ") {
		t.Error("the running log stopped after a failed revision")
	}

	if err := role.Apply(context.Background(), h.e, snap(4, config.AccessLogOff)); err != nil {
		t.Fatal(err)
	}
	if h.e.alog.Load() != nil {
		t.Fatal("log still open with path off")
	}
	before := read(path)
	h.get("/d")
	h.e.bg.Wait() // the replaced log closes in the background
	if got := read(path); got != before {
		t.Errorf("logged with the log off: %q", strings.TrimPrefix(got, before))
	}
}

// A JSON line carries the edge's own fields: distribution, behavior,
// cache result and origin.
func TestAccessLogJSONFields(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, body("logged", "Cache-Control", "max-age=60"))
	path := filepath.Join(t.TempDir(), "access.log")
	s := site(1, simple(o.URL))
	s.Site.Nodes[0].AccessLog = &config.AccessLog{Path: path, Format: "json", Buffer: 64 << 10, Flush: config.Duration(time.Hour), Sample: 1}
	h := newHarnessWith(t, clk, s, Options{AccessLog: true})
	h.get("/log")
	h.get("/log")
	h.do("GET", "nowhere.test", "/x")
	if err := h.e.alog.Load().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	want := []map[string]any{
		{"distribution": "shop", "behavior": "*", "cache": "miss", "status": float64(200), "bytes": float64(6), "origin": "o", "uri": "/log", "client": "127.0.0.1"},
		{"distribution": "shop", "cache": "hit", "status": float64(200), "bytes": float64(6), "origin": ""},
		{"distribution": "-", "cache": "error", "status": float64(404), "host": "nowhere.test"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), b)
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, lines[i][k], v)
			}
		}
		if d, ok := lines[i]["duration"].(float64); !ok || d < 0 {
			t.Errorf("line %d: duration %v", i, lines[i]["duration"])
		}
	}
}

// An edge built without AccessLog (embedded, benchmarks) logs nothing
// whatever the node says.
func TestAccessLogNeedsTheOption(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, body("x"))
	s := site(1, simple(o.URL))
	s.Site.Nodes[0].AccessLog = &config.AccessLog{Path: filepath.Join(t.TempDir(), "a.log"), Format: "json", Buffer: 4096, Flush: config.Duration(time.Hour), Sample: 1}
	h := newHarness(t, clk, s)
	if h.e.alog.Load() != nil {
		t.Fatal("access log opened without Options.AccessLog")
	}
}

// TestAccessLogKeptAcrossRevisions: a revision that leaves the access log
// settings alone keeps the open log (no reopen per revision); new
// settings, or a file renamed away (logrotate, then SIGHUP), open it
// anew at the path.
func TestAccessLogKeptAcrossRevisions(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, body("x", "Cache-Control", "max-age=60"))
	path := filepath.Join(t.TempDir(), "access.log")
	snap := func(rev int64, flush time.Duration) *config.Snapshot {
		s := site(rev, simple(o.URL))
		s.Site.Nodes[0].AccessLog = &config.AccessLog{Path: path, Format: "combined", Buffer: 64 << 10,
			Flush: config.Duration(flush), Sample: 1}
		return s
	}
	h := newHarnessWith(t, clk, snap(1, time.Hour), Options{AccessLog: true})
	for _, step := range []struct {
		name   string
		flush  time.Duration
		rotate bool
		kept   bool
	}{
		{"same settings", time.Hour, false, true},
		{"same settings again", time.Hour, false, true},
		{"another flush interval", time.Minute, false, false},
		{"file renamed away", time.Minute, true, false},
	} {
		before := h.e.alog.Load()
		if step.rotate {
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
		}
		if err := role.Apply(context.Background(), h.e, snap(h.e.table.Load().revision+1, step.flush)); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if kept := h.e.alog.Load() == before; kept != step.kept {
			t.Errorf("%s: log kept %v, want %v", step.name, kept, step.kept)
		}
		h.get("/" + strings.ReplaceAll(step.name, " ", "-"))
		if err := h.e.alog.Load().Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(b), strings.ReplaceAll(step.name, " ", "-")) {
			t.Errorf("%s: the file at the path lacks the request's line: %q %v", step.name, b, err)
		}
	}
}
