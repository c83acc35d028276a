package origin

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// TestMetricsLint checks every metric the server exports (after traffic,
// so that labelled families exist) against Prometheus naming rules and the
// project's intercloud_origin_ prefix.
func TestMetricsLint(t *testing.T) {
	o := newOrigin(t, site, nil)
	o.do("GET", "/", nil)
	o.do("GET", "/nope", nil)
	o.do("GET", "/.env", nil)
	o.do("POST", "/", nil)
	mfs, err := o.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) < 8 {
		t.Fatalf("only %d metric families", len(mfs))
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "intercloud_origin_") {
			t.Errorf("metric %s lacks the intercloud_origin_ prefix", mf.GetName())
		}
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
