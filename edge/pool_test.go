package edge

import (
	"context"
	"github.com/intercloud/intercloud/role"
	"net"
	"net/http"
	"net/http/httptest"
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
