package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/edge"
	"github.com/intercloud/intercloud/edge/paths"
)

func TestPrintPaths(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	printPaths(&b, []edge.OriginPaths{{Distribution: "shop", Origin: "blue", Mode: "fastest",
		Chosen: paths.Choice{ID: "parent:seoul-edge-1", Since: now.Add(-90 * time.Second)},
		Paths: []edge.PathRow{
			{ID: "direct", Stats: paths.Stats{TTFB: 151 * time.Millisecond, RTT: 75 * time.Millisecond, Loss: 0.02, Samples: 40, Updated: now.Add(-time.Second)}},
			{ID: "parent:seoul-edge-1", Stats: paths.Stats{TTFB: 4 * time.Millisecond, Throughput: 12e6, Samples: 90, Updated: now}, Chosen: true},
			{ID: "parent:seoul-edge-2"},
		}}}, now)
	out := b.String()
	for _, want := range []string{"ORIGIN", "shop/blue", "fastest", "direct", "75ms", "151ms", "2.0%", "parent:seoul-edge-1", "12.0 MB/s", "yes, since 2026-01-01T11:58:30Z (1m30s)", "never"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// intercloud edge paths asks the node for one distribution's paths and
// says so when the edge measures none.
func TestRunEdgePaths(t *testing.T) {
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.URL.RequestURI()
		if r.URL.Query().Get("distribution") == "none" {
			io.WriteString(w, "[]")
			return
		}
		io.WriteString(w, `[{"distribution":"shop","origin":"blue","mode":"fastest","chosen":{"id":"direct"},"paths":[{"id":"direct","ttfb":1000000,"samples":3,"chosen":true}]}]`)
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := runEdge(ctx, []string{"paths", "shop", "blue", "--node", srv.URL, "-j"}); err != nil {
		t.Fatal(err)
	}
	if asked != "/v1/edge/paths?distribution=shop&origin=blue" {
		t.Fatalf("asked %q", asked)
	}
	if err := runEdge(ctx, []string{"paths", "none", "--node", srv.URL}); err == nil || !strings.Contains(err.Error(), "measures no path of distribution none") {
		t.Fatalf("no paths: %v", err)
	}
	if err := runEdge(ctx, []string{"routes"}); err != errUsage {
		t.Fatalf("bad verb: %v", err)
	}
}
