package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/controller"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/test/testenv"
)

// intercloud graph draws what a real controller on a real store reports.
func TestGraphCommand(t *testing.T) {
	m := storetest.Start(t)
	s := storetest.Open(t, m.Endpoints())
	ctl := controller.New(controller.Options{Store: s, Token: "t"})
	mux := http.NewServeMux()
	ctl.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	site := config.Site{Name: "g", DNS: config.DNS{Zone: "cdn.example.test."},
		Clouds: []config.Cloud{{Name: "c1", ASN: 65001}},
		Nodes: []config.Node{{Name: "e1", Cloud: "c1", Roles: []config.Role{config.RoleEdge}, Address: "127.0.0.1",
			Listen: config.Listen{HTTP: "127.0.0.1:18080", Admin: "127.0.0.1:19180"}}}}
	d := config.Distribution{Name: "shop", Spec: config.Spec{
		Origins:   map[string]config.Origin{"blue": {URL: "http://127.0.0.1:9001"}},
		Behaviors: []config.Behavior{{Path: "*", Target: "blue"}}}}
	snap, err := config.NewSnapshot(site, []config.Distribution{d})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.Apply(ctx, snap, "graph test"); err != nil {
		t.Fatal(err)
	}
	s.Register(ctx, status.NodeStatus{Name: "e1", Roles: []config.Role{config.RoleEdge}, Revision: 1, Hash: snap.Hash,
		Healthy: true, Report: status.RoleReport{Requests: 8, HitRatio: 0.25}}, 5*time.Second, slog.New(slog.DiscardHandler))
	storetest.Eventually(t, 10*time.Second, "e1 registered", func() bool {
		n, _ := s.Nodes(ctx)
		return len(n) == 1
	})
	dir := t.TempDir()
	for _, c := range []struct {
		format string
		want   []string
	}{
		{"svg", []string{`<svg`, `id="node-e1"`, `hit 25.0% of 8`, `id="dist-shop"`, `id="origin-shop-blue"`}},
		{"dot", []string{"digraph intercloud", `"node:e1"`, `"dist:shop" -> "behavior:shop:0"`}},
	} {
		out := filepath.Join(dir, "g."+c.format)
		if err := runGraph(ctx, []string{"--controller", srv.URL, "--format", c.format, "-o", out}); err != nil {
			t.Fatalf("graph --format %s: %v", c.format, err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("graph --format %s lacks %q:\n%s", c.format, w, b)
			}
		}
		if c.format == "dot" {
			dot := testenv.NeedTool(t, "dot", "graphviz")
			if out, err := exec.Command(dot, "-Tsvg", "-o", os.DevNull, out).CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("dot refuses the output: %v\n%s", err, out)
			}
		}
	}
	if err := runGraph(ctx, []string{"--controller", srv.URL, "--format", "png"}); err == nil || !strings.Contains(err.Error(), "want svg or dot") {
		t.Errorf("--format png: %v, want a clear refusal", err)
	}
}
