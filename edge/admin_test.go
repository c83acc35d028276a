package edge

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/intercloud/intercloud/status"
)

func TestAdminRoutesAndMetrics(t *testing.T) {
	clk := &clock{}
	o := newOrigin(t, clk, body("m", "Cache-Control", "max-age=60"))
	h := newHarness(t, clk, site(7, simple(o.URL)))
	h.get("/one")
	h.get("/one")
	mux := h.mux

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/v1/edge/cache", nil))
	var st struct {
		Revision int64 `json:"revision"`
		StoreStats
	}
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || st.Revision != 7 || st.Entries != 1 || st.Bytes <= 0 || st.Capacity != 64<<20 {
		t.Fatalf("cache stats %s (%v)", w.Body.String(), err)
	}
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("POST", "/v1/edge/purge?distribution=shop&path=/one", nil))
	if w.Code != http.StatusNoContent {
		t.Fatalf("purge: %d %s", w.Code, w.Body.String())
	}
	expect(t, h.get("/one"), 200, "m", "fwd=uri-miss")

	var rep status.RoleReport
	h.e.Report(&rep)
	if rep.Requests != 3 || rep.HitRatio < 0.33 || rep.HitRatio > 0.34 {
		t.Fatalf("report %+v", rep)
	}
	if n := testutil.ToFloat64(h.e.metrics.requests.WithLabelValues("shop", "hit")); n != 1 {
		t.Fatalf("hit counter %v", n)
	}
	if n := testutil.ToFloat64(h.e.metrics.responses.WithLabelValues("shop", "2xx")); n != 3 {
		t.Fatalf("2xx responses %v, want 3", n)
	}
	if n := testutil.ToFloat64(h.e.metrics.responses.WithLabelValues("shop", "5xx")); n != 0 {
		t.Fatalf("5xx responses %v, want 0", n)
	}
	problems, err := testutil.GatherAndLint(h.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	mfs, _ := h.reg.Gather()
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "intercloud_edge_") {
			t.Errorf("metric %s lacks the intercloud_edge_ prefix", mf.GetName())
		}
	}
}
