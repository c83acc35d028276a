package controller

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/topology"
)

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// The console's page, fragments and read-only calls over real HTTP, on a
// real store; the browser test (ui_browser_test.go) drives the page itself.
func TestConsoleHTTP(t *testing.T) {
	c, srv := newController(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	snap := testSnapshot(t, "http://127.0.0.1:1", "http://127.0.0.1:2", "blue")
	if _, err := c.Apply(ctx, snap, "first"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, testSnapshot(t, "http://127.0.0.1:1", "http://127.0.0.1:2", "green"), "switch"); err != nil {
		t.Fatal(err)
	}
	c.store.Register(ctx, status.NodeStatus{Name: "e1", Roles: []config.Role{config.RoleEdge}, Revision: 1, Hash: snap.Hash, Healthy: true,
		Report: status.RoleReport{Requests: 400, HitRatio: 0.75}}, 5*time.Second, quiet)
	storetest.Eventually(t, 10*time.Second, "edge registered", func() bool {
		n, _ := c.store.Nodes(ctx)
		return len(n) == 1
	})

	resp, page := get(t, srv.URL+"/ui")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/ui: %s\n%s", resp.Status, page)
	}
	// The one script is allowed by its hash, and nothing else is.
	sum := sha256.Sum256([]byte(uiJS))
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q does not pin the page's script", csp)
	}
	if !strings.Contains(page, "<script>"+uiJS+"</script>") {
		t.Errorf("the page's script differs from ui.js: its hash would not match")
	}
	for _, want := range []string{`<span id="site">t</span>`, `id="node-e1"`, `hit 75.0% of 400`, `data-revision="2"`,
		`id="origin-shop-green"`, `id="rev-1"`, `roll back to 1`, `id="no-metrics"`, `value="shop/web/blue"`} {
		if !strings.Contains(page, want) {
			t.Errorf("/ui lacks %q", want)
		}
	}
	for _, bad := range []string{"http://", "https://"} {
		// Only the origins' own URLs may appear, as text.
		for _, line := range strings.Split(page, "\n") {
			if strings.Contains(line, bad) && (strings.Contains(line, "src=") || strings.Contains(line, "href=")) {
				t.Errorf("the page loads something from outside: %s", line)
			}
		}
	}
	// Every part at once from one status read (one registration read for
	// the one node: the header and the picture share it), and each part
	// alone.
	all := srv.URL + "/ui/fragments?part=" + strings.Join(uiParts, "&part=")
	before := testutil.ToFloat64(c.metrics.statusRegistrations)
	resp, body := get(t, all)
	if read := testutil.ToFloat64(c.metrics.statusRegistrations) - before; read != 1 {
		t.Errorf("the parts together read %v registrations for status, want 1 (one status read)", read)
	}
	var frags map[string]string
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &frags) != nil || len(frags) != len(uiParts) {
		t.Fatalf("fragments: %s %q", resp.Status, body)
	}
	for _, part := range uiParts {
		if frags[part] == "" {
			t.Errorf("fragment %s is empty", part)
		}
		var one map[string]string
		if resp, body := get(t, srv.URL+"/ui/fragments?part="+part); resp.StatusCode != http.StatusOK ||
			json.Unmarshal([]byte(body), &one) != nil || len(one) != 1 || one[part] == "" {
			t.Errorf("fragment %s alone: %s %q", part, resp.Status, body)
		}
	}
	if !strings.Contains(frags["header"], `data-revision="2"`) || !strings.Contains(frags["topology"], `id="node-e1"`) {
		t.Errorf("header %q / topology %.300q", frags["header"], frags["topology"])
	}
	for q, code := range map[string]int{"?part=nope": http.StatusNotFound, "?part=header&part=nope": http.StatusNotFound, "": http.StatusBadRequest} {
		if resp, _ := get(t, srv.URL+"/ui/fragments"+q); resp.StatusCode != code {
			t.Errorf("fragments%s: %s, want %d", q, resp.Status, code)
		}
	}

	if resp, _ := get(t, srv.URL+"/v1/auth"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/v1/auth without a token: %s", resp.Status)
	}
	if resp, _ := get(t, srv.URL+"/v1/auth", "Authorization", "Bearer wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/v1/auth with a wrong token: %s", resp.Status)
	}
	if resp, _ := get(t, srv.URL+"/v1/auth", "Authorization", "Bearer secret"); resp.StatusCode != http.StatusNoContent {
		t.Errorf("/v1/auth with the token: %s", resp.Status)
	}

	resp, body = get(t, srv.URL+"/v1/revisions/2/diff")
	var d RevisionDiff
	if err := json.Unmarshal([]byte(body), &d); err != nil || resp.StatusCode != 200 {
		t.Fatalf("diff: %s %v\n%s", resp.Status, err, body)
	}
	if d.From != 1 || len(d.Changes) != 1 || !strings.Contains(strings.Join(d.Changes[0].Fields, " "), "active: blue -> green") {
		t.Errorf("diff of revision 2: %+v", d)
	}
	_, body = get(t, srv.URL+"/v1/revisions/1/diff")
	if err := json.Unmarshal([]byte(body), &d); err != nil || d.From != 0 || len(d.Changes) != 2 || d.Changes[0].Kind != config.Added {
		t.Errorf("diff of revision 1 (against nothing): %+v %v", d, err)
	}
	for path, code := range map[string]int{"/v1/revisions/9/diff": 404, "/v1/revisions/x/diff": 400, "/v1/topology?format=png": 400} {
		if resp, _ := get(t, srv.URL+path); resp.StatusCode != code {
			t.Errorf("%s: %s, want %d", path, resp.Status, code)
		}
	}

	_, body = get(t, srv.URL+"/v1/topology")
	var g topology.Graph
	if err := json.Unmarshal([]byte(body), &g); err != nil || g.Revision != 2 || len(g.Clouds) != 1 || g.Clouds[0].Nodes[0].State != "applying" /* revision 1 of 2, within the drift grace */ {
		t.Errorf("topology: %+v %v", g, err)
	}
	for format, want := range map[string]string{"svg": "<svg", "dot": "digraph"} {
		if resp, body := get(t, srv.URL+"/v1/topology?format="+format); !strings.HasPrefix(body, want) {
			t.Errorf("topology as %s: %s %.60q", format, resp.Status, body)
		}
	}

	if resp, _ := get(t, srv.URL+"/v1/metrics/series"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("series without a collector: %s, want 503", resp.Status)
	}
	go c.RunMetrics(ctx, time.Second)
	storetest.Eventually(t, 10*time.Second, "collector answers", func() bool {
		resp, body := get(t, srv.URL+"/v1/metrics/series")
		return resp.StatusCode == 200 && strings.Contains(body, `"id": "requests"`)
	})
	// e1's admin address (127.0.0.1:19180) has nobody listening: the
	// charts say so instead of staying silently empty.
	storetest.Eventually(t, 10*time.Second, "a round has run", func() bool {
		ch, _ := c.Series(ctx)
		return ch != nil && ch.Failed["e1"] != ""
	})
	_, body = get(t, srv.URL+"/ui/fragments?part=charts")
	var charts map[string]string
	_ = json.Unmarshal([]byte(body), &charts)
	if frag := charts["charts"]; !strings.Contains(frag, `id="chart-bgp"`) || !strings.Contains(frag, `<b>e1</b> (Get`) {
		t.Errorf("charts fragment: %.2000q", frag)
	}
}
