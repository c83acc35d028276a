package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/intercloud/intercloud/role"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// TestOriginKeepAlive: many requests reuse a few origin connections, and
// a config swap that keeps the origin keeps its warm pool.
func TestOriginKeepAlive(t *testing.T) {
	var conns atomic.Int64
	o := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ka")) }))
	o.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	o.Start()
	defer o.Close()
	d := simple(o.URL)
	d.Spec.Behaviors[0].Cache = new(bool)
	h := newHarness(t, nil, site(1, d))
	for i := 0; i < 30; i++ {
		expect(t, h.get("/ka"), 200, "ka", "")
		if i == 15 {
			if err := role.Apply(context.Background(), h.e, site(2, d)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := conns.Load(); n > 2 {
		t.Fatalf("%d origin connections for 30 sequential requests", n)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }

func TestAccessLog(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, body("logged", "Cache-Control", "max-age=60"))
	var buf syncBuf
	e, err := New(Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil)), AccessLog: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	snap := site(1, simple(o.URL))
	snap.Site.Nodes = nil
	if err := role.Apply(context.Background(), e, snap); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://shop.cdn.test/log", nil))
	}
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.b.Bytes()), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(l, &m) == nil && m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d access log lines:\n%s", len(lines), buf.b.String())
	}
	want := []map[string]any{
		{"distribution": "shop", "behavior": "*", "cache": "miss", "status": float64(200), "bytes": float64(6), "origin": "o"},
		{"distribution": "shop", "cache": "hit", "status": float64(200), "bytes": float64(6)},
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, lines[i][k], v)
			}
		}
		if _, ok := lines[i]["duration"]; !ok {
			t.Errorf("line %d has no duration", i)
		}
	}
}
