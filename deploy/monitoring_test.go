package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/test/testenv"
)

const (
	rulesFile     = "prometheus/intercloud-alerts.yml"
	rulesTestFile = "prometheus/intercloud-alerts_test.yml"
	scrapeFile    = "prometheus/prometheus.yml"
	dashboardFile = "grafana/intercloud-fleet.json"
)

func promtool(t *testing.T) string {
	t.Helper()
	return testenv.NeedTool(t, "promtool", "prometheus")
}

// The rules load, pass their unit tests, and the scrape config that names
// them is valid.
func TestAlertRules(t *testing.T) {
	pt := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", rulesFile},
		{"test", "rules", rulesTestFile},
		{"check", "config", scrapeFile},
	} {
		out, err := exec.Command(pt, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Every alert has a unit test.
	rules, tests := ruleExprs(t), readFile(t, rulesTestFile)
	for _, name := range rules.alerts {
		if !strings.Contains(tests, "alertname: "+name+"\n") {
			t.Errorf("alert %s has no test in %s", name, rulesTestFile)
		}
	}
}

type dashboard struct {
	Inputs []struct {
		Name, Type, PluginID string
	} `json:"__inputs"`
	UID        string
	Templating struct {
		List []struct {
			Name, Type string
			Datasource struct{ UID string }
			Definition string
		}
	}
	Panels []struct {
		Title, Type string
		Datasource  *struct{ UID string }
		Targets     []struct {
			Expr       string
			Datasource struct{ UID string }
		}
	}
}

func readDashboard(t *testing.T) *dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal([]byte(readFile(t, dashboardFile)), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// The dashboard imports anywhere: its datasource is an input, every panel
// and variable uses it, it is templated by node and distribution, and every
// query parses as PromQL (promtool checks them as recording rules).
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if len(d.Inputs) != 1 || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
		t.Fatalf("__inputs: %+v, want one prometheus datasource input", d.Inputs)
	}
	ds := "${" + d.Inputs[0].Name + "}"
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Datasource.UID != ds {
			t.Errorf("variable %s uses datasource %q, want %s", v.Name, v.Datasource.UID, ds)
		}
	}
	for _, want := range []string{"node", "distribution"} {
		if !vars[want] {
			t.Errorf("no $%s variable", want)
		}
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != ds || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %v, %d queries", p.Title, p.Datasource, len(p.Targets))
		}
		for _, q := range p.Targets {
			if q.Datasource.UID != ds {
				t.Errorf("panel %q: a query uses datasource %q", p.Title, q.Datasource.UID)
			}
			exprs = append(exprs, q.Expr)
		}
	}
	pt := promtool(t)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	grafana := strings.NewReplacer("$__rate_interval", "5m", "$node", ".*", "$distribution", ".*")
	for i, e := range exprs {
		b, _ := json.Marshal(grafana.Replace(e))
		fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", i, b)
	}
	p := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(p, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(pt, "check", "rules", p).CombinedOutput(); err != nil {
		t.Logf("queries:\n%s", rules.String())
		t.Errorf("dashboard queries do not parse: %v\n%s", err, out)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type ruleSet struct {
	exprs, records, alerts []string
}

func ruleExprs(t *testing.T) ruleSet {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []struct{ Record, Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal([]byte(readFile(t, rulesFile)), &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var rs ruleSet
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			rs.exprs = append(rs.exprs, r.Expr)
			if r.Record != "" {
				rs.records = append(rs.records, r.Record)
			}
			if r.Alert != "" {
				rs.alerts = append(rs.alerts, r.Alert)
			}
		}
	}
	return rs
}

// ourMetric matches the names of our metrics in a PromQL expression: they
// all start with intercloud_ (recording rules with "intercloud:"), but for
// client_golang's go_build_info. The only other series the files use is
// Prometheus's own up.
var ourMetric = regexp.MustCompile(`\b(?:intercloud_[a-z0-9_]+|go_build_info)\b`)

// namedMetrics are the metric names the rules and the dashboard use.
func namedMetrics(t *testing.T) []string {
	t.Helper()
	names := map[string]bool{}
	exprs := ruleExprs(t).exprs
	d := readDashboard(t)
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	for _, v := range d.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	for _, e := range exprs {
		for _, n := range ourMetric.FindAllString(e, -1) {
			names[n] = true
		}
	}
	return slices.Sorted(maps.Keys(names))
}

// family is the family a sample name belongs to: histograms expose
// NAME_bucket, NAME_sum and NAME_count.
func family(name string, have map[string]*dto.MetricFamily) string {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if f := have[base]; f != nil && (f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
				return base
			}
		}
	}
	return name
}

// scrape reads /metrics at url and lints it; body is what fetch returns.
func parseMetrics(t *testing.T, what, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: /metrics does not parse: %v", what, err)
	}
	return mfs
}

func lint(t *testing.T, what, body string) {
	t.Helper()
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("%s: promlint: %v", what, err)
	}
	for _, p := range problems {
		t.Errorf("%s: promlint: %s: %s", what, p.Metric, p.Text)
	}
}

const metricsSite = `apiVersion: intercloud/v1
kind: Site
name: metrics
store: {listen: %[1]s, peer: %[2]s, dataDir: store, leaseTTL: 3s}
controller: {admin: %[3]s}
health: {edgeInterval: 500ms, edgeTimeout: 400ms}
dns: {zone: metrics.test., ttl: 5s}
clouds:
  - {name: c1, asn: 65001, cidrs: [10.1.0.0/16]}
nodes:
  - name: edge1
    cloud: c1
    roles: [edge, dns]
    address: 127.0.0.1
    listen: {http: %[4]s, dns: %[5]s, admin: %[6]s}
  - name: origin1
    cloud: c1
    roles: [origin]
    listen: {admin: %[7]s}
    origin: {root: %[8]s, listen: %[9]s}
`

const metricsDist = `apiVersion: intercloud/v1
kind: Distribution
name: shop
spec:
  ttl: {default: 1h, min: 0s, max: 24h}
  origins:
    blue: {url: "http://%s", health: {path: /index.html, interval: 200ms, timeout: 150ms}}
  behaviors:
    - {path: "*", target: blue}
`

// Every metric the rules and the dashboard name exists in the real
// /metrics of the daemons that own it — a controller with its store, an
// edge+dns node and an origin node, and (as root) a gateway node in a
// network namespace — and every name there passes promlint.
func TestMetricsExist(t *testing.T) {
	names := namedMetrics(t)
	if len(names) < 20 {
		t.Fatalf("only %d metric names found in the rules and dashboard: %v", len(names), names)
	}
	dir := t.TempDir()
	addr := storetest.FreeAddr
	ctlAddr, edgeHTTP, edgeDNS, edgeAdmin := addr(t), addr(t), addr(t), addr(t)
	originAdmin, originAddr := addr(t), addr(t)
	root := filepath.Join(dir, "content")
	if err := os.MkdirAll(filepath.Join(root, "v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "v1", "index.html"), []byte("<h1>shop</h1>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("v1", filepath.Join(root, "current")); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cfg")
	if err := os.MkdirAll(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	site := fmt.Sprintf(metricsSite, addr(t), addr(t), ctlAddr, edgeHTTP, edgeDNS, edgeAdmin, originAdmin, root, originAddr)
	if err := os.WriteFile(filepath.Join(cfg, "site.yaml"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "shop.yaml"), fmt.Appendf(nil, metricsDist, originAddr), 0o644); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, "controller", dir, nil, binary, "controller", "-f", "cfg")
	startDaemon(t, "edge1", dir, nil, binary, "node", "--name", "edge1", "--store", "http://"+siteStore(site), "--state-dir", "edge1")
	startDaemon(t, "origin1", dir, nil, binary, "node", "--name", "origin1", "--store", "http://"+siteStore(site), "--state-dir", "origin1")

	// Traffic, so that the series of requests exist: a miss, then a hit.
	storetest.Eventually(t, 60*time.Second, "the edge serves shop from the origin", func() bool {
		return edgeGet(edgeHTTP, "shop.metrics.test") == http.StatusOK
	})
	edgeGet(edgeHTTP, "shop.metrics.test")

	targets := map[string]string{"controller": ctlAddr, "edge1": edgeAdmin, "origin1": originAdmin}
	have := map[string]*dto.MetricFamily{}
	bodies := map[string]string{}
	missing := func() []string {
		for what, a := range targets {
			body, code := get("http://" + a + "/metrics")
			if code != http.StatusOK {
				continue
			}
			bodies[what] = body
			maps.Copy(have, parseMetrics(t, what, body))
		}
		var out []string
		for _, n := range names {
			if gatewayMetric(n) {
				continue
			}
			if have[family(n, have)] == nil {
				out = append(out, n)
			}
		}
		return out
	}
	deadline := time.Now().Add(60 * time.Second)
	for m := missing(); len(m) > 0; m = missing() {
		if time.Now().After(deadline) {
			t.Fatalf("named in the rules or dashboard but in no /metrics: %v", m)
		}
		time.Sleep(250 * time.Millisecond)
	}
	for what, body := range bodies {
		lint(t, what, body)
	}

	t.Run("gateway", func(t *testing.T) { gatewayMetrics(t, names) })
}

// gatewayMetric says a name belongs to a gateway's roles (BGP, WireGuard,
// kernel routes), which need root and a namespace of their own.
func gatewayMetric(n string) bool {
	for _, p := range []string{"intercloud_bgp_", "intercloud_vpn_", "intercloud_route_"} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

func siteStore(site string) string {
	_, rest, _ := strings.Cut(site, "store: {listen: ")
	addr, _, _ := strings.Cut(rest, ",")
	return addr
}

func edgeGet(addr, host string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/index.html", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
