package controller

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/test/testenv"
)

// The topology page, loaded in a real headless browser.
func TestTopologyPageInChromium(t *testing.T) {
	chromium := testenv.NeedTool(t, "chromium", "chromium")
	c, srv := newController(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	snap := testSnapshot(t, "http://127.0.0.1:1", "http://127.0.0.1:2", "blue")
	if _, err := c.Apply(ctx, snap, "ui test"); err != nil {
		t.Fatal(err)
	}
	c.store.Register(ctx, status.NodeStatus{Name: "e1", Roles: []config.Role{config.RoleEdge}, Revision: 1, Hash: snap.Hash, Healthy: true,
		Report: status.RoleReport{Requests: 400, HitRatio: 0.75}}, 5*time.Second, quiet)
	storetest.Eventually(t, 10*time.Second, "edge registered", func() bool {
		n, _ := c.store.Nodes(ctx)
		return len(n) == 1
	})
	tctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	defer tcancel()
	out, err := exec.CommandContext(tctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--dump-dom", srv.URL+"/ui").Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	dom := string(out)
	for _, want := range []string{
		`<span id="site">t</span>`,
		`id="cloud-c1"`,
		`id="node-e1"`,
		`<td class="hit">75.0%</td>`,
		`every live node runs it`,
		`web (active)`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
}
